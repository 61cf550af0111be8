//! Query (0x80): `<flags u16 BE><criteria NUL><extension area>`.

use bytes::{BufMut, Bytes};

use super::{take, take_cstr};
use crate::error::Result;
use crate::wire::ext::{ExtArea, Item};
use crate::wire::urn::Urn;

/// The min-speed / flags field, read big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QueryFlags(pub u16);

impl QueryFlags {
    /// Bit 15: the field holds flags (gtk-gnutella drops queries without it).
    pub const MARK: u16 = 0x8000;
    /// Bit 14: the querier is firewalled.
    pub const FIREWALLED: u16 = 0x4000;
    /// Bit 13: XML metadata wanted.
    pub const XML: u16 = 0x2000;
    /// Bit 12: leaf-guided dynamic query.
    pub const LEAF_GUIDED: u16 = 0x1000;
    /// Bit 11: GGEP `H` understood.
    pub const GGEP_H: u16 = 0x0800;
    /// Bit 10: out-of-band replies.
    pub const OOB: u16 = 0x0400;
    /// Bit 9: firewall-to-firewall transfers.
    pub const FW2FW: u16 = 0x0200;
    /// Bit 8: semi-reliable UDP (gtk-gnutella).
    pub const GTA_UDP: u16 = 0x0100;

    /// Whether the field is a flag word (bit 15).
    pub fn is_flags(self) -> bool {
        self.0 & Self::MARK != 0
    }
    /// Whether flag `bit` is set (only meaningful when [`Self::is_flags`]).
    pub fn has(self, bit: u16) -> bool {
        self.is_flags() && self.0 & bit != 0
    }
    /// Max hits wanted (0 = unlimited).
    pub fn max_hits(self) -> u8 {
        if self.is_flags() {
            (self.0 & 0xFF) as u8
        } else {
            0
        }
    }
}

/// A Query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Min-speed / flags.
    pub flags: QueryFlags,
    /// Search criteria (UTF-8 in practice), without the NUL.
    pub criteria: Bytes,
    /// HUGE / GGEP / XML extensions after the NUL.
    pub ext: ExtArea,
}

impl Query {
    /// A keyword query with the flag mark and GGEP-H understood.
    pub fn keywords(text: &str) -> Self {
        Query {
            flags: QueryFlags(QueryFlags::MARK | QueryFlags::GGEP_H),
            criteria: Bytes::copy_from_slice(text.as_bytes()),
            ext: ExtArea::default(),
        }
    }

    /// A query by URN: empty criteria, `urn:sha1:…` in the extension area.
    pub fn by_urn(urn: &Urn) -> Self {
        Query {
            flags: QueryFlags(QueryFlags::MARK | QueryFlags::GGEP_H),
            criteria: Bytes::new(),
            ext: ExtArea::from_items(vec![Item::Text(Bytes::from(urn.to_string()))]),
        }
    }

    /// Decode the payload.
    pub fn decode(mut p: Bytes) -> Result<Self> {
        let flags = QueryFlags(u16::from_be_bytes(take(&mut p, "query flags")?));
        let criteria = take_cstr(&mut p, "query criteria (no NUL)")?;
        Ok(Query {
            flags,
            criteria,
            ext: ExtArea::decode_to_end(p)?,
        })
    }

    /// Write the payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_u16(self.flags.0);
        dst.put_slice(&self.criteria);
        dst.put_u8(0);
        self.ext.encode(dst);
    }

    /// The criteria as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.criteria).into_owned()
    }

    /// URNs searched for (text items and GGEP `H`).
    pub fn urns(&self) -> Vec<Urn> {
        self.ext.urns()
    }
}
