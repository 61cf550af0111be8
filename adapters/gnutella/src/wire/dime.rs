//! DIME (Direct Internet Message Encapsulation, the 2002 draft), the envelope a THEX
//! answer comes in (`Content-Type: application/dime`).
//!
//! A message is a run of records. Each record is a 12-byte header, then its options,
//! id, type and data, each padded with NULs to a multiple of 4 bytes:
//!
//! ```text
//! byte 0   VERSION (5 bits, = 1) | MB (first record) | ME (last record) | CF (chunked)
//! byte 1   TYPE_T (4 bits: 1 media type, 2 absolute URI) | reserved (4 bits)
//! 2..4     options length (u16 BE)    4..6  id length (u16 BE)
//! 6..8     type length (u16 BE)       8..12 data length (u32 BE)
//! ```
//!
//! Every length is checked against the bytes actually present before anything is
//! sliced; payloads are zero-copy slices of the input.

use bytes::{BufMut, Bytes};

use crate::error::{Error, Result};

/// The only DIME version there is.
pub const VERSION: u8 = 1;
/// Bytes of a record header.
pub const HEADER_LEN: usize = 12;
/// `TYPE_T` of a chunk continuing a chunked record.
pub const TYPE_UNCHANGED: u8 = 0;
/// `TYPE_T`: the type is a media type (`text/xml`).
pub const TYPE_MEDIA: u8 = 1;
/// `TYPE_T`: the type is an absolute URI.
pub const TYPE_URI: u8 = 2;
/// Most records (after joining chunks) accepted in one message.
pub const MAX_RECORDS: usize = 16;
/// Most chunks accepted in one message.
pub const MAX_CHUNKS: usize = 256;

const MB: u8 = 0x04;
const ME: u8 = 0x02;
const CF: u8 = 0x01;

/// One (whole) record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `TYPE_T` (how to read `kind`).
    pub type_format: u8,
    /// Options (opaque).
    pub options: Bytes,
    /// Record id (`uuid:…` in THEX).
    pub id: Bytes,
    /// Type: a media type or a URI, per `type_format`.
    pub kind: Bytes,
    /// Payload.
    pub data: Bytes,
}

impl Record {
    /// A record with no options.
    pub fn new(type_format: u8, kind: &str, id: &str, data: impl Into<Bytes>) -> Self {
        Record {
            type_format,
            options: Bytes::new(),
            id: Bytes::copy_from_slice(id.as_bytes()),
            kind: Bytes::copy_from_slice(kind.as_bytes()),
            data: data.into(),
        }
    }

    /// Whether the type is `kind` (compared without regard to ASCII case, as
    /// gtk-gnutella does).
    pub fn is_kind(&self, kind: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind.as_bytes())
    }

    /// Bytes the record takes on the wire (unchunked).
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + padded(self.options.len())
            + padded(self.id.len())
            + padded(self.kind.len())
            + padded(self.data.len())
    }

    /// Write the record, unchunked, with the message-begin / message-end flags given.
    /// Fails if a field is longer than its length field can say.
    pub fn encode(&self, first: bool, last: bool, dst: &mut impl BufMut) -> Result<()> {
        let short = |what: &'static str, b: &Bytes| {
            u16::try_from(b.len()).map_err(|_| Error::too_large(what, b.len(), u16::MAX))
        };
        let options = short("DIME options", &self.options)?;
        let id = short("DIME id", &self.id)?;
        let kind = short("DIME type", &self.kind)?;
        let data = u32::try_from(self.data.len())
            .map_err(|_| Error::too_large("DIME data", self.data.len(), u32::MAX))?;
        let mut b0 = VERSION << 3;
        if first {
            b0 |= MB;
        }
        if last {
            b0 |= ME;
        }
        dst.put_u8(b0);
        dst.put_u8((self.type_format & 0x0F) << 4);
        dst.put_u16(options);
        dst.put_u16(id);
        dst.put_u16(kind);
        dst.put_u32(data);
        for field in [&self.options, &self.id, &self.kind, &self.data] {
            dst.put_slice(field);
            dst.put_bytes(0, padded(field.len()) - field.len());
        }
        Ok(())
    }
}

