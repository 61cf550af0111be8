//! Client ↔ client TCP messages (protocols `0xE3` and `0xC5`; packed `0xD4` frames carry
//! `0xC5` opcodes).

mod decode;
pub mod emule_op;
mod encode;
mod file_request;
mod hello;
pub mod op;
mod parts;
mod source_exchange;

use std::net::Ipv4Addr;

use bytes::{Bytes, BytesMut};

use crate::error::Result;
use crate::wire::codec::{ClientId, Hash16, WireString};
use crate::wire::frame::{Frame, Protocol};
use crate::wire::server::FileEntry;
use crate::wire::tag::TagEncoding;

pub use file_request::{FileIdentifier, FileRequestExt};
pub use hello::{EmuleInfo, Hello, MLDONKEY_MAGIC};
pub use parts::{ByteRange, PartStatus, ed2k_part_count};
pub use source_exchange::{ExchangeSource, MAX_EXCHANGE_SOURCES, SourceExchange};

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

fn fits32(v: u64) -> bool {
    v <= u64::from(u32::MAX)
}

impl PeerMessage {
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

    /// Encodes into a frame with the right protocol byte.
    pub fn to_frame(&self, enc: TagEncoding) -> Result<Frame> {
        let mut b = BytesMut::new();
        self.encode(&mut b, enc)?;
        Ok(Frame::new(self.protocol(), self.opcode(), b.freeze()))
    }
}
