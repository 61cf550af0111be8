//! The GGEP data length: 1–3 bytes of 6 bits each, most significant first, the last byte
//! marked.

use bytes::{Buf, BufMut};

use super::MAX_DATA_LEN;
use crate::error::{Error, Result};

pub(super) fn length_len(n: usize) -> usize {
    if n < 1 << 6 {
        1
    } else if n < 1 << 12 {
        2
    } else {
        3
    }
}

/// Write a GGEP data length in the fewest bytes (1–3, most significant
/// chunk first).
pub fn encode_length(n: usize, dst: &mut impl BufMut) {
    encode_length_width(n, length_len(n), dst);
}

/// Write a GGEP data length in `width` bytes (at least the minimum).
pub(super) fn encode_length_width(n: usize, width: usize, dst: &mut impl BufMut) {
    let n = n.min(MAX_DATA_LEN);
    for i in (0..width).rev() {
        let chunk = ((n >> (6 * i)) & 0x3F) as u8;
        dst.put_u8(if i == 0 { 0x40 | chunk } else { 0x80 | chunk });
    }
}

/// Read a GGEP data length.
pub fn decode_length(buf: &mut impl Buf) -> Result<usize> {
    decode_length_width(buf).map(|(n, _)| n)
}

/// Read a GGEP data length and the number of bytes it used.
pub(super) fn decode_length_width(buf: &mut impl Buf) -> Result<(usize, u8)> {
    let mut n = 0usize;
    for width in 1..=3u8 {
        if !buf.has_remaining() {
            return Err(Error::truncated("GGEP length"));
        }
        let b = buf.get_u8();
        n = (n << 6) | usize::from(b & 0x3F);
        if b & 0xC0 == 0xC0 {
            return Err(Error::invalid(
                "GGEP length",
                format!("byte {b:#04x} has both the more and the last bit"),
            ));
        }
        if b & 0x40 != 0 {
            return Ok((n, width));
        }
        if b & 0x80 == 0 {
            return Err(Error::invalid(
                "GGEP length",
                format!("byte {b:#04x} has neither the more nor the last bit"),
            ));
        }
    }
    Err(Error::invalid("GGEP length", "longer than 3 bytes"))
}
