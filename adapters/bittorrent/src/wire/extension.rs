//! Payloads of extended messages: the BEP 10 handshake, BEP 9 `ut_metadata` and BEP 11
//! `ut_pex`. Each decodes the payload that follows the extended-message id byte.
//!
//! Peers are trusted for nothing: unknown keys are ignored, and optional values that are out
//! of range are dropped (the handshake stays usable), while malformed structure is an error.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;
use junction_core::bencode::{self, Value};

use crate::error::WireError;
use crate::wire::benc;
use crate::wire::compact;

/// Extension names Junction supports, with the ids it asks peers to use for them.
pub const UT_METADATA: &str = "ut_metadata";
pub const UT_PEX: &str = "ut_pex";

/// BEP 9 moves metadata in 16 KiB pieces.
pub const METADATA_PIECE_LEN: u32 = 16 * 1024;

/// Largest `info` dictionary we will fetch; the caller allocates this much for a magnet
/// download, so a peer's claim is capped (libtorrent's default cap is about 30 MiB).
pub const MAX_METADATA_SIZE: u32 = 32 << 20;

/// The extended handshake (extended message id 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtendedHandshake {
    /// Extension name → the id the sender wants to receive it under (0 = disabled).
    pub m: BTreeMap<String, u8>,
    /// Client name and version.
    pub v: Option<String>,
    /// The sender's TCP listen port.
    pub p: Option<u16>,
    /// Our address as the sender sees it.
    pub yourip: Option<IpAddr>,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// How many outstanding requests the sender accepts.
    pub reqq: Option<u32>,
    /// Size of the `info` dictionary (BEP 9), at most [`MAX_METADATA_SIZE`].
    pub metadata_size: Option<u32>,
    pub upload_only: bool,
}

fn int_in<T: TryFrom<i64>>(v: Option<&Value<'_>>) -> Option<T> {
    v.and_then(Value::as_int).and_then(|n| T::try_from(n).ok())
}

impl ExtendedHandshake {
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let v = bencode::decode(payload)?;
        if v.as_dict().is_none() {
            return Err(WireError::Invalid {
                key: "handshake",
                why: "not a dictionary",
            });
        }
        let mut m = BTreeMap::new();
        if let Some(entries) = v.get("m").and_then(Value::as_dict) {
            for e in entries {
                let (Ok(name), Some(n)) =
                    (std::str::from_utf8(e.key), int_in::<u8>(Some(&e.value)))
                else {
                    continue; // a malformed entry disables only that extension
                };
                m.insert(name.to_owned(), n);
            }
        }
        let metadata_size =
            int_in::<u32>(v.get("metadata_size")).filter(|&n| n > 0 && n <= MAX_METADATA_SIZE);
        let ip = |key| {
            v.get(key)
                .and_then(Value::as_bytes)
                .and_then(compact::decode_ip)
        };
        Ok(Self {
            m,
            v: v.get("v").and_then(Value::as_str).map(str::to_owned),
            p: int_in::<u16>(v.get("p")).filter(|&p| p != 0),
            yourip: ip("yourip"),
            ipv4: match ip("ipv4") {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            },
            ipv6: match ip("ipv6") {
                Some(IpAddr::V6(a)) => Some(a),
                _ => None,
            },
            reqq: int_in::<u32>(v.get("reqq")),
            metadata_size,
            upload_only: int_in::<i64>(v.get("upload_only")).is_some_and(|n| n != 0),
        })
    }

    /// The id the peer wants for an extension, if it supports it (0 means disabled).
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&id| id != 0)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![b'd'];
        // Keys in byte order.
        if let Some(a) = self.ipv4 {
            benc::key_bytes(&mut out, "ipv4", &a.octets());
        }
        if let Some(a) = self.ipv6 {
            benc::key_bytes(&mut out, "ipv6", &a.octets());
        }
        benc::bytes(&mut out, b"m");
        out.push(b'd');
        for (name, id) in &self.m {
            benc::key_int(&mut out, name, i64::from(*id));
        }
        out.push(b'e');
        if let Some(n) = self.metadata_size {
            benc::key_int(&mut out, "metadata_size", i64::from(n));
        }
        if let Some(p) = self.p {
            benc::key_int(&mut out, "p", i64::from(p));
        }
        if let Some(n) = self.reqq {
            benc::key_int(&mut out, "reqq", i64::from(n));
        }
        if self.upload_only {
            benc::key_int(&mut out, "upload_only", 1);
        }
        if let Some(v) = &self.v {
            benc::key_bytes(&mut out, "v", v.as_bytes());
        }
        if let Some(ip) = self.yourip {
            let mut b = Vec::new();
            compact::encode_ip(&ip, &mut b);
            benc::key_bytes(&mut out, "yourip", &b);
        }
        out.push(b'e');
        out
    }
}

