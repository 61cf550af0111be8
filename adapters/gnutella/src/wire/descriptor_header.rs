//! The 23-byte descriptor header that frames every message on a Gnutella link, and the
//! streaming descriptor decoder. (HTTP and handshake headers are `Headers`, in core.)
//!
//! ```text
//! 0  16  GUID (message id)
//! 16  1  payload type
//! 17  1  TTL
//! 18  1  hops
//! 19  4  payload length, little-endian
//! ```
//! The length is the only framing on a Gnutella link, so it is bounded before
//! anything is buffered; a nonsense length means the link must be dropped.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::wire::guid::Guid;

/// Size of the descriptor header.
pub const HEADER_LEN: usize = 23;

/// Default payload bound: gtk-gnutella refuses payloads above 64 KiB.
pub const DEFAULT_MAX_PAYLOAD: u32 = 64 * 1024;

/// gtk-gnutella's `GTA_SIZE_MARKED`: when set, bits 16..30 of the length
/// field carry flags and only the low 16 bits are the size.
pub const SIZE_MARKED: u32 = 0x8000_0000;

/// Payload type numbers (gtk-gnutella `enum gta_msg`).
pub mod kind {
    /// Ping.
    pub const PING: u8 = 0x00;
    /// Pong.
    pub const PONG: u8 = 0x01;
    /// Bye.
    pub const BYE: u8 = 0x02;
    /// QRP route table update (RESET / PATCH).
    pub const QRP: u8 = 0x30;
    /// Vendor-specific message.
    pub const VENDOR: u8 = 0x31;
    /// "Standard" vendor message.
    pub const VENDOR_STD: u8 = 0x32;
    /// Push.
    pub const PUSH: u8 = 0x40;
    /// gtk-gnutella RUDP.
    pub const RUDP: u8 = 0x41;
    /// gtk-gnutella DHT encapsulation.
    pub const DHT: u8 = 0x44;
    /// Query.
    pub const QUERY: u8 = 0x80;
    /// QueryHit.
    pub const QUERY_HIT: u8 = 0x81;
    /// HSEP.
    pub const HSEP: u8 = 0xCD;
}

/// A decoded descriptor header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Message id.
    pub guid: Guid,
    /// Payload type (see [`kind`]).
    pub kind: u8,
    /// Remaining hops allowed.
    pub ttl: u8,
    /// Hops travelled so far.
    pub hops: u8,
    /// Payload size in bytes.
    pub payload_len: u32,
    /// gtk-gnutella size flags (bits 16..30) when the length was marked with
    /// [`SIZE_MARKED`]; `None` for the ordinary form.
    pub size_flags: Option<u16>,
}

impl Header {
    /// A header for a payload of `payload_len` bytes.
    pub fn new(guid: Guid, kind: u8, ttl: u8, hops: u8, payload_len: u32) -> Self {
        Header {
            guid,
            kind,
            ttl,
            hops,
            payload_len,
            size_flags: None,
        }
    }

    /// Decode the 23 header bytes. `max_payload` bounds the announced length.
    pub fn parse(b: &[u8; HEADER_LEN], max_payload: u32) -> Result<Self> {
        let mut buf = &b[..];
        let guid = Guid::read(&mut buf);
        let kind = buf.get_u8();
        let ttl = buf.get_u8();
        let hops = buf.get_u8();
        let raw = buf.get_u32_le();
        let (payload_len, size_flags) = if raw & SIZE_MARKED != 0 {
            // Flags occupy bits 16..30; bit 31 is the mark itself.
            (raw & 0xFFFF, Some(((raw >> 16) & 0x7FFF) as u16))
        } else {
            (raw, None)
        };
        if payload_len > max_payload {
            return Err(Error::too_large(
                "descriptor payload",
                payload_len,
                max_payload,
            ));
        }
        Ok(Header {
            guid,
            kind,
            ttl,
            hops,
            payload_len,
            size_flags,
        })
    }

