//! HTTP/1.x heads, shared by Gnutella's transfers and handshake and BitTorrent's tracker
//! client: the header list, the version, request and response heads, and the bounds a
//! peer cannot push past. Only heads: the body is the caller's business.

mod head;
mod headers;

use std::fmt;

use bytes::{Buf, BufMut, BytesMut};

pub use head::{MAX_HEADER_LINES, RawHead, RequestHead, ResponseHead, split_head};
pub use headers::Headers;

/// Largest HTTP head we buffer.
pub const MAX_HEAD_LEN: usize = 16 * 1024;

/// Why a head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("{what} too large: {len} exceeds the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

impl HeadError {
    fn invalid(what: &'static str, detail: impl fmt::Display) -> Self {
        HeadError::Invalid {
            what,
            detail: detail.to_string(),
        }
    }

    fn too_large(what: &'static str, len: usize, max: usize) -> Self {
        HeadError::TooLarge { what, len, max }
    }
}

/// An HTTP head, request or response: each kind parses and writes its own start line, and
/// the rest is the same for both.
pub trait HttpHead: Sized {
    /// Parse a head at the start of `buf`: `Ok(None)` until complete.
    fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, HeadError>;

    /// Write the head.
    fn encode(&self, dst: &mut impl BufMut);

    /// Streaming form of [`HttpHead::parse`]: takes the head off the front of `buf`.
    fn decode(buf: &mut BytesMut) -> Result<Option<Self>, HeadError> {
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

    fn parse(s: &str) -> Result<Self, HeadError> {
        let bad = || HeadError::invalid("HTTP version", format!("{s:?}"));
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
