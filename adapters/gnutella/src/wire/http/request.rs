//! Request heads, the request targets servents use, and percent-coding of their names.

use std::net::SocketAddrV4;

use bytes::BufMut;

use super::{ByteRange, HttpHead, HttpVersion, MAX_HEAD_LEN, MAX_RANGES, content_urn, finish};
use crate::error::{Error, Result};
use crate::urn::Urn;
use crate::wire::head;
use crate::wire::headers::Headers;

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

    /// The target, interpreted.
    pub fn target(&self) -> Target {
        Target::parse(&self.target)
    }

    /// Parsed `Range` header (`None` if absent).
    pub fn range(&self) -> Option<Result<Vec<ByteRange>>> {
        self.headers
            .get("Range")
            .map(|v| Ok(ByteRange::parse_header(v, MAX_RANGES)?))
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

impl HttpHead for RequestHead {
    fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>> {
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

    fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(format!("{} {} {}\r\n", self.method, self.target, self.version).as_bytes());
        finish(dst, &self.headers);
    }
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

/// Percent-decode (invalid escapes are kept literally; invalid UTF-8 lossy). Core's, so
/// `%+1` stays as written (`from_str_radix` took the `+` as a sign).
pub fn percent_decode(s: &str) -> String {
    junction_core::link::percent_decode(s)
}

/// Percent-encode everything but unreserved characters.
pub fn percent_encode(s: &str) -> String {
    junction_core::link::percent_encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_is_not_a_hex_digit() {
        assert_eq!(percent_decode("a%+1b%20c%zz"), "a%+1b c%zz");
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
}
