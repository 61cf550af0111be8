//! Client ↔ client TCP messages (protocols `0xE3` and `0xC5`; packed `0xD4` frames carry
//! `0xC5` opcodes).

use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Result, WireError};
use crate::hash::{MAX_FILE_SIZE, PART_SIZE};
use crate::wire::codec::{
    ClientId, Hash16, WireString, check_count, count_as, get_array, get_bytes, get_hash, get_ipv4,
    get_string16, get_string32, get_u8, get_u16, get_u32, get_u64, need, put_string16,
    put_string32,
};
use crate::wire::frame::{Frame, Protocol};
use crate::wire::server::{FileEntry, decode_file_entries, encode_file_entries};
use crate::wire::tag::{self, Tag, TagEncoding};

/// Opcodes of the classic client ↔ client protocol (`0xE3`).
pub mod op {
    pub const HELLO: u8 = 0x01;
    pub const SENDINGPART: u8 = 0x46;
    pub const REQUESTPARTS: u8 = 0x47;
    pub const FILEREQANSNOFIL: u8 = 0x48;
    pub const END_OF_DOWNLOAD: u8 = 0x49;
    pub const ASKSHAREDFILES: u8 = 0x4A;
    pub const ASKSHAREDFILESANSWER: u8 = 0x4B;
    pub const HELLOANSWER: u8 = 0x4C;
    pub const CHANGE_CLIENT_ID: u8 = 0x4D;
    pub const MESSAGE: u8 = 0x4E;
    pub const SETREQFILEID: u8 = 0x4F;
    pub const FILESTATUS: u8 = 0x50;
    pub const HASHSETREQUEST: u8 = 0x51;
    pub const HASHSETANSWER: u8 = 0x52;
    pub const STARTUPLOADREQ: u8 = 0x54;
    pub const ACCEPTUPLOADREQ: u8 = 0x55;
    pub const CANCELTRANSFER: u8 = 0x56;
    pub const OUTOFPARTREQS: u8 = 0x57;
    pub const REQUESTFILENAME: u8 = 0x58;
    pub const REQFILENAMEANSWER: u8 = 0x59;
    pub const CHANGE_SLOT: u8 = 0x5B;
    pub const QUEUERANK: u8 = 0x5C;
    pub const ASKSHAREDDIRS: u8 = 0x5D;
    pub const ASKSHAREDFILESDIR: u8 = 0x5E;
    pub const ASKSHAREDDIRSANS: u8 = 0x5F;
    pub const ASKSHAREDFILESDIRANS: u8 = 0x60;
    pub const ASKSHAREDDENIEDANS: u8 = 0x61;
}

/// Opcodes of the eMule extended protocol (`0xC5`).
pub mod emule_op {
    pub const EMULEINFO: u8 = 0x01;
    pub const EMULEINFOANSWER: u8 = 0x02;
    pub const COMPRESSEDPART: u8 = 0x40;
    pub const QUEUERANKING: u8 = 0x60;
    pub const FILEDESC: u8 = 0x61;
    pub const REQUESTSOURCES: u8 = 0x81;
    pub const ANSWERSOURCES: u8 = 0x82;
    pub const REQUESTSOURCES2: u8 = 0x83;
    pub const ANSWERSOURCES2: u8 = 0x84;
    pub const PUBLICKEY: u8 = 0x85;
    pub const SIGNATURE: u8 = 0x86;
    pub const SECIDENTSTATE: u8 = 0x87;
    pub const REQUESTPREVIEW: u8 = 0x90;
    pub const PREVIEWANSWER: u8 = 0x91;
    pub const MULTIPACKET: u8 = 0x92;
    pub const MULTIPACKETANSWER: u8 = 0x93;
    pub const PUBLICIP_REQ: u8 = 0x97;
    pub const PUBLICIP_ANSWER: u8 = 0x98;
    pub const CALLBACK: u8 = 0x99;
    pub const REASKCALLBACKTCP: u8 = 0x9A;
    pub const AICHREQUEST: u8 = 0x9B;
    pub const AICHANSWER: u8 = 0x9C;
    pub const AICHFILEHASHANS: u8 = 0x9D;
    pub const AICHFILEHASHREQ: u8 = 0x9E;
    pub const BUDDYPING: u8 = 0x9F;
    pub const BUDDYPONG: u8 = 0xA0;
    pub const COMPRESSEDPART_I64: u8 = 0xA1;
    pub const SENDINGPART_I64: u8 = 0xA2;
    pub const REQUESTPARTS_I64: u8 = 0xA3;
    pub const MULTIPACKET_EXT: u8 = 0xA4;
    pub const CHATCAPTCHAREQ: u8 = 0xA5;
    pub const CHATCAPTCHARES: u8 = 0xA6;
    pub const FWCHECKUDPREQ: u8 = 0xA7;
    pub const KAD_FWTCPCHECK_ACK: u8 = 0xA8;
    pub const MULTIPACKET_EXT2: u8 = 0xA9;
    pub const MULTIPACKETANSWER_EXT2: u8 = 0xB0;
    pub const HASHSETREQUEST2: u8 = 0xB1;
    pub const HASHSETANSWER2: u8 = 0xB2;
}

/// The LE `u32` MLdonkey appends to its hello (wire bytes `"MLDK"`).
pub const MLDONKEY_MAGIC: u32 = 0x4B44_4C4D;