/// `n` rounded up to a multiple of 4.
fn padded(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Write a whole message: the first record flagged MB, the last ME.
pub fn encode_message(records: &[Record], dst: &mut impl BufMut) -> Result<()> {
    let n = records.len();
    for (i, r) in records.iter().enumerate() {
        r.encode(i == 0, i + 1 == n, dst)?;
    }
    Ok(())
}

/// Decode a whole message: records up to the one flagged ME (anything after it is
/// ignored), chunks joined. The last field of the message may lack its padding.
pub fn decode_message(body: &Bytes) -> Result<Vec<Record>> {
    let mut pos = 0usize;
    let mut records: Vec<Record> = Vec::new();
    let mut open: Option<Open> = None;
    for n in 0.. {
        if n >= MAX_CHUNKS {
            return Err(Error::too_large("DIME chunks", n + 1, MAX_CHUNKS));
        }
        let chunk = read_chunk(body, &mut pos, n)?;
        let me = chunk.me;
        take_chunk(chunk, &mut open, &mut records)?;
        if me {
            if open.is_some() {
                return Err(Error::invalid("DIME record", "message ends inside a chunk"));
            }
            return Ok(records);
        }
    }
    unreachable!("the loop returns")
}

/// One record, or one chunk of a chunked record, as it is on the wire.
struct Chunk {
    /// Message end.
    me: bool,
    /// Chunk flag: more chunks of this record follow.
    cf: bool,
    type_format: u8,
    options: Bytes,
    id: Bytes,
    kind: Bytes,
    data: Bytes,
}

/// A chunked record being joined: its header fields, its data so far and their length.
type Open = (Record, Vec<Bytes>, usize);

/// Read the `n`th chunk of the message at `*pos` (moved past it): its header checked
/// (version, message-begin on the first only), every field bounded by the bytes present.
fn read_chunk(body: &Bytes, pos: &mut usize, n: usize) -> Result<Chunk> {
    let head = body
        .get(*pos..pos.saturating_add(HEADER_LEN))
        .filter(|h| h.len() == HEADER_LEN)
        .ok_or_else(|| Error::truncated("DIME record header"))?;
    let version = head[0] >> 3;
    if version != VERSION {
        return Err(Error::invalid(
            "DIME record",
            format!("version {version}, expected {VERSION}"),
        ));
    }
    let (mb, me, cf) = (head[0] & MB != 0, head[0] & ME != 0, head[0] & CF != 0);
    if mb != (n == 0) {
        return Err(Error::invalid(
            "DIME record",
            "message-begin flag not on the first record only",
        ));
    }
    let type_format = head[1] >> 4;
    let options_len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let id_len = usize::from(u16::from_be_bytes([head[4], head[5]]));
    let kind_len = usize::from(u16::from_be_bytes([head[6], head[7]]));
    let data_len = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let data_len = usize::try_from(data_len)
        .map_err(|_| Error::too_large("DIME data", data_len, usize::MAX))?;
    *pos += HEADER_LEN;
    let mut field = |len: usize, last: bool, what: &'static str| -> Result<Bytes> {
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= body.len())
            .ok_or_else(|| Error::truncated(what))?;
        let out = body.slice(*pos..end);
        // The message's very last field may come without its padding.
        *pos = (*pos + padded(len)).min(if last { body.len() } else { usize::MAX });
        if *pos > body.len() {
            return Err(Error::truncated(what));
        }
        Ok(out)
    };
    let options = field(options_len, false, "DIME options")?;
    let id = field(id_len, false, "DIME id")?;
    let kind = field(kind_len, false, "DIME type")?;
    let data = field(data_len, me && !cf, "DIME data")?;
    Ok(Chunk {
        me,
        cf,
        type_format,
        options,
        id,
        kind,
        data,
    })
}

