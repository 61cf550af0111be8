//! Encoding a [`PeerMessage`] payload.

use bytes::BufMut;

use super::{PeerMessage, fits32};
use crate::error::{Result, WireError};
use crate::wire::codec::{count_as, put_string16, put_string32};
use crate::wire::frame::Protocol;
use crate::wire::server::encode_file_entries;
use crate::wire::tag::{self, TagEncoding};

impl PeerMessage {
    /// Writes the payload (without opcode); `enc` is used for tag lists.
    pub fn encode(&self, dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
        match self {
            Self::Hello(h) => {
                dst.put_u8(16);
                h.encode_body(dst, enc)?;
            }
            Self::HelloAnswer(h) => h.encode_body(dst, enc)?,
            Self::SendingPart { .. } | Self::RequestParts { .. } | Self::CompressedPart { .. } => {
                self.encode_data(dst)?;
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
            Self::AskSharedFilesAnswer(_)
            | Self::AskSharedFilesDir(_)
            | Self::AskSharedDirsAnswer(_)
            | Self::AskSharedFilesDirAnswer { .. } => self.encode_browse(dst, enc)?,
            Self::EmuleInfo(i) | Self::EmuleInfoAnswer(i) => {
                dst.put_u8(i.client_version);
                dst.put_u8(i.protocol_version);
                tag::encode_list(&i.tags, dst, enc)?;
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
            Self::RequestSources2 { .. } | Self::AnswerSources2(_) | Self::Callback { .. } => {
                self.encode_sources(dst)?;
            }
            Self::PublicIpAnswer(ip) => dst.put_slice(&ip.octets()),
            Self::AichRequest { .. }
            | Self::AichAnswer { .. }
            | Self::AichFileHashAnswer { .. } => {
                self.encode_aich(dst)?;
            }
            Self::HashsetRequest2 { file, options } => {
                file.encode(dst);
                dst.put_u8(*options);
            }
            Self::Unparsed { payload, .. } => dst.put_slice(payload),
        }
        Ok(())
    }

    /// The block-transfer messages: part data, plain or compressed, and part requests.
    /// Offsets are 64-bit in the `_I64` forms (sent as eMule's protocol).
    fn encode_data(&self, dst: &mut impl BufMut) -> Result<()> {
        let wide = self.protocol() == Protocol::Emule;
        match self {
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
            other => return Err(not_in_group(other)),
        }
        Ok(())
    }

    /// The answers of a browse (the peer's shared files and folders) and the request for
    /// one folder's files.
    fn encode_browse(&self, dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
        match self {
            Self::AskSharedFilesAnswer(files) => encode_file_entries(files, dst, enc)?,
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
            other => return Err(not_in_group(other)),
        }
        Ok(())
    }

    /// Source exchange (v2) and the callback through a Kad buddy.
    fn encode_sources(&self, dst: &mut impl BufMut) -> Result<()> {
        match self {
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
            other => return Err(not_in_group(other)),
        }
        Ok(())
    }

    /// The AICH messages that carry more than the file hash.
    fn encode_aich(&self, dst: &mut impl BufMut) -> Result<()> {
        match self {
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
            other => return Err(not_in_group(other)),
        }
        Ok(())
    }
}

/// A message handed to a group encoder it is not in (`encode` dispatches by variant, so
/// this does not happen).
fn not_in_group(m: &PeerMessage) -> WireError {
    WireError::InvalidValue {
        what: "peer message for another encoder, opcode",
        value: m.opcode().into(),
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