/// Hard cap on `OP_ANSWERSOURCES2` entries (eMule sends at most 501).
pub const MAX_EXCHANGE_SOURCES: usize = 501;

/// `ed2kPartCount = size / PARTSIZE + 1`: the number of entries in a part-status bitfield,
/// one more than the data parts when the size is an exact multiple of `PARTSIZE`.
pub fn ed2k_part_count(size: u64) -> u64 {
    size / PART_SIZE + 1
}

/// A part-status bitfield (`OP_FILESTATUS`, extended file requests): part `i` is bit `i % 8`
/// (LSB first) of byte `i / 8`; set = complete. Unused bits of the last byte are always 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartStatus {
    count: u16,
    bits: Vec<u8>,
}

impl PartStatus {
    /// `count` parts, none complete. A count of 0 means "complete file" from an uploader and
    /// "no parts" from a downloader.
    pub fn new(count: u16) -> Self {
        Self {
            count,
            bits: vec![0; usize::from(count).div_ceil(8)],
        }
    }
    /// An all-empty status sized for a file of `size` bytes.
    pub fn for_file_size(size: u64) -> Result<Self> {
        let n = ed2k_part_count(size);
        let count = u16::try_from(n).map_err(|_| WireError::InvalidValue {
            what: "file size for a part status",
            value: size,
        })?;
        Ok(Self::new(count))
    }
    /// From one flag per part.
    pub fn from_bools(parts: &[bool]) -> Result<Self> {
        let count: u16 = count_as(parts.len(), "part status", usize::from(u16::MAX))?;
        let mut s = Self::new(count);
        for (i, &p) in parts.iter().enumerate() {
            s.set(i, p);
        }
        Ok(s)
    }
    /// Number of parts.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }
    /// True for the count-0 form.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Whether part `i` is complete (false when out of range).
    pub fn get(&self, i: usize) -> bool {
        i < self.len()
            && self
                .bits
                .get(i / 8)
                .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }
    /// Sets part `i`; ignored when out of range.
    pub fn set(&mut self, i: usize, complete: bool) {
        if i >= self.len() {
            return;
        }
        if let Some(b) = self.bits.get_mut(i / 8) {
            if complete {
                *b |= 1 << (i % 8);
            } else {
                *b &= !(1 << (i % 8));
            }
        }
    }
    /// Every part's flag in order.
    pub fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
    /// Number of complete parts.
    pub fn complete_count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }
    /// Checks the count against a file of `size` bytes (0 is accepted as the "whole file / no
    /// parts" form).
    pub fn check_for_size(&self, size: u64) -> Result<()> {
        let expected = ed2k_part_count(size);
        if self.count != 0 && u64::from(self.count) != expected {
            return Err(WireError::PartCountMismatch {
                got: self.count.into(),
                expected,
                size,
            });
        }
        Ok(())
    }
    pub fn decode(buf: &mut impl Buf) -> Result<Self> {
        let count = get_u16(buf, "part status")?;
        let mut bits = get_bytes(buf, usize::from(count).div_ceil(8), "part status")?.to_vec();
        // Normalise padding so equal statuses compare equal.
        let rem = count % 8;
        if rem != 0
            && let Some(last) = bits.last_mut()
        {
            *last &= (1u8 << rem) - 1;
        }
        Ok(Self { count, bits })
    }
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_u16_le(self.count);
        dst.put_slice(&self.bits);
    }
}

/// A byte range `start..end`, end exclusive (eMule writes `EndOffset + 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// A validated range: `start <= end <= MAX_FILE_SIZE`.
    pub fn new(start: u64, end: u64) -> Result<Self> {
        if start > end {
            return Err(WireError::InvalidRange { start, end });
        }
        if end > MAX_FILE_SIZE {
            return Err(WireError::InvalidValue {
                what: "offset beyond the 256 GiB maximum file size",
                value: end,
            });
        }
        Ok(Self { start, end })
    }
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    /// Unused `OP_REQUESTPARTS` slots are `0..0`.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// `OP_HELLO` / `OP_HELLOANSWER`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello {
    pub user_hash: Hash16,
    pub client_id: ClientId,
    pub port: u16,
    /// `CT_NAME`, `CT_VERSION`, `CT_EMULE_*` …
    pub tags: Vec<Tag>,
    /// The server the sender is logged into (`0.0.0.0:0` if none).
    pub server: SocketAddrV4,
    /// Extra trailing `u32`: [`MLDONKEY_MAGIC`] for MLdonkey, anything else eDonkeyHybrid.
    pub trailer: Option<u32>,
}

impl Hello {
    fn decode_body(buf: &mut Bytes) -> Result<Self> {
        let user_hash = get_hash(buf, "hello")?;
        let client_id = ClientId(get_u32(buf, "hello")?);
        let port = get_u16(buf, "hello")?;
        let tags = tag::decode_list(buf)?;
        let ip = get_ipv4(buf, "hello server address")?;
        let sport = get_u16(buf, "hello server address")?;
        let trailer = (buf.remaining() >= 4).then(|| buf.get_u32_le());
        Ok(Self {
            user_hash,
            client_id,
            port,
            tags,
            server: SocketAddrV4::new(ip, sport),
            trailer,
        })
    }
    fn encode_body(&self, dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
        dst.put_slice(&self.user_hash);
        dst.put_u32_le(self.client_id.0);
        dst.put_u16_le(self.port);
        tag::encode_list(&self.tags, dst, enc)?;
        dst.put_slice(&self.server.ip().octets());
        dst.put_u16_le(self.server.port());
        if let Some(t) = self.trailer {
            dst.put_u32_le(t);
        }
        Ok(())
    }
}

