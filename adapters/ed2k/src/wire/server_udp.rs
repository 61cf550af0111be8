//! Client ↔ server UDP messages (protocol `0xE3`, to the server's TCP port + 4). Use with
//! [`UdpPacket`] for the two-byte header.

use std::net::SocketAddrV4;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Result, WireError};
use crate::wire::codec::{
    ClientId, Hash16, WireString, check_count, count_as, get_hash, get_ipv4, get_string16, get_u8,
    get_u16, get_u32, get_u64, put_string16,
};
use crate::wire::frame::{UdpPacket, UdpProtocol};
use crate::wire::search::SearchExpr;
use crate::wire::server::{FileEntry, MIN_FILE_ENTRY_LEN, Source, SourceRequest, get_sources};
use crate::wire::tag::{self, Tag, TagEncoding};

/// Opcodes of the client ↔ server UDP protocol.
pub mod op {
    pub const GLOBSEARCHREQ3: u8 = 0x90;
    pub const GLOBSEARCHREQ2: u8 = 0x92;
    pub const GLOBGETSOURCES2: u8 = 0x94;
    pub const GLOBSERVSTATREQ: u8 = 0x96;
    pub const GLOBSERVSTATRES: u8 = 0x97;
    pub const GLOBSEARCHREQ: u8 = 0x98;
    pub const GLOBSEARCHRES: u8 = 0x99;
    pub const GLOBGETSOURCES: u8 = 0x9A;
    pub const GLOBFOUNDSOURCES: u8 = 0x9B;
    pub const GLOBCALLBACKREQ: u8 = 0x9C;
    pub const INVALID_LOWID: u8 = 0x9E;
    pub const SERVER_LIST_REQ: u8 = 0xA0;
    pub const SERVER_LIST_RES: u8 = 0xA1;
    pub const SERVER_DESC_REQ: u8 = 0xA2;
    pub const SERVER_DESC_RES: u8 = 0xA3;
    pub const SERVER_LIST_REQ2: u8 = 0xA4;
}

/// Server UDP flags (`SRV_UDPFLG_*`).
pub mod udp_flags {
    pub const EXT_GETSOURCES: u32 = 0x001;
    pub const EXT_GETFILES: u32 = 0x002;
    pub const NEWTAGS: u32 = 0x008;
    pub const UNICODE: u32 = 0x010;
    pub const EXT_GETSOURCES2: u32 = 0x020;
    pub const LARGEFILES: u32 = 0x100;
    pub const UDPOBFUSCATION: u32 = 0x200;
    pub const TCPOBFUSCATION: u32 = 0x400;
}

/// Low 16 bits of a new-style `OP_SERVER_DESC_REQ` challenge, and the first `u16` of the new
/// `OP_SERVER_DESC_RES` (`INV_SERV_DESC_LEN`).
pub const DESC_CHALLENGE_MARK: u16 = 0xF0FF;

/// `OP_GLOBSERVSTATRES`; each optional group needs the ones before it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServerStats {
    pub challenge: u32,
    pub users: u32,
    pub files: u32,
    pub max_users: Option<u32>,
    /// `(soft, hard)` file limits.
    pub file_limits: Option<(u32, u32)>,
    /// `SRV_UDPFLG_*`, see [`udp_flags`].
    pub udp_flags: Option<u32>,
    pub low_id_users: Option<u32>,
    /// `(UDP obfuscation port, TCP obfuscation port, UDP key)`.
    pub obfuscation: Option<(u16, u16, u32)>,
}

impl ServerStats {
    /// Each optional group is read only if the bytes for it are there.
    fn decode(buf: &mut impl Buf) -> Result<Self> {
        let challenge = get_u32(buf, "server status")?;
        let users = get_u32(buf, "server status")?;
        let files = get_u32(buf, "server status")?;
        let max_users = opt_u32(buf);
        let file_limits = (buf.remaining() >= 8).then(|| (buf.get_u32_le(), buf.get_u32_le()));
        let udp_flags = opt_u32(buf);
        let low_id_users = opt_u32(buf);
        let obfuscation =
            (buf.remaining() >= 8).then(|| (buf.get_u16_le(), buf.get_u16_le(), buf.get_u32_le()));
        Ok(Self {
            challenge,
            users,
            files,
            max_users,
            file_limits,
            udp_flags,
            low_id_users,
            obfuscation,
        })
    }

