//! GGEP 0.51 extension blocks.
//!
//! ```text
//! block     = 0xC3 extension+
//! extension = flags(1) id(1..15) length(1..3) data
//! flags     = last(0x80) | cobs(0x40) | deflate(0x20) | reserved(0x10, must be 0) | id length(0x0F)
//! length    = bytes MLxxxxxx, most significant 6 bits first, L marks the last byte
//! ```
//! An [`Extension`] keeps its data **as it was on the wire** (possibly
//! deflated and COBS-encoded), so decoding then encoding is byte-exact;
//! [`Extension::data`] undoes the encodings (un-COBS, then a bounded inflate).

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::{Buf, BufMut, Bytes};

use crate::error::{Error, Result};
use crate::urn::{Sha1Hash, TigerHash};
use crate::wire::{cobs, inflate};

/// GGEP block magic byte.
pub const MAGIC: u8 = 0xC3;
/// Largest length the 3-byte length field can express.
pub const MAX_DATA_LEN: usize = (1 << 18) - 1;
/// Largest inflated size we accept for a deflated extension.
pub const MAX_INFLATED_LEN: usize = 64 * 1024;
/// Most extensions accepted in one block.
pub const MAX_EXTENSIONS: usize = 64;

const F_LAST: u8 = 0x80;
const F_COBS: u8 = 0x40;
const F_DEFLATE: u8 = 0x20;
const F_RESERVED: u8 = 0x10;
const F_IDLEN: u8 = 0x0F;

/// One GGEP extension: id, encoding flags and raw (wire) data.
#[derive(Clone, PartialEq, Eq)]
pub struct Extension {
    id: Bytes,
    cobs: bool,
    deflate: bool,
    raw: Bytes,
    /// Width of the length field as received (senders may use more bytes
    /// than needed); kept so re-encoding is byte-exact.
    len_width: u8,
}

impl fmt::Debug for Extension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extension")
            .field("id", &String::from_utf8_lossy(&self.id))
            .field("cobs", &self.cobs)
            .field("deflate", &self.deflate)
            .field("raw", &self.raw)
            .finish()
    }
}

fn check_id(id: &[u8]) -> Result<()> {
    if id.is_empty() || id.len() > 15 {
        return Err(Error::invalid(
            "GGEP id",
            format!("length {} not in 1..=15", id.len()),
        ));
    }
    if id.contains(&0) {
        return Err(Error::invalid("GGEP id", "contains a NUL byte"));
    }
    Ok(())
}

impl Extension {
    /// An extension with plain data (no COBS, no deflate).
    pub fn new(id: impl AsRef<[u8]>, data: impl Into<Bytes>) -> Result<Self> {
        let id = id.as_ref();
        check_id(id)?;
        let raw = data.into();
        if raw.len() > MAX_DATA_LEN {
            return Err(Error::too_large("GGEP data", raw.len(), MAX_DATA_LEN));
        }
        Ok(Extension {
            id: Bytes::copy_from_slice(id),
            cobs: false,
            deflate: false,
            len_width: length_len(raw.len()) as u8,
            raw,
        })
    }

    /// An extension whose data is COBS-encoded when it contains a NUL, as
    /// gtk-gnutella does for data inside QueryHit records.
    pub fn new_nul_free(id: impl AsRef<[u8]>, data: &[u8]) -> Result<Self> {
        if data.contains(&0) {
            Self::with_encoding(id, data, true, false)
        } else {
            Self::new(id, Bytes::copy_from_slice(data))
        }
    }

    /// An extension with explicit encodings (deflate first, then COBS).
    pub fn with_encoding(
        id: impl AsRef<[u8]>,
        data: &[u8],
        cobs: bool,
        deflate: bool,
    ) -> Result<Self> {
        let mut raw = if deflate {
            inflate::zlib(data)
        } else {
            data.to_vec()
        };
        if cobs {
            raw = cobs::encode(&raw);
        }
        let mut e = Self::new(id, raw)?;
        e.cobs = cobs;
        e.deflate = deflate;
        Ok(e)
    }