/// Number of 16 KiB pieces metadata of `total_size` bytes is sent in.
pub fn metadata_piece_count(total_size: u32) -> u32 {
    total_size.div_ceil(METADATA_PIECE_LEN)
}

/// Length of one metadata piece, or `None` if `piece` is past the end.
pub fn metadata_piece_len(total_size: u32, piece: u32) -> Option<u32> {
    let start = u64::from(piece) * u64::from(METADATA_PIECE_LEN);
    let rest = u64::from(total_size)
        .checked_sub(start)
        .filter(|&r| r > 0)?;
    Some(rest.min(u64::from(METADATA_PIECE_LEN)) as u32)
}

/// A BEP 9 `ut_metadata` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    Request {
        piece: u32,
    },
    /// A piece of the `info` dictionary; its length is checked against `total_size`.
    Data {
        piece: u32,
        total_size: u32,
        data: Bytes,
    },
    Reject {
        piece: u32,
    },
}

impl MetadataMessage {
    /// Decodes the dictionary and, for `data`, the piece bytes that follow it.
    pub fn decode(payload: Bytes) -> Result<Self, WireError> {
        let (v, used) = bencode::decode_prefix(&payload)?;
        let bad = |key, why| WireError::Invalid { key, why };
        let msg_type = v
            .get("msg_type")
            .and_then(Value::as_int)
            .ok_or(bad("msg_type", "missing or not an integer"))?;
        let piece = int_in::<u32>(v.get("piece"))
            .filter(|&p| p < metadata_piece_count(MAX_METADATA_SIZE))
            .ok_or(bad("piece", "missing or out of range"))?;
        let trailing = payload.len() - used;
        let no_trailing = || {
            if trailing == 0 {
                Ok(())
            } else {
                Err(bad("msg_type", "request/reject must not carry data"))
            }
        };
        match msg_type {
            0 => no_trailing().map(|_| MetadataMessage::Request { piece }),
            2 => no_trailing().map(|_| MetadataMessage::Reject { piece }),
            1 => {
                let total_size = int_in::<u32>(v.get("total_size"))
                    .filter(|&n| n > 0 && n <= MAX_METADATA_SIZE)
                    .ok_or(bad(
                        "total_size",
                        "missing or above the metadata size limit",
                    ))?;
                let expected = metadata_piece_len(total_size, piece)
                    .ok_or(bad("piece", "past the end of the metadata"))?;
                if trailing != expected as usize {
                    return Err(bad("data", "piece length does not match total_size"));
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: payload.slice(used..),
                })
            }
            other => Err(WireError::UnknownMetadataType(other)),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![b'd'];
        match self {
            MetadataMessage::Request { piece } | MetadataMessage::Reject { piece } => {
                let t = if matches!(self, MetadataMessage::Request { .. }) {
                    0
                } else {
                    2
                };
                benc::key_int(&mut out, "msg_type", t);
                benc::key_int(&mut out, "piece", i64::from(*piece));
                out.push(b'e');
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                benc::key_int(&mut out, "msg_type", 1);
                benc::key_int(&mut out, "piece", i64::from(*piece));
                benc::key_int(&mut out, "total_size", i64::from(*total_size));
                out.push(b'e');
                out.extend_from_slice(data);
            }
        }
        out
    }
}