    /// Writes up to the last present group, zero-filling missing earlier ones.
    fn encode(&self, dst: &mut impl BufMut) {
        dst.put_u32_le(self.challenge);
        dst.put_u32_le(self.users);
        dst.put_u32_le(self.files);
        let last = [
            self.max_users.is_some(),
            self.file_limits.is_some(),
            self.udp_flags.is_some(),
            self.low_id_users.is_some(),
            self.obfuscation.is_some(),
        ]
        .iter()
        .rposition(|p| *p)
        .map_or(0, |i| i + 1);
        if last >= 1 {
            dst.put_u32_le(self.max_users.unwrap_or(0));
        }
        if last >= 2 {
            let (soft, hard) = self.file_limits.unwrap_or_default();
            dst.put_u32_le(soft);
            dst.put_u32_le(hard);
        }
        if last >= 3 {
            dst.put_u32_le(self.udp_flags.unwrap_or(0));
        }
        if last >= 4 {
            dst.put_u32_le(self.low_id_users.unwrap_or(0));
        }
        if let Some((u, t, k)) = self.obfuscation {
            dst.put_u16_le(u);
            dst.put_u16_le(t);
            dst.put_u32_le(k);
        }
    }
}

/// `OP_SERVER_DESC_RES`.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerDescription {
    Old {
        name: WireString,
        description: WireString,
    },
    /// `challenge & 0xFFFF` is [`DESC_CHALLENGE_MARK`].
    New { challenge: u32, tags: Vec<Tag> },
}

/// A client ↔ server UDP message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerUdpMessage {
    GlobSearchReq3 {
        tags: Vec<Tag>,
        expr: SearchExpr,
    },
    GlobSearchReq2(SearchExpr),
    GlobSearchReq(SearchExpr),
    /// One or more results; on the wire each further result is prefixed by `E3 99`.
    GlobSearchRes(Vec<FileEntry>),
    GlobGetSources(Vec<Hash16>),
    GlobGetSources2(Vec<SourceRequest>),
    /// One or more answers; on the wire each further answer is prefixed by `E3 9B`.
    GlobFoundSources(Vec<(Hash16, Vec<Source>)>),
    GlobServStatReq {
        challenge: u32,
    },
    GlobServStatRes(ServerStats),
    GlobCallbackReq {
        addr: SocketAddrV4,
        client_id: ClientId,
    },
    InvalidLowId(ClientId),
    ServerListReq(SocketAddrV4),
    ServerListRes(Vec<SocketAddrV4>),
    /// `None` = old empty form.
    ServerDescReq(Option<u32>),
    ServerDescRes(ServerDescription),
    ServerListReq2,
}

fn get_addr(buf: &mut impl Buf) -> Result<SocketAddrV4> {
    let ip = get_ipv4(buf, "address")?;
    Ok(SocketAddrV4::new(ip, get_u16(buf, "address")?))
}
fn put_addr(dst: &mut impl BufMut, a: &SocketAddrV4) {
    dst.put_slice(&a.ip().octets());
    dst.put_u16_le(a.port());
}

/// True (and consumes it) if the next two bytes are the `E3 <opcode>` repeat prefix.
fn next_record(buf: &mut Bytes, opcode: u8) -> bool {
    if buf.get(..2) == Some(&[UdpProtocol::Edonkey.to_byte(), opcode][..]) {
        buf.advance(2);
        true
    } else {
        false
    }
}

fn opt_u32(buf: &mut impl Buf) -> Option<u32> {
    (buf.remaining() >= 4).then(|| buf.get_u32_le())
}