    /// The id bytes (compared byte-exactly).
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    /// The id as text (ids are ASCII in practice).
    pub fn id_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.id)
    }

    /// Whether the data is COBS-encoded on the wire.
    pub fn is_cobs(&self) -> bool {
        self.cobs
    }

    /// Whether the data is deflated on the wire.
    pub fn is_deflated(&self) -> bool {
        self.deflate
    }

    /// The data as on the wire.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The payload with COBS and deflate undone (inflation bounded by
    /// [`MAX_INFLATED_LEN`]).
    pub fn data(&self) -> Result<Cow<'_, [u8]>> {
        let mut d: Cow<'_, [u8]> = Cow::Borrowed(&self.raw);
        if self.cobs {
            d = Cow::Owned(cobs::decode(&d)?);
        }
        if self.deflate {
            d = Cow::Owned(inflate::zlib_bounded(&d, MAX_INFLATED_LEN, "GGEP data")?);
        }
        Ok(d)
    }

    /// Bytes this extension takes on the wire.
    pub fn encoded_len(&self) -> usize {
        1 + self.id.len() + self.width() + self.raw.len()
    }

    fn encode(&self, last: bool, dst: &mut impl BufMut) {
        let mut flags = self.id.len() as u8 & F_IDLEN;
        if last {
            flags |= F_LAST;
        }
        if self.cobs {
            flags |= F_COBS;
        }
        if self.deflate {
            flags |= F_DEFLATE;
        }
        dst.put_u8(flags);
        dst.put_slice(&self.id);
        encode_length_width(self.raw.len(), self.width(), dst);
        dst.put_slice(&self.raw);
    }

    fn width(&self) -> usize {
        usize::from(self.len_width).clamp(length_len(self.raw.len()), 3)
    }
}

