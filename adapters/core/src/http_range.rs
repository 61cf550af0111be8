//! HTTP byte ranges (RFC 9110, section 14): the items of a `Range: bytes=` header a client
//! asks with, and the `Content-Range` a server answers with. Gnutella's transfers and the
//! gateway's player front read them.

use std::fmt;

/// Why a `Range` or `Content-Range` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("bad {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("{what} has {count} ranges, at most {max} are accepted")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
}

fn invalid(what: &'static str, detail: impl fmt::Display) -> RangeError {
    RangeError::Invalid {
        what,
        detail: detail.to_string(),
    }
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
    /// Parses `bytes=a-b,c-,-n`, at most `max` items (empty items are skipped, as RFC 9110
    /// allows). At least one item, each well formed.
    pub fn parse_header(v: &str, max: usize) -> Result<Vec<ByteRange>, RangeError> {
        let what = "Range header";
        let v = v.trim();
        let Some(spec) = v
            .strip_prefix("bytes")
            .map(|s| s.trim_start())
            .and_then(|s| s.strip_prefix('='))
        else {
            return Err(invalid(what, format!("{v:?} is not a bytes range")));
        };
        let mut out = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if out.len() >= max {
                return Err(RangeError::TooMany {
                    what,
                    count: out.len() + 1,
                    max,
                });
            }
            let (a, b) = item
                .split_once('-')
                .ok_or_else(|| invalid(what, format!("{item:?} has no '-'")))?;
            let num = |s: &str| {
                s.trim()
                    .parse::<u64>()
                    .map_err(|_| invalid(what, format!("{item:?} holds something not a number")))
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
                    return Err(invalid(what, format!("{item:?} ends before it starts")));
                }
                ByteRange::From { start, end }
            };
            out.push(r);
        }
        if out.is_empty() {
            return Err(invalid(what, "no range"));
        }
        Ok(out)
    }

    /// Resolves against a content of `size` bytes (RFC 9110): the inclusive range to send,
    /// or `None` when unsatisfiable (416).
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

    /// gtk-gnutella's leniency for complete files: a start beyond the end is clamped to the
    /// last byte instead of answering 416.
    pub fn clamp(&self, size: u64) -> Option<(u64, u64)> {
        if size == 0 {
            return None;
        }
        self.resolve(size).or(Some((size - 1, size - 1)))
    }
}

/// An item as it is written in a `Range` header (`a-b`, `a-` or `-n`).
impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ByteRange::From { start, end: None } => write!(f, "{start}-"),
            ByteRange::From {
                start,
                end: Some(end),
            } => write!(f, "{start}-{end}"),
            ByteRange::Suffix(n) => write!(f, "-{n}"),
        }
    }
}

/// `Content-Range: bytes a-b/total` (or `bytes a-b/*`).
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
    /// Parses `bytes a-b/total` (`bytes */total` is refused: it names no range).
    pub fn parse(v: &str) -> Result<Self, RangeError> {
        let bad = || invalid("Content-Range header", format!("{v:?}"));
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
    fn range_items_and_their_limits() {
        let r = ByteRange::parse_header("bytes=0-1023, 2000-,-5", 64).unwrap();
        assert_eq!(
            r,
            vec![
                ByteRange::From {
                    start: 0,
                    end: Some(1023)
                },
                ByteRange::From {
                    start: 2000,
                    end: None
                },
                ByteRange::Suffix(5),
            ]
        );
        let shown: Vec<String> = r.iter().map(ToString::to_string).collect();
        assert_eq!(shown.join(","), "0-1023,2000-,-5");
        assert!(ByteRange::parse_header("bytes=5-1", 64).is_err());
        assert!(ByteRange::parse_header("bytes=", 64).is_err());
        assert!(ByteRange::parse_header("items=0-1", 64).is_err());
        let many = format!("bytes={}", "1-2,".repeat(100));
        assert!(ByteRange::parse_header(&many, 64).is_err());
        assert_eq!(
            ByteRange::parse_header("bytes=0-1,5-6", 1),
            Err(RangeError::TooMany {
                what: "Range header",
                count: 2,
                max: 1
            })
        );
    }

    #[test]
    fn resolved_against_a_size() {
        let from = |start, end| ByteRange::From { start, end };
        assert_eq!(from(90, Some(1000)).resolve(100), Some((90, 99)));
        assert_eq!(from(100, None).resolve(100), None);
        assert_eq!(ByteRange::Suffix(1000).resolve(100), Some((0, 99)));
        assert_eq!(ByteRange::Suffix(0).resolve(100), None);
        assert_eq!(from(0, Some(0)).resolve(0), None);
        assert_eq!(from(70000, Some(70100)).clamp(65536), Some((65535, 65535)));
    }

    #[test]
    fn content_ranges() {
        let c = ContentRange::parse("bytes 0-99/1000").unwrap();
        assert_eq!((c.start, c.end, c.total, c.len()), (0, 99, Some(1000), 100));
        assert_eq!(c.to_string(), "bytes 0-99/1000");
        assert_eq!(ContentRange::parse("bytes 5-9/*").unwrap().total, None);
        assert!(ContentRange::parse("bytes */1000").is_err());
        assert!(ContentRange::parse("bytes 0-1000/1000").is_err());
        assert!(ContentRange::parse("bytes 9-5/1000").is_err());
    }
}