/// PEX peer flags (BEP 11), one byte per added peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PexFlags(pub u8);

impl PexFlags {
    pub const PREFERS_ENCRYPTION: u8 = 0x01;
    pub const SEED: u8 = 0x02;
    pub const UTP: u8 = 0x04;
    pub const HOLEPUNCH: u8 = 0x08;
    pub const REACHABLE: u8 = 0x10;

    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }
}

/// A BEP 11 `ut_pex` message. IPv4 and IPv6 peers share each list here; on the wire they
/// go to `added`/`added6` and `dropped`/`dropped6`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PexMessage {
    pub added: Vec<(SocketAddr, PexFlags)>,
    pub dropped: Vec<SocketAddr>,
}

impl PexMessage {
    pub fn decode(payload: &[u8]) -> Result<Self, WireError> {
        let v = bencode::decode(payload)?;
        if v.as_dict().is_none() {
            return Err(WireError::Invalid {
                key: "ut_pex",
                why: "not a dictionary",
            });
        }
        let bytes = |key: &'static str| -> Result<&[u8], WireError> {
            match v.get(key) {
                None => Ok(&[]),
                Some(x) => x.as_bytes().ok_or(WireError::Invalid {
                    key,
                    why: "not a byte string",
                }),
            }
        };
        let mut msg = PexMessage::default();
        let v4: Vec<SocketAddr> = compact::decode_v4(bytes("added")?)?
            .into_iter()
            .map(Into::into)
            .collect();
        let v6: Vec<SocketAddr> = compact::decode_v6(bytes("added6")?)?
            .into_iter()
            .map(Into::into)
            .collect();
        for (addrs, fkey) in [(v4, "added.f"), (v6, "added6.f")] {
            let flags = bytes(fkey)?;
            // Flags may be missing (older clients); if present they must match one to one.
            if !flags.is_empty() && flags.len() != addrs.len() {
                return Err(WireError::Invalid {
                    key: fkey,
                    why: "not one flag byte per added peer",
                });
            }
            for (i, a) in addrs.into_iter().enumerate() {
                let f = flags.get(i).copied().unwrap_or(0);
                msg.added.push((a, PexFlags(f)));
            }
        }
        msg.dropped.extend(
            compact::decode_v4(bytes("dropped")?)?
                .into_iter()
                .map(SocketAddr::from),
        );
        msg.dropped.extend(
            compact::decode_v6(bytes("dropped6")?)?
                .into_iter()
                .map(SocketAddr::from),
        );
        Ok(msg)
    }

    pub fn encode(&self) -> Vec<u8> {
        let (mut a4, mut f4, mut a6, mut f6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (addr, flags) in &self.added {
            match addr {
                SocketAddr::V4(_) => {
                    compact::encode(addr, &mut a4);
                    f4.push(flags.0);
                }
                SocketAddr::V6(_) => {
                    compact::encode(addr, &mut a6);
                    f6.push(flags.0);
                }
            }
        }
        let (mut d4, mut d6) = (Vec::new(), Vec::new());
        for addr in &self.dropped {
            match addr {
                SocketAddr::V4(_) => compact::encode(addr, &mut d4),
                SocketAddr::V6(_) => compact::encode(addr, &mut d6),
            }
        }
        let mut out = vec![b'd'];
        for (key, val) in [
            ("added", a4),
            ("added.f", f4),
            ("added6", a6),
            ("added6.f", f6),
            ("dropped", d4),
            ("dropped6", d6),
        ] {
            if !val.is_empty() {
                benc::key_bytes(&mut out, key, &val);
            }
        }
        out.push(b'e');
        out
    }
}