fn length_len(n: usize) -> usize {
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
fn encode_length_width(n: usize, width: usize, dst: &mut impl BufMut) {
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
fn decode_length_width(buf: &mut impl Buf) -> Result<(usize, u8)> {
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

/// A GGEP block: one or more extensions after the 0xC3 magic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// Extensions in wire order.
    pub extensions: Vec<Extension>,
}

impl Block {
    /// A block of `extensions` (must not be empty when encoded).
    pub fn new(extensions: Vec<Extension>) -> Self {
        Block { extensions }
    }

    /// Decode a block at the start of `buf` (which must begin with 0xC3),
    /// advancing past it.
    pub fn decode(buf: &mut Bytes) -> Result<Self> {
        if buf.first() != Some(&MAGIC) {
            return Err(Error::invalid("GGEP block", "missing 0xC3 magic"));
        }
        buf.advance(1);
        let mut extensions = Vec::new();
        loop {
            if extensions.len() >= MAX_EXTENSIONS {
                return Err(Error::too_large(
                    "GGEP extensions",
                    extensions.len() + 1,
                    MAX_EXTENSIONS,
                ));
            }
            if !buf.has_remaining() {
                return Err(Error::truncated("GGEP block"));
            }
            let flags = buf.get_u8();
            if flags & F_RESERVED != 0 {
                return Err(Error::invalid(
                    "GGEP flags",
                    format!("reserved bit set in {flags:#04x}"),
                ));
            }
            let id_len = usize::from(flags & F_IDLEN);
            if id_len == 0 {
                return Err(Error::invalid("GGEP flags", "id length 0"));
            }
            if buf.remaining() < id_len {
                return Err(Error::truncated("GGEP id"));
            }
            let id = buf.split_to(id_len);
            check_id(&id)?;
            let (len, len_width) = decode_length_width(buf)?;
            if buf.remaining() < len {
                return Err(Error::truncated("GGEP data"));
            }
            let raw = buf.split_to(len);
            extensions.push(Extension {
                id,
                cobs: flags & F_COBS != 0,
                deflate: flags & F_DEFLATE != 0,
                raw,
                len_width,
            });
            if flags & F_LAST != 0 {
                return Ok(Block { extensions });
            }
        }
    }

    /// Decode a block from a slice that holds exactly one block.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut b = Bytes::copy_from_slice(data);
        let block = Self::decode(&mut b)?;
        if !b.is_empty() {
            return Err(Error::invalid(
                "GGEP block",
                format!("{} trailing bytes", b.len()),
            ));
        }
        Ok(block)
    }

    /// Write the block (the last extension gets the "last" flag).
    pub fn encode(&self, dst: &mut impl BufMut) {
        if self.extensions.is_empty() {
            return;
        }
        dst.put_u8(MAGIC);
        let n = self.extensions.len();
        for (i, e) in self.extensions.iter().enumerate() {
            e.encode(i + 1 == n, dst);
        }
    }

    /// Bytes this block takes on the wire.
    pub fn encoded_len(&self) -> usize {
        if self.extensions.is_empty() {
            return 0;
        }
        1 + self
            .extensions
            .iter()
            .map(Extension::encoded_len)
            .sum::<usize>()
    }

    /// The first extension with this id.
    pub fn get(&self, id: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.id() == id.as_bytes())
    }

    /// Append an extension.
    pub fn push(&mut self, e: Extension) {
        self.extensions.push(e);
    }

    /// `H`: hash type + digest.
    pub fn hash(&self) -> Option<Result<Hash>> {
        self.get(ids::H).map(|e| Hash::parse(&e.data()?))
    }
    /// `ALT`: alternate locations.
    pub fn alt_locs(&self) -> Option<Result<Vec<SocketAddrV4>>> {
        self.get(ids::ALT)
            .map(|e| parse_ip_ports(&e.data()?, "GGEP ALT"))
    }
    /// `PUSH`: push proxies.
    pub fn push_proxies(&self) -> Option<Result<Vec<SocketAddrV4>>> {
        self.get(ids::PUSH)
            .map(|e| parse_ip_ports(&e.data()?, "GGEP PUSH"))
    }
    /// `IPP`: packed hosts from a UDP host cache pong.
    pub fn packed_hosts(&self) -> Option<Result<Vec<SocketAddrV4>>> {
        self.get(ids::IPP)
            .map(|e| parse_ip_ports(&e.data()?, "GGEP IPP"))
    }
    /// `LF`: the real size of a file above 4 GiB.
    pub fn large_file_size(&self) -> Option<Result<u64>> {
        self.get(ids::LF)
            .map(|e| parse_vlint(&e.data()?, "GGEP LF"))
    }
    /// `DU`: daily uptime in seconds.
    pub fn daily_uptime(&self) -> Option<Result<u64>> {
        self.get(ids::DU)
            .map(|e| parse_vlint(&e.data()?, "GGEP DU"))
    }
    /// `CT`: creation time (seconds since the epoch).
    pub fn creation_time(&self) -> Option<Result<u64>> {
        self.get(ids::CT)
            .map(|e| parse_vlint(&e.data()?, "GGEP CT"))
    }
    /// `SCP`: the pinger wants packed hosts; the optional flags byte has bit
    /// 0x01 set when it prefers ultrapeers.
    pub fn scp(&self) -> Option<Result<Scp>> {
        self.get(ids::SCP).map(|e| {
            let d = e.data()?;
            Ok(Scp {
                flags: d.first().copied(),
            })
        })
    }
    /// `UDPHC`: the sender is a UDP host cache; data is its host name, if any.
    pub fn udp_host_cache(&self) -> Option<Result<String>> {
        self.get(ids::UDPHC)
            .map(|e| Ok(String::from_utf8_lossy(&e.data()?).into_owned()))
    }
    /// `VC`: vendor code and version byte.
    pub fn vendor_code(&self) -> Option<Result<VendorCode>> {
        self.get(ids::VC).map(|e| {
            let d = e.data()?;
            let (code, rest) = d
                .split_first_chunk::<4>()
                .ok_or_else(|| Error::truncated("GGEP VC"))?;
            Ok(VendorCode {
                vendor: *code,
                version: rest.first().copied(),
            })
        })
    }
    /// `UP`: ultrapeer version and free leaf / ultrapeer slots.
    pub fn ultrapeer_slots(&self) -> Option<Result<UltrapeerSlots>> {
        self.get(ids::UP).map(|e| {
            let d = e.data()?;
            match *d {
                [version, leaf, up, ..] => Ok(UltrapeerSlots {
                    version,
                    free_leaf_slots: leaf,
                    free_ultrapeer_slots: up,
                }),
                _ => Err(Error::truncated("GGEP UP")),
            }
        })
    }
    /// `TT`: Tiger tree root.
    pub fn tiger_tree_root(&self) -> Option<Result<TigerHash>> {
        self.get(ids::TT).map(|e| {
            let d = e.data()?;
            let arr: [u8; 24] = d
                .get(..24)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| Error::truncated("GGEP TT"))?;
            Ok(TigerHash(arr))
        })
    }
}

