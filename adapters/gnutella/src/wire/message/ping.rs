//! Ping (0x00) and Pong (0x01).

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes};

use super::take;
use crate::error::Result;
use crate::wire::ext::{ExtArea, Item};
use crate::wire::ggep::{self, Block, Extension};

/// Ping: empty, or carrying GGEP (e.g. `SCP` to ask for packed hosts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ping {
    /// Extensions (usually one GGEP block or nothing).
    pub ext: ExtArea,
}

impl Ping {
    /// A Ping with GGEP `SCP` (flags 0x01 asks for ultrapeers, as
    /// gtk-gnutella's ultrapeer sends; leaves send 0x00).
    pub fn with_scp(flags: u8) -> Self {
        let scp = Extension::new(ggep::ids::SCP, vec![flags]).ok();
        Ping {
            ext: ExtArea::from_items(vec![Item::Ggep(Block::new(scp.into_iter().collect()))]),
        }
    }

    /// Decode the payload.
    pub fn decode(payload: Bytes) -> Result<Self> {
        Ok(Ping {
            ext: ExtArea::decode_to_end(payload)?,
        })
    }

    /// Write the payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        self.ext.encode(dst);
    }
}

/// Pong: a host's address and library size, plus GGEP (`VC`, `UP`, `DU`,
/// `IPP`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    /// Listening port.
    pub port: u16,
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// Number of shared files.
    pub files: u32,
    /// Shared KiB.
    pub kbytes: u32,
    /// Extensions after the fixed 14 bytes.
    pub ext: ExtArea,
}

impl Pong {
    /// Decode the payload (at least 14 bytes).
    pub fn decode(mut p: Bytes) -> Result<Self> {
        let port = u16::from_le_bytes(take(&mut p, "pong")?);
        let ip = Ipv4Addr::from(take::<4>(&mut p, "pong")?);
        let files = u32::from_le_bytes(take(&mut p, "pong")?);
        let kbytes = u32::from_le_bytes(take(&mut p, "pong")?);
        Ok(Pong {
            port,
            ip,
            files,
            kbytes,
            ext: ExtArea::decode_to_end(p)?,
        })
    }

    /// Write the payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_u16_le(self.port);
        dst.put_slice(&self.ip.octets());
        dst.put_u32_le(self.files);
        dst.put_u32_le(self.kbytes);
        self.ext.encode(dst);
    }
}
