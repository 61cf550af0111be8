//! HTTP/1.1 heads for Gnutella transfers, and the `GIV` line of push.
//!
//! Only heads are handled here (the body is the caller's business): request
//! and response lines, headers, `Range` / `Content-Range`, the request
//! targets servents use (`/uri-res/N2R?urn:sha1:…`, `/get/<index>/<name>`),
//! `X-Alt`, PARQ `X-Queued`, `X-Available-Ranges`.

use std::fmt;
use std::net::SocketAddrV4;

use bytes::{Buf, BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::urn::Urn;
use crate::wire::head;
use crate::wire::header::Guid;
use crate::wire::headers::Headers;

/// Largest HTTP head we buffer.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Most ranges accepted in one `Range` header.
pub const MAX_RANGES: usize = 64;

/// An HTTP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpVersion(pub u8, pub u8);

impl HttpVersion {
    /// HTTP/1.1.
    pub const V1_1: HttpVersion = HttpVersion(1, 1);

    fn parse(s: &str) -> Result<Self> {
        let bad = || Error::invalid("HTTP version", format!("{s:?}"));
        let v = s.strip_prefix("HTTP/").ok_or_else(bad)?;
        let (a, b) = v.split_once('.').ok_or_else(bad)?;
        Ok(HttpVersion(
            a.parse().map_err(|_| bad())?,
            b.parse().map_err(|_| bad())?,
        ))
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/{}.{}", self.0, self.1)
    }
}

/// A request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `HEAD`...
    pub method: String,
    /// The request target as sent.
    pub target: String,
    /// Version.
    pub version: HttpVersion,
    /// Headers.
    pub headers: Headers,
}

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Version.
    pub version: HttpVersion,
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers.
    pub headers: Headers,
}

fn finish(dst: &mut impl BufMut, headers: &Headers) {
    headers.encode(dst);
    dst.put_slice(b"\r\n");
}

impl RequestHead {
    /// A request for `target`.
    pub fn new(method: &str, target: impl Into<String>, headers: Headers) -> Self {
        RequestHead {
            method: method.to_owned(),
            target: target.into(),
            version: HttpVersion::V1_1,
            headers,
        }
    }

    /// Parse a head at the start of `buf`: `Ok(None)` until complete.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>> {
        let Some(raw) = head::split(buf, MAX_HEAD_LEN, "HTTP request head")? else {
            return Ok(None);
        };
        let mut parts = raw.start.split(' ').filter(|s| !s.is_empty());
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::invalid(
                "HTTP request line",
                format!("{:?}", raw.start),
            ));
        };
        if !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Error::invalid("HTTP method", format!("{method:?}")));
        }
        Ok(Some((
            RequestHead {
                method: method.to_owned(),
                target: target.to_owned(),
                version: HttpVersion::parse(version)?,
                headers: raw.headers,
            },
            raw.len,
        )))
    }

    /// Streaming form of [`RequestHead::parse`].
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Self>> {
        Ok(Self::parse(buf)?.map(|(h, n)| {
            buf.advance(n);
            h
        }))
    }

    /// Write the head.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(format!("{} {} {}\r\n", self.method, self.target, self.version).as_bytes());
        finish(dst, &self.headers);
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// The target, interpreted.
    pub fn target(&self) -> Target {
        Target::parse(&self.target)
    }

    /// Parsed `Range` header (`None` if absent).
    pub fn range(&self) -> Option<Result<Vec<ByteRange>>> {
        self.headers.get("Range").map(ByteRange::parse_header)
    }

    /// `X-Gnutella-Content-URN` / `X-Content-URN`.
    pub fn content_urn(&self) -> Option<Urn> {
        content_urn(&self.headers)
    }

    /// `X-Alt` alternate locations.
    pub fn alt_locs(&self) -> Vec<SocketAddrV4> {
        self.headers.addr_list("X-Alt")
    }

    /// The `GET` for `/uri-res/N2R?<urn>` with an optional inclusive range.
    pub fn get_n2r(urn: &Urn, host: &str, user_agent: &str, range: Option<(u64, u64)>) -> Self {
        let mut h = Headers::new()
            .with("Host", host)
            .with("User-Agent", user_agent);
        if let Some((a, b)) = range {
            h.push("Range", format!("bytes={a}-{b}"));
        }
        Self::new("GET", format!("/uri-res/N2R?{urn}"), h)
    }

    /// The `GET` for `/get/<index>/<name>` (name percent-encoded).
    pub fn get_by_index(
        index: u32,
        name: &str,
        host: &str,
        user_agent: &str,
        range: Option<(u64, u64)>,
    ) -> Self {
        let mut h = Headers::new()
            .with("Host", host)
            .with("User-Agent", user_agent);
        if let Some((a, b)) = range {
            h.push("Range", format!("bytes={a}-{b}"));
        }
        Self::new("GET", format!("/get/{index}/{}", percent_encode(name)), h)
    }
}

