//! Push (0x40): asks the firewalled servent `servent` to connect to us and
//! send `GIV`.

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes};

use super::take;
use crate::error::Result;
use crate::wire::ext::ExtArea;
use crate::wire::guid::Guid;

/// File index gtk-gnutella uses for a firewall-to-firewall (RUDP) request.
pub const FW2FW_FILE_INDEX: u32 = 0x7FFF_FFFD;

/// Push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// Servent GUID of the firewalled host (from its QueryHit trailer).
    pub servent: Guid,
    /// File index from the hit.
    pub index: u32,
    /// Where to connect.
    pub ip: Ipv4Addr,
    /// Port to connect to.
    pub port: u16,
    /// Optional extensions (GGEP).
    pub ext: ExtArea,
}

impl Push {
    /// Decode the payload (at least 26 bytes).
    pub fn decode(mut p: Bytes) -> Result<Self> {
        let servent = Guid(take(&mut p, "push")?);
        let index = u32::from_le_bytes(take(&mut p, "push")?);
        let ip = Ipv4Addr::from(take::<4>(&mut p, "push")?);
        let port = u16::from_le_bytes(take(&mut p, "push")?);
        Ok(Push {
            servent,
            index,
            ip,
            port,
            ext: ExtArea::decode_to_end(p)?,
        })
    }

    /// Write the payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.servent.0);
        dst.put_u32_le(self.index);
        dst.put_slice(&self.ip.octets());
        dst.put_u16_le(self.port);
        self.ext.encode(dst);
    }
}
