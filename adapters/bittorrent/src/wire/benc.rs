//! A minimal canonical bencode writer.
//!
//! `junction_core::bencode` decodes; building messages through its borrowed `Value` tree is
//! clumsy, so encoders here write bytes directly. Callers write dictionary keys in sorted
//! byte order (the strict decoder in the round-trip tests enforces it).

pub(crate) fn int(out: &mut Vec<u8>, n: i64) {
    out.push(b'i');
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b'e');
}

pub(crate) fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// A key followed by an integer value.
pub(crate) fn key_int(out: &mut Vec<u8>, key: &str, n: i64) {
    bytes(out, key.as_bytes());
    int(out, n);
}

/// A key followed by a byte-string value.
pub(crate) fn key_bytes(out: &mut Vec<u8>, key: &str, b: &[u8]) {
    bytes(out, key.as_bytes());
    bytes(out, b);
}
