//! Decoding a client ↔ client frame into a [`PeerMessage`].

use bytes::{Buf, Bytes};

use super::{
    ByteRange, EmuleInfo, FileIdentifier, FileRequestExt, Hello, PartStatus, PeerMessage,
    SourceExchange, emule_op, op,
};
use crate::error::{Result, WireError};
use crate::wire::codec::{
    ClientId, Hash16, check_count, get_array, get_hash, get_ipv4, get_string16, get_string32,
    get_u8, get_u16, get_u32, get_u64, need,
};
use crate::wire::frame::{Frame, Protocol};
use crate::wire::hash::MAX_FILE_SIZE;
use crate::wire::server::decode_file_entries;
use crate::wire::tag;

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
            EMULEINFO => Self::EmuleInfo(emule_info(buf)?),
            EMULEINFOANSWER => Self::EmuleInfoAnswer(emule_info(buf)?),
            COMPRESSEDPART => compressed_part(false, payload)?,
            COMPRESSEDPART_I64 => compressed_part(true, payload)?,
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
            AICHANSWER => aich_answer(payload)?,
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

/// `OP_EMULEINFO` and its answer: versions, then a tag list.
fn emule_info(buf: &mut Bytes) -> Result<EmuleInfo> {
    Ok(EmuleInfo {
        client_version: get_u8(buf, "eMule info")?,
        protocol_version: get_u8(buf, "eMule info")?,
        tags: tag::decode_list(buf)?,
    })
}

/// `OP_COMPRESSEDPART` (32-bit start) or its `_I64` form: one chunk of a zlib-packed block,
/// the rest of the payload, which must fit in the announced packed total.
fn compressed_part(wide: bool, mut payload: Bytes) -> Result<PeerMessage> {
    let buf = &mut payload;
    let hash = get_hash(buf, "compressed part")?;
    let start = if wide {
        get_u64(buf, "compressed part")?
    } else {
        get_u32(buf, "compressed part")?.into()
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
    Ok(PeerMessage::CompressedPart {
        hash,
        start,
        packed_total,
        data: payload,
    })
}

/// `OP_AICHANSWER`: the part's recovery data, or only the file hash when the peer has none.
fn aich_answer(mut payload: Bytes) -> Result<PeerMessage> {
    let buf = &mut payload;
    let hash = get_hash(buf, "AICH answer")?;
    if !buf.has_remaining() {
        return Ok(PeerMessage::AichAnswerFailed(hash));
    }
    let part = get_u16(buf, "AICH answer")?;
    let master = get_array(buf, "AICH answer")?;
    Ok(PeerMessage::AichAnswer {
        hash,
        part,
        master,
        recovery: payload,
    })
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
