//! Byte ranges: the items of a `Range: bytes=` header and `Content-Range`.

use std::fmt;

use super::MAX_RANGES;
use crate::error::{Error, Result};

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
}