/// `OP_EMULEINFO` / `OP_EMULEINFOANSWER`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmuleInfo {
    pub client_version: u8,
    /// 0x01; aMule uses 0xFF for its OS-info variant.
    pub protocol_version: u8,
    /// `ET_*` tags.
    pub tags: Vec<Tag>,
}

/// Extended info after `OP_REQUESTFILENAME`'s hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequestExt {
    /// The requester's own part status (count 0 = has no parts).
    pub parts: PartStatus,
    /// Sent when the extended-request version is > 1.
    pub complete_sources: Option<u16>,
}

/// One source in a source-exchange answer; which fields are present depends on the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeSource {
    /// As on the wire: "hybrid" (normal eD2k) form for version ≥ 3, byte-swapped before.
    pub client_id: ClientId,
    pub port: u16,
    pub server: SocketAddrV4,
    /// Version ≥ 2.
    pub user_hash: Option<Hash16>,
    /// Version ≥ 4.
    pub crypt_options: Option<u8>,
}

impl ExchangeSource {
    /// The client ID in normal eD2k form whatever the exchange version.
    pub fn hybrid_id(&self, version: u8) -> ClientId {
        if version >= 3 {
            self.client_id
        } else {
            ClientId(self.client_id.0.swap_bytes())
        }
    }
}

fn exchange_entry_len(version: u8) -> usize {
    12 + if version >= 2 { 16 } else { 0 } + if version >= 4 { 1 } else { 0 }
}

/// Source-exchange answer body `<hash 16><count 2><sources>` for a given version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceExchange {
    pub version: u8,
    pub hash: Hash16,
    pub sources: Vec<ExchangeSource>,
}

