//! Browse host (`X-Features: browse/1.0`): `GET /` with
//! `Accept: application/x-gnutella-packets` is answered with the servent's whole
//! library as a stream of QueryHit descriptors.
//!
//! What gtk-gnutella does (capture `06h-http-browse-host`; `bh_upload.c`,
//! `bh_download.c`):
//!
//! * the reply is `200 OK` with `Content-Type: application/x-gnutella-packets`;
//!   to an HTTP/1.1 request the body is `Transfer-Encoding: chunked`; when the
//!   request carried `Accept-Encoding: deflate` the packets are one zlib stream
//!   (`Content-Encoding: deflate`) inside the chunks;
//! * each QueryHit has an all-zero MUID, TTL 1, hops 0, and is kept under
//!   about 3500 bytes (`BH_MAX_QHIT_SIZE`); records are those of ordinary hits;
//! * its client accepts a body chunked or not, deflated or not (`BH_DL_CHUNKED`,
//!   `BH_DL_INFLATE`).
//!
//! This module is pure: the hit packing, chunked framing both ways, and a
//! bounded decoder for a browse reply body. The servent does the I/O.

use bytes::{Buf, BytesMut};

use crate::error::{Error, Result};
use crate::wire::descriptor_header::{DescriptorDecoder, Header, kind};
use crate::wire::guid::Guid;
use crate::wire::http::{RequestHead, ResponseHead};
use crate::wire::link::LinkInflater;
use crate::wire::message::{Descriptor, HitRecord, Message, QueryHit};

/// The media type of a Gnutella packet stream.
pub const CONTENT_TYPE: &str = "application/x-gnutella-packets";
/// Largest QueryHit payload we pack records into (gtk-gnutella `BH_MAX_QHIT_SIZE`);
/// a single record larger than that still goes, alone.
pub const MAX_HIT_PAYLOAD: usize = 3500;
/// The end of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
/// Longest chunk-size line (with extensions) or trailer line accepted.
const MAX_CHUNK_LINE: usize = 1024;
/// Largest chunk accepted.
const MAX_CHUNK: u64 = 16 << 20;
/// Most bytes one inflate call of a browse body may produce.
const MAX_INFLATE_BURST: usize = 4 << 20;

/// Whether `req` asks for browse host packets: `GET /` whose `Accept` lists
/// [`CONTENT_TYPE`] (parameters and case ignored).
pub fn wants_packets(req: &RequestHead) -> bool {
    req.target == "/"
        && req.headers.get_all("Accept").any(|v| {
            v.split(',').any(|t| {
                t.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case(CONTENT_TYPE))
            })
        })
}

/// Whether `req` accepts a deflated body (`Accept-Encoding: deflate`).
pub fn accepts_deflate(req: &RequestHead) -> bool {
    req.headers.get_all("Accept-Encoding").any(|v| {
        v.split(',').any(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("deflate"))
        })
    })
}

/// The browse descriptor header: all-zero MUID, TTL 1, hops 0.
pub fn hit_header() -> Header {
    Header::new(Guid::ZERO, kind::QUERY_HIT, 1, 0, 0)
}

/// Pack `records` into QueryHits shaped like `template` (its address, speed,
/// trailer and servent GUID; its own records are ignored): as many records per
/// hit as fit in [`MAX_HIT_PAYLOAD`] (at least one, at most 255), in order.
pub fn pack_hits(template: &QueryHit, records: Vec<HitRecord>) -> Vec<Descriptor> {
    let mut base = template.clone();
    base.results.clear();
    let fixed = {
        let mut v = Vec::new();
        base.encode(&mut v);
        v.len()
    };
    let mut out = Vec::new();
    let mut cur: Vec<HitRecord> = Vec::new();
    let mut size = fixed;
    for r in records {
        let len = record_len(&r);
        if !cur.is_empty() && (size + len > MAX_HIT_PAYLOAD || cur.len() == 255) {
            out.push(hit(&base, std::mem::take(&mut cur)));
            size = fixed;
        }
        size += len;
        cur.push(r);
    }
    if !cur.is_empty() {
        out.push(hit(&base, cur));
    }
    out
}

