//! Peer wire messages (BEP 3, BEP 6 Fast, BEP 10 extended) and a streaming decoder.
//!
//! Frames are `<u32 BE length><u8 id><payload>`; length 0 is a keep-alive. Messages carry
//! the peer's raw numbers; [`BlockRequest::validate`], [`PieceBlock::validate`] and
//! [`Bitfield::from_payload`](crate::wire::piece::Bitfield::from_payload) check them against the
//! torrent's [`Geometry`] once it is known (with a magnet it is not, at first).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::WireError;
use crate::wire::hashes::{HashRequest, Hashes};
use crate::wire::piece::{Geometry, ValidBlock};

/// Largest frame accepted. The length prefix is the peer's claim, and we buffer a whole
/// frame before decoding it, so without a cap one peer could make us hold 4 GiB. The
/// biggest legitimate frames are bitfields (1 MiB covers 8 million pieces, well beyond
/// what the 32 MiB metadata limit allows with useful piece sizes) and extended messages;
/// piece frames are 16 KiB blocks plus 9 bytes.
pub const MAX_MESSAGE_LEN: u32 = 1 << 20;

pub mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const PORT: u8 = 9;
    pub const SUGGEST: u8 = 0x0D;
    pub const HAVE_ALL: u8 = 0x0E;
    pub const HAVE_NONE: u8 = 0x0F;
    pub const REJECT: u8 = 0x10;
    pub const ALLOWED_FAST: u8 = 0x11;
    pub const EXTENDED: u8 = 0x14;
    pub const HASH_REQUEST: u8 = 0x15;
    pub const HASHES: u8 = 0x16;
    pub const HASH_REJECT: u8 = 0x17;
}

/// `index`, `begin`, `length` of a request, cancel or (Fast) reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRequest {
    pub index: u32,
    pub begin: u32,
    pub length: u32,
}

impl BlockRequest {
    /// Checks the request against the torrent: index in range, 1..=16 KiB, inside the piece.
    pub fn validate(&self, geometry: &Geometry) -> Result<ValidBlock, WireError> {
        geometry.block(self.index, self.begin, self.length)
    }
}

impl From<ValidBlock> for BlockRequest {
    fn from(b: ValidBlock) -> Self {
        Self {
            index: b.index().get(),
            begin: b.begin(),
            length: b.length(),
        }
    }
}

/// A `piece` message: a block of data, shared with the receive buffer (zero copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceBlock {
    pub index: u32,
    pub begin: u32,
    pub data: Bytes,
}

impl PieceBlock {
    /// Checks the block's place in the torrent. The caller must still match it against a
    /// request it actually sent.
    pub fn validate(&self, geometry: &Geometry) -> Result<ValidBlock, WireError> {
        let length = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        geometry.block(self.index, self.begin, length)
    }
}

/// One peer wire message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    /// Raw payload; validate with [`Bitfield::from_payload`](crate::wire::piece::Bitfield::from_payload).
    Bitfield(Bytes),
    Request(BlockRequest),
    Piece(PieceBlock),
    Cancel(BlockRequest),
    /// The sender's DHT UDP port (BEP 5).
    Port(u16),
    /// Fast (BEP 6).
    Suggest(u32),
    HaveAll,
    HaveNone,
    Reject(BlockRequest),
    AllowedFast(u32),
    /// BEP 10: `id` 0 is the extended handshake, others are the ids *we* assigned in our
    /// handshake's `m`. Decode the payload with [`super::extension`].
    Extended {
        id: u8,
        payload: Bytes,
    },
    /// BEP 52: asks for hashes of a file's Merkle tree.
    HashRequest(HashRequest),
    /// BEP 52: the hashes asked for, with their proof.
    Hashes(Hashes),
    /// BEP 52: a hash request that will not be answered.
    HashReject(HashRequest),
    /// A message id this layer does not know. BEP 3 peers ignore them.
    Unknown {
        id: u8,
        payload: Bytes,
    },
}

fn u32_at(p: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = p.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_be_bytes(b)
}

impl Message {
    /// Decodes one frame without its length prefix (empty = keep-alive).
    pub fn decode_frame(mut frame: Bytes) -> Result<Self, WireError> {
        if frame.is_empty() {
            return Ok(Message::KeepAlive);
        }
        let msg_id = frame.get_u8();
        let p = &frame[..];
        let exact = |n: usize| {
            if p.len() == n {
                Ok(())
            } else {
                Err(WireError::BadLength {
                    id: msg_id,
                    len: p.len(),
                })
            }
        };
        let block = || BlockRequest {
            index: u32_at(p, 0),
            begin: u32_at(p, 4),
            length: u32_at(p, 8),
        };
        Ok(match msg_id {
            id::CHOKE => exact(0).map(|_| Message::Choke)?,
            id::UNCHOKE => exact(0).map(|_| Message::Unchoke)?,
            id::INTERESTED => exact(0).map(|_| Message::Interested)?,
            id::NOT_INTERESTED => exact(0).map(|_| Message::NotInterested)?,
            id::HAVE_ALL => exact(0).map(|_| Message::HaveAll)?,
            id::HAVE_NONE => exact(0).map(|_| Message::HaveNone)?,
            id::HAVE => exact(4).map(|_| Message::Have(u32_at(p, 0)))?,
            id::SUGGEST => exact(4).map(|_| Message::Suggest(u32_at(p, 0)))?,
            id::ALLOWED_FAST => exact(4).map(|_| Message::AllowedFast(u32_at(p, 0)))?,
            id::REQUEST => exact(12).map(|_| Message::Request(block()))?,
            id::CANCEL => exact(12).map(|_| Message::Cancel(block()))?,
            id::REJECT => exact(12).map(|_| Message::Reject(block()))?,
            id::PORT => {
                exact(2)?;
                Message::Port(u16::from_be_bytes([p[0], p[1]]))
            }
            id::BITFIELD => Message::Bitfield(frame),
            id::HASH_REQUEST => Message::HashRequest(HashRequest::decode(msg_id, p)?),
            id::HASH_REJECT => Message::HashReject(HashRequest::decode(msg_id, p)?),
            id::HASHES => Message::Hashes(Hashes::decode(msg_id, &frame)?),
            id::PIECE => {
                if p.len() < 8 {
                    return Err(WireError::BadLength {
                        id: msg_id,
                        len: p.len(),
                    });
                }
                let (index, begin) = (u32_at(p, 0), u32_at(p, 4));
                frame.advance(8);
                Message::Piece(PieceBlock {
                    index,
                    begin,
                    data: frame,
                })
            }
            id::EXTENDED => {
                if p.is_empty() {
                    return Err(WireError::BadLength { id: msg_id, len: 0 });
                }
                let ext = frame.get_u8();
                Message::Extended {
                    id: ext,
                    payload: frame,
                }
            }
            other => Message::Unknown {
                id: other,
                payload: frame,
            },
        })
    }