impl SourceExchange {
    /// Decodes the body after the version byte (SX2) or the whole SX1 answer, given the version.
    pub fn decode_body(version: u8, buf: &mut impl Buf) -> Result<Self> {
        let hash = get_hash(buf, "source exchange")?;
        let count = get_u16(buf, "source exchange")?;
        let n = check_count(
            count.into(),
            exchange_entry_len(version),
            buf.remaining(),
            "exchanged source",
        )?;
        if n > MAX_EXCHANGE_SOURCES {
            return Err(WireError::CountTooLarge {
                what: "exchanged source",
                count: n as u64,
                max: MAX_EXCHANGE_SOURCES as u64,
            });
        }
        let mut sources = Vec::with_capacity(n);
        for _ in 0..n {
            let client_id = ClientId(get_u32(buf, "exchanged source")?);
            let port = get_u16(buf, "exchanged source")?;
            let sip = get_ipv4(buf, "exchanged source")?;
            let sport = get_u16(buf, "exchanged source")?;
            let user_hash = if version >= 2 {
                Some(get_hash(buf, "exchanged source")?)
            } else {
                None
            };
            let crypt_options = if version >= 4 {
                Some(get_u8(buf, "exchanged source")?)
            } else {
                None
            };
            sources.push(ExchangeSource {
                client_id,
                port,
                server: SocketAddrV4::new(sip, sport),
                user_hash,
                crypt_options,
            });
        }
        Ok(Self {
            version,
            hash,
            sources,
        })
    }
    /// Encodes the body (without the SX2 version byte); fields are written per `version`.
    pub fn encode_body(&self, dst: &mut impl BufMut) -> Result<()> {
        dst.put_slice(&self.hash);
        let n: u16 = count_as(
            self.sources.len(),
            "exchanged sources",
            MAX_EXCHANGE_SOURCES,
        )?;
        if usize::from(n) > MAX_EXCHANGE_SOURCES {
            return Err(WireError::TooLongToEncode {
                what: "exchanged sources",
                len: n.into(),
                max: MAX_EXCHANGE_SOURCES,
            });
        }
        dst.put_u16_le(n);
        for s in &self.sources {
            dst.put_u32_le(s.client_id.0);
            dst.put_u16_le(s.port);
            dst.put_slice(&s.server.ip().octets());
            dst.put_u16_le(s.server.port());
            if self.version >= 2 {
                dst.put_slice(&s.user_hash.unwrap_or_default());
            }
            if self.version >= 4 {
                dst.put_u8(s.crypt_options.unwrap_or_default());
            }
        }
        Ok(())
    }
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

/// A client ↔ client TCP message.
///
/// Data messages (`SendingPart`, `RequestParts`, `CompressedPart`) are written with 32-bit
/// offsets when every offset fits and with the `_I64` opcodes (protocol `0xC5`) otherwise,
/// which is what eMule does; both forms decode to the same variant.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PeerMessage {
    // ---- 0xE3 ----
    Hello(Hello),
    HelloAnswer(Hello),
    SendingPart {
        hash: Hash16,
        range: ByteRange,
        /// Exactly `range.len()` bytes.
        data: Bytes,
    },
    RequestParts {
        hash: Hash16,
        /// Three ranges; unused ones are `0..0`.
        ranges: [ByteRange; 3],
    },
    /// `OP_FILEREQANSNOFIL`.
    FileNotFound(Hash16),
    EndOfDownload(Hash16),
    AskSharedFiles,
    AskSharedFilesAnswer(Vec<FileEntry>),
    ChangeClientId {
        old: ClientId,
        new: ClientId,
    },
    /// Chat message.
    Message(WireString),
    SetReqFileId(Hash16),
    FileStatus {
        hash: Hash16,
        parts: PartStatus,
    },
    HashsetRequest(Hash16),
    HashsetAnswer {
        hash: Hash16,
        parts: Vec<Hash16>,
    },
    /// Hash is absent in very old clients.
    StartUploadRequest(Option<Hash16>),
    AcceptUploadRequest,
    CancelTransfer,
    OutOfPartRequests,
    RequestFilename {
        hash: Hash16,
        ext: Option<FileRequestExt>,
    },
    FilenameAnswer {
        hash: Hash16,
        name: WireString,
    },
    ChangeSlot(Hash16),
    QueueRank(u32),
    AskSharedDirs,
    AskSharedFilesDir(WireString),
    AskSharedDirsAnswer(Vec<WireString>),
    AskSharedFilesDirAnswer {
        dir: WireString,
        files: Vec<FileEntry>,
    },
    AskSharedDeniedAnswer,
    // ---- 0xC5 ----
    EmuleInfo(EmuleInfo),
    EmuleInfoAnswer(EmuleInfo),
    /// One chunk of a zlib-compressed block; every chunk of a block carries the same `start`
    /// (uncompressed block start) and `packed_total` (compressed size of the whole block).
    CompressedPart {
        hash: Hash16,
        start: u64,
        packed_total: u32,
        data: Bytes,
    },
    /// `<rank 2>` + 10 zero bytes.
    QueueRanking(u16),
    FileDesc {
        rating: u8,
        comment: WireString,
    },
    /// SX1 request.
    RequestSources(Hash16),
    /// SX1 answer: its layout depends on the negotiated SX version, so it is kept raw; use
    /// [`SourceExchange::decode_body`].
    AnswerSources(Bytes),
    RequestSources2 {
        version: u8,
        options: u16,
        hash: Hash16,
    },
    AnswerSources2(SourceExchange),
    PublicIpRequest,
    PublicIpAnswer(Ipv4Addr),
    /// Buddy callback: `<buddyID 16><fileID 16><IP 4><TCP port 2>` (the two IDs in Kad
    /// 128-bit order, raw here; the IP as the LE `u32` eMule sends).
    Callback {
        buddy_id: [u8; 16],
        file_id: [u8; 16],
        ip: u32,
        port: u16,
    },
    AichRequest {
        hash: Hash16,
        part: u16,
        master: [u8; 20],
    },
    /// `recovery` holds the sibling hashes with their position identifiers, undecoded.
    AichAnswer {
        hash: Hash16,
        part: u16,
        master: [u8; 20],
        recovery: Bytes,
    },
    /// An `OP_AICHANSWER` with only the file hash: the peer has no recovery data.
    AichAnswerFailed(Hash16),
    AichFileHashAnswer {
        hash: Hash16,
        aich: [u8; 20],
    },
    AichFileHashRequest(Hash16),
    HashsetRequest2 {
        file: FileIdentifier,
        /// bit0 MD4 hashset, bit1 AICH hashset.
        options: u8,
    },
    /// A defined opcode this layer does not model (secure ident, preview, multipacket,
    /// captcha, buddy ping, firewall check, hashset answer 2); payload kept verbatim.
    Unparsed {
        protocol: Protocol,
        opcode: u8,
        payload: Bytes,
    },
}

fn get_range32(buf: &mut Bytes) -> Result<[ByteRange; 3]> {
    let mut v = [0u64; 6];
    for x in &mut v {
        *x = get_u32(buf, "request parts")?.into();
    }
    Ok([
        ByteRange::new(v[0], v[3])?,
        ByteRange::new(v[1], v[4])?,
        ByteRange::new(v[2], v[5])?,
    ])
}
fn get_range64(buf: &mut Bytes) -> Result<[ByteRange; 3]> {
    let mut v = [0u64; 6];
    for x in &mut v {
        *x = get_u64(buf, "request parts")?;
    }
    Ok([
        ByteRange::new(v[0], v[3])?,
        ByteRange::new(v[1], v[4])?,
        ByteRange::new(v[2], v[5])?,
    ])
}

fn fits32(v: u64) -> bool {
    v <= u64::from(u32::MAX)
}

impl PeerMessage {
    /// Decodes a frame from a client connection (packed frames carry `0xC5` opcodes).
    pub fn decode_frame(frame: &Frame) -> Result<Self> {
        Self::decode(frame.protocol, frame.opcode, frame.payload.clone())
    }

    /// Decodes one message payload.
    pub fn decode(protocol: Protocol, opcode: u8, payload: Bytes) -> Result<Self> {
        match protocol {
            Protocol::Edonkey => Self::decode_edonkey(opcode, payload),
            Protocol::Emule | Protocol::Packed => Self::decode_emule(opcode, payload),
        }
    }