/// Well-known extension ids.
pub mod ids {
    /// Hash (type + digest).
    pub const H: &str = "H";
    /// URN text without `urn:`.
    pub const U: &str = "u";
    /// Alternate locations.
    pub const ALT: &str = "ALT";
    /// Large file size.
    pub const LF: &str = "LF";
    /// Push proxies.
    pub const PUSH: &str = "PUSH";
    /// Packed IPv4:port hosts.
    pub const IPP: &str = "IPP";
    /// Support cached pongs (asks for IPP).
    pub const SCP: &str = "SCP";
    /// UDP host cache.
    pub const UDPHC: &str = "UDPHC";
    /// Daily uptime.
    pub const DU: &str = "DU";
    /// Vendor code.
    pub const VC: &str = "VC";
    /// Ultrapeer slots.
    pub const UP: &str = "UP";
    /// Tiger tree root.
    pub const TT: &str = "TT";
    /// Creation time.
    pub const CT: &str = "CT";
    /// Browse host supported.
    pub const BH: &str = "BH";
    /// gtk-gnutella version.
    pub const GTKGV: &str = "GTKGV";
    /// gtk-gnutella IPv6 (kept opaque).
    pub const GTKG_IPV6: &str = "GTKG.IPV6";
    /// Partial results accepted (Query).
    pub const PR: &str = "PR";
}

/// Decoded `SCP` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scp {
    /// Optional flags byte (0x01: wants ultrapeers).
    pub flags: Option<u8>,
}

/// Decoded `VC` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorCode {
    /// Four ASCII characters, e.g. `GTKG`.
    pub vendor: [u8; 4],
    /// Version byte, if present.
    pub version: Option<u8>,
}

/// Decoded `UP` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UltrapeerSlots {
    /// Ultrapeer protocol version.
    pub version: u8,
    /// Free leaf slots.
    pub free_leaf_slots: u8,
    /// Free ultrapeer slots.
    pub free_ultrapeer_slots: u8,
}

/// Decoded GGEP `H`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hash {
    /// Type 0x01: SHA-1.
    Sha1(Sha1Hash),
    /// Type 0x02: SHA-1 followed by the Tiger tree root.
    Bitprint(Sha1Hash, TigerHash),
    /// Any other type (MD5 0x03, UUID 0x04, MD4 0x05...), kept raw.
    Other(u8, Bytes),
}

