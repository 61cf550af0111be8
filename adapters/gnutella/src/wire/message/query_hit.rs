//! QueryHit (0x81).
//!
//! ```text
//! hits(1) port(2 LE) ip(4) speed(4 LE)
//! hits × { index(4 LE) size(4 LE) name NUL extensions NUL }
//! [trailer: vendor(4) open-size(1) open-data private-data]
//! servent GUID(16)
//! ```

use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes};

use super::{take, take_cstr};
use crate::error::{Error, Result};
use crate::wire::ext::ExtArea;
use crate::wire::ggep::{self, Block};
use crate::wire::guid::Guid;
use crate::wire::urn::{Sha1Hash, Urn};

/// One result record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitRecord {
    /// Opaque file index for `/get/<index>/<name>`.
    pub index: u32,
    /// Size, `0xFFFFFFFF` when the real size is in GGEP `LF`.
    pub size: u32,
    /// File name bytes (without NUL).
    pub name: Bytes,
    /// Extensions between the NULs.
    pub ext: ExtArea,
}

impl HitRecord {
    /// The name as text (lossy).
    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// The file size, using GGEP `LF` for files ≥ 4 GiB.
    pub fn file_size(&self) -> u64 {
        if self.size == u32::MAX
            && let Some(Ok(d)) = self.ext.ggep(ggep::ids::LF).map(|e| e.data())
            && let Ok(n) = ggep::parse_vlint(&d, "GGEP LF")
        {
            return n;
        }
        u64::from(self.size)
    }

    /// URNs of the file (text and GGEP `H`).
    pub fn urns(&self) -> Vec<Urn> {
        self.ext.urns()
    }

    /// The SHA-1 of the file, if announced.
    pub fn sha1(&self) -> Option<Sha1Hash> {
        self.ext.sha1()
    }
}

/// The extended QueryHit descriptor (EQHD) trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QhdTrailer {
    /// Vendor code, e.g. `GTKG`.
    pub vendor: [u8; 4],
    /// Open data (normally 2 flag bytes; LimeWire adds a 2-byte XML size).
    pub open_data: Bytes,
    /// Private data up to the servent GUID (may hold a GGEP block).
    pub private_data: Bytes,
}

/// Trailer flag bits (byte 1 and byte 2 of the open data).
pub mod qhd {
    /// Push needed (value in byte 1, valid bit in byte 2).
    pub const PUSH: u8 = 0x01;
    /// Busy (valid in byte 1, value in byte 2).
    pub const BUSY: u8 = 0x04;
    /// Has uploaded (valid in byte 1, value in byte 2).
    pub const UPLOADED: u8 = 0x08;
    /// Speed is measured (valid in byte 1, value in byte 2).
    pub const UPLOAD_SPEED: u8 = 0x10;
    /// GGEP in the private data (valid in byte 1, value in byte 2).
    pub const GGEP: u8 = 0x20;
}

impl QhdTrailer {
    fn flag_bytes(&self) -> Option<(u8, u8)> {
        match self.open_data[..] {
            [a, b, ..] => Some((a, b)),
            _ => None,
        }
    }

    /// The responder is firewalled (the inverted push bit).
    pub fn push(&self) -> Option<bool> {
        let (a, b) = self.flag_bytes()?;
        (b & qhd::PUSH != 0).then_some(a & qhd::PUSH != 0)
    }

    fn flag(&self, bit: u8) -> Option<bool> {
        let (a, b) = self.flag_bytes()?;
        (a & bit != 0).then_some(b & bit != 0)
    }

    /// All upload slots are full.
    pub fn busy(&self) -> Option<bool> {
        self.flag(qhd::BUSY)
    }
    /// The responder has uploaded at least one file.
    pub fn has_uploaded(&self) -> Option<bool> {
        self.flag(qhd::UPLOADED)
    }
    /// The speed field is a measured value.
    pub fn measured_speed(&self) -> Option<bool> {
        self.flag(qhd::UPLOAD_SPEED)
    }

