//! Splitting an HTTP-like head (start line + header lines + empty line) out of
//! a byte buffer, shared by the handshake and the HTTP parsers.

use crate::error::{Error, Result};
use crate::wire::headers::Headers;

/// Most header lines accepted in one head; more is a misbehaving peer.
pub(crate) const MAX_HEADER_LINES: usize = 256;

/// A complete head: its start line, its headers and how many bytes it used.
pub(crate) struct RawHead {
    pub start: String,
    pub headers: Headers,
    pub len: usize,
}

/// Find a complete head at the start of `buf`.
///
/// Lines end with LF, optionally preceded by CR (the 0.4 handshake and `GIV`
/// use bare LF). Returns `Ok(None)` while the terminating empty line has not
/// arrived yet, and an error once more than `max` bytes are buffered without
/// one, so a peer cannot make us buffer without bound.
pub(crate) fn split(buf: &[u8], max: usize, what: &'static str) -> Result<Option<RawHead>> {
    let mut pos = 0;
    let mut lines: Vec<&[u8]> = Vec::new();
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            if buf.len() > max {
                return Err(Error::too_large(what, buf.len(), max));
            }
            return Ok(None);
        };
        let end = pos + nl;
        if end + 1 > max {
            return Err(Error::too_large(what, end + 1, max));
        }
        let mut line = &buf[pos..end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        pos = end + 1;
        if line.is_empty() {
            if lines.is_empty() {
                return Err(Error::invalid(what, "empty start line"));
            }
            break;
        }
        if lines.len() > MAX_HEADER_LINES {
            return Err(Error::too_large(
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