    fn decode_edonkey(opcode: u8, mut payload: Bytes) -> Result<Self> {
        let buf = &mut payload;
        Ok(match opcode {
            op::HELLO => {
                let hash_len = get_u8(buf, "hello")?;
                if hash_len != 16 {
                    return Err(WireError::InvalidValue {
                        what: "hello hash size",
                        value: hash_len.into(),
                    });
                }
                Self::Hello(Hello::decode_body(buf)?)
            }
            op::HELLOANSWER => Self::HelloAnswer(Hello::decode_body(buf)?),
            op::SENDINGPART => {
                let hash = get_hash(buf, "sending part")?;
                let start = get_u32(buf, "sending part")?.into();
                let end = get_u32(buf, "sending part")?.into();
                sending_part(hash, start, end, payload)?
            }
            op::REQUESTPARTS => {
                let hash = get_hash(buf, "request parts")?;
                Self::RequestParts {
                    hash,
                    ranges: get_range32(buf)?,
                }
            }
            op::FILEREQANSNOFIL => Self::FileNotFound(get_hash(buf, "file not found")?),
            op::END_OF_DOWNLOAD => Self::EndOfDownload(get_hash(buf, "end of download")?),
            op::ASKSHAREDFILES => Self::AskSharedFiles,
            op::ASKSHAREDFILESANSWER => Self::AskSharedFilesAnswer(decode_file_entries(buf)?),
            op::CHANGE_CLIENT_ID => Self::ChangeClientId {
                old: ClientId(get_u32(buf, "change client id")?),
                new: ClientId(get_u32(buf, "change client id")?),
            },
            op::MESSAGE => Self::Message(get_string16(buf, "chat message")?),
            op::SETREQFILEID => Self::SetReqFileId(get_hash(buf, "set requested file")?),
            op::FILESTATUS => Self::FileStatus {
                hash: get_hash(buf, "file status")?,
                parts: PartStatus::decode(buf)?,
            },
            op::HASHSETREQUEST => Self::HashsetRequest(get_hash(buf, "hashset request")?),
            op::HASHSETANSWER => {
                let hash = get_hash(buf, "hashset answer")?;
                let count = get_u16(buf, "hashset answer")?;
                let n = check_count(count.into(), 16, buf.remaining(), "part hash")?;
                let parts = (0..n)
                    .map(|_| get_hash(buf, "hashset answer"))
                    .collect::<Result<_>>()?;
                Self::HashsetAnswer { hash, parts }
            }
            op::STARTUPLOADREQ => Self::StartUploadRequest(if buf.has_remaining() {
                Some(get_hash(buf, "start upload request")?)
            } else {
                None
            }),
            op::ACCEPTUPLOADREQ => Self::AcceptUploadRequest,
            op::CANCELTRANSFER => Self::CancelTransfer,
            op::OUTOFPARTREQS => Self::OutOfPartRequests,
            op::REQUESTFILENAME => {
                let hash = get_hash(buf, "file request")?;
                let ext = if buf.remaining() >= 2 {
                    let parts = PartStatus::decode(buf)?;
                    let complete_sources = (buf.remaining() >= 2).then(|| buf.get_u16_le());
                    Some(FileRequestExt {
                        parts,
                        complete_sources,
                    })
                } else {
                    None
                };
                Self::RequestFilename { hash, ext }
            }
            op::REQFILENAMEANSWER => Self::FilenameAnswer {
                hash: get_hash(buf, "file name answer")?,
                name: get_string16(buf, "file name answer")?,
            },
            op::CHANGE_SLOT => Self::ChangeSlot(get_hash(buf, "change slot")?),
            op::QUEUERANK => Self::QueueRank(get_u32(buf, "queue rank")?),
            op::ASKSHAREDDIRS => Self::AskSharedDirs,
            op::ASKSHAREDFILESDIR => Self::AskSharedFilesDir(get_string16(buf, "shared dir")?),
            op::ASKSHAREDDIRSANS => {
                let count = get_u32(buf, "shared dirs")?;
                let n = check_count(count.into(), 2, buf.remaining(), "shared dir")?;
                let dirs = (0..n)
                    .map(|_| get_string16(buf, "shared dir"))
                    .collect::<Result<_>>()?;
                Self::AskSharedDirsAnswer(dirs)
            }
            op::ASKSHAREDFILESDIRANS => Self::AskSharedFilesDirAnswer {
                dir: get_string16(buf, "shared dir")?,
                files: decode_file_entries(buf)?,
            },
            op::ASKSHAREDDENIEDANS => Self::AskSharedDeniedAnswer,
            other => {
                return Err(WireError::UnknownOpcode {
                    protocol: Protocol::EDONKEY,
                    opcode: other,
                });
            }
        })
    }

