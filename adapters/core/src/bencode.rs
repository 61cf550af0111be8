//! Bencode (BEP 3), decoded strictly.
//!
//! Strict means canonical: integers without leading zeros or `-0`, dictionary keys sorted
//! and unique, and nothing after the top-level value. A torrent's info-hash is the SHA-1 of
//! the raw `info` bytes as received, so every dictionary entry keeps its raw span.
//! Decoding borrows from the input and never allocates more than the input can justify.

use std::fmt;

/// How deep lists and dictionaries may nest; deeper input is refused, not recursed into.
pub const MAX_DEPTH: usize = 64;

/// A decoded value, borrowing its strings from the input.
#[derive(Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    Dict(Vec<Entry<'a>>),
}

/// One dictionary entry, with the raw encoded bytes of its value.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub value: Value<'a>,
    pub raw: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BencodeError {
    #[error("bencode ends early, at byte {0}")]
    Truncated(usize),
    #[error("unexpected byte {byte:#04x} at {at} in bencode")]
    Unexpected { byte: u8, at: usize },
    #[error("bad integer at byte {0} (leading zero, -0, or out of range)")]
    BadInt(usize),
    #[error("dictionary keys not sorted or repeated at byte {0}")]
    KeyOrder(usize),
    #[error("bencode nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("{0} bytes left over after the bencoded value")]
    Trailing(usize),
}

/// Decodes exactly one value that fills the whole input.
pub fn decode(input: &[u8]) -> Result<Value<'_>, BencodeError> {
    let (value, used) = decode_prefix(input)?;
    match input.len() - used {
        0 => Ok(value),
        n => Err(BencodeError::Trailing(n)),
    }
}

/// Decodes one value at the start of the input; returns it and how many bytes it took.
/// For messages that carry data after a bencoded header (BEP 9 `ut_metadata` pieces).
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), BencodeError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Truncated(self.pos))
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, BencodeError> {
        if depth > MAX_DEPTH {
            return Err(BencodeError::TooDeep);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.int_until(b'e')?;
                Ok(Value::Int(n))
            }
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut entries: Vec<Entry<'a>> = Vec::new();
                while self.peek()? != b'e' {
                    let key_at = self.pos;
                    let key = self.bytes()?;
                    if entries.last().is_some_and(|prev| prev.key >= key) {
                        return Err(BencodeError::KeyOrder(key_at));
                    }
                    let start = self.pos;
                    let value = self.value(depth + 1)?;
                    let raw = &self.input[start..self.pos];
                    entries.push(Entry { key, value, raw });
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            byte => Err(BencodeError::Unexpected { byte, at: self.pos }),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let at = self.pos;
        if !self.peek()?.is_ascii_digit() {
            return Err(BencodeError::Unexpected {
                byte: self.peek()?,
                at,
            });
        }
        let len = self.int_until(b':')?;
        let len = usize::try_from(len).map_err(|_| BencodeError::BadInt(at))?;
        // The length is bounded by what is actually there before anything is sliced.
        let end = self.pos.checked_add(len).ok_or(BencodeError::BadInt(at))?;
        let s = self
            .input
            .get(self.pos..end)
            .ok_or(BencodeError::Truncated(self.input.len()))?;
        self.pos = end;
        Ok(s)
    }

    /// Parses a canonical decimal integer terminated by `end`.
    fn int_until(&mut self, end: u8) -> Result<i64, BencodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or(BencodeError::Truncated(self.input.len()))?;
        let text = &rest[..len];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let negative = text.len() != digits.len();
        let leading_zero = digits.len() > 1 && digits[0] == b'0';
        let canonical = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && !leading_zero
            && (!negative || digits != b"0");
        if !canonical || (end == b':' && negative) {
            return Err(BencodeError::BadInt(start));
        }
        let n = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(BencodeError::BadInt(start))?;
        self.pos = start + len + 1;
        Ok(n)
    }
}