impl Hash {
    /// Parse `<type><digest>`.
    pub fn parse(d: &[u8]) -> Result<Self> {
        let (&t, rest) = d.split_first().ok_or_else(|| Error::truncated("GGEP H"))?;
        let sha = |s: &[u8]| -> Result<Sha1Hash> {
            s.get(..20)
                .and_then(|s| <[u8; 20]>::try_from(s).ok())
                .map(Sha1Hash)
                .ok_or_else(|| Error::truncated("GGEP H digest"))
        };
        match t {
            0x01 => Ok(Hash::Sha1(sha(rest)?)),
            0x02 => {
                let tiger = rest
                    .get(20..44)
                    .and_then(|s| <[u8; 24]>::try_from(s).ok())
                    .ok_or_else(|| Error::truncated("GGEP H bitprint"))?;
                Ok(Hash::Bitprint(sha(rest)?, TigerHash(tiger)))
            }
            _ => Ok(Hash::Other(t, Bytes::copy_from_slice(rest))),
        }
    }

    /// The encoded `<type><digest>` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Hash::Sha1(h) => [&[0x01u8][..], &h.0].concat(),
            Hash::Bitprint(h, t) => [&[0x02u8][..], &h.0, &t.0].concat(),
            Hash::Other(t, d) => [&[*t][..], d].concat(),
        }
    }

    /// The SHA-1, if this hash carries one.
    pub fn sha1(&self) -> Option<Sha1Hash> {
        match self {
            Hash::Sha1(h) | Hash::Bitprint(h, _) => Some(*h),
            Hash::Other(..) => None,
        }
    }
}

/// Parse n × 6 bytes of IPv4 (network order) + port (little-endian).
pub fn parse_ip_ports(d: &[u8], what: &'static str) -> Result<Vec<SocketAddrV4>> {
    if !d.len().is_multiple_of(6) {
        return Err(Error::invalid(
            what,
            format!("{} bytes is not a multiple of 6", d.len()),
        ));
    }
    Ok(d.chunks_exact(6)
        .map(|c| {
            SocketAddrV4::new(
                Ipv4Addr::new(c[0], c[1], c[2], c[3]),
                u16::from_le_bytes([c[4], c[5]]),
            )
        })
        .collect())
}

/// Encode addresses as n × 6 bytes (IPv4 network order + port LE).
pub fn encode_ip_ports(addrs: &[SocketAddrV4]) -> Vec<u8> {
    let mut v = Vec::with_capacity(addrs.len() * 6);
    for a in addrs {
        v.extend_from_slice(&a.ip().octets());
        v.extend_from_slice(&a.port().to_le_bytes());
    }
    v
}

