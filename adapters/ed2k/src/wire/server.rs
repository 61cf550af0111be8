//! Client ↔ server TCP messages (protocol `0xE3`).

use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Result, WireError};
use crate::wire::codec::{
    ClientId, Hash16, WireString, check_count, count_as, get_hash, get_ipv4, get_string16, get_u8,
    get_u16, get_u32, get_u64, put_string16,
};
use crate::wire::frame::{Frame, Protocol};
use crate::wire::search::SearchExpr;
use crate::wire::tag::{self, Tag, TagEncoding, TagsExt, ft};

/// Opcodes of the client ↔ server TCP protocol.
pub mod op {
    pub const LOGINREQUEST: u8 = 0x01;
    pub const REJECT: u8 = 0x05;
    pub const GETSERVERLIST: u8 = 0x14;
    pub const OFFERFILES: u8 = 0x15;
    pub const SEARCHREQUEST: u8 = 0x16;
    pub const DISCONNECT: u8 = 0x18;
    pub const GETSOURCES: u8 = 0x19;
    pub const SEARCH_USER: u8 = 0x1A;
    pub const CALLBACKREQUEST: u8 = 0x1C;
    pub const QUERY_MORE_RESULT: u8 = 0x21;
    pub const GETSOURCES_OBFU: u8 = 0x23;
    pub const SERVERLIST: u8 = 0x32;
    pub const SEARCHRESULT: u8 = 0x33;
    pub const SERVERSTATUS: u8 = 0x34;
    pub const CALLBACKREQUESTED: u8 = 0x35;
    pub const CALLBACK_FAIL: u8 = 0x36;
    pub const SERVERMESSAGE: u8 = 0x38;
    pub const IDCHANGE: u8 = 0x40;
    pub const SERVERIDENT: u8 = 0x41;
    pub const FOUNDSOURCES: u8 = 0x42;
    pub const USERS_LIST: u8 = 0x43;
    pub const FOUNDSOURCES_OBFU: u8 = 0x44;
}

/// Server TCP flags in `OP_IDCHANGE` (`SRV_TCPFLG_*`).
pub mod tcp_flags {
    pub const COMPRESSION: u32 = 0x001;
    pub const NEWTAGS: u32 = 0x008;
    pub const UNICODE: u32 = 0x010;
    pub const RELATEDSEARCH: u32 = 0x040;
    pub const TYPETAGINTEGER: u32 = 0x080;
    pub const LARGEFILES: u32 = 0x100;
    pub const TCPOBFUSCATION: u32 = 0x400;
}

/// Magic ID/port values in `OP_OFFERFILES` to servers with compression support.
pub mod offer_magic {
    pub const COMPLETE_ID: u32 = 0xFBFB_FBFB;
    pub const COMPLETE_PORT: u16 = 0xFBFB;
    pub const PARTIAL_ID: u32 = 0xFCFC_FCFC;
    pub const PARTIAL_PORT: u16 = 0xFCFC;
}

/// Crypt-option bit meaning "a 16-byte user hash follows" (sources, callbacks, links).
pub const CRYPT_USERHASH_FOLLOWS: u8 = 0x80;

/// A file record: `<hash 16><ID 4><port 2><tagcount 4><tags>` (offers, search results, shared
/// file lists).
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub hash: Hash16,
    pub client_id: ClientId,
    pub port: u16,
    pub tags: Vec<Tag>,
}

/// Smallest encoded [`FileEntry`]; bounds entry counts.
pub const MIN_FILE_ENTRY_LEN: usize = 16 + 4 + 2 + 4;

impl FileEntry {
    pub fn decode(buf: &mut impl Buf) -> Result<Self> {
        Ok(Self {
            hash: get_hash(buf, "file entry")?,
            client_id: ClientId(get_u32(buf, "file entry")?),
            port: get_u16(buf, "file entry")?,
            tags: tag::decode_list(buf)?,
        })
    }
    pub fn encode(&self, dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
        dst.put_slice(&self.hash);
        dst.put_u32_le(self.client_id.0);
        dst.put_u16_le(self.port);
        tag::encode_list(&self.tags, dst, enc)
    }
    /// `FT_FILENAME`.
    pub fn name(&self) -> Option<&WireString> {
        self.tags.string_of(ft::FILENAME)
    }
    /// `FT_FILESIZE` (+ `FT_FILESIZE_HI`).
    pub fn size(&self) -> Option<u64> {
        self.tags.file_size()
    }
}