impl<'a> Value<'a> {
    /// The value under `key` in a dictionary.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.entry(key).map(|e| &e.value)
    }

    /// The entry under `key` in a dictionary, with its raw bytes.
    pub fn entry(&self, key: &str) -> Option<&Entry<'a>> {
        match self {
            Value::Dict(entries) => entries.iter().find(|e| e.key == key.as_bytes()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[Entry<'a>]> {
        match self {
            Value::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// Encodes the value canonically (dictionary keys are written in the order held,
    /// which decoding guarantees is sorted; build dictionaries sorted).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => {
                out.push(b'l');
                items.iter().for_each(|v| v.encode(out));
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for e in entries {
                    encode_bytes(e.key, out);
                    e.value.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => write!(f, "<{} bytes>", b.len()),
            },
            Value::List(items) => f.debug_list().entries(items).finish(),
            Value::Dict(entries) => f
                .debug_map()
                .entries(
                    entries
                        .iter()
                        .map(|e| (String::from_utf8_lossy(e.key), &e.value)),
                )
                .finish(),
        }
    }
}

impl fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: {:?}",
            String::from_utf8_lossy(self.key),
            self.value
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_the_bep3_examples() {
        assert_eq!(decode(b"4:spam").unwrap(), Value::Bytes(b"spam"));
        assert_eq!(decode(b"i3e").unwrap(), Value::Int(3));
        assert_eq!(decode(b"i-3e").unwrap(), Value::Int(-3));
        assert_eq!(decode(b"i0e").unwrap(), Value::Int(0));
        assert_eq!(
            decode(b"l4:spam4:eggse").unwrap(),
            Value::List(vec![Value::Bytes(b"spam"), Value::Bytes(b"eggs")])
        );
        let d = decode(b"d3:cow3:moo4:spam4:eggse").unwrap();
        assert_eq!(d.get("cow").and_then(Value::as_str), Some("moo"));
        assert_eq!(d.entry("spam").unwrap().raw, b"4:eggs");
        assert_eq!(decode(b"0:").unwrap(), Value::Bytes(b""));
    }

    #[test]
    fn refuses_non_canonical_input() {
        for bad in [
            &b"i03e"[..],
            b"i-0e",
            b"ie",
            b"i-e",
            b"03:abc",
            b"-1:a",
            b"d3:zzz1:a3:aaa1:be",
            b"d1:a1:b1:a1:ce",
            b"i3ee",
            b"5:abc",
            b"l",
            b"d1:a",
            b"x",
            b"i99999999999999999999e",
        ] {
            assert!(
                decode(bad).is_err(),
                "{:?} should fail",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refuses_deep_nesting_without_recursing_forever() {
        let deep = [vec![b'l'; 10_000], vec![b'e'; 10_000]].concat();
        assert_eq!(decode(&deep), Err(BencodeError::TooDeep));
    }

    #[test]
    fn prefix_decoding_reports_the_length() {
        let (v, used) = decode_prefix(b"d1:ai1eeDATA").unwrap();
        assert_eq!(v.get("a").and_then(Value::as_int), Some(1));
        assert_eq!(used, 8);
    }

    fn arb_value() -> impl Strategy<Value = Vec<u8>> {
        // Build canonical encodings, then check decode → encode is the identity.
        let leaf = prop_oneof![
            any::<i64>().prop_map(|n| format!("i{n}e").into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| {
                let mut out = Vec::new();
                encode_bytes(&b, &mut out);
                out
            }),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(|items| {
                    let mut out = vec![b'l'];
                    items.iter().for_each(|i| out.extend_from_slice(i));
                    out.push(b'e');
                    out
                }),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 0..8),
                    inner,
                    0..6
                )
                .prop_map(|m| {
                    let mut out = vec![b'd'];
                    for (k, v) in m {
                        encode_bytes(&k, &mut out);
                        out.extend_from_slice(&v);
                    }
                    out.push(b'e');
                    out
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_input_round_trips(encoded in arb_value()) {
            let v = decode(&encoded).unwrap();
            prop_assert_eq!(v.to_vec(), encoded);
        }

        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&data);
        }
    }
}