/// Parse a little-endian integer of 1–8 bytes (trailing zeros stripped by
/// the sender), as used by `LF`, `DU`, `CT`.
pub fn parse_vlint(d: &[u8], what: &'static str) -> Result<u64> {
    if d.len() > 8 {
        return Err(Error::too_large(what, d.len(), 8));
    }
    Ok(d.iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Encode a little-endian integer without trailing zero bytes (at least 1).
pub fn encode_vlint(mut n: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(8);
    loop {
        v.push((n & 0xFF) as u8);
        n >>= 8;
        if n == 0 {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_lengths() {
        for (n, enc) in [
            (0usize, &[0x40u8][..]),
            (63, &[0x7F]),
            (64, &[0x81, 0x40]),
            (4095, &[0xBF, 0x7F]),
            (4096, &[0x81, 0x80, 0x40]),
            (262_143, &[0xBF, 0xBF, 0x7F]),
        ] {
            let mut v = Vec::new();
            encode_length(n, &mut v);
            assert_eq!(v, enc, "encode {n}");
            assert_eq!(decode_length(&mut &enc[..]).unwrap(), n);
        }
        assert!(decode_length(&mut &[0x81u8][..]).is_err());
        assert!(decode_length(&mut &[0x01u8][..]).is_err());
        assert!(
            decode_length(&mut &[0xF9u8][..]).is_err(),
            "more and last both set"
        );
        assert!(decode_length(&mut &[0x81u8, 0x81, 0x81, 0x40][..]).is_err());
    }

    #[test]
    fn non_minimal_length_reencodes_exactly() {
        let raw = [0xC3, 0x81, b'X', 0x80, 0x80, 0x41, 0xAA];
        let b = Block::parse(&raw).unwrap();
        assert_eq!(&b.extensions[0].raw()[..], &[0xAA]);
        let mut v = Vec::new();
        b.encode(&mut v);
        assert_eq!(v, raw);
        assert_eq!(b.encoded_len(), raw.len());
    }

    #[test]
    fn captured_query_h_block() {
        // Capture 04d: GGEP H (SHA-1 of gnutcap-bravo.txt) in a Query.
        let raw =
            hex::decode("c3814855 01e03850af97b058ca4f24a8b51a4ac1bfe8f4391f".replace(' ', ""))
                .unwrap();
        let b = Block::parse(&raw).unwrap();
        let h = b.hash().unwrap().unwrap();
        assert_eq!(
            h.sha1().unwrap().to_base32(),
            "4A4FBL4XWBMMUTZEVC2RUSWBX7UPIOI7"
        );
        let mut v = Vec::new();
        b.encode(&mut v);
        assert_eq!(v, raw);
    }

    #[test]
    fn cobs_and_deflate_round_trip() {
        let data = b"\x00\x01hello\x00world".repeat(50);
        for (c, d) in [(true, false), (false, true), (true, true)] {
            let e = Extension::with_encoding("X", &data, c, d).unwrap();
            if c {
                assert!(!e.raw().contains(&0));
            }
            assert_eq!(&*e.data().unwrap(), &data[..]);
            let mut v = Vec::new();
            Block::new(vec![e.clone()]).encode(&mut v);
            assert_eq!(Block::parse(&v).unwrap().extensions, vec![e]);
        }
    }

    #[test]
    fn malformed_blocks() {
        // truncated data
        assert!(Block::parse(&[0xC3, 0x81, b'H', 0x45, 1, 2]).is_err());
        // reserved bit
        assert!(Block::parse(&[0xC3, 0x91, b'H', 0x40]).is_err());
        // id length 0
        assert!(Block::parse(&[0xC3, 0x80, 0x40]).is_err());
        // NUL id
        assert!(Block::parse(&[0xC3, 0x81, 0x00, 0x40]).is_err());
        // no last flag and nothing after
        assert!(Block::parse(&[0xC3, 0x01, b'H', 0x40]).is_err());
        // bad COBS inside is only seen when data() is asked for
        let b = Block::parse(&[0xC3, 0xC1, b'H', 0x42, 0x05, 0x01]).unwrap();
        assert!(b.extensions[0].data().is_err());
        // deflate bomb is bounded
        let bomb =
            Extension::with_encoding("Z", &vec![0u8; MAX_INFLATED_LEN + 1], false, true).unwrap();
        assert!(matches!(bomb.data(), Err(Error::TooLarge { .. })));
        // garbage deflate
        let bad = Block::parse(&[0xC3, 0xA1, b'Z', 0x42, 0x12, 0x34]).unwrap();
        assert!(bad.extensions[0].data().is_err());
    }

    #[test]
    fn typed_helpers() {
        assert_eq!(
            parse_vlint(&[0x00, 0x00, 0x00, 0x00, 0x01], "LF").unwrap(),
            1 << 32
        );
        assert_eq!(encode_vlint(1 << 32), vec![0, 0, 0, 0, 1]);
        assert_eq!(encode_vlint(0), vec![0]);
        assert!(parse_vlint(&[0; 9], "LF").is_err());
        let addrs = vec!["127.0.0.61:6461".parse().unwrap()];
        let enc = encode_ip_ports(&addrs);
        assert_eq!(enc, [127, 0, 0, 61, 0x3d, 0x19]);
        assert_eq!(parse_ip_ports(&enc, "ALT").unwrap(), addrs);
        assert!(parse_ip_ports(&enc[..5], "ALT").is_err());
    }
}