/// `u32 count` + file entries.
pub fn decode_file_entries(buf: &mut impl Buf) -> Result<Vec<FileEntry>> {
    let count = get_u32(buf, "file count")?;
    let n = check_count(
        count.into(),
        MIN_FILE_ENTRY_LEN,
        buf.remaining(),
        "file entry",
    )?;
    (0..n).map(|_| FileEntry::decode(buf)).collect()
}

/// `u32 count` + file entries.
pub fn encode_file_entries(
    files: &[FileEntry],
    dst: &mut impl BufMut,
    enc: TagEncoding,
) -> Result<()> {
    let n: u32 = count_as(files.len(), "file list", u32::MAX as usize)?;
    dst.put_u32_le(n);
    files.iter().try_for_each(|f| f.encode(dst, enc))
}

/// `OP_LOGINREQUEST`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginRequest {
    pub user_hash: Hash16,
    pub client_id: ClientId,
    pub port: u16,
    /// `CT_NAME`, `CT_VERSION`, `CT_SERVER_FLAGS`, `CT_EMULE_VERSION` — send them classic.
    pub tags: Vec<Tag>,
}

/// `OP_IDCHANGE`; each optional field needs the ones before it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdChange {
    /// 0 = login rejected; HighID iff ≥ 16777216.
    pub client_id: ClientId,
    /// `SRV_TCPFLG_*`, see [`tcp_flags`].
    pub tcp_flags: Option<u32>,
    pub aux_port: Option<u32>,
    /// The IP the server sees for us and the server's obfuscation TCP port.
    pub reported: Option<(Ipv4Addr, u32)>,
}

/// One source request of `OP_GETSOURCES`: small files `<hash><size u32>`, large files (and size
/// 0) `<hash><0 u32><size u64>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRequest {
    pub hash: Hash16,
    pub size: u64,
}

/// A source in `OP_FOUNDSOURCES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub client_id: ClientId,
    pub port: u16,
}

/// A source in `OP_FOUNDSOURCES_OBFU`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObfuSource {
    pub client_id: ClientId,
    pub port: u16,
    /// bit0 supports, bit1 requests, bit2 requires crypt; 0x80 = user hash present.
    pub crypt_options: u8,
    /// Present iff `crypt_options & 0x80`.
    pub user_hash: Option<Hash16>,
}

/// Search results (`OP_SEARCHRESULT`, `OP_USERS_LIST`).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    pub files: Vec<FileEntry>,
    /// Trailing byte if present: `true` = more results via `OP_QUERY_MORE_RESULT`.
    pub more: Option<bool>,
}

/// A client ↔ server TCP message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerMessage {
    LoginRequest(LoginRequest),
    Reject,
    GetServerList,
    OfferFiles(Vec<FileEntry>),
    SearchRequest(SearchExpr),
    Disconnect,
    /// One or more concatenated requests.
    GetSources(Vec<SourceRequest>),
    SearchUser(SearchExpr),
    CallbackRequest {
        low_id: ClientId,
    },
    QueryMoreResult,
    GetSourcesObfu(Vec<SourceRequest>),
    ServerList(Vec<SocketAddrV4>),
    SearchResult(SearchResults),
    ServerStatus {
        users: u32,
        files: u32,
    },
    CallbackRequested {
        addr: SocketAddrV4,
        /// `(cryptopts, userhash)` from newer servers.
        crypt: Option<(u8, Hash16)>,
    },
    CallbackFailed,
    /// Text lines separated by `\r\n`.
    Message(WireString),
    IdChange(IdChange),
    ServerIdent {
        hash: Hash16,
        addr: SocketAddrV4,
        tags: Vec<Tag>,
    },
    FoundSources {
        hash: Hash16,
        sources: Vec<Source>,
    },
    UsersList(SearchResults),
    FoundSourcesObfu {
        hash: Hash16,
        sources: Vec<ObfuSource>,
    },
}

