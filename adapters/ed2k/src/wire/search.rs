//! The search expression tree of `OP_SEARCHREQUEST`, `OP_GLOBSEARCHREQ*` and Kad keyword
//! searches, serialized in prefix order.

use bytes::{Buf, BufMut};

use crate::error::{Result, WireError};
use crate::wire::codec::{WireString, get_string16, get_u8, get_u32, get_u64, put_string16};
use crate::wire::tag::TagName;

/// Deepest tree a decoder accepts (aMule's limit); keeps recursion bounded on hostile input.
pub const MAX_SEARCH_DEPTH: usize = 24;

mod node {
    pub const BOOL: u8 = 0x00;
    pub const STRING: u8 = 0x01;
    pub const META_STRING: u8 = 0x02;
    pub const NUMERIC32: u8 = 0x03;
    pub const NUMERIC64: u8 = 0x08;
}

/// Comparison operator of a numeric term (`ED2K_SEARCH_OP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    Equal,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    NotEqual,
}

impl Comparison {
    pub fn from_byte(b: u8) -> Result<Self> {
        Ok(match b {
            0 => Self::Equal,
            1 => Self::Greater,
            2 => Self::Less,
            3 => Self::GreaterOrEqual,
            4 => Self::LessOrEqual,
            5 => Self::NotEqual,
            other => {
                return Err(WireError::InvalidValue {
                    what: "search comparison operator",
                    value: other.into(),
                });
            }
        })
    }
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Equal => 0,
            Self::Greater => 1,
            Self::Less => 2,
            Self::GreaterOrEqual => 3,
            Self::LessOrEqual => 4,
            Self::NotEqual => 5,
        }
    }
}

/// A search expression. `Not(a, b)` is binary: `a` and not `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchExpr {
    And(Box<SearchExpr>, Box<SearchExpr>),
    Or(Box<SearchExpr>, Box<SearchExpr>),
    Not(Box<SearchExpr>, Box<SearchExpr>),
    /// Keywords; whitespace-separated words are ANDed by the server.
    Keywords(WireString),
    /// A string meta-tag term, e.g. `FT_FILETYPE = "Video"`.
    MetaString {
        value: WireString,
        tag: TagName,
    },
    /// A numeric term; written as a 32-bit node when `value` fits, else as a 64-bit node (only
    /// for servers with large-file support).
    Numeric {
        value: u64,
        op: Comparison,
        tag: TagName,
    },
}

impl SearchExpr {
    pub fn and(a: SearchExpr, b: SearchExpr) -> Self {
        Self::And(Box::new(a), Box::new(b))
    }
    pub fn or(a: SearchExpr, b: SearchExpr) -> Self {
        Self::Or(Box::new(a), Box::new(b))
    }
    pub fn not(a: SearchExpr, b: SearchExpr) -> Self {
        Self::Not(Box::new(a), Box::new(b))
    }
    pub fn keywords(s: impl Into<WireString>) -> Self {
        Self::Keywords(s.into())
    }

    /// Decodes one tree (prefix order), at most [`MAX_SEARCH_DEPTH`] levels deep.
    pub fn decode(buf: &mut impl Buf) -> Result<Self> {
        Self::decode_at(buf, 1)
    }

    fn decode_at(buf: &mut impl Buf, depth: usize) -> Result<Self> {
        if depth > MAX_SEARCH_DEPTH {
            return Err(WireError::SearchTooDeep {
                max: MAX_SEARCH_DEPTH,
            });
        }
        const W: &str = "search expression";
        Ok(match get_u8(buf, W)? {
            node::BOOL => {
                let op = get_u8(buf, W)?;
                let a = Box::new(Self::decode_at(buf, depth + 1)?);
                let b = Box::new(Self::decode_at(buf, depth + 1)?);
                match op {
                    0 => Self::And(a, b),
                    1 => Self::Or(a, b),
                    2 => Self::Not(a, b),
                    other => {
                        return Err(WireError::InvalidValue {
                            what: "search boolean operator",
                            value: other.into(),
                        });
                    }
                }
            }
            node::STRING => Self::Keywords(get_string16(buf, W)?),
            node::META_STRING => {
                let value = get_string16(buf, W)?;
                let tag = TagName::get(buf)?;
                Self::MetaString { value, tag }
            }
            node::NUMERIC32 => {
                let value = get_u32(buf, W)?.into();
                let op = Comparison::from_byte(get_u8(buf, W)?)?;
                let tag = TagName::get(buf)?;
                Self::Numeric { value, op, tag }
            }
            node::NUMERIC64 => {
                let value = get_u64(buf, W)?;
                let op = Comparison::from_byte(get_u8(buf, W)?)?;
                let tag = TagName::get(buf)?;
                Self::Numeric { value, op, tag }
            }
            other => {
                return Err(WireError::InvalidValue {
                    what: "search node type",
                    value: other.into(),
                });
            }
        })
    }

