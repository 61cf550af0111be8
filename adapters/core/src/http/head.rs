//! HTTP/1.x heads: splitting a head (start line + header lines + empty line) out of a byte
//! buffer, and the request and response heads built on it.

use bytes::BufMut;

use super::{HeadError, Headers, HttpHead, HttpVersion, MAX_HEAD_LEN};

/// Most header lines accepted in one head; more is a misbehaving peer.
pub const MAX_HEADER_LINES: usize = 256;

/// A complete head: its start line, its headers and how many bytes it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHead {
    /// The first line, without its line ending.
    pub start: String,
    /// The header lines after it.
    pub headers: Headers,
    /// Bytes used, the empty line included.
    pub len: usize,
}

/// Find a complete head at the start of `buf`.
///
/// Lines end with LF, optionally preceded by CR (Gnutella's 0.4 handshake and `GIV`
/// use bare LF). Returns `Ok(None)` while the terminating empty line has not
/// arrived yet, and an error once more than `max` bytes are buffered without
/// one, so a peer cannot make us buffer without bound.
pub fn split_head(
    buf: &[u8],
    max: usize,
    what: &'static str,
) -> Result<Option<RawHead>, HeadError> {
    let mut pos = 0;
    let mut lines: Vec<&[u8]> = Vec::new();
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            if buf.len() > max {
                return Err(HeadError::too_large(what, buf.len(), max));
            }
            return Ok(None);
        };
        let end = pos + nl;
        if end + 1 > max {
            return Err(HeadError::too_large(what, end + 1, max));
        }
        let mut line = &buf[pos..end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        pos = end + 1;
        if line.is_empty() {
            if lines.is_empty() {
                return Err(HeadError::invalid(what, "empty start line"));
            }
            break;
        }
        if lines.len() > MAX_HEADER_LINES {
            return Err(HeadError::too_large(
                "header lines",
                lines.len(),
                MAX_HEADER_LINES,
            ));
        }
        lines.push(line);
    }
    let start = String::from_utf8_lossy(lines[0]).into_owned();
    let headers = Headers::parse_lines(&lines[1..])?;
    Ok(Some(RawHead {
        start,
        headers,
        len: pos,
    }))
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
}

impl HttpHead for RequestHead {
    fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, HeadError> {
        let Some(raw) = split_head(buf, MAX_HEAD_LEN, "HTTP request head")? else {
            return Ok(None);
        };
        let mut parts = raw.start.split(' ').filter(|s| !s.is_empty());
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HeadError::invalid(
                "HTTP request line",
                format!("{:?}", raw.start),
            ));
        };
        if !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(HeadError::invalid("HTTP method", format!("{method:?}")));
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

    /// `Content-Length`, if present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        self.headers.get_u64("Content-Length")
    }

    /// `Retry-After` in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        self.headers.get_u64("Retry-After")
    }
}

impl HttpHead for ResponseHead {
    fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, HeadError> {
        let Some(raw) = split_head(buf, MAX_HEAD_LEN, "HTTP response head")? else {
            return Ok(None);
        };
        let mut parts = raw.start.splitn(3, ' ');
        let version = HttpVersion::parse(parts.next().unwrap_or(""))?;
        let code_s = parts.next().unwrap_or("");
        let code = code_s
            .parse::<u16>()
            .ok()
            .filter(|c| (100..1000).contains(c))
            .ok_or_else(|| HeadError::invalid("HTTP status code", format!("{code_s:?}")))?;
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

    fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(format!("{} {} {}\r\n", self.version, self.code, self.reason).as_bytes());
        finish(dst, &self.headers);
    }
}

/// The header lines and the empty line that ends a head.
fn finish(dst: &mut impl BufMut, headers: &Headers) {
    headers.encode(dst);
    dst.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip() {
        let wire = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello";
        let (h, n) = ResponseHead::parse(wire).unwrap().unwrap();
        assert_eq!(
            (h.code, h.reason.as_str(), n),
            (206, "Partial Content", wire.len() - 5)
        );
        assert_eq!(
            (h.version, h.content_length()),
            (HttpVersion::V1_1, Some(5))
        );
        assert_eq!(h.to_bytes(), &wire[..n]);
        let wire = b"GET /a?b HTTP/1.0\r\nHost: x\r\n\r\n";
        let (r, n) = RequestHead::parse(wire).unwrap().unwrap();
        assert_eq!(
            (r.method.as_str(), r.target.as_str(), n),
            ("GET", "/a?b", wire.len())
        );
        assert_eq!(r.to_bytes(), wire);
    }

    #[test]
    fn bounds_and_refusals() {
        assert_eq!(
            ResponseHead::parse(b"HTTP/1.1 200 OK\r\nA: b\r\n").unwrap(),
            None
        );
        let long = vec![b'a'; MAX_HEAD_LEN + 1];
        assert!(matches!(
            RequestHead::parse(&long),
            Err(HeadError::TooLarge { .. })
        ));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(300));
        assert!(matches!(
            RequestHead::parse(many.as_bytes()),
            Err(HeadError::TooLarge { .. })
        ));
        assert!(ResponseHead::parse(b"HTTP/1.1 99 X\r\n\r\n").is_err());
        assert!(RequestHead::parse(b"get / HTTP/1.1\r\n\r\n").is_err());
        assert!(RequestHead::parse(b"GET / HTTP/x\r\n\r\n").is_err());
    }
}