fn get_addr(buf: &mut impl Buf, what: &'static str) -> Result<SocketAddrV4> {
    let ip = get_ipv4(buf, what)?;
    Ok(SocketAddrV4::new(ip, get_u16(buf, what)?))
}
fn put_addr(dst: &mut impl BufMut, a: &SocketAddrV4) {
    dst.put_slice(&a.ip().octets());
    dst.put_u16_le(a.port());
}

fn get_source_requests(buf: &mut impl Buf) -> Result<Vec<SourceRequest>> {
    // Each request takes at least 20 bytes, which bounds the capacity.
    let mut out = Vec::with_capacity(buf.remaining() / 20);
    while buf.has_remaining() {
        let hash = get_hash(buf, "source request")?;
        let small = get_u32(buf, "source request")?;
        let size = if small == 0 {
            get_u64(buf, "large-file source request")?
        } else {
            small.into()
        };
        out.push(SourceRequest { hash, size });
    }
    Ok(out)
}
fn put_source_requests(dst: &mut impl BufMut, reqs: &[SourceRequest]) {
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

fn get_results(buf: &mut impl Buf) -> Result<SearchResults> {
    let files = decode_file_entries(buf)?;
    let more = if buf.has_remaining() {
        Some(buf.get_u8() != 0)
    } else {
        None
    };
    Ok(SearchResults { files, more })
}
fn put_results(dst: &mut impl BufMut, r: &SearchResults, enc: TagEncoding) -> Result<()> {
    encode_file_entries(&r.files, dst, enc)?;
    if let Some(more) = r.more {
        dst.put_u8(u8::from(more));
    }
    Ok(())
}

/// `OP_IDCHANGE` after its client ID: each later field only if the bytes for it are there.
fn get_id_change(buf: &mut impl Buf) -> Result<IdChange> {
    let client_id = ClientId(get_u32(buf, "ID change")?);
    let tcp_flags = (buf.remaining() >= 4).then(|| buf.get_u32_le());
    let aux_port = (buf.remaining() >= 4).then(|| buf.get_u32_le());
    let reported = (buf.remaining() >= 8).then(|| {
        let ip = Ipv4Addr::from(buf.get_u32_le().to_le_bytes());
        (ip, buf.get_u32_le())
    });
    Ok(IdChange {
        client_id,
        tcp_flags,
        aux_port,
        reported,
    })
}

/// A found-sources list after the file hash: `<count u8>`, then `<ID u32><port u16>` per
/// source (`OP_FOUNDSOURCES` over TCP, each record of `OP_GLOBFOUNDSOURCES` over UDP).
pub(crate) fn get_sources(buf: &mut impl Buf) -> Result<Vec<Source>> {
    let count = get_u8(buf, "found sources")?;
    let n = check_count(count.into(), 6, buf.remaining(), "source")?;
    (0..n)
        .map(|_| {
            Ok(Source {
                client_id: ClientId(get_u32(buf, "source")?),
                port: get_u16(buf, "source")?,
            })
        })
        .collect()
}

/// `OP_FOUNDSOURCES_OBFU`'s list: each source also has its crypt options, then its user hash
/// when they say one follows.
fn get_obfu_sources(buf: &mut impl Buf) -> Result<Vec<ObfuSource>> {
    let count = get_u8(buf, "found sources")?;
    let n = check_count(count.into(), 7, buf.remaining(), "source")?;
    (0..n)
        .map(|_| {
            let client_id = ClientId(get_u32(buf, "source")?);
            let port = get_u16(buf, "source")?;
            let crypt_options = get_u8(buf, "source")?;
            let user_hash = if crypt_options & CRYPT_USERHASH_FOLLOWS != 0 {
                Some(get_hash(buf, "source user hash")?)
            } else {
                None
            };
            Ok(ObfuSource {
                client_id,
                port,
                crypt_options,
                user_hash,
            })
        })
        .collect()
}

impl ServerMessage {
    /// Decodes the payload of a server-link frame with `opcode`.
    pub fn decode(opcode: u8, mut payload: Bytes) -> Result<Self> {
        let buf = &mut payload;
        Ok(match opcode {
            op::LOGINREQUEST => Self::LoginRequest(LoginRequest {
                user_hash: get_hash(buf, "login request")?,
                client_id: ClientId(get_u32(buf, "login request")?),
                port: get_u16(buf, "login request")?,
                tags: tag::decode_list(buf)?,
            }),
            op::REJECT => Self::Reject,
            op::GETSERVERLIST => Self::GetServerList,
            op::OFFERFILES => Self::OfferFiles(decode_file_entries(buf)?),
            op::SEARCHREQUEST => Self::SearchRequest(SearchExpr::decode(buf)?),
            op::DISCONNECT => Self::Disconnect,
            op::GETSOURCES => Self::GetSources(get_source_requests(buf)?),
            op::SEARCH_USER => Self::SearchUser(SearchExpr::decode(buf)?),
            op::CALLBACKREQUEST => Self::CallbackRequest {
                low_id: ClientId(get_u32(buf, "callback request")?),
            },
            op::QUERY_MORE_RESULT => Self::QueryMoreResult,
            op::GETSOURCES_OBFU => Self::GetSourcesObfu(get_source_requests(buf)?),
            op::SERVERLIST => {
                let count = get_u8(buf, "server list")?;
                let n = check_count(count.into(), 6, buf.remaining(), "server list entry")?;
                let list = (0..n)
                    .map(|_| get_addr(buf, "server list"))
                    .collect::<Result<_>>()?;
                Self::ServerList(list)
            }
            op::SEARCHRESULT => Self::SearchResult(get_results(buf)?),
            op::SERVERSTATUS => Self::ServerStatus {
                users: get_u32(buf, "server status")?,
                files: get_u32(buf, "server status")?,
            },
            op::CALLBACKREQUESTED => {
                let addr = get_addr(buf, "callback requested")?;
                let crypt = if buf.remaining() >= 17 {
                    Some((buf.get_u8(), get_hash(buf, "callback requested")?))
                } else {
                    None
                };
                Self::CallbackRequested { addr, crypt }
            }
            op::CALLBACK_FAIL => Self::CallbackFailed,
            op::SERVERMESSAGE => Self::Message(get_string16(buf, "server message")?),
            op::IDCHANGE => Self::IdChange(get_id_change(buf)?),
            op::SERVERIDENT => Self::ServerIdent {
                hash: get_hash(buf, "server ident")?,
                addr: get_addr(buf, "server ident")?,
                tags: tag::decode_list(buf)?,
            },
            op::FOUNDSOURCES => Self::FoundSources {
                hash: get_hash(buf, "found sources")?,
                sources: get_sources(buf)?,
            },
            op::USERS_LIST => Self::UsersList(get_results(buf)?),
            op::FOUNDSOURCES_OBFU => Self::FoundSourcesObfu {
                hash: get_hash(buf, "found sources")?,
                sources: get_obfu_sources(buf)?,
            },
            other => {
                return Err(WireError::UnknownOpcode {
                    protocol: Protocol::EDONKEY,
                    opcode: other,
                });
            }
        })
    }

    /// Decodes a frame received on a server link (packed frames count as `0xE3`).
    pub fn decode_frame(frame: &Frame) -> Result<Self> {
        if frame.protocol == Protocol::Emule {
            return Err(WireError::UnknownOpcode {
                protocol: Protocol::EMULE,
                opcode: frame.opcode,
            });
        }
        Self::decode(frame.opcode, frame.payload.clone())
    }

    /// The opcode of this message.
    pub fn opcode(&self) -> u8 {
        match self {
            Self::LoginRequest(_) => op::LOGINREQUEST,
            Self::Reject => op::REJECT,
            Self::GetServerList => op::GETSERVERLIST,
            Self::OfferFiles(_) => op::OFFERFILES,
            Self::SearchRequest(_) => op::SEARCHREQUEST,
            Self::Disconnect => op::DISCONNECT,
            Self::GetSources(_) => op::GETSOURCES,
            Self::SearchUser(_) => op::SEARCH_USER,
            Self::CallbackRequest { .. } => op::CALLBACKREQUEST,
            Self::QueryMoreResult => op::QUERY_MORE_RESULT,
            Self::GetSourcesObfu(_) => op::GETSOURCES_OBFU,
            Self::ServerList(_) => op::SERVERLIST,
            Self::SearchResult(_) => op::SEARCHRESULT,
            Self::ServerStatus { .. } => op::SERVERSTATUS,
            Self::CallbackRequested { .. } => op::CALLBACKREQUESTED,
            Self::CallbackFailed => op::CALLBACK_FAIL,
            Self::Message(_) => op::SERVERMESSAGE,
            Self::IdChange(_) => op::IDCHANGE,
            Self::ServerIdent { .. } => op::SERVERIDENT,
            Self::FoundSources { .. } => op::FOUNDSOURCES,
            Self::UsersList(_) => op::USERS_LIST,
            Self::FoundSourcesObfu { .. } => op::FOUNDSOURCES_OBFU,
        }
    }

    /// Writes the payload (without opcode). `enc` is used for tags in file entries and server
    /// ident; login tags are written as the caller chose.
    pub fn encode(&self, dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
        match self {
            Self::LoginRequest(l) => {
                dst.put_slice(&l.user_hash);
                dst.put_u32_le(l.client_id.0);
                dst.put_u16_le(l.port);
                tag::encode_list(&l.tags, dst, enc)?;
            }
            Self::Reject
            | Self::GetServerList
            | Self::Disconnect
            | Self::QueryMoreResult
            | Self::CallbackFailed => {}
            Self::OfferFiles(files) => encode_file_entries(files, dst, enc)?,
            Self::SearchRequest(e) | Self::SearchUser(e) => e.encode(dst)?,
            Self::GetSources(r) | Self::GetSourcesObfu(r) => put_source_requests(dst, r),
            Self::CallbackRequest { low_id } => dst.put_u32_le(low_id.0),
            Self::ServerList(list) => {
                let n: u8 = count_as(list.len(), "server list", 255)?;
                dst.put_u8(n);
                list.iter().for_each(|a| put_addr(dst, a));
            }
            Self::SearchResult(r) | Self::UsersList(r) => put_results(dst, r, enc)?,
            Self::ServerStatus { users, files } => {
                dst.put_u32_le(*users);
                dst.put_u32_le(*files);
            }
            Self::CallbackRequested { addr, crypt } => {
                put_addr(dst, addr);
                if let Some((opts, hash)) = crypt {
                    dst.put_u8(*opts);
                    dst.put_slice(hash);
                }
            }
            Self::Message(text) => put_string16(dst, text.as_bytes(), "server message")?,
            Self::IdChange(c) => {
                dst.put_u32_le(c.client_id.0);
                let need_flags =
                    c.tcp_flags.is_some() || c.aux_port.is_some() || c.reported.is_some();
                if need_flags {
                    dst.put_u32_le(c.tcp_flags.unwrap_or(0));
                }
                if c.aux_port.is_some() || c.reported.is_some() {
                    dst.put_u32_le(c.aux_port.unwrap_or(0));
                }
                if let Some((ip, port)) = c.reported {
                    dst.put_slice(&ip.octets());
                    dst.put_u32_le(port);
                }
            }
            Self::ServerIdent { hash, addr, tags } => {
                dst.put_slice(hash);
                put_addr(dst, addr);
                tag::encode_list(tags, dst, enc)?;
            }
            Self::FoundSources { hash, sources } => {
                dst.put_slice(hash);
                let n: u8 = count_as(sources.len(), "source list", 255)?;
                dst.put_u8(n);
                for s in sources {
                    dst.put_u32_le(s.client_id.0);
                    dst.put_u16_le(s.port);
                }
            }
            Self::FoundSourcesObfu { hash, sources } => {
                dst.put_slice(hash);
                let n: u8 = count_as(sources.len(), "source list", 255)?;
                dst.put_u8(n);
                for s in sources {
                    dst.put_u32_le(s.client_id.0);
                    dst.put_u16_le(s.port);
                    // The flag bit must agree with the presence of the hash.
                    match s.user_hash {
                        Some(h) => {
                            dst.put_u8(s.crypt_options | CRYPT_USERHASH_FOLLOWS);
                            dst.put_slice(&h);
                        }
                        None => dst.put_u8(s.crypt_options & !CRYPT_USERHASH_FOLLOWS),
                    }
                }
            }
        }
        Ok(())
    }

    /// Encodes into a `0xE3` frame.
    pub fn to_frame(&self, enc: TagEncoding) -> Result<Frame> {
        let mut b = BytesMut::new();
        self.encode(&mut b, enc)?;
        Ok(Frame::new(Protocol::Edonkey, self.opcode(), b.freeze()))
    }
}
