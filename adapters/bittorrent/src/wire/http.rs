//! The bytes of the HTTP/1.1 client's exchanges (trackers, Torznab feeds): the URLs it
//! accepts and the responses it reads, bodies plain or chunked, at most 4 MiB. Heads are
//! core's ([`junction_core::http`]); the socket side is `engine::http`. No TLS: `https` URLs
//! are refused.

use junction_core::http::{HeadError, HttpHead, ResponseHead};

/// Largest response body accepted from a tracker.
pub const MAX_BODY: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error("unsupported URL {0:?}: only http://host:port/path is supported")]
    BadUrl(String),
    #[error("HTTP exchange timed out")]
    Timeout,
    #[error("HTTP I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed HTTP response: {0}")]
    Malformed(&'static str),
    #[error("malformed HTTP response head: {0}")]
    Head(#[from] HeadError),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("HTTP response is larger than {MAX_BODY} bytes")]
    TooLarge,
}

/// `http://host[:port]/path?query` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = || HttpError::BadUrl(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or_else(bad)?;
            let port = match p.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if p.is_empty() => 80,
                None => return Err(bad()),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad())?),
                None => (authority.to_owned(), 80),
            }
        };
        Ok(Self { host, port, target })
    }
}

/// Parses a whole response read until the connection closed.
pub fn parse_response(buf: &[u8]) -> Result<Vec<u8>, HttpError> {
    let (head, end) = ResponseHead::parse(buf)?.ok_or(HttpError::Malformed("no end of head"))?;
    if head.version.0 != 1 {
        return Err(HttpError::Malformed("not HTTP/1.x"));
    }
    let status = head.code;
    let chunked = head
        .headers
        .get_all("Transfer-Encoding")
        .any(|v| v.eq_ignore_ascii_case("chunked"));
    // The last Content-Length counts, and any unreadable one is refused.
    let mut length = None;
    for v in head.headers.get_all("Content-Length") {
        length = Some(
            v.parse::<usize>()
                .map_err(|_| HttpError::Malformed("bad content-length"))?,
        );
    }
    if status != 200 {
        return Err(HttpError::Status(status));
    }
    let body = &buf[end..];
    if chunked {
        return dechunk(body);
    }
    match length {
        Some(n) if n > MAX_BODY => Err(HttpError::TooLarge),
        Some(n) => body
            .get(..n)
            .map(<[u8]>::to_vec)
            .ok_or(HttpError::Malformed("body shorter than content-length")),
        None => Ok(body.to_vec()),
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(HttpError::Malformed("chunk size line"))?;
        let size_text =
            std::str::from_utf8(&body[..eol]).map_err(|_| HttpError::Malformed("chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Malformed("chunk size"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if size > MAX_BODY - out.len() {
            return Err(HttpError::TooLarge);
        }
        let data = body
            .get(..size)
            .ok_or(HttpError::Malformed("truncated chunk"))?;
        out.extend_from_slice(data);
        body = body.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:6969/announce?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("127.0.0.1", 6969, "/announce?x=1")
        );
        let u = Url::parse("http://[::1]/a").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        let u = Url::parse("http://localhost?x").unwrap();
        assert_eq!(u.target, "/?x");
        assert!(Url::parse("https://a/").is_err());
        assert!(Url::parse("http://a:99999/").is_err());
        assert!(Url::parse("http:///x").is_err());
    }

    #[test]
    fn responses() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(parse_response(r).unwrap(), b"abc");
        let r = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), b"abcde");
        let r = b"HTTP/1.1 404 Not Found\r\n\r\n";
        assert!(matches!(parse_response(r), Err(HttpError::Status(404))));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n").is_err());
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\nab";
        assert!(parse_response(r).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_responses_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = super::parse_response(&data);
            let mut framed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            framed.extend_from_slice(&data);
            let _ = super::parse_response(&framed);
        }

        #[test]
        fn arbitrary_urls_never_panic(s in "\\PC{0,80}") {
            let _ = super::Url::parse(&s);
            let _ = super::Url::parse(&format!("http://{s}"));
        }
    }
}
