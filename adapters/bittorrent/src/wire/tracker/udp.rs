//! UDP tracker protocol (BEP 15). All integers are big-endian; packets may grow in later
//! versions, so fixed-size packets are accepted with trailing bytes.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::{Buf, BufMut};

use super::{Event, ScrapeStats};
use crate::error::TrackerError;
use crate::wire::compact;
use crate::wire::id::{InfoHash, PeerId};

/// The magic constant a connect request starts with.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Most info-hashes one scrape request may carry (one ≈ 1500-byte datagram).
pub const MAX_SCRAPE_HASHES: usize = 74;

pub mod action {
    pub const CONNECT: u32 = 0;
    pub const ANNOUNCE: u32 = 1;
    pub const SCRAPE: u32 = 2;
    pub const ERROR: u32 = 3;
}

/// Timeout before retry `attempt` (0-based): 15·2^n seconds for n = 0..=8 (BEP 15);
/// `None` after that, when the tracker should be given up.
pub fn retry_timeout(attempt: u32) -> Option<Duration> {
    (attempt <= 8).then(|| Duration::from_secs(15 << attempt))
}

/// Address family of the socket the response came in on: it decides whether announce
/// peers are 6-byte (IPv4) or 18-byte (IPv6) entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// An announce request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    pub connection_id: u64,
    pub transaction_id: u32,
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub downloaded: u64,
    pub left: u64,
    pub uploaded: u64,
    pub event: Event,
    /// Our address, if not the packet's source (0 on the wire means "the sender").
    pub ip: Option<Ipv4Addr>,
    pub key: u32,
    /// Peers wanted; `None` is the tracker's default (-1 on the wire).
    pub num_want: Option<u32>,
    pub port: u16,
}

/// A client → tracker packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Connect {
        transaction_id: u32,
    },
    Announce(Announce),
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        info_hashes: Vec<InfoHash>,
    },
}

/// A tracker → client packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Connect {
        transaction_id: u32,
        connection_id: u64,
    },
    Announce {
        transaction_id: u32,
        interval: u32,
        leechers: u32,
        seeders: u32,
        peers: Vec<SocketAddr>,
    },
    Scrape {
        transaction_id: u32,
        stats: Vec<ScrapeStats>,
    },
    Error {
        transaction_id: u32,
        message: String,
    },
}

fn need(packet: &[u8], n: usize) -> Result<(), TrackerError> {
    if packet.len() < n {
        Err(TrackerError::ShortPacket {
            need: n,
            got: packet.len(),
        })
    } else {
        Ok(())
    }
}

fn hash20(buf: &mut &[u8]) -> [u8; 20] {
    let mut out = [0; 20];
    buf.copy_to_slice(&mut out);
    out
}

impl Request {
    pub fn transaction_id(&self) -> u32 {
        match self {
            Request::Connect { transaction_id }
            | Request::Scrape { transaction_id, .. }
            | Request::Announce(Announce { transaction_id, .. }) => *transaction_id,
        }
    }

