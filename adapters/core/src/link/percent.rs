//! Percent-coding (RFC 3986), written once for every link, URL and query: magnets, tracker
//! queries (binary info-hashes), Gnutella `/get/` paths, Torznab and HTTP fronts. eD2k
//! links keep their own, wider safe set (eMule's), in `ed2k::wire::link`.

/// Encodes every byte outside the unreserved set `A-Z a-z 0-9 - . _ ~`, with upper-case
/// hex, as trackers expect for a binary `info_hash` and `peer_id`.
pub fn encode(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(data.len() * 3);
    for &b in data {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes `%XX` escapes strictly: `None` on a malformed one (for binary values, where a
/// guess would be a wrong hash). With `plus_is_space`, `+` is a space (form encoding, which
/// magnets in the wild use for `dn`).
pub fn decode(s: &str, plus_is_space: bool) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let hi = hex_val(*b.get(i + 1)?)?;
                let lo = hex_val(*b.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Decodes text leniently: a malformed escape is kept as written (`%+1` stays, the `+` is
/// no sign), invalid UTF-8 is replaced. For names, which are shown, not hashed.
pub fn decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let escaped = (c == b'%')
            .then(|| Some(hex_val(*b.get(i + 1)?)? << 4 | hex_val(*b.get(i + 2)?)?))
            .flatten();
        match escaped {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_escapes_and_unescapes_every_byte() {
        assert_eq!(encode(b"a b/\x00\xff-~"), "a%20b%2F%00%FF-~");
        assert_eq!(decode("a%20b%2f+c", true).unwrap(), b"a b/ c");
        assert_eq!(decode("a+c", false).unwrap(), b"a+c");
        assert_eq!(decode("%4", false), None);
        assert_eq!(decode("%zz", false), None);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all), false).unwrap(), all);
    }

    #[test]
    fn lossy_keeps_what_is_not_an_escape() {
        assert_eq!(decode_lossy("a%+1b%20c%zz"), "a%+1b c%zz");
        assert_eq!(decode_lossy("%zz%4"), "%zz%4");
        assert_eq!(decode_lossy("%C3%BC%FF"), "ü\u{fffd}");
        assert_eq!(decode_lossy("a+b"), "a+b");
    }

    proptest::proptest! {
        #[test]
        fn both_decoders_invert_encode(data: Vec<u8>) {
            let e = encode(&data);
            proptest::prop_assert_eq!(decode(&e, false), Some(data.clone()));
            proptest::prop_assert_eq!(decode_lossy(&e), String::from_utf8_lossy(&data));
        }

        #[test]
        fn decoders_never_panic(s in ".{0,64}") {
            let _ = decode(&s, true);
            let _ = decode_lossy(&s);
        }
    }
}