    /// Encodes the tree in prefix order.
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<()> {
        match self {
            Self::And(a, b) | Self::Or(a, b) | Self::Not(a, b) => {
                let op = match self {
                    Self::And(..) => 0,
                    Self::Or(..) => 1,
                    _ => 2,
                };
                dst.put_u8(node::BOOL);
                dst.put_u8(op);
                a.encode(dst)?;
                b.encode(dst)
            }
            Self::Keywords(s) => {
                dst.put_u8(node::STRING);
                put_string16(dst, s.as_bytes(), "search keywords")
            }
            Self::MetaString { value, tag } => {
                dst.put_u8(node::META_STRING);
                put_string16(dst, value.as_bytes(), "search meta value")?;
                tag.encode(dst)
            }
            Self::Numeric { value, op, tag } => {
                if let Ok(v) = u32::try_from(*value) {
                    dst.put_u8(node::NUMERIC32);
                    dst.put_u32_le(v);
                } else {
                    dst.put_u8(node::NUMERIC64);
                    dst.put_u64_le(*value);
                }
                dst.put_u8(op.to_byte());
                tag.encode(dst)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tag::ft;

    #[test]
    fn spec_example_foo_min_1000() {
        // §4.4: AND, string "foo", numeric 1000 op `>` tag-len 1 tag 0x02.
        let wire = [
            0x00, 0x00, 0x01, 0x03, 0x00, b'f', b'o', b'o', 0x03, 0xE8, 0x03, 0x00, 0x00, 0x01,
            0x01, 0x00, 0x02,
        ];
        let expr = SearchExpr::and(
            SearchExpr::keywords("foo"),
            SearchExpr::Numeric {
                value: 1000,
                op: Comparison::Greater,
                tag: TagName::Id(ft::FILESIZE),
            },
        );
        let mut b = &wire[..];
        assert_eq!(SearchExpr::decode(&mut b).unwrap(), expr);
        assert!(b.is_empty());
        let mut out = Vec::new();
        expr.encode(&mut out).unwrap();
        assert_eq!(out, wire);
    }

    #[test]
    fn too_deep_is_an_error() {
        // 30 nested AND nodes.
        let mut wire = Vec::new();
        for _ in 0..30 {
            wire.extend_from_slice(&[0, 0]);
        }
        assert_eq!(
            SearchExpr::decode(&mut &wire[..]),
            Err(WireError::SearchTooDeep {
                max: MAX_SEARCH_DEPTH
            })
        );
        // 23 levels of AND + leaves is fine.
        let mut e = SearchExpr::keywords("x");
        for _ in 0..(MAX_SEARCH_DEPTH - 1) {
            e = SearchExpr::and(e, SearchExpr::keywords("y"));
        }
        let mut out = Vec::new();
        e.encode(&mut out).unwrap();
        assert_eq!(SearchExpr::decode(&mut &out[..]).unwrap(), e);
    }

    #[test]
    fn bad_nodes() {
        for wire in [
            &[0x00, 0x07, 0x01, 0, 0, 0x01, 0, 0][..],
            &[0x05][..],
            &[0x03, 1, 0, 0, 0, 9, 1, 0, 2][..],
            &[0x01, 5, 0, b'a'][..],
            &[][..],
        ] {
            assert!(SearchExpr::decode(&mut &wire[..]).is_err());
        }
    }
}
