//! The payloads of well-known extensions, typed: hashes, address lists, little-endian
//! integers, vendor code, ultrapeer slots, and the [`Block`] getters that decode them.

use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;

use super::{Block, ids};
use crate::error::{Error, Result};
use crate::wire::urn::{Sha1Hash, TigerHash};

impl Block {
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