    /// The "GGEP present" flag.
    pub fn has_ggep(&self) -> Option<bool> {
        self.flag(qhd::GGEP)
    }

    /// The GGEP block in the private data: the first 0xC3 there.
    pub fn ggep(&self) -> Option<Result<Block>> {
        let at = self.private_data.iter().position(|&b| b == ggep::MAGIC)?;
        let mut d = self.private_data.slice(at..);
        Some(Block::decode(&mut d))
    }

    /// The vendor code as text.
    pub fn vendor_str(&self) -> String {
        String::from_utf8_lossy(&self.vendor).into_owned()
    }
}

/// A QueryHit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryHit {
    /// Responder's port.
    pub port: u16,
    /// Responder's IPv4 address.
    pub ip: Ipv4Addr,
    /// Speed in kbit/s.
    pub speed: u32,
    /// Result records (at most 255).
    pub results: Vec<HitRecord>,
    /// EQHD trailer, if any.
    pub trailer: Option<QhdTrailer>,
    /// Responder's servent GUID (Push routing key).
    pub servent: Guid,
}

impl QueryHit {
    /// Decode the payload.
    pub fn decode(mut p: Bytes) -> Result<Self> {
        let [count] = take::<1>(&mut p, "query hit")?;
        let port = u16::from_le_bytes(take(&mut p, "query hit")?);
        let ip = Ipv4Addr::from(take::<4>(&mut p, "query hit")?);
        let speed = u32::from_le_bytes(take(&mut p, "query hit")?);
        // The servent GUID is the last 16 bytes; records never reach into it.
        if p.len() < 16 {
            return Err(Error::truncated("query hit servent guid"));
        }
        let mut guid_part = p.split_off(p.len() - 16);
        let servent = Guid(take(&mut guid_part, "query hit servent guid")?);
        let mut results = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let index = u32::from_le_bytes(take(&mut p, "query hit record")?);
            let size = u32::from_le_bytes(take(&mut p, "query hit record")?);
            let name = take_cstr(&mut p, "query hit file name")?;
            let ext = ExtArea::decode_nul_terminated(&mut p)?;
            results.push(HitRecord {
                index,
                size,
                name,
                ext,
            });
        }
        let trailer = if p.is_empty() {
            None
        } else {
            let vendor = take(&mut p, "query hit trailer")?;
            let [open_len] = take::<1>(&mut p, "query hit trailer")?;
            let open_len = usize::from(open_len);
            if p.len() < open_len {
                return Err(Error::invalid(
                    "query hit trailer",
                    format!(
                        "open data size {open_len} exceeds the {} bytes left",
                        p.len()
                    ),
                ));
            }
            let open_data = p.split_to(open_len);
            Some(QhdTrailer {
                vendor,
                open_data,
                private_data: p,
            })
        };
        Ok(QueryHit {
            port,
            ip,
            speed,
            results,
            trailer,
            servent,
        })
    }

    /// Write the payload. At most 255 records are written (the count is one
    /// byte); callers split larger result sets over several hits.
    pub fn encode(&self, dst: &mut impl BufMut) {
        let n = self.results.len().min(255);
        dst.put_u8(n as u8);
        dst.put_u16_le(self.port);
        dst.put_slice(&self.ip.octets());
        dst.put_u32_le(self.speed);
        for r in &self.results[..n] {
            dst.put_u32_le(r.index);
            dst.put_u32_le(r.size);
            dst.put_slice(&r.name);
            dst.put_u8(0);
            r.ext.encode(dst);
            dst.put_u8(0);
        }
        if let Some(t) = &self.trailer {
            dst.put_slice(&t.vendor);
            dst.put_u8(t.open_data.len().min(255) as u8);
            dst.put_slice(&t.open_data[..t.open_data.len().min(255)]);
            dst.put_slice(&t.private_data);
        }
        dst.put_slice(&self.servent.0);
    }
}