impl ServerUdpMessage {
    pub fn decode(opcode: u8, mut payload: Bytes) -> Result<Self> {
        let buf = &mut payload;
        Ok(match opcode {
            op::GLOBSEARCHREQ3 => Self::GlobSearchReq3 {
                tags: tag::decode_list(buf)?,
                expr: SearchExpr::decode(buf)?,
            },
            op::GLOBSEARCHREQ2 => Self::GlobSearchReq2(SearchExpr::decode(buf)?),
            op::GLOBSEARCHREQ => Self::GlobSearchReq(SearchExpr::decode(buf)?),
            op::GLOBSEARCHRES => {
                let mut v = Vec::with_capacity(buf.remaining() / MIN_FILE_ENTRY_LEN);
                loop {
                    v.push(FileEntry::decode(buf)?);
                    if !next_record(buf, op::GLOBSEARCHRES) {
                        break;
                    }
                }
                Self::GlobSearchRes(v)
            }
            op::GLOBGETSOURCES => {
                let mut v = Vec::with_capacity(buf.remaining() / 16);
                while buf.has_remaining() {
                    v.push(get_hash(buf, "source request")?);
                }
                Self::GlobGetSources(v)
            }
            op::GLOBGETSOURCES2 => {
                let mut v = Vec::with_capacity(buf.remaining() / 20);
                while buf.has_remaining() {
                    let hash = get_hash(buf, "source request")?;
                    let small = get_u32(buf, "source request")?;
                    let size = if small == 0 {
                        get_u64(buf, "source request")?
                    } else {
                        small.into()
                    };
                    v.push(SourceRequest { hash, size });
                }
                Self::GlobGetSources2(v)
            }
            op::GLOBFOUNDSOURCES => {
                let mut v = Vec::with_capacity(buf.remaining() / 17);
                loop {
                    let hash = get_hash(buf, "found sources")?;
                    v.push((hash, get_sources(buf)?));
                    if !next_record(buf, op::GLOBFOUNDSOURCES) {
                        break;
                    }
                }
                Self::GlobFoundSources(v)
            }
            op::GLOBSERVSTATREQ => Self::GlobServStatReq {
                challenge: get_u32(buf, "server status request")?,
            },
            op::GLOBSERVSTATRES => Self::GlobServStatRes(ServerStats::decode(buf)?),
            op::GLOBCALLBACKREQ => Self::GlobCallbackReq {
                addr: get_addr(buf)?,
                client_id: ClientId(get_u32(buf, "callback request")?),
            },
            op::INVALID_LOWID => Self::InvalidLowId(ClientId(get_u32(buf, "invalid LowID")?)),
            op::SERVER_LIST_REQ => Self::ServerListReq(get_addr(buf)?),
            op::SERVER_LIST_RES => {
                let count = get_u8(buf, "server list")?;
                let n = check_count(count.into(), 6, buf.remaining(), "server list entry")?;
                Self::ServerListRes((0..n).map(|_| get_addr(buf)).collect::<Result<_>>()?)
            }
            op::SERVER_DESC_REQ => Self::ServerDescReq(opt_u32(buf)),
            op::SERVER_DESC_RES => {
                let new = buf.get(..2) == Some(&DESC_CHALLENGE_MARK.to_le_bytes()[..]);
                Self::ServerDescRes(if new {
                    ServerDescription::New {
                        challenge: get_u32(buf, "server description")?,
                        tags: tag::decode_list(buf)?,
                    }
                } else {
                    ServerDescription::Old {
                        name: get_string16(buf, "server description")?,
                        description: get_string16(buf, "server description")?,
                    }
                })
            }
            op::SERVER_LIST_REQ2 => Self::ServerListReq2,
            other => {
                return Err(WireError::UnknownOpcode {
                    protocol: UdpProtocol::Edonkey.to_byte(),
                    opcode: other,
                });
            }
        })
    }

    /// Decodes an `0xE3` datagram.
    pub fn decode_packet(p: &UdpPacket) -> Result<Self> {
        if p.protocol != UdpProtocol::Edonkey {
            return Err(WireError::UnknownProtocol(p.protocol.to_byte()));
        }
        Self::decode(p.opcode, p.payload.clone())
    }

    pub fn opcode(&self) -> u8 {
        match self {
            Self::GlobSearchReq3 { .. } => op::GLOBSEARCHREQ3,
            Self::GlobSearchReq2(_) => op::GLOBSEARCHREQ2,
            Self::GlobSearchReq(_) => op::GLOBSEARCHREQ,
            Self::GlobSearchRes(_) => op::GLOBSEARCHRES,
            Self::GlobGetSources(_) => op::GLOBGETSOURCES,
            Self::GlobGetSources2(_) => op::GLOBGETSOURCES2,
            Self::GlobFoundSources(_) => op::GLOBFOUNDSOURCES,
            Self::GlobServStatReq { .. } => op::GLOBSERVSTATREQ,
            Self::GlobServStatRes(_) => op::GLOBSERVSTATRES,
            Self::GlobCallbackReq { .. } => op::GLOBCALLBACKREQ,
            Self::InvalidLowId(_) => op::INVALID_LOWID,
            Self::ServerListReq(_) => op::SERVER_LIST_REQ,
            Self::ServerListRes(_) => op::SERVER_LIST_RES,
            Self::ServerDescReq(_) => op::SERVER_DESC_REQ,
            Self::ServerDescRes(_) => op::SERVER_DESC_RES,
            Self::ServerListReq2 => op::SERVER_LIST_REQ2,
        }
    }

