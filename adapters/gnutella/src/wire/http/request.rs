//! What Gnutella reads from request heads, the request targets servents use, and
//! percent-coding of their names.

use std::net::SocketAddrV4;

use super::{ByteRange, MAX_RANGES, RequestHead, content_urn};
use crate::error::Result;
use crate::wire::addr_list::addr_list;
use crate::wire::urn::Urn;
use junction_core::http::Headers;

/// What Gnutella reads from a request head, and the requests it sends.
pub trait RequestExt: Sized {
    /// The target, interpreted.
    fn target(&self) -> Target;

    /// Parsed `Range` header (`None` if absent).
    fn range(&self) -> Option<Result<Vec<ByteRange>>>;

    /// `X-Gnutella-Content-URN` / `X-Content-URN`.
    fn content_urn(&self) -> Option<Urn>;

    /// `X-Alt` alternate locations.
    fn alt_locs(&self) -> Vec<SocketAddrV4>;

    /// The `GET` for `/uri-res/N2R?<urn>` with an optional inclusive range.
    fn get_n2r(urn: &Urn, host: &str, user_agent: &str, range: Option<(u64, u64)>) -> Self;

    /// The `GET` for `/get/<index>/<name>` (name percent-encoded).
    fn get_by_index(
        index: u32,
        name: &str,
        host: &str,
        user_agent: &str,
        range: Option<(u64, u64)>,
    ) -> Self;
}

impl RequestExt for RequestHead {
    fn target(&self) -> Target {
        Target::parse(&self.target)
    }

    fn range(&self) -> Option<Result<Vec<ByteRange>>> {
        self.headers
            .get("Range")
            .map(|v| Ok(ByteRange::parse_header(v, MAX_RANGES)?))
    }

    fn content_urn(&self) -> Option<Urn> {
        content_urn(&self.headers)
    }

    fn alt_locs(&self) -> Vec<SocketAddrV4> {
        addr_list(&self.headers, "X-Alt")
    }

    fn get_n2r(urn: &Urn, host: &str, user_agent: &str, range: Option<(u64, u64)>) -> Self {
        let mut h = Headers::new()
            .with("Host", host)
            .with("User-Agent", user_agent);
        if let Some((a, b)) = range {
            h.push("Range", format!("bytes={a}-{b}"));
        }
        Self::new("GET", format!("/uri-res/N2R?{urn}"), h)
    }

    fn get_by_index(
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

/// Percent-coding of names and URNs in request paths: core's (a malformed escape is kept
/// as written, so `%+1` stays).
pub use junction_core::link::{percent_decode, percent_encode};

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