impl ResponseHead {
    /// A response with `code` and `reason`.
    pub fn new(code: u16, reason: impl Into<String>, headers: Headers) -> Self {
        ResponseHead {
            version: HttpVersion::V1_1,
            code,
            reason: reason.into(),
            headers,
        }
    }

    /// Parse a head at the start of `buf`: `Ok(None)` until complete.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>> {
        let Some(raw) = head::split(buf, MAX_HEAD_LEN, "HTTP response head")? else {
            return Ok(None);
        };
        let mut parts = raw.start.splitn(3, ' ');
        let version = HttpVersion::parse(parts.next().unwrap_or(""))?;
        let code_s = parts.next().unwrap_or("");
        let code = code_s
            .parse::<u16>()
            .ok()
            .filter(|c| (100..1000).contains(c))
            .ok_or_else(|| Error::invalid("HTTP status code", format!("{code_s:?}")))?;
        Ok(Some((
            ResponseHead {
                version,
                code,
                reason: parts.next().unwrap_or("").to_owned(),
                headers: raw.headers,
            },
            raw.len,
        )))
    }

    /// Streaming form of [`ResponseHead::parse`].
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Self>> {
        Ok(Self::parse(buf)?.map(|(h, n)| {
            buf.advance(n);
            h
        }))
    }

    /// Write the head.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(format!("{} {} {}\r\n", self.version, self.code, self.reason).as_bytes());
        finish(dst, &self.headers);
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// `Content-Length`, if present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        self.headers.get_u64("Content-Length")
    }

    /// Parsed `Content-Range`.
    pub fn content_range(&self) -> Option<Result<ContentRange>> {
        self.headers.get("Content-Range").map(ContentRange::parse)
    }

    /// `X-Gnutella-Content-URN` / `X-Content-URN`.
    pub fn content_urn(&self) -> Option<Urn> {
        content_urn(&self.headers)
    }

    /// `X-Alt` alternate locations.
    pub fn alt_locs(&self) -> Vec<SocketAddrV4> {
        self.headers.addr_list("X-Alt")
    }

    /// PARQ `X-Queued`.
    pub fn queued(&self) -> Option<Queued> {
        self.headers.get("X-Queued").map(Queued::parse)
    }

    /// `Retry-After` in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get_u64("Retry-After")
    }

    /// `X-Available-Ranges` (inclusive ranges; bad items skipped).
    pub fn available_ranges(&self) -> Option<Vec<(u64, u64)>> {
        let v = self.headers.get("X-Available-Ranges")?;
        let v = v
            .trim()
            .strip_prefix("bytes")
            .unwrap_or(v)
            .trim_start_matches([' ', '=']);
        Some(
            v.split(',')
                .filter_map(|r| {
                    let (a, b) = r.trim().split_once('-')?;
                    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
                    (a <= b).then_some((a, b))
                })
                .take(MAX_RANGES)
                .collect(),
        )
    }

    /// `206 Partial Content` for bytes `start..=end` of a `total`-byte file.
    pub fn partial(start: u64, end: u64, total: u64, server: &str, urn: Option<&Urn>) -> Self {
        let mut h = Headers::new().with("Server", server);
        h.push(
            "Content-Range",
            ContentRange {
                start,
                end,
                total: Some(total),
            }
            .to_string(),
        )
        .push("Content-Length", (end - start.min(end) + 1).to_string());
        if let Some(u) = urn {
            h.push("X-Gnutella-Content-URN", u.to_string());
        }
        Self::new(206, "Partial Content", h)
    }

    /// `404 Not Found`.
    pub fn not_found(server: &str) -> Self {
        Self::new(
            404,
            "Not Found",
            Headers::new()
                .with("Server", server)
                .with("Content-Length", "0"),
        )
    }

    /// `416` with `Content-Range: bytes */total`.
    pub fn range_not_satisfiable(total: u64, server: &str) -> Self {
        Self::new(
            416,
            "Requested Range Not Satisfiable",
            Headers::new()
                .with("Server", server)
                .with("Content-Range", format!("bytes */{total}"))
                .with("Content-Length", "0"),
        )
    }

    /// `503` busy, or queued with PARQ fields and `Retry-After`.
    pub fn busy(server: &str, queued: Option<&Queued>, retry_after: Option<u64>) -> Self {
        let mut h = Headers::new().with("Server", server);
        let reason = if let Some(q) = queued {
            h.push("X-Queued", q.to_string());
            format!("Queued (slot {})", q.position.unwrap_or(0))
        } else {
            "Busy".to_owned()
        };
        if let Some(s) = retry_after {
            h.push("Retry-After", s.to_string());
        }
        h.push("Content-Length", "0");
        Self::new(503, reason, h)
    }
}

