//! Content identifiers used by Gnutella: `urn:sha1:`, `urn:tree:tiger:` and
//! `urn:bitprint:` (HUGE 0.94, THEX). Base32 is RFC 4648 without padding and is
//! decoded case-insensitively.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use sha1::Digest;

use crate::error::{Error, Result};

/// A SHA-1 digest (20 bytes): the Gnutella whole-file identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha1Hash(pub [u8; 20]);

/// A Tiger tree (THEX) root (24 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TigerHash(pub [u8; 24]);

impl Sha1Hash {
    /// SHA-1 of `data` (the whole file).
    pub fn digest(data: &[u8]) -> Self {
        Sha1Hash(sha1::Sha1::digest(data).into())
    }

    /// 32-character upper-case Base32 form.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }

    /// Parse 32 Base32 characters (any case).
    pub fn from_base32(s: &str) -> Result<Self> {
        decode_fixed::<20>(s, "sha1 base32").map(Sha1Hash)
    }
}

impl TigerHash {
    /// 39-character upper-case Base32 form.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }

    /// Parse 39 Base32 characters (any case).
    pub fn from_base32(s: &str) -> Result<Self> {
        decode_fixed::<24>(s, "tiger tree base32").map(TigerHash)
    }
}

impl fmt::Debug for Sha1Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha1Hash({})", self.to_base32())
    }
}

impl fmt::Debug for TigerHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TigerHash({})", self.to_base32())
    }
}

/// Decode a Base32 string of exactly the length that yields `N` bytes.
fn decode_fixed<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N]> {
    let want = (N * 8).div_ceil(5);
    if s.len() != want {
        return Err(Error::invalid(
            what,
            format!("expected {want} characters, got {}", s.len()),
        ));
    }
    let upper = s.to_ascii_uppercase();
    let bytes = BASE32_NOPAD
        .decode(upper.as_bytes())
        .map_err(|e| Error::invalid(what, e))?;
    bytes
        .try_into()
        .map_err(|_| Error::invalid(what, "wrong decoded length"))
}

/// A URN as used in HUGE extensions, HTTP headers and magnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Urn {
    /// `urn:sha1:<32 base32>`.
    Sha1(Sha1Hash),
    /// `urn:tree:tiger:<39 base32>` (also accepted: `urn:tree:tiger/:`).
    TreeTiger(TigerHash),
    /// `urn:bitprint:<32 base32>.<39 base32>`.
    Bitprint(Sha1Hash, TigerHash),
    /// `urn:ed2khash:<32 hex>` (also accepted: `urn:ed2k:`): the eD2k hash, which Shareaza
    /// puts in its hits beside the SHA-1, so one file is known on both networks.
    Ed2k([u8; 16]),
    /// `urn:btih:<32 base32>` (also read: 40 hex): the BitTorrent v1 info-hash of a
    /// torrent of the file, which Shareaza puts in its hits too.
    Btih([u8; 20]),
}

impl Urn {
    /// Parse a URN; the `urn:` prefix is optional (GGEP `u` omits it) and
    /// every part is case-insensitive.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        let rest = strip_prefix_ci(s, "urn:").unwrap_or(s);
        if let Some(b32) = strip_prefix_ci(rest, "sha1:") {
            return Sha1Hash::from_base32(b32).map(Urn::Sha1);
        }
        if let Some(b32) =
            strip_prefix_ci(rest, "tree:tiger:").or_else(|| strip_prefix_ci(rest, "tree:tiger/:"))
        {
            return TigerHash::from_base32(b32).map(Urn::TreeTiger);
        }
        if let Some(h) =
            strip_prefix_ci(rest, "ed2khash:").or_else(|| strip_prefix_ci(rest, "ed2k:"))
        {
            let mut out = [0u8; 16];
            return match data_encoding::HEXLOWER_PERMISSIVE.decode(h.as_bytes()) {
                Ok(d) if d.len() == 16 => {
                    out.copy_from_slice(&d);
                    Ok(Urn::Ed2k(out))
                }
                _ => Err(Error::invalid("ed2k urn", "expected 32 hex digits")),
            };
        }
        if let Some(h) = strip_prefix_ci(rest, "btih:") {
            let mut out = [0u8; 20];
            let d = match h.len() {
                40 => data_encoding::HEXLOWER_PERMISSIVE.decode(h.as_bytes()),
                _ => data_encoding::BASE32_NOPAD.decode(h.to_ascii_uppercase().as_bytes()),
            };
            return match d {
                Ok(d) if d.len() == 20 => {
                    out.copy_from_slice(&d);
                    Ok(Urn::Btih(out))
                }
                _ => Err(Error::invalid(
                    "btih urn",
                    "expected 32 base32 or 40 hex digits",
                )),
            };
        }
        if let Some(v) = strip_prefix_ci(rest, "bitprint:") {
            let (a, b) = v
                .split_once('.')
                .ok_or_else(|| Error::invalid("bitprint urn", "missing '.' separator"))?;
            return Ok(Urn::Bitprint(
                Sha1Hash::from_base32(a)?,
                TigerHash::from_base32(b)?,
            ));
        }
        Err(Error::invalid("urn", format!("unsupported urn {s:?}")))
    }

    /// The SHA-1 this URN names, if any (a bitprint downgrades to its SHA-1).
    pub fn sha1(&self) -> Option<Sha1Hash> {
        match self {
            Urn::Sha1(h) | Urn::Bitprint(h, _) => Some(*h),
            Urn::TreeTiger(_) | Urn::Ed2k(_) | Urn::Btih(_) => None,
        }
    }

    /// The Tiger tree root this URN names, if any.
    pub fn tiger(&self) -> Option<TigerHash> {
        match self {
            Urn::TreeTiger(t) | Urn::Bitprint(_, t) => Some(*t),
            Urn::Sha1(_) | Urn::Ed2k(_) | Urn::Btih(_) => None,
        }
    }

    /// The eD2k hash this URN names, if any.
    pub fn ed2k(&self) -> Option<[u8; 16]> {
        match self {
            Urn::Ed2k(h) => Some(*h),
            _ => None,
        }
    }

    /// The BitTorrent v1 info-hash this URN names, if any.
    pub fn btih(&self) -> Option<[u8; 20]> {
        match self {
            Urn::Btih(h) => Some(*h),
            _ => None,
        }
    }
}