    fn decode_emule(opcode: u8, mut payload: Bytes) -> Result<Self> {
        use emule_op::*;
        let buf = &mut payload;
        Ok(match opcode {
            EMULEINFO | EMULEINFOANSWER => {
                let info = EmuleInfo {
                    client_version: get_u8(buf, "eMule info")?,
                    protocol_version: get_u8(buf, "eMule info")?,
                    tags: tag::decode_list(buf)?,
                };
                if opcode == EMULEINFO {
                    Self::EmuleInfo(info)
                } else {
                    Self::EmuleInfoAnswer(info)
                }
            }
            COMPRESSEDPART | COMPRESSEDPART_I64 => {
                let hash = get_hash(buf, "compressed part")?;
                let start = if opcode == COMPRESSEDPART {
                    get_u32(buf, "compressed part")?.into()
                } else {
                    get_u64(buf, "compressed part")?
                };
                if start > MAX_FILE_SIZE {
                    return Err(WireError::InvalidValue {
                        what: "offset beyond the 256 GiB maximum file size",
                        value: start,
                    });
                }
                let packed_total = get_u32(buf, "compressed part")?;
                if (packed_total as usize) < buf.remaining() {
                    return Err(WireError::InvalidValue {
                        what: "compressed part total smaller than its chunk",
                        value: packed_total.into(),
                    });
                }
                Self::CompressedPart {
                    hash,
                    start,
                    packed_total,
                    data: payload,
                }
            }
            SENDINGPART_I64 => {
                let hash = get_hash(buf, "sending part")?;
                let start = get_u64(buf, "sending part")?;
                let end = get_u64(buf, "sending part")?;
                sending_part(hash, start, end, payload)?
            }
            REQUESTPARTS_I64 => {
                let hash = get_hash(buf, "request parts")?;
                Self::RequestParts {
                    hash,
                    ranges: get_range64(buf)?,
                }
            }
            QUEUERANKING => Self::QueueRanking(get_u16(buf, "queue ranking")?),
            FILEDESC => Self::FileDesc {
                rating: get_u8(buf, "file description")?,
                comment: get_string32(buf, "file description")?,
            },
            REQUESTSOURCES => Self::RequestSources(get_hash(buf, "request sources")?),
            ANSWERSOURCES => Self::AnswerSources(payload),
            REQUESTSOURCES2 => Self::RequestSources2 {
                version: get_u8(buf, "request sources")?,
                options: get_u16(buf, "request sources")?,
                hash: get_hash(buf, "request sources")?,
            },
            ANSWERSOURCES2 => {
                let version = get_u8(buf, "answer sources")?;
                Self::AnswerSources2(SourceExchange::decode_body(version, buf)?)
            }
            PUBLICIP_REQ => Self::PublicIpRequest,
            PUBLICIP_ANSWER => Self::PublicIpAnswer(get_ipv4(buf, "public IP answer")?),
            CALLBACK => Self::Callback {
                buddy_id: get_array(buf, "callback")?,
                file_id: get_array(buf, "callback")?,
                ip: get_u32(buf, "callback")?,
                port: get_u16(buf, "callback")?,
            },
            AICHREQUEST => Self::AichRequest {
                hash: get_hash(buf, "AICH request")?,
                part: get_u16(buf, "AICH request")?,
                master: get_array(buf, "AICH request")?,
            },
            AICHANSWER => {
                let hash = get_hash(buf, "AICH answer")?;
                if !buf.has_remaining() {
                    Self::AichAnswerFailed(hash)
                } else {
                    let part = get_u16(buf, "AICH answer")?;
                    let master = get_array(buf, "AICH answer")?;
                    Self::AichAnswer {
                        hash,
                        part,
                        master,
                        recovery: payload,
                    }
                }
            }
            AICHFILEHASHANS => Self::AichFileHashAnswer {
                hash: get_hash(buf, "AICH file hash")?,
                aich: get_array(buf, "AICH file hash")?,
            },
            AICHFILEHASHREQ => Self::AichFileHashRequest(get_hash(buf, "AICH file hash")?),
            HASHSETREQUEST2 => Self::HashsetRequest2 {
                file: FileIdentifier::decode(buf)?,
                options: get_u8(buf, "hashset request")?,
            },
            PUBLICKEY
            | SIGNATURE
            | SECIDENTSTATE
            | REQUESTPREVIEW
            | PREVIEWANSWER
            | MULTIPACKET
            | MULTIPACKETANSWER
            | REASKCALLBACKTCP
            | BUDDYPING
            | BUDDYPONG
            | MULTIPACKET_EXT
            | CHATCAPTCHAREQ
            | CHATCAPTCHARES
            | FWCHECKUDPREQ
            | KAD_FWTCPCHECK_ACK
            | MULTIPACKET_EXT2
            | MULTIPACKETANSWER_EXT2
            | HASHSETANSWER2 => Self::Unparsed {
                protocol: Protocol::Emule,
                opcode,
                payload,
            },
            other => {
                return Err(WireError::UnknownOpcode {
                    protocol: Protocol::EMULE,
                    opcode: other,
                });
            }
        })
    }

    /// The protocol byte this message is sent with (`0xC5` for the eMule set and the `_I64`
    /// data forms).
    pub fn protocol(&self) -> Protocol {
        self.wire_id().0
    }

    /// The opcode this message is sent with.
    pub fn opcode(&self) -> u8 {
        self.wire_id().1
    }