    /// Write the 23 header bytes.
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.guid.0);
        dst.put_u8(self.kind);
        dst.put_u8(self.ttl);
        dst.put_u8(self.hops);
        let raw = match self.size_flags {
            Some(f) => SIZE_MARKED | (u32::from(f & 0x7FFF) << 16) | (self.payload_len & 0xFFFF),
            None => self.payload_len,
        };
        dst.put_u32_le(raw);
    }
}

/// A framed descriptor: header plus raw payload. Decode the payload with
/// `Message::decode` or `RawDescriptor::message` (both in [`crate::wire::message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDescriptor {
    /// The header; `payload_len` equals `payload.len()`.
    pub header: Header,
    /// The payload bytes (zero-copy slice of the input).
    pub payload: Bytes,
}

impl RawDescriptor {
    /// Write header and payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        self.header.encode(dst);
        dst.put_slice(&self.payload);
    }
}

/// Streaming descriptor framer over a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorDecoder {
    /// Largest payload accepted.
    pub max_payload: u32,
}

impl Default for DescriptorDecoder {
    fn default() -> Self {
        DescriptorDecoder {
            max_payload: DEFAULT_MAX_PAYLOAD,
        }
    }
}

impl DescriptorDecoder {
    /// A decoder with a custom payload bound.
    pub fn new(max_payload: u32) -> Self {
        DescriptorDecoder { max_payload }
    }

    /// Take one complete descriptor off the front of `buf`: `Ok(None)` until
    /// all of it is there. The length is checked as soon as the header is
    /// in, so an oversized announcement fails before any payload is buffered.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<RawDescriptor>> {
        let Some(hb) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(hb);
        let header = Header::parse(&h, self.max_payload)?;
        let total = HEADER_LEN + header.payload_len as usize;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(header.payload_len as usize).freeze();
        Ok(Some(RawDescriptor { header, payload }))
    }

    /// Decode one descriptor from a slice: the descriptor and its length.
    pub fn parse(&self, data: &[u8]) -> Result<Option<(RawDescriptor, usize)>> {
        let Some(hb) = data.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(hb);
        let header = Header::parse(&h, self.max_payload)?;
        let total = HEADER_LEN + header.payload_len as usize;
        let Some(payload) = data.get(HEADER_LEN..total) else {
            return Ok(None);
        };
        Ok(Some((
            RawDescriptor {
                header,
                payload: Bytes::copy_from_slice(payload),
            },
            total,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_bound() {
        let h = Header::new(Guid([7; 16]), kind::QUERY, 3, 1, 10);
        let mut v = Vec::new();
        h.encode(&mut v);
        assert_eq!(v.len(), HEADER_LEN);
        let arr: [u8; HEADER_LEN] = v.clone().try_into().unwrap();
        assert_eq!(Header::parse(&arr, 64 * 1024).unwrap(), h);
        assert!(matches!(
            Header::parse(&arr, 9),
            Err(Error::TooLarge {
                len: 10,
                max: 9,
                ..
            })
        ));
    }

    #[test]
    fn marked_size() {
        let mut arr = [0u8; HEADER_LEN];
        arr[19..].copy_from_slice(&(SIZE_MARKED | (0x0003 << 16) | 5).to_le_bytes());
        let h = Header::parse(&arr, 100).unwrap();
        assert_eq!((h.payload_len, h.size_flags), (5, Some(3)));
        let mut v = Vec::new();
        h.encode(&mut v);
        assert_eq!(v, arr);
    }

    #[test]
    fn oversized_length_fails_before_payload_arrives() {
        let mut b = BytesMut::new();
        Header::new(Guid::ZERO, 0, 1, 0, 0xFFFF_FFF0 & !SIZE_MARKED).encode(&mut b);
        assert!(DescriptorDecoder::default().decode(&mut b).is_err());
    }
}