    /// Length of the frame without the 4-byte prefix.
    pub fn frame_len(&self) -> usize {
        match self {
            Message::KeepAlive => 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 1,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 5,
            Message::Request(_) | Message::Cancel(_) | Message::Reject(_) => 13,
            Message::Port(_) => 3,
            Message::Bitfield(b) => 1 + b.len(),
            Message::Piece(p) => 9 + p.data.len(),
            Message::Extended { payload, .. } => 2 + payload.len(),
            Message::HashRequest(_) | Message::HashReject(_) => {
                1 + crate::wire::hashes::REQUEST_LEN
            }
            Message::Hashes(h) => 1 + h.encoded_len(),
            Message::Unknown { payload, .. } => 1 + payload.len(),
        }
    }

    /// Writes the whole frame, length prefix included.
    pub fn encode(&self, out: &mut impl BufMut) {
        // Frames we build are bounded by our own block and bitfield sizes.
        out.put_u32(u32::try_from(self.frame_len()).unwrap_or(u32::MAX));
        let put_block = |out: &mut dyn BufMut, msg_id: u8, b: &BlockRequest| {
            out.put_u8(msg_id);
            out.put_u32(b.index);
            out.put_u32(b.begin);
            out.put_u32(b.length);
        };
        match self {
            Message::KeepAlive => {}
            Message::Choke => out.put_u8(id::CHOKE),
            Message::Unchoke => out.put_u8(id::UNCHOKE),
            Message::Interested => out.put_u8(id::INTERESTED),
            Message::NotInterested => out.put_u8(id::NOT_INTERESTED),
            Message::HaveAll => out.put_u8(id::HAVE_ALL),
            Message::HaveNone => out.put_u8(id::HAVE_NONE),
            Message::Have(i) | Message::Suggest(i) | Message::AllowedFast(i) => {
                out.put_u8(match self {
                    Message::Have(_) => id::HAVE,
                    Message::Suggest(_) => id::SUGGEST,
                    _ => id::ALLOWED_FAST,
                });
                out.put_u32(*i);
            }
            Message::Request(b) => put_block(out, id::REQUEST, b),
            Message::Cancel(b) => put_block(out, id::CANCEL, b),
            Message::Reject(b) => put_block(out, id::REJECT, b),
            Message::Port(port) => {
                out.put_u8(id::PORT);
                out.put_u16(*port);
            }
            Message::Bitfield(b) => {
                out.put_u8(id::BITFIELD);
                out.put_slice(b);
            }
            Message::Piece(p) => {
                out.put_u8(id::PIECE);
                out.put_u32(p.index);
                out.put_u32(p.begin);
                out.put_slice(&p.data);
            }
            Message::Extended { id: ext, payload } => {
                out.put_u8(id::EXTENDED);
                out.put_u8(*ext);
                out.put_slice(payload);
            }
            Message::HashRequest(r) | Message::HashReject(r) => {
                out.put_u8(match self {
                    Message::HashRequest(_) => id::HASH_REQUEST,
                    _ => id::HASH_REJECT,
                });
                r.encode(out);
            }
            Message::Hashes(h) => {
                out.put_u8(id::HASHES);
                h.encode(out);
            }
            Message::Unknown {
                id: msg_id,
                payload,
            } => {
                out.put_u8(*msg_id);
                out.put_slice(payload);
            }
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(4 + self.frame_len());
        self.encode(&mut out);
        out.freeze()
    }
}

/// Streaming decoder: feed received bytes into a `BytesMut`, call [`decode`](Self::decode)
/// until it returns `Ok(None)`. An error means the peer broke the protocol: close.
#[derive(Debug, Clone, Copy)]
pub struct MessageDecoder {
    max_len: u32,
}

impl Default for MessageDecoder {
    fn default() -> Self {
        Self {
            max_len: MAX_MESSAGE_LEN,
        }
    }
}

impl MessageDecoder {
    /// A decoder with a different frame cap (e.g. smaller for a peer we only seed to).
    pub fn with_max_len(max_len: u32) -> Self {
        Self { max_len }
    }

    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WireError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if len > self.max_len {
            return Err(WireError::MessageTooLong {
                len,
                max: self.max_len,
            });
        }
        let total = (len as usize).saturating_add(4);
        if buf.len() < total {
            // Bounded by max_len, so reserving the rest of the frame is safe.
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        let frame = buf.split_to(len as usize).freeze();
        Message::decode_frame(frame).map(Some)
    }
}