    fn wire_id(&self) -> (Protocol, u8) {
        use Protocol::{Edonkey as E, Emule as M};
        match self {
            Self::Hello(_) => (E, op::HELLO),
            Self::HelloAnswer(_) => (E, op::HELLOANSWER),
            Self::SendingPart { range, .. } if fits32(range.end) => (E, op::SENDINGPART),
            Self::SendingPart { .. } => (M, emule_op::SENDINGPART_I64),
            Self::RequestParts { ranges, .. } if ranges.iter().all(|r| fits32(r.end)) => {
                (E, op::REQUESTPARTS)
            }
            Self::RequestParts { .. } => (M, emule_op::REQUESTPARTS_I64),
            Self::FileNotFound(_) => (E, op::FILEREQANSNOFIL),
            Self::EndOfDownload(_) => (E, op::END_OF_DOWNLOAD),
            Self::AskSharedFiles => (E, op::ASKSHAREDFILES),
            Self::AskSharedFilesAnswer(_) => (E, op::ASKSHAREDFILESANSWER),
            Self::ChangeClientId { .. } => (E, op::CHANGE_CLIENT_ID),
            Self::Message(_) => (E, op::MESSAGE),
            Self::SetReqFileId(_) => (E, op::SETREQFILEID),
            Self::FileStatus { .. } => (E, op::FILESTATUS),
            Self::HashsetRequest(_) => (E, op::HASHSETREQUEST),
            Self::HashsetAnswer { .. } => (E, op::HASHSETANSWER),
            Self::StartUploadRequest(_) => (E, op::STARTUPLOADREQ),
            Self::AcceptUploadRequest => (E, op::ACCEPTUPLOADREQ),
            Self::CancelTransfer => (E, op::CANCELTRANSFER),
            Self::OutOfPartRequests => (E, op::OUTOFPARTREQS),
            Self::RequestFilename { .. } => (E, op::REQUESTFILENAME),
            Self::FilenameAnswer { .. } => (E, op::REQFILENAMEANSWER),
            Self::ChangeSlot(_) => (E, op::CHANGE_SLOT),
            Self::QueueRank(_) => (E, op::QUEUERANK),
            Self::AskSharedDirs => (E, op::ASKSHAREDDIRS),
            Self::AskSharedFilesDir(_) => (E, op::ASKSHAREDFILESDIR),
            Self::AskSharedDirsAnswer(_) => (E, op::ASKSHAREDDIRSANS),
            Self::AskSharedFilesDirAnswer { .. } => (E, op::ASKSHAREDFILESDIRANS),
            Self::AskSharedDeniedAnswer => (E, op::ASKSHAREDDENIEDANS),
            Self::EmuleInfo(_) => (M, emule_op::EMULEINFO),
            Self::EmuleInfoAnswer(_) => (M, emule_op::EMULEINFOANSWER),
            Self::CompressedPart { start, .. } if fits32(*start) => (M, emule_op::COMPRESSEDPART),
            Self::CompressedPart { .. } => (M, emule_op::COMPRESSEDPART_I64),
            Self::QueueRanking(_) => (M, emule_op::QUEUERANKING),
            Self::FileDesc { .. } => (M, emule_op::FILEDESC),
            Self::RequestSources(_) => (M, emule_op::REQUESTSOURCES),
            Self::AnswerSources(_) => (M, emule_op::ANSWERSOURCES),
            Self::RequestSources2 { .. } => (M, emule_op::REQUESTSOURCES2),
            Self::AnswerSources2(_) => (M, emule_op::ANSWERSOURCES2),
            Self::PublicIpRequest => (M, emule_op::PUBLICIP_REQ),
            Self::PublicIpAnswer(_) => (M, emule_op::PUBLICIP_ANSWER),
            Self::Callback { .. } => (M, emule_op::CALLBACK),
            Self::AichRequest { .. } => (M, emule_op::AICHREQUEST),
            Self::AichAnswer { .. } | Self::AichAnswerFailed(_) => (M, emule_op::AICHANSWER),
            Self::AichFileHashAnswer { .. } => (M, emule_op::AICHFILEHASHANS),
            Self::AichFileHashRequest(_) => (M, emule_op::AICHFILEHASHREQ),
            Self::HashsetRequest2 { .. } => (M, emule_op::HASHSETREQUEST2),
            Self::Unparsed {
                protocol, opcode, ..
            } => (*protocol, *opcode),
        }
    }

