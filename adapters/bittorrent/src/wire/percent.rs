//! Percent-encoding (RFC 3986) for magnet links and tracker query strings.

/// Encodes every byte outside the unreserved set `A-Z a-z 0-9 - . _ ~`, as trackers expect
/// for the binary `info_hash` and `peer_id`.
pub fn encode(data: &[u8]) -> String {
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

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex_val(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes `%XX` escapes; with `plus_is_space`, `+` becomes a space (form encoding, which
/// magnet links in the wild use for `dn`). `None` on a malformed escape.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_unescapes() {
        assert_eq!(encode(b"a b/\x00\xff-~"), "a%20b%2F%00%FF-~");
        assert_eq!(decode("a%20b%2f+c", true).unwrap(), b"a b/ c");
        assert_eq!(decode("a+c", false).unwrap(), b"a+c");
        assert_eq!(decode("%4", false), None);
        assert_eq!(decode("%zz", false), None);
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all), false).unwrap(), all);
    }
}