fn hit(base: &QueryHit, results: Vec<HitRecord>) -> Descriptor {
    let mut h = base.clone();
    h.results = results;
    Descriptor {
        header: hit_header(),
        message: Message::QueryHit(h),
    }
}

fn record_len(r: &HitRecord) -> usize {
    let mut v = Vec::new();
    r.ext.encode(&mut v);
    8 + r.name.len() + 1 + v.len() + 1
}

/// Append `data` as one HTTP chunk (nothing for empty data: an empty chunk ends the body).
pub fn put_chunk(data: &[u8], dst: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    dst.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    dst.extend_from_slice(data);
    dst.extend_from_slice(b"\r\n");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// A bounded `Transfer-Encoding: chunked` decoder over byte slices.
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    line: Vec<u8>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            line: Vec::new(),
        }
    }
}

impl ChunkedDecoder {
    /// The last chunk and its trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decode `input`, appending the body bytes to `out`. Bytes after the end of
    /// the body are an error.
    pub fn decode(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<()> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Done => {
                    return Err(Error::invalid("chunked body", "data after the last chunk"));
                }
                ChunkState::Data(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input.advance(n);
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::Size | ChunkState::DataEnd | ChunkState::Trailer => {
                    let Some(line) = self.take_line(&mut input)? else {
                        return Ok(());
                    };
                    self.state = match self.state {
                        ChunkState::DataEnd if line.is_empty() => ChunkState::Size,
                        ChunkState::DataEnd => {
                            return Err(Error::invalid("chunked body", "no CRLF after a chunk"));
                        }
                        ChunkState::Trailer if line.is_empty() => ChunkState::Done,
                        ChunkState::Trailer => ChunkState::Trailer,
                        _ => match parse_size(&line)? {
                            0 => ChunkState::Trailer,
                            n => ChunkState::Data(n),
                        },
                    };
                }
            }
        }
        Ok(())
    }

    /// One CRLF-terminated line (without it), or `None` until it is complete.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>> {
        match input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.line.extend_from_slice(&input[..i]);
                input.advance(i + 1);
                if self.line.len() > MAX_CHUNK_LINE {
                    return Err(Error::too_large(
                        "chunk line",
                        self.line.len(),
                        MAX_CHUNK_LINE,
                    ));
                }
                let mut l = std::mem::take(&mut self.line);
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                Ok(Some(l))
            }
            None => {
                self.line.extend_from_slice(input);
                input.advance(input.len());
                if self.line.len() > MAX_CHUNK_LINE {
                    return Err(Error::too_large(
                        "chunk line",
                        self.line.len(),
                        MAX_CHUNK_LINE,
                    ));
                }
                Ok(None)
            }
        }
    }
}

fn parse_size(line: &[u8]) -> Result<u64> {
    let hex = line.split(|&b| b == b';').next().unwrap_or(&[]);
    let hex = std::str::from_utf8(hex)
        .map_err(|_| Error::invalid("chunk size", "not ASCII"))?
        .trim();
    if hex.is_empty() || hex.len() > 16 {
        return Err(Error::invalid("chunk size", format!("{hex:?}")));
    }
    let n = u64::from_str_radix(hex, 16)
        .map_err(|_| Error::invalid("chunk size", format!("{hex:?}")))?;
    if n > MAX_CHUNK {
        return Err(Error::too_large("chunk", n, MAX_CHUNK));
    }
    Ok(n)
}

/// Decodes a browse reply body into descriptors: de-chunks and inflates as the
/// response head says, then frames (payloads bounded by [`DescriptorDecoder`]).
#[derive(Debug)]
pub struct BrowseDecoder {
    chunked: Option<ChunkedDecoder>,
    inflate: Option<LinkInflater>,
    frames: DescriptorDecoder,
    stage: BytesMut,
    plain: BytesMut,
}

