//! How a peer names the file it asks about: the extended file request and eMule 0.50's file
//! identifier.

use bytes::{Buf, BufMut};

use crate::error::{Result, WireError};
use crate::wire::codec::{Hash16, get_array, get_hash, get_u8, get_u64};
use crate::wire::peer::PartStatus;

/// Extended info after `OP_REQUESTFILENAME`'s hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequestExt {
    /// The requester's own part status (count 0 = has no parts).
    pub parts: PartStatus,
    /// Sent when the extended-request version is > 1.
    pub complete_sources: Option<u16>,
}

/// eMule 0.50 file identifier: `<desc 1>[md4 16][size u64][AICH 20]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentifier {
    pub md4: Option<Hash16>,
    pub size: Option<u64>,
    pub aich: Option<[u8; 20]>,
    /// Bits 5..7 of the descriptor (optional options), kept verbatim.
    pub options: u8,
}

impl FileIdentifier {
    pub fn decode(buf: &mut impl Buf) -> Result<Self> {
        let desc = get_u8(buf, "file identifier")?;
        // Bits 3..4 are mandatory options nobody defines yet: we cannot understand them.
        if desc & 0x18 != 0 {
            return Err(WireError::InvalidValue {
                what: "file identifier mandatory options",
                value: desc.into(),
            });
        }
        let md4 = if desc & 1 != 0 {
            Some(get_hash(buf, "file identifier")?)
        } else {
            None
        };
        let size = if desc & 2 != 0 {
            Some(get_u64(buf, "file identifier")?)
        } else {
            None
        };
        let aich = if desc & 4 != 0 {
            Some(get_array(buf, "file identifier")?)
        } else {
            None
        };
        Ok(Self {
            md4,
            size,
            aich,
            options: desc >> 5,
        })
    }
    pub fn encode(&self, dst: &mut impl BufMut) {
        let desc = u8::from(self.md4.is_some())
            | u8::from(self.size.is_some()) << 1
            | u8::from(self.aich.is_some()) << 2
            | (self.options & 0x07) << 5;
        dst.put_u8(desc);
        if let Some(h) = &self.md4 {
            dst.put_slice(h);
        }
        if let Some(s) = self.size {
            dst.put_u64_le(s);
        }
        if let Some(a) = &self.aich {
            dst.put_slice(a);
        }
    }
}
