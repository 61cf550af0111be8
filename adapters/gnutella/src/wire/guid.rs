//! The 16-byte GUID: message ids (descriptor headers) and servent ids (handshakes, hits,
//! Push, `GIV`).

use std::fmt;

use bytes::Buf;

use crate::error::{Error, Result};

/// A 16-byte GUID: message ids and servent ids. Shapes are never validated
/// (gtk-gnutella uses its own marks and all-zero ids).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID (gtk-gnutella's vendor messages use it).
    pub const ZERO: Guid = Guid([0; 16]);

    /// Turn 16 random bytes into a "modern" message id: byte 8 = 0xFF and
    /// byte 15 = 0x00, as the 0.6 draft recommends.
    pub fn modern(mut random: [u8; 16]) -> Self {
        random[8] = 0xFF;
        random[15] = 0x00;
        Guid(random)
    }

    /// 32 lowercase hex digits (as in `GUID:` and `GIV`).
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Parse 32 hex digits (any case).
    pub fn from_hex(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.len() != 32 || !s.is_ascii() {
            return Err(Error::invalid(
                "guid",
                format!("expected 32 hex digits, got {s:?}"),
            ));
        }
        let mut g = [0u8; 16];
        for (i, b) in g.iter_mut().enumerate() {
            let pair = s.get(2 * i..2 * i + 2).unwrap_or("");
            *b = u8::from_str_radix(pair, 16)
                .map_err(|_| Error::invalid("guid", format!("bad hex digits {pair:?}")))?;
        }
        Ok(Guid(g))
    }

    pub(crate) fn read(buf: &mut impl Buf) -> Self {
        let mut g = [0u8; 16];
        buf.copy_to_slice(&mut g);
        Guid(g)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({})", self.to_hex())
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_hex() {
        let g = Guid::from_hex("54cd3102ab408d4acfb983e172dbd151").unwrap();
        assert_eq!(g.to_hex(), "54cd3102ab408d4acfb983e172dbd151");
        assert!(Guid::from_hex("54cd").is_err());
        assert!(Guid::from_hex("zzcd3102ab408d4acfb983e172dbd151").is_err());
        assert!(Guid::from_hex("é4cd3102ab408d4acfb983e172dbd15").is_err());
    }
}