    /// Writes the payload (after the `E3 <opcode>` header). Lists that must not be empty on
    /// the wire (search results, found sources) are an error when empty.
    pub fn encode(&self, dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
        let repeat = |dst: &mut dyn BufMut, op: u8| {
            dst.put_u8(UdpProtocol::Edonkey.to_byte());
            dst.put_u8(op);
        };
        match self {
            Self::GlobSearchReq3 { tags, expr } => {
                tag::encode_list(tags, dst, enc)?;
                expr.encode(dst)?;
            }
            Self::GlobSearchReq2(e) | Self::GlobSearchReq(e) => e.encode(dst)?,
            Self::GlobSearchRes(files) => {
                if files.is_empty() {
                    return Err(WireError::InvalidValue {
                        what: "empty UDP search result",
                        value: 0,
                    });
                }
                for (i, f) in files.iter().enumerate() {
                    if i > 0 {
                        repeat(dst, op::GLOBSEARCHRES);
                    }
                    f.encode(dst, enc)?;
                }
            }
            Self::GlobGetSources(hashes) => hashes.iter().for_each(|h| dst.put_slice(h)),
            Self::GlobGetSources2(reqs) => {
                for r in reqs {
                    dst.put_slice(&r.hash);
                    match u32::try_from(r.size) {
                        Ok(small) if small != 0 => dst.put_u32_le(small),
                        _ => {
                            dst.put_u32_le(0);
                            dst.put_u64_le(r.size);
                        }
                    }
                }
            }
            Self::GlobFoundSources(answers) => {
                if answers.is_empty() {
                    return Err(WireError::InvalidValue {
                        what: "empty UDP found-sources answer",
                        value: 0,
                    });
                }
                for (i, (hash, sources)) in answers.iter().enumerate() {
                    if i > 0 {
                        repeat(dst, op::GLOBFOUNDSOURCES);
                    }
                    dst.put_slice(hash);
                    let n: u8 = count_as(sources.len(), "source list", 255)?;
                    dst.put_u8(n);
                    for s in sources {
                        dst.put_u32_le(s.client_id.0);
                        dst.put_u16_le(s.port);
                    }
                }
            }
            Self::GlobServStatReq { challenge } => dst.put_u32_le(*challenge),
            Self::GlobServStatRes(s) => s.encode(dst),
            Self::GlobCallbackReq { addr, client_id } => {
                put_addr(dst, addr);
                dst.put_u32_le(client_id.0);
            }
            Self::InvalidLowId(id) => dst.put_u32_le(id.0),
            Self::ServerListReq(a) => put_addr(dst, a),
            Self::ServerListRes(list) => {
                let n: u8 = count_as(list.len(), "server list", 255)?;
                dst.put_u8(n);
                list.iter().for_each(|a| put_addr(dst, a));
            }
            Self::ServerDescReq(c) => {
                if let Some(c) = c {
                    dst.put_u32_le(*c);
                }
            }
            Self::ServerDescRes(ServerDescription::New { challenge, tags }) => {
                dst.put_u32_le(*challenge);
                tag::encode_list(tags, dst, enc)?;
            }
            Self::ServerDescRes(ServerDescription::Old { name, description }) => {
                put_string16(dst, name.as_bytes(), "server name")?;
                put_string16(dst, description.as_bytes(), "server description")?;
            }
            Self::ServerListReq2 => {}
        }
        Ok(())
    }

    /// Encodes into an `0xE3` datagram.
    pub fn to_packet(&self, enc: TagEncoding) -> Result<UdpPacket> {
        let mut b = BytesMut::new();
        self.encode(&mut b, enc)?;
        Ok(UdpPacket::new(
            UdpProtocol::Edonkey,
            self.opcode(),
            b.freeze(),
        ))
    }
}