impl fmt::Display for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Urn::Sha1(h) => write!(f, "urn:sha1:{}", h.to_base32()),
            Urn::TreeTiger(t) => write!(f, "urn:tree:tiger:{}", t.to_base32()),
            Urn::Bitprint(h, t) => write!(f, "urn:bitprint:{}.{}", h.to_base32(), t.to_base32()),
            Urn::Ed2k(h) => write!(f, "urn:ed2khash:{}", data_encoding::HEXLOWER.encode(h)),
            Urn::Btih(h) => write!(f, "urn:btih:{}", data_encoding::BASE32_NOPAD.encode(h)),
        }
    }
}

impl FromStr for Urn {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Urn::parse(s)
    }
}

/// ASCII case-insensitive `strip_prefix`.
pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_sha1_base32() {
        assert_eq!(
            Sha1Hash::digest(b"").to_base32(),
            "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"
        );
        assert_eq!(
            Sha1Hash::digest(b"abc").to_base32(),
            "VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5"
        );
        assert_eq!(
            Sha1Hash::digest(b"a").to_base32(),
            "Q336IN72UWT7ZYK5DXOLT2XK5I3XMZ5Y"
        );
        assert_eq!(
            Sha1Hash::digest(&[0u8]).to_base32(),
            "LOUTZHNQZ74T6UVVEHLUEDSD63W2E6CP"
        );
        assert_eq!(BASE32_NOPAD.encode(&[0x0f, 0xf5]), "B72Q");
    }

    #[test]
    fn parse_is_case_insensitive_and_formats_upper() {
        let u = Urn::parse("URN:SHA1:3i42h3s6nnfq2msvx7xzkyayscx5qbyj").unwrap();
        assert_eq!(u, Urn::Sha1(Sha1Hash::digest(b"")));
        assert_eq!(u.to_string(), "urn:sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ");
        assert_eq!(
            Urn::parse("sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ").unwrap(),
            u
        );
    }

    #[test]
    fn ed2k_urns_as_shareaza_writes_them() {
        let hex = "31d6cfe0d16ae931b73c59d7e0c089c0";
        let u = Urn::parse(&format!("urn:ed2khash:{}", hex.to_uppercase())).unwrap();
        assert_eq!(u.to_string(), format!("urn:ed2khash:{hex}"));
        assert_eq!(Urn::parse(&format!("urn:ed2k:{hex}")).unwrap(), u);
        assert_eq!(u.ed2k().map(|h| h[0]), Some(0x31));
        assert_eq!(u.sha1(), None);
        assert!(Urn::parse("urn:ed2khash:31d6").is_err());
        assert!(Urn::parse(&format!("urn:ed2khash:{}zz", &hex[..30])).is_err());
    }

    #[test]
    fn btih_urns_in_base32_as_shareaza_writes_them_or_hex() {
        // The info-hash of the spec's "bittorrent-v1" example (64a980ab…).
        let hex = "64a980abe6e448226bb930ba061592e44c3781a1";
        let u = Urn::parse(&format!("urn:btih:{}", hex.to_uppercase())).unwrap();
        assert_eq!(u.btih().map(|h| h[..2].to_vec()), Some(vec![0x64, 0xa9]));
        assert_eq!(u.to_string(), "urn:btih:MSUYBK7G4RECE25ZGC5AMFMS4RGDPANB");
        assert_eq!(Urn::parse(&u.to_string().to_lowercase()).unwrap(), u);
        assert_eq!((u.sha1(), u.ed2k(), u.tiger()), (None, None, None));
        assert!(Urn::parse(&format!("urn:btih:{}", &hex[..39])).is_err());
    }

    #[test]
    fn tiger_and_bitprint() {
        let t = "LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ";
        let u = Urn::parse(&format!("urn:tree:tiger/:{t}")).unwrap();
        assert_eq!(u.to_string(), format!("urn:tree:tiger:{t}"));
        let bp = format!("urn:bitprint:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ.{t}");
        let b = Urn::parse(&bp).unwrap();
        assert_eq!(b.to_string(), bp);
        assert_eq!(b.sha1(), Some(Sha1Hash::digest(b"")));
        assert_eq!(b.tiger(), u.tiger());
    }

    #[test]
    fn rejects_bad_urns() {
        assert!(Urn::parse("urn:sha1:TOOSHORT").is_err());
        assert!(Urn::parse("urn:sha1:0000000000000000000000000000000!").is_err());
        assert!(Urn::parse("urn:md5:abc").is_err());
        assert!(Urn::parse("urn:btih:abcd").is_err());
        assert!(Urn::parse("urn:bitprint:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ").is_err());
        assert!(Urn::parse("").is_err());
    }
}
