//! Checked primitive readers/writers shared by every decoder.
//!
//! `bytes::Buf` getters panic on short input; every read from the network goes through these
//! helpers instead, which return [`WireError::Truncated`].

use std::borrow::Cow;
use std::fmt;
use std::net::Ipv4Addr;

use bytes::{Buf, BufMut, Bytes};

use crate::error::{Result, WireError};

/// A 16-byte MD4 digest (file hash, user hash, server hash), written raw on the wire.
pub type Hash16 = [u8; 16];

/// A string as found on the wire: raw bytes, normally UTF-8 (or a peer's 8-bit code page).
///
/// The bytes are kept verbatim so re-encoding is lossless; use [`WireString::to_string_lossy`]
/// to display it.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WireString(Bytes);

impl WireString {
    /// Wraps raw bytes.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    /// The raw bytes as a cheap `Bytes` clone.
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The text if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
    /// The text, invalid UTF-8 replaced; a leading UTF-8 BOM (eMule `.met` files) is dropped.
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        let b = self.0.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&self.0);
        String::from_utf8_lossy(b)
    }
}

impl From<&str> for WireString {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}
impl From<String> for WireString {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}
impl From<&[u8]> for WireString {
    fn from(s: &[u8]) -> Self {
        Self(Bytes::copy_from_slice(s))
    }
}
impl fmt::Display for WireString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}
impl fmt::Debug for WireString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string_lossy(), f)
    }
}

/// An eD2k client ID: a HighID is the client's IPv4 address (bytes in network order on the
/// wire, i.e. the LE `u32` value `d<<24|c<<16|b<<8|a`); a LowID is a server-assigned handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u32);

impl ClientId {
    /// IDs below this are LowIDs (`IsLowID`).
    pub const LOW_ID_LIMIT: u32 = 16_777_216;

    /// True for firewalled (server-assigned) IDs, including 0.
    pub fn is_low_id(self) -> bool {
        self.0 < Self::LOW_ID_LIMIT
    }
    /// The HighID of an IPv4 address.
    pub fn from_ipv4(ip: Ipv4Addr) -> Self {
        Self(u32::from_le_bytes(ip.octets()))
    }
    /// The address a HighID stands for (meaningless for a LowID).
    pub fn to_ipv4(self) -> Ipv4Addr {
        Ipv4Addr::from(self.0.to_le_bytes())
    }
}

pub(crate) fn need(buf: &impl Buf, n: usize, what: &'static str) -> Result<()> {
    if buf.remaining() < n {
        return Err(WireError::Truncated {
            what,
            needed: n - buf.remaining(),
            remaining: buf.remaining(),
        });
    }
    Ok(())
}

pub(crate) fn get_u8(buf: &mut impl Buf, what: &'static str) -> Result<u8> {
    need(buf, 1, what)?;
    Ok(buf.get_u8())
}
pub(crate) fn get_u16(buf: &mut impl Buf, what: &'static str) -> Result<u16> {
    need(buf, 2, what)?;
    Ok(buf.get_u16_le())
}
pub(crate) fn get_u32(buf: &mut impl Buf, what: &'static str) -> Result<u32> {
    need(buf, 4, what)?;
    Ok(buf.get_u32_le())
}
pub(crate) fn get_u64(buf: &mut impl Buf, what: &'static str) -> Result<u64> {
    need(buf, 8, what)?;
    Ok(buf.get_u64_le())
}
pub(crate) fn get_array<const N: usize>(buf: &mut impl Buf, what: &'static str) -> Result<[u8; N]> {
    need(buf, N, what)?;
    let mut out = [0u8; N];
    buf.copy_to_slice(&mut out);
    Ok(out)
}
pub(crate) fn get_hash(buf: &mut impl Buf, what: &'static str) -> Result<Hash16> {
    get_array::<16>(buf, what)
}
pub(crate) fn get_ipv4(buf: &mut impl Buf, what: &'static str) -> Result<Ipv4Addr> {
    Ok(Ipv4Addr::from(get_array::<4>(buf, what)?))
}
/// Takes `n` bytes (zero-copy when `buf` is `Bytes`); `n` is checked first.
pub(crate) fn get_bytes(buf: &mut impl Buf, n: usize, what: &'static str) -> Result<Bytes> {
    need(buf, n, what)?;
    Ok(buf.copy_to_bytes(n))
}
/// `uint16 length` + bytes.
pub(crate) fn get_string16(buf: &mut impl Buf, what: &'static str) -> Result<WireString> {
    let len = usize::from(get_u16(buf, what)?);
    Ok(WireString(get_bytes(buf, len, what)?))
}
/// `uint32 length` + bytes; the length is checked against what is left before anything is read.
pub(crate) fn get_string32(buf: &mut impl Buf, what: &'static str) -> Result<WireString> {
    let len = get_u32(buf, what)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    Ok(WireString(get_bytes(buf, len, what)?))
}

/// Validates a count read from the wire: each item takes at least `min_item` bytes, so no
/// more than `remaining / min_item` items can follow. Returns it as a safe `Vec` capacity.
pub(crate) fn check_count(
    count: u64,
    min_item: usize,
    remaining: usize,
    what: &'static str,
) -> Result<usize> {
    let max = (remaining / min_item.max(1)) as u64;
    if count > max {
        return Err(WireError::CountTooLarge { what, count, max });
    }
    // count <= remaining, which is a usize.
    Ok(count as usize)
}

pub(crate) fn put_string16(buf: &mut impl BufMut, s: &[u8], what: &'static str) -> Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| WireError::TooLongToEncode {
        what,
        len: s.len(),
        max: usize::from(u16::MAX),
    })?;
    buf.put_u16_le(len);
    buf.put_slice(s);
    Ok(())
}
pub(crate) fn put_string32(buf: &mut impl BufMut, s: &[u8], what: &'static str) -> Result<()> {
    let len = u32::try_from(s.len()).map_err(|_| WireError::TooLongToEncode {
        what,
        len: s.len(),
        max: u32::MAX as usize,
    })?;
    buf.put_u32_le(len);
    buf.put_slice(s);
    Ok(())
}
/// Converts a collection length into a count field of type `T`.
pub(crate) fn count_as<T: TryFrom<usize>>(len: usize, what: &'static str, max: usize) -> Result<T> {
    T::try_from(len).map_err(|_| WireError::TooLongToEncode { what, len, max })
}