/// Start a record with `c`, or add `c` to the chunked record being joined (`open`); a
/// record complete goes to `records`.
fn take_chunk(c: Chunk, open: &mut Option<Open>, records: &mut Vec<Record>) -> Result<()> {
    match open.take() {
        None => {
            if c.type_format == TYPE_UNCHANGED {
                // Only a continuing chunk may leave its type unsaid.
                return Err(Error::invalid(
                    "DIME record",
                    "type format 0 outside a continuing chunk",
                ));
            }
            let rec = Record {
                type_format: c.type_format,
                options: c.options,
                id: c.id,
                kind: c.kind,
                data: Bytes::new(),
            };
            if c.cf {
                let len = c.data.len();
                *open = Some((rec, vec![c.data], len));
            } else {
                push(
                    records,
                    Record {
                        data: c.data,
                        ..rec
                    },
                )?;
            }
        }
        Some((rec, mut parts, total)) => {
            if c.type_format != TYPE_UNCHANGED || !c.id.is_empty() || !c.kind.is_empty() {
                return Err(Error::invalid(
                    "DIME chunk",
                    "a continuing chunk names a type or an id",
                ));
            }
            let total = total + c.data.len();
            parts.push(c.data);
            if c.cf {
                *open = Some((rec, parts, total));
            } else {
                let mut joined = Vec::with_capacity(total);
                for p in &parts {
                    joined.extend_from_slice(p);
                }
                push(
                    records,
                    Record {
                        data: Bytes::from(joined),
                        ..rec
                    },
                )?;
            }
        }
    }
    Ok(())
}

fn push(records: &mut Vec<Record>, r: Record) -> Result<()> {
    if records.len() >= MAX_RECORDS {
        return Err(Error::too_large(
            "DIME records",
            records.len() + 1,
            MAX_RECORDS,
        ));
    }
    records.push(r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Vec<Record> {
        vec![
            Record::new(TYPE_MEDIA, "text/xml", "", &b"<x/>\r\n"[..]),
            Record::new(TYPE_URI, "http://example/t", "uuid:1", vec![7u8; 24]),
        ]
    }

    #[test]
    fn round_trip_and_layout() {
        let mut v = Vec::new();
        encode_message(&two(), &mut v).unwrap();
        assert_eq!(&v[..12], &[0x0c, 0x10, 0, 0, 0, 0, 0, 8, 0, 0, 0, 6]);
        assert_eq!(
            v.len(),
            two().iter().map(Record::encoded_len).sum::<usize>()
        );
        assert_eq!(decode_message(&Bytes::from(v.clone())).unwrap(), two());
        // Every shorter prefix is an error, never a panic.
        for cut in 0..v.len() {
            assert!(
                decode_message(&Bytes::copy_from_slice(&v[..cut])).is_err(),
                "{cut}"
            );
        }
    }

    #[test]
    fn chunks_are_joined() {
        // One record in two chunks: "abcde" + "fg".
        let mut v = Vec::new();
        v.extend_from_slice(&[0x0d, 0x10, 0, 0, 0, 0, 0, 3, 0, 0, 0, 5]);
        v.extend_from_slice(b"t/x\0abcde\0\0\0");
        v.extend_from_slice(&[0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(b"fg");
        let r = decode_message(&Bytes::from(v)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(&r[0].data[..], b"abcdefg");
        assert!(r[0].is_kind("T/X"));
    }

    #[test]
    fn bad_headers_are_refused() {
        let mut v = Vec::new();
        encode_message(&two(), &mut v).unwrap();
        let mut bad = v.clone();
        bad[0] = 0x14; // version 2
        assert!(decode_message(&Bytes::from(bad)).is_err());
        let mut bad = v.clone();
        bad[0] &= !MB;
        assert!(decode_message(&Bytes::from(bad)).is_err());
        let mut bad = v;
        bad[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_message(&Bytes::from(bad)).is_err());
    }
}