    pub fn encode(&self, out: &mut impl BufMut) {
        match self {
            Request::Connect { transaction_id } => {
                out.put_u64(PROTOCOL_ID);
                out.put_u32(action::CONNECT);
                out.put_u32(*transaction_id);
            }
            Request::Announce(a) => {
                out.put_u64(a.connection_id);
                out.put_u32(action::ANNOUNCE);
                out.put_u32(a.transaction_id);
                out.put_slice(&a.info_hash.0);
                out.put_slice(&a.peer_id.0);
                out.put_u64(a.downloaded);
                out.put_u64(a.left);
                out.put_u64(a.uploaded);
                out.put_u32(a.event.udp_code());
                out.put_u32(a.ip.map_or(0, u32::from));
                out.put_u32(a.key);
                out.put_i32(a.num_want.and_then(|n| i32::try_from(n).ok()).unwrap_or(-1));
                out.put_u16(a.port);
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.put_u64(*connection_id);
                out.put_u32(action::SCRAPE);
                out.put_u32(*transaction_id);
                for h in info_hashes.iter().take(MAX_SCRAPE_HASHES) {
                    out.put_slice(&h.0);
                }
            }
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(98);
        self.encode(&mut out);
        out
    }

    /// Decodes a request (the tracker role).
    pub fn decode(packet: &[u8]) -> Result<Self, TrackerError> {
        need(packet, 16)?;
        let mut b = packet;
        let connection_id = b.get_u64();
        let act = b.get_u32();
        let transaction_id = b.get_u32();
        match act {
            action::CONNECT => {
                if connection_id != PROTOCOL_ID {
                    return Err(TrackerError::BadField("protocol_id"));
                }
                Ok(Request::Connect { transaction_id })
            }
            action::ANNOUNCE => {
                need(packet, 98)?;
                let info_hash = InfoHash(hash20(&mut b));
                let peer_id = PeerId(hash20(&mut b));
                let downloaded = b.get_u64();
                let left = b.get_u64();
                let uploaded = b.get_u64();
                let event =
                    Event::from_udp_code(b.get_u32()).ok_or(TrackerError::BadField("event"))?;
                let ip = Some(Ipv4Addr::from(b.get_u32())).filter(|ip| !ip.is_unspecified());
                let key = b.get_u32();
                let num_want = u32::try_from(b.get_i32()).ok();
                let port = b.get_u16();
                Ok(Request::Announce(Announce {
                    connection_id,
                    transaction_id,
                    info_hash,
                    peer_id,
                    downloaded,
                    left,
                    uploaded,
                    event,
                    ip,
                    key,
                    num_want,
                    port,
                }))
            }
            action::SCRAPE => {
                let rest = &packet[16..];
                if !rest.len().is_multiple_of(20) || rest.len() / 20 > MAX_SCRAPE_HASHES {
                    return Err(TrackerError::BadField("info_hashes"));
                }
                let info_hashes = rest
                    .chunks_exact(20)
                    .filter_map(InfoHash::from_slice)
                    .collect();
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            other => Err(TrackerError::UnknownAction(other)),
        }
    }
}

impl Response {
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// Peers of a family other than the one given are left out: the wire cannot mix them.
    pub fn encode(&self, family: Family, out: &mut impl BufMut) {
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                out.put_u32(action::CONNECT);
                out.put_u32(*transaction_id);
                out.put_u64(*connection_id);
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                out.put_u32(action::ANNOUNCE);
                out.put_u32(*transaction_id);
                out.put_u32(*interval);
                out.put_u32(*leechers);
                out.put_u32(*seeders);
                let mut buf = Vec::new();
                for p in peers {
                    if p.is_ipv6() == (family == Family::V6) {
                        compact::encode(p, &mut buf);
                    }
                }
                out.put_slice(&buf);
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                out.put_u32(action::SCRAPE);
                out.put_u32(*transaction_id);
                for s in stats {
                    out.put_u32(s.complete);
                    out.put_u32(s.downloaded);
                    out.put_u32(s.incomplete);
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                out.put_u32(action::ERROR);
                out.put_u32(*transaction_id);
                out.put_slice(message.as_bytes());
            }
        }
    }

    pub fn to_vec(&self, family: Family) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(family, &mut out);
        out
    }

    /// Decodes a response that arrived on a socket of `family`. The caller still matches
    /// the transaction id (and the action) against what it sent.
    pub fn decode(packet: &[u8], family: Family) -> Result<Self, TrackerError> {
        need(packet, 8)?;
        let mut b = packet;
        let act = b.get_u32();
        let transaction_id = b.get_u32();
        match act {
            action::CONNECT => {
                need(packet, 16)?;
                Ok(Response::Connect {
                    transaction_id,
                    connection_id: b.get_u64(),
                })
            }
            action::ANNOUNCE => {
                need(packet, 20)?;
                let interval = b.get_u32();
                let leechers = b.get_u32();
                let seeders = b.get_u32();
                let peers = match family {
                    Family::V4 => compact::decode_v4(b)?.into_iter().map(Into::into).collect(),
                    Family::V6 => compact::decode_v6(b)?.into_iter().map(Into::into).collect(),
                };
                Ok(Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            action::SCRAPE => {
                if !b.len().is_multiple_of(12) {
                    return Err(TrackerError::BadField("scrape entries"));
                }
                let stats = b
                    .chunks_exact(12)
                    .map(|mut c| ScrapeStats {
                        complete: c.get_u32(),
                        downloaded: c.get_u32(),
                        incomplete: c.get_u32(),
                    })
                    .collect();
                Ok(Response::Scrape {
                    transaction_id,
                    stats,
                })
            }
            action::ERROR => Ok(Response::Error {
                transaction_id,
                message: String::from_utf8_lossy(b).into_owned(),
            }),
            other => Err(TrackerError::UnknownAction(other)),
        }
    }
}