fn content_urn(h: &Headers) -> Option<Urn> {
    h.get("X-Gnutella-Content-URN")
        .or_else(|| h.get("X-Content-URN"))
        .and_then(|v| Urn::parse(v.split(',').next().unwrap_or("")).ok())
}

/// A request target, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/uri-res/N2R?<urn>`: the file by URN.
    N2R(Urn),
    /// `/uri-res/N2X?<urn>[;<tth>]`: the THEX tree.
    N2X(Urn),
    /// `/get/<index>/<name>` (name percent-decoded).
    ByIndex {
        /// File index from a hit.
        index: u32,
        /// Decoded file name.
        name: String,
    },
    /// `/` (browse host).
    Root,
    /// Anything else.
    Other(String),
}

impl Target {
    /// Interpret a request target.
    pub fn parse(t: &str) -> Self {
        if let Some(q) = t.strip_prefix("/uri-res/N2R?")
            && let Ok(u) = Urn::parse(&percent_decode(q))
        {
            return Target::N2R(u);
        }
        if let Some(q) = t.strip_prefix("/uri-res/N2X?") {
            let first = q.split(';').next().unwrap_or("");
            if let Ok(u) = Urn::parse(&percent_decode(first)) {
                return Target::N2X(u);
            }
        }
        if let Some(rest) = t.strip_prefix("/get/")
            && let Some((idx, name)) = rest.split_once('/')
            && let Ok(index) = idx.parse()
        {
            return Target::ByIndex {
                index,
                name: percent_decode(name),
            };
        }
        if t == "/" {
            return Target::Root;
        }
        Target::Other(t.to_owned())
    }
}

/// Percent-decode (invalid escapes are kept literally; invalid UTF-8 lossy).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = b.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode everything but unreserved characters.
pub fn percent_encode(s: &str) -> String {
    junction_core::link::percent_encode(s)
}