    /// Writes the payload (without opcode); `enc` is used for tag lists.
    pub fn encode(&self, dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
        let wide = self.protocol() == Protocol::Emule;
        match self {
            Self::Hello(h) => {
                dst.put_u8(16);
                h.encode_body(dst, enc)?;
            }
            Self::HelloAnswer(h) => h.encode_body(dst, enc)?,
            Self::SendingPart { hash, range, data } => {
                if data.len() as u64 != range.len() {
                    return Err(WireError::InvalidValue {
                        what: "sending-part data length (must equal the range)",
                        value: data.len() as u64,
                    });
                }
                dst.put_slice(hash);
                put_offsets(dst, wide, &[range.start, range.end]);
                dst.put_slice(data);
            }
            Self::RequestParts { hash, ranges } => {
                dst.put_slice(hash);
                let starts = ranges.map(|r| r.start);
                let ends = ranges.map(|r| r.end);
                put_offsets(dst, wide, &starts);
                put_offsets(dst, wide, &ends);
            }
            Self::FileNotFound(h)
            | Self::EndOfDownload(h)
            | Self::SetReqFileId(h)
            | Self::HashsetRequest(h)
            | Self::ChangeSlot(h)
            | Self::RequestSources(h)
            | Self::AichFileHashRequest(h)
            | Self::AichAnswerFailed(h) => dst.put_slice(h),
            Self::StartUploadRequest(h) => {
                if let Some(h) = h {
                    dst.put_slice(h);
                }
            }
            Self::AskSharedFiles
            | Self::AcceptUploadRequest
            | Self::CancelTransfer
            | Self::OutOfPartRequests
            | Self::AskSharedDirs
            | Self::AskSharedDeniedAnswer
            | Self::PublicIpRequest => {}
            Self::AskSharedFilesAnswer(files) => encode_file_entries(files, dst, enc)?,
            Self::ChangeClientId { old, new } => {
                dst.put_u32_le(old.0);
                dst.put_u32_le(new.0);
            }
            Self::Message(s) => put_string16(dst, s.as_bytes(), "chat message")?,
            Self::FileStatus { hash, parts } => {
                dst.put_slice(hash);
                parts.encode(dst);
            }
            Self::HashsetAnswer { hash, parts } => {
                dst.put_slice(hash);
                let n: u16 = count_as(parts.len(), "hashset", usize::from(u16::MAX))?;
                dst.put_u16_le(n);
                parts.iter().for_each(|p| dst.put_slice(p));
            }
            Self::RequestFilename { hash, ext } => {
                dst.put_slice(hash);
                if let Some(ext) = ext {
                    ext.parts.encode(dst);
                    if let Some(c) = ext.complete_sources {
                        dst.put_u16_le(c);
                    }
                }
            }
            Self::FilenameAnswer { hash, name } => {
                dst.put_slice(hash);
                put_string16(dst, name.as_bytes(), "file name")?;
            }
            Self::QueueRank(r) => dst.put_u32_le(*r),
            Self::AskSharedFilesDir(d) => put_string16(dst, d.as_bytes(), "shared dir")?,
            Self::AskSharedDirsAnswer(dirs) => {
                let n: u32 = count_as(dirs.len(), "shared dirs", u32::MAX as usize)?;
                dst.put_u32_le(n);
                for d in dirs {
                    put_string16(dst, d.as_bytes(), "shared dir")?;
                }
            }
            Self::AskSharedFilesDirAnswer { dir, files } => {
                put_string16(dst, dir.as_bytes(), "shared dir")?;
                encode_file_entries(files, dst, enc)?;
            }
            Self::EmuleInfo(i) | Self::EmuleInfoAnswer(i) => {
                dst.put_u8(i.client_version);
                dst.put_u8(i.protocol_version);
                tag::encode_list(&i.tags, dst, enc)?;
            }
            Self::CompressedPart {
                hash,
                start,
                packed_total,
                data,
            } => {
                dst.put_slice(hash);
                put_offsets(dst, !fits32(*start), &[*start]);
                dst.put_u32_le(*packed_total);
                dst.put_slice(data);
            }
            Self::QueueRanking(r) => {
                dst.put_u16_le(*r);
                dst.put_bytes(0, 10);
            }
            Self::FileDesc { rating, comment } => {
                dst.put_u8(*rating);
                put_string32(dst, comment.as_bytes(), "file comment")?;
            }
            Self::AnswerSources(raw) => dst.put_slice(raw),
            Self::RequestSources2 {
                version,
                options,
                hash,
            } => {
                dst.put_u8(*version);
                dst.put_u16_le(*options);
                dst.put_slice(hash);
            }
            Self::AnswerSources2(sx) => {
                dst.put_u8(sx.version);
                sx.encode_body(dst)?;
            }
            Self::PublicIpAnswer(ip) => dst.put_slice(&ip.octets()),
            Self::Callback {
                buddy_id,
                file_id,
                ip,
                port,
            } => {
                dst.put_slice(buddy_id);
                dst.put_slice(file_id);
                dst.put_u32_le(*ip);
                dst.put_u16_le(*port);
            }
            Self::AichRequest { hash, part, master } => {
                dst.put_slice(hash);
                dst.put_u16_le(*part);
                dst.put_slice(master);
            }
            Self::AichAnswer {
                hash,
                part,
                master,
                recovery,
            } => {
                dst.put_slice(hash);
                dst.put_u16_le(*part);
                dst.put_slice(master);
                dst.put_slice(recovery);
            }
            Self::AichFileHashAnswer { hash, aich } => {
                dst.put_slice(hash);
                dst.put_slice(aich);
            }
            Self::HashsetRequest2 { file, options } => {
                file.encode(dst);
                dst.put_u8(*options);
            }
            Self::Unparsed { payload, .. } => dst.put_slice(payload),
        }
        Ok(())
    }

    /// Encodes into a frame with the right protocol byte.
    pub fn to_frame(&self, enc: TagEncoding) -> Result<Frame> {
        let mut b = BytesMut::new();
        self.encode(&mut b, enc)?;
        Ok(Frame::new(self.protocol(), self.opcode(), b.freeze()))
    }
}

fn put_offsets(dst: &mut impl BufMut, wide: bool, v: &[u64]) {
    for &x in v {
        if wide {
            dst.put_u64_le(x);
        } else {
            // Callers only pick the narrow form when every value fits.
            dst.put_u32_le(x as u32);
        }
    }
}

fn sending_part(hash: Hash16, start: u64, end: u64, data: Bytes) -> Result<PeerMessage> {
    let range = ByteRange::new(start, end)?;
    if range.len() != data.len() as u64 {
        need(
            &data,
            usize::try_from(range.len()).unwrap_or(usize::MAX),
            "sending part data",
        )?;
        return Err(WireError::InvalidValue {
            what: "sending-part data longer than its range",
            value: data.len() as u64,
        });
    }
    Ok(PeerMessage::SendingPart { hash, range, data })
}
