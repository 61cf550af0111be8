//! HTTP/1.1 heads for Gnutella transfers, and the `GIV` line of push.
//!
//! Only heads are handled here (the body is the caller's business): request
//! and response lines, headers, `Range` / `Content-Range`, the request
//! targets servents use (`/uri-res/N2R?urn:sha1:…`, `/get/<index>/<name>`),
//! `X-Alt`, PARQ `X-Queued`, `X-Available-Ranges`.

mod giv;
mod parq;
mod request;
mod response;

use std::fmt;

use bytes::{Buf, BufMut, BytesMut};

use crate::error::{Error, Result};
use crate::urn::Urn;
use crate::wire::headers::Headers;

pub use giv::{Giv, MAX_GIV_LEN};
pub use junction_core::http_range::{ByteRange, ContentRange};
pub use parq::Queued;
pub use request::{RequestHead, Target, percent_decode, percent_encode};
pub use response::ResponseHead;

/// Largest HTTP head we buffer.
pub const MAX_HEAD_LEN: usize = 16 * 1024;
/// Most ranges accepted in one `Range` header.
pub const MAX_RANGES: usize = 64;

/// An HTTP head, request or response: each kind parses and writes its own start line, and
/// the rest is the same for both.
pub trait HttpHead: Sized {
    /// Parse a head at the start of `buf`: `Ok(None)` until complete.
    fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>>;

    /// Write the head.
    fn encode(&self, dst: &mut impl BufMut);

    /// Streaming form of [`HttpHead::parse`]: takes the head off the front of `buf`.
    fn decode(buf: &mut BytesMut) -> Result<Option<Self>> {
        Ok(Self::parse(buf)?.map(|(h, n)| {
            buf.advance(n);
            h
        }))
    }

    /// The encoded bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

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

fn finish(dst: &mut impl BufMut, headers: &Headers) {
    headers.encode(dst);
    dst.put_slice(b"\r\n");
}

fn content_urn(h: &Headers) -> Option<Urn> {
    h.get("X-Gnutella-Content-URN")
        .or_else(|| h.get("X-Content-URN"))
        .and_then(|v| Urn::parse(v.split(',').next().unwrap_or("")).ok())
}