/// One item of a `Range: bytes=` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `a-b` (inclusive) or `a-` (to the end).
    From {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: Option<u64>,
    },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parse `bytes=a-b,c-,-n`.
    pub fn parse_header(v: &str) -> Result<Vec<ByteRange>> {
        let what = "Range header";
        let v = v.trim();
        let Some(spec) = v
            .strip_prefix("bytes")
            .map(|s| s.trim_start())
            .and_then(|s| s.strip_prefix('='))
        else {
            return Err(Error::invalid(what, format!("{v:?} is not a bytes range")));
        };
        let mut out = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if out.len() >= MAX_RANGES {
                return Err(Error::too_large(what, out.len() + 1, MAX_RANGES));
            }
            let (a, b) = item
                .split_once('-')
                .ok_or_else(|| Error::invalid(what, format!("{item:?}")))?;
            let num = |s: &str| {
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| Error::invalid(what, format!("bad number in {item:?}")))
            };
            let r = if a.trim().is_empty() {
                ByteRange::Suffix(num(b)?)
            } else {
                let start = num(a)?;
                let end = if b.trim().is_empty() {
                    None
                } else {
                    Some(num(b)?)
                };
                if end.is_some_and(|e| e < start) {
                    return Err(Error::invalid(
                        what,
                        format!("{item:?} ends before it starts"),
                    ));
                }
                ByteRange::From { start, end }
            };
            out.push(r);
        }
        if out.is_empty() {
            return Err(Error::invalid(what, "no range"));
        }
        Ok(out)
    }

    /// Resolve against a file of `size` bytes (RFC 9110): the inclusive
    /// range to send, or `None` when unsatisfiable (→ 416).
    pub fn resolve(&self, size: u64) -> Option<(u64, u64)> {
        if size == 0 {
            return None;
        }
        match *self {
            ByteRange::From { start, end } => {
                (start < size).then(|| (start, end.map_or(size - 1, |e| e.min(size - 1))))
            }
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(n) => Some((size - n.min(size), size - 1)),
        }
    }

    /// gtk-gnutella's leniency for complete files: a start beyond the end is
    /// clamped to the last byte instead of answering 416 (capture 06c).
    pub fn clamp(&self, size: u64) -> Option<(u64, u64)> {
        if size == 0 {
            return None;
        }
        self.resolve(size).or(Some((size - 1, size - 1)))
    }
}

/// `Content-Range: bytes a-b/total` (or `bytes */total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: u64,
    /// Total size, `None` for `*`.
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parse `bytes a-b/total` (`bytes */total` is rejected: it has no range).
    pub fn parse(v: &str) -> Result<Self> {
        let what = "Content-Range header";
        let bad = || Error::invalid(what, format!("{v:?}"));
        let v = v.trim();
        let rest = v
            .strip_prefix("bytes")
            .ok_or_else(bad)?
            .trim_start_matches([' ', '=']);
        let (range, total) = rest.split_once('/').ok_or_else(bad)?;
        let (a, b) = range.split_once('-').ok_or_else(bad)?;
        let start: u64 = a.trim().parse().map_err(|_| bad())?;
        let end: u64 = b.trim().parse().map_err(|_| bad())?;
        let total = match total.trim() {
            "*" => None,
            t => Some(t.parse::<u64>().map_err(|_| bad())?),
        };
        if end < start || total.is_some_and(|t| end >= t) {
            return Err(bad());
        }
        Ok(ContentRange { start, end, total })
    }

    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for ContentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.total {
            Some(t) => write!(f, "bytes {}-{}/{t}", self.start, self.end),
            None => write!(f, "bytes {}-{}/*", self.start, self.end),
        }
    }
}

/// PARQ `X-Queued: position=…; length=…; ETA=…; lifetime=…; ID=…`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queued {
    /// Position in the queue.
    pub position: Option<u64>,
    /// Queue length.
    pub length: Option<u64>,
    /// Estimated seconds until a slot.
    pub eta: Option<u64>,
    /// Seconds the slot is kept without a retry.
    pub lifetime: Option<u64>,
    /// Queue id (hex).
    pub id: Option<String>,
}

impl Queued {
    /// Parse the header value (unknown keys ignored, case-insensitive).
    pub fn parse(v: &str) -> Self {
        let mut q = Queued::default();
        for kv in v.split([';', ',']) {
            let Some((k, val)) = kv.split_once('=') else {
                continue;
            };
            let (k, val) = (k.trim(), val.trim());
            let num = val.parse().ok();
            match k.to_ascii_lowercase().as_str() {
                "position" => q.position = num,
                "length" => q.length = num,
                "eta" => q.eta = num,
                "lifetime" => q.lifetime = num,
                "id" => q.id = Some(val.to_owned()),
                _ => {}
            }
        }
        q
    }
}

impl fmt::Display for Queued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.position {
            parts.push(format!("position={p}"));
        }
        if let Some(l) = self.length {
            parts.push(format!("length={l}"));
        }
        if let Some(e) = self.eta {
            parts.push(format!("ETA={e}"));
        }
        if let Some(l) = self.lifetime {
            parts.push(format!("lifetime={l}"));
        }
        if let Some(id) = &self.id {
            parts.push(format!("ID={id}"));
        }
        f.write_str(&parts.join("; "))
    }
}

