//! Vendor messages (0x31, 0x32): `<vendor 4><selector u16 LE><version u16 LE><payload>`.
//! Kept as opaque frames; a few gtk-gnutella ones get typed readers.

use bytes::{BufMut, Bytes};

use super::take;
use crate::error::{Error, Result};

/// A vendor message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorMessage {
    /// Type 0x32 ("standard") rather than 0x31.
    pub standard: bool,
    /// Vendor code, case-sensitive (all zero for "Messages Supported").
    pub vendor: [u8; 4],
    /// Selector.
    pub selector: u16,
    /// Version.
    pub version: u16,
    /// Message-specific payload.
    pub payload: Bytes,
}

/// One entry of "Messages Supported": (vendor, selector, version).
pub type SupportedMessage = ([u8; 4], u16, u16);

/// Most entries accepted in a "Messages/Features Supported" list.
const MAX_SUPPORTED: usize = 1024;

impl VendorMessage {
    /// Decode the payload (at least 8 bytes).
    pub fn decode(standard: bool, mut p: Bytes) -> Result<Self> {
        let vendor = take(&mut p, "vendor message")?;
        let selector = u16::from_le_bytes(take(&mut p, "vendor message")?);
        let version = u16::from_le_bytes(take(&mut p, "vendor message")?);
        Ok(VendorMessage {
            standard,
            vendor,
            selector,
            version,
            payload: p,
        })
    }

    /// Write the payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.vendor);
        dst.put_u16_le(self.selector);
        dst.put_u16_le(self.version);
        dst.put_slice(&self.payload);
    }

    /// The vendor code as text.
    pub fn vendor_str(&self) -> String {
        String::from_utf8_lossy(&self.vendor).into_owned()
    }

    /// "Messages Supported" (`\0\0\0\0`/0): the list of (vendor, selector,
    /// version) the sender understands. `None` for other messages.
    pub fn supported_messages(&self) -> Option<Result<Vec<SupportedMessage>>> {
        (self.vendor == [0; 4] && self.selector == 0).then(|| {
            let mut p = self.payload.clone();
            let n = usize::from(u16::from_le_bytes(take(&mut p, "messages supported")?));
            if n > MAX_SUPPORTED || p.len() != n * 8 {
                return Err(Error::invalid(
                    "messages supported",
                    format!("count {n} does not match {} bytes", p.len()),
                ));
            }
            (0..n)
                .map(|_| {
                    let v = take(&mut p, "messages supported")?;
                    let s = u16::from_le_bytes(take(&mut p, "messages supported")?);
                    let ver = u16::from_le_bytes(take(&mut p, "messages supported")?);
                    Ok((v, s, ver))
                })
                .collect()
        })
    }
}
