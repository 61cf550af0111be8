//! Fixed-size identifiers: info-hashes and peer ids.

use std::fmt;

use data_encoding::{BASE32_NOPAD, HEXLOWER, HEXLOWER_PERMISSIVE};

/// A 20-byte info-hash as used on the wire: the v1 SHA-1, or a v2 SHA-256 truncated to 20
/// bytes (trackers, DHT and the peer handshake only carry 20 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHash(pub [u8; 20]);

/// A full v2 info-hash (SHA-256 of the `info` dictionary).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHashV2(pub [u8; 32]);

/// A 20-byte peer id (BEP 20).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub [u8; 20]);

fn array<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.try_into().ok()
}

impl InfoHash {
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        array(b).map(Self)
    }

    /// 40 hex digits, either case.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()?;
        Self::from_slice(&bytes)
    }

    /// 32 base32 characters (the legacy magnet form), either case.
    pub fn from_base32(s: &str) -> Option<Self> {
        let bytes = BASE32_NOPAD
            .decode(s.to_ascii_uppercase().as_bytes())
            .ok()?;
        Self::from_slice(&bytes)
    }

    pub fn to_hex(&self) -> String {
        HEXLOWER.encode(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl InfoHashV2 {
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        array(b).map(Self)
    }

    /// The first 20 bytes, used for trackers, the DHT and the handshake (BEP 52).
    pub fn truncated(&self) -> InfoHash {
        let mut out = [0; 20];
        out.copy_from_slice(&self.0[..20]);
        InfoHash(out)
    }

    /// Multihash form for `urn:btmh:`: `12` (sha2-256) `20` (32 bytes) then the digest.
    pub fn to_multihash_hex(&self) -> String {
        format!("1220{}", HEXLOWER.encode(&self.0))
    }

    /// Parses the multihash hex form; only sha2-256 (`1220…`) is defined for BitTorrent.
    pub fn from_multihash_hex(s: &str) -> Option<Self> {
        let bytes = HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()?;
        match bytes.as_slice() {
            [0x12, 0x20, digest @ ..] => Self::from_slice(digest),
            _ => None,
        }
    }

    pub fn to_hex(&self) -> String {
        HEXLOWER.encode(&self.0)
    }
}

impl PeerId {
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        array(b).map(Self)
    }

    /// The Azureus-style client prefix (`-XX1234-`), if the id has one (BEP 20).
    pub fn azureus_client(&self) -> Option<&str> {
        let p = &self.0[..8];
        let ok = p[0] == b'-' && p[7] == b'-' && p[1..7].iter().all(u8::is_ascii_alphanumeric);
        ok.then(|| std::str::from_utf8(&p[1..7]).ok()).flatten()
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({self})")
    }
}

impl fmt::Display for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHashV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHashV2({self})")
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Peer ids are mostly printable client tags followed by random bytes.
        write!(f, "PeerId({})", self.0.escape_ascii())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base32_forms_agree() {
        let h = InfoHash::from_hex("64A980ABE6E448226BB930BA061592E44C3781A1").unwrap();
        assert_eq!(h.to_hex(), "64a980abe6e448226bb930ba061592e44c3781a1");
        let b32 = BASE32_NOPAD.encode(&h.0);
        assert_eq!(InfoHash::from_base32(&b32.to_lowercase()), Some(h));
        assert_eq!(InfoHash::from_hex("64a9"), None);
        assert_eq!(InfoHash::from_hex("zz"), None);
    }

    #[test]
    fn multihash_requires_sha256_prefix() {
        let hex = "1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";
        let h = InfoHashV2::from_multihash_hex(hex).unwrap();
        assert_eq!(h.to_multihash_hex(), hex);
        assert_eq!(h.truncated().to_hex(), &hex[4..44]);
        assert_eq!(
            InfoHashV2::from_multihash_hex(&format!("1320{}", &hex[4..])),
            None
        );
        assert_eq!(InfoHashV2::from_multihash_hex(&hex[..66]), None);
    }

    #[test]
    fn azureus_prefix() {
        let id = PeerId(*b"-JN0001-abcdefghijkl");
        assert_eq!(id.azureus_client(), Some("JN0001"));
        assert_eq!(PeerId([0; 20]).azureus_client(), None);
    }
}