/// `GIV <index>:<guid hex>/<name>` LF LF, sent by a pushed servent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Giv {
    /// File index from the Push.
    pub index: u32,
    /// The pushed servent's GUID.
    pub servent: Guid,
    /// File name (gtk-gnutella sends the literal `file`).
    pub name: String,
}

/// Largest GIV line we buffer.
pub const MAX_GIV_LEN: usize = 4096;

impl Giv {
    /// Parse a GIV at the start of `buf` (ended by an empty line, LF or
    /// CRLF): `Ok(None)` until complete.
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>> {
        let Some(raw) = head::split(buf, MAX_GIV_LEN, "GIV line")? else {
            return Ok(None);
        };
        let what = "GIV line";
        let bad = || Error::invalid(what, format!("{:?}", raw.start));
        let rest = raw.start.strip_prefix("GIV ").ok_or_else(bad)?;
        let (idx, rest) = rest.split_once(':').ok_or_else(bad)?;
        let (guid, name) = rest.split_once('/').unwrap_or((rest, ""));
        Ok(Some((
            Giv {
                index: idx.trim().parse().map_err(|_| bad())?,
                servent: Guid::from_hex(guid)?,
                name: name.to_owned(),
            },
            raw.len,
        )))
    }

    /// Write the line as gtk-gnutella does: LF LF.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(
            format!(
                "GIV {}:{}/{}\n\n",
                self.index,
                self.servent.to_hex(),
                self.name
            )
            .as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = ByteRange::parse_header("bytes=0-1023, 2000-,-5").unwrap();
        assert_eq!(r[0].resolve(100), Some((0, 99)));
        assert_eq!(r[1].resolve(100), None);
        assert_eq!(r[1].clamp(100), Some((99, 99)));
        assert_eq!(r[2].resolve(100), Some((95, 99)));
        assert_eq!(
            ByteRange::parse_header("bytes=70000-70100").unwrap()[0].clamp(65536),
            Some((65535, 65535))
        );
        assert!(ByteRange::parse_header("bytes=5-1").is_err());
        assert!(ByteRange::parse_header("items=1-2").is_err());
        assert!(ByteRange::parse_header("bytes=").is_err());
        assert!(ByteRange::parse_header(&format!("bytes={}", "1-2,".repeat(100))).is_err());
        let c = ContentRange::parse("bytes 65535-65535/65536").unwrap();
        assert_eq!(
            (c.len(), c.to_string()),
            (1, "bytes 65535-65535/65536".to_owned())
        );
        assert!(ContentRange::parse("bytes 5-70000/65536").is_err());
        assert!(ContentRange::parse("bytes */65536").is_err());
    }

    #[test]
    fn targets() {
        assert!(matches!(
            Target::parse("/uri-res/N2R?urn:sha1:5T6I5BX53A4BD6OMTP2QBGJ3MMDJSI56"),
            Target::N2R(_)
        ));
        assert_eq!(
            Target::parse("/get/1/gnutcap%20charlie.bin"),
            Target::ByIndex {
                index: 1,
                name: "gnutcap charlie.bin".into()
            }
        );
        assert_eq!(
            percent_encode("gnutcap charlie.bin"),
            "gnutcap%20charlie.bin"
        );
        assert_eq!(Target::parse("/"), Target::Root);
        assert!(matches!(Target::parse("/get/x/y"), Target::Other(_)));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn giv_and_queued() {
        let (g, n) = Giv::parse(b"GIV 3:54cd3102ab408d4acfb983e172dbd151/file\n\nGET")
            .unwrap()
            .unwrap();
        assert_eq!((g.index, n), (3, 45));
        let mut v = Vec::new();
        g.encode(&mut v);
        assert_eq!(v, b"GIV 3:54cd3102ab408d4acfb983e172dbd151/file\n\n");
        assert!(Giv::parse(b"GIV x:00/file\n\n").is_err());
        assert!(Giv::parse(b"GIV 3:54cd/file\n\n").is_err());
        let q = Queued::parse("position=1503; length=1840; ETA=4200; lifetime=3600; ID=abc");
        assert_eq!(
            (q.position, q.eta, q.id.as_deref()),
            (Some(1503), Some(4200), Some("abc"))
        );
        assert_eq!(Queued::parse(&q.to_string()), q);
    }
}