impl BrowseDecoder {
    /// A decoder for the body of `resp`; fails unless it is a `200` carrying
    /// [`CONTENT_TYPE`], or if it uses an encoding other than deflate.
    pub fn new(resp: &ResponseHead) -> Result<Self> {
        if resp.code != 200 {
            return Err(Error::invalid(
                "browse reply",
                format!("status {}", resp.code),
            ));
        }
        let ct = resp.headers.get("Content-Type").unwrap_or("");
        if !ct
            .split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(CONTENT_TYPE))
        {
            return Err(Error::invalid(
                "browse reply",
                format!("Content-Type {ct:?}"),
            ));
        }
        let inflate = match resp.headers.get("Content-Encoding").map(str::trim) {
            None | Some("") => None,
            Some(e) if e.eq_ignore_ascii_case("deflate") => {
                Some(LinkInflater::new(MAX_INFLATE_BURST))
            }
            Some(e) => {
                return Err(Error::invalid(
                    "browse reply",
                    format!("Content-Encoding {e:?}"),
                ));
            }
        };
        let chunked = resp
            .headers
            .get("Transfer-Encoding")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"))
            .then(ChunkedDecoder::default);
        Ok(BrowseDecoder {
            chunked,
            inflate,
            frames: DescriptorDecoder::default(),
            stage: BytesMut::new(),
            plain: BytesMut::new(),
        })
    }

    /// The chunked body ended (always false for a body that is not chunked,
    /// which ends when the connection closes).
    pub fn is_done(&self) -> bool {
        self.chunked.as_ref().is_some_and(ChunkedDecoder::is_done)
    }

    /// Feed body bytes; returns the descriptors completed by them.
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<Descriptor>> {
        let data: &[u8] = match &mut self.chunked {
            Some(c) => {
                self.stage.clear();
                c.decode(input, &mut self.stage)?;
                &self.stage
            }
            None => input,
        };
        match &mut self.inflate {
            Some(z) => z.inflate(data, &mut self.plain)?,
            None => self.plain.extend_from_slice(data),
        }
        let mut out = Vec::new();
        while let Some(raw) = self.frames.decode(&mut self.plain)? {
            out.push(Descriptor::from_raw(&raw)?);
        }
        Ok(out)
    }

    /// At the end of the body: fails if a descriptor was cut short.
    pub fn finish(&self) -> Result<()> {
        if self.chunked.as_ref().is_some_and(|c| !c.is_done()) {
            return Err(Error::truncated("browse body (last chunk)"));
        }
        if self.plain.is_empty() {
            Ok(())
        } else {
            Err(Error::truncated("browse body"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::http::HttpHead;
    use junction_core::http::Headers;
    use proptest::prelude::*;

    #[test]
    fn chunked_golden() {
        let mut v = Vec::new();
        put_chunk(b"hello", &mut v);
        put_chunk(&[0u8; 26], &mut v);
        v.extend_from_slice(LAST_CHUNK);
        assert!(v.starts_with(b"5\r\nhello\r\n1a\r\n"));
        assert!(v.ends_with(b"\r\n0\r\n\r\n"));
        let mut d = ChunkedDecoder::default();
        let mut out = BytesMut::new();
        d.decode(&v, &mut out).unwrap();
        assert!(d.is_done());
        assert_eq!(&out[..5], b"hello");
        assert_eq!(out.len(), 31);
        // Extensions and trailers are skipped; junk is refused.
        let mut d = ChunkedDecoder::default();
        let mut out = BytesMut::new();
        d.decode(b"3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", &mut out)
            .unwrap();
        assert!(d.is_done());
        assert_eq!(&out[..], b"abc");
        for bad in [&b"zz\r\n"[..], b"3\r\nabcX\r\n", b"ffffffffffffffffff\r\n"] {
            let mut d = ChunkedDecoder::default();
            assert!(d.decode(bad, &mut BytesMut::new()).is_err(), "{bad:?}");
        }
        let mut d = ChunkedDecoder::default();
        assert!(d.decode(&[b'1'; 2000], &mut BytesMut::new()).is_err());
    }

    #[test]
    fn request_matching() {
        let req =
            |accept: &str| RequestHead::new("GET", "/", Headers::new().with("Accept", accept));
        assert!(wants_packets(&req("application/x-gnutella-packets")));
        assert!(wants_packets(&req(
            "text/html, Application/X-Gnutella-Packets;q=1"
        )));
        assert!(!wants_packets(&req("text/html")));
        let mut r = req(CONTENT_TYPE);
        r.target = "/foo".into();
        assert!(!wants_packets(&r));
        assert!(accepts_deflate(&RequestHead::new(
            "GET",
            "/",
            Headers::new().with("Accept-Encoding", "gzip, deflate")
        )));
    }

    proptest! {
        #[test]
        fn chunked_round_trip_any_split(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            split in any::<prop::sample::Index>(),
        ) {
            let mut v = Vec::new();
            for c in &chunks {
                put_chunk(c, &mut v);
            }
            v.extend_from_slice(LAST_CHUNK);
            let at = split.index(v.len() + 1);
            let mut d = ChunkedDecoder::default();
            let mut out = BytesMut::new();
            d.decode(&v[..at], &mut out).unwrap();
            d.decode(&v[at..], &mut out).unwrap();
            prop_assert!(d.is_done());
            prop_assert_eq!(out.to_vec(), chunks.concat());
        }

        /// Pack → encode → (deflate) → chunk → `BrowseDecoder`: the same hits, each
        /// within the size cap unless it holds a single record.
        #[test]
        fn browse_body_round_trip(
            names in proptest::collection::vec("[a-z ]{1,300}", 1..60),
            deflate in any::<bool>(),
            piece in 1usize..5000,
        ) {
            use crate::wire::ext::ExtArea;
            use crate::wire::link::LinkDeflater;
            use bytes::Bytes;
            let template = QueryHit {
                port: 6346,
                ip: [10, 0, 0, 1].into(),
                speed: 1000,
                results: Vec::new(),
                trailer: None,
                servent: Guid([9; 16]),
            };
            let records: Vec<HitRecord> = names
                .iter()
                .enumerate()
                .map(|(i, n)| HitRecord {
                    index: i as u32,
                    size: 1000 + i as u32,
                    name: Bytes::from(n.clone().into_bytes()),
                    ext: ExtArea::default(),
                })
                .collect();
            let ds = pack_hits(&template, records.clone());
            let mut plain = Vec::new();
            for d in &ds {
                if let Message::QueryHit(h) = &d.message {
                    let mut v = Vec::new();
                    h.encode(&mut v);
                    prop_assert!(v.len() <= MAX_HIT_PAYLOAD || h.results.len() == 1);
                }
                d.encode(&mut plain).unwrap();
            }
            let body = if deflate {
                let mut z = LinkDeflater::default();
                let mut out = BytesMut::new();
                z.deflate_flush(&plain, &mut out).unwrap();
                z.finish(&mut out).unwrap();
                out.to_vec()
            } else {
                plain
            };
            let mut wire = Vec::new();
            for c in body.chunks(piece) {
                put_chunk(c, &mut wire);
            }
            wire.extend_from_slice(LAST_CHUNK);
            let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\nTransfer-Encoding: chunked\r\n");
            if deflate {
                head.push_str("Content-Encoding: deflate\r\n");
            }
            head.push_str("\r\n");
            let (resp, _) = ResponseHead::parse(head.as_bytes()).unwrap().unwrap();
            let mut dec = BrowseDecoder::new(&resp).unwrap();
            let mut got = Vec::new();
            for c in wire.chunks(piece / 3 + 1) {
                got.extend(dec.feed(c).unwrap());
            }
            prop_assert!(dec.is_done());
            dec.finish().unwrap();
            for d in &mut got {
                d.header.payload_len = 0; // filled in on decode only
            }
            prop_assert_eq!(&got, &ds);
            let back: Vec<HitRecord> = got
                .into_iter()
                .flat_map(|d| match d.message {
                    Message::QueryHit(h) => h.results,
                    _ => Vec::new(),
                })
                .collect();
            prop_assert_eq!(back, records);
        }

        #[test]
        fn chunked_decoder_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut d = ChunkedDecoder::default();
            let _ = d.decode(&data, &mut BytesMut::new());
        }
    }
}
