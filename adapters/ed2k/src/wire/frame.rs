//! TCP framing (`<protocol 1><length u32 LE><opcode 1><payload>`) and UDP datagram headers
//! (`<protocol 1><opcode 1><payload>`).

use std::io::Read;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::Compression;
use flate2::read::ZlibEncoder;
use junction_core::inflate::{InflateError, zlib_bounded};

use crate::error::{Result, WireError};

/// Largest frame body (opcode + payload) we buffer, and the largest a packed payload may inflate
/// to. eMule drops anything bigger than its 2,000,000-byte read buffer, so no real client sends
/// more; 2 MiB leaves a little room and still caps what a hostile peer can make us allocate.
pub const MAX_FRAME_LEN: usize = 2 * 1024 * 1024;

/// Size of the TCP header before the opcode: protocol byte + u32 length.
pub const HEADER_LEN: usize = 5;

/// Largest UDP payload (after inflating a Kad-packed datagram) we accept. A UDP datagram is at
/// most 64 KiB; capping inflation there keeps a tiny packet from costing megabytes.
pub const MAX_UDP_INFLATED: usize = 64 * 1024;

/// TCP protocol byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `0xE3` classic eDonkey opcodes (client↔server and client↔client).
    Edonkey,
    /// `0xC5` eMule extended opcodes (client↔client).
    Emule,
    /// `0xD4` zlib-packed eMule: on the wire the payload is a zlib stream. A decoded
    /// [`Frame`] holds the inflated payload; the opcode belongs to the `0xE3` set on a server
    /// connection and to the `0xC5` set on a client connection.
    Packed,
}

impl Protocol {
    pub const EDONKEY: u8 = 0xE3;
    pub const EMULE: u8 = 0xC5;
    pub const PACKED: u8 = 0xD4;

    /// The protocol for a wire byte.
    pub fn from_byte(b: u8) -> Result<Self> {
        match b {
            Self::EDONKEY => Ok(Self::Edonkey),
            Self::EMULE => Ok(Self::Emule),
            Self::PACKED => Ok(Self::Packed),
            other => Err(WireError::UnknownProtocol(other)),
        }
    }
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Edonkey => Self::EDONKEY,
            Self::Emule => Self::EMULE,
            Self::Packed => Self::PACKED,
        }
    }
}

/// One TCP packet. `payload` is always the uncompressed payload (without the opcode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub protocol: Protocol,
    pub opcode: u8,
    pub payload: Bytes,
}

impl Frame {
    pub fn new(protocol: Protocol, opcode: u8, payload: impl Into<Bytes>) -> Self {
        Self {
            protocol,
            opcode,
            payload: payload.into(),
        }
    }

    /// Writes the frame. A [`Protocol::Packed`] frame has its payload deflated here.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<()> {
        if self.protocol == Protocol::Packed {
            let packed = deflate(&self.payload);
            return write_frame(dst, Protocol::PACKED, self.opcode, &packed);
        }
        write_frame(dst, self.protocol.to_byte(), self.opcode, &self.payload)
    }

    /// Writes the frame packed (`0xD4`) if that is smaller, as eMule's `PackPacket` does;
    /// otherwise as is. Only meaningful for `0xC5` (and, on server links, `0xE3`) frames.
    pub fn encode_packed_if_smaller(&self, dst: &mut BytesMut) -> Result<()> {
        if self.protocol != Protocol::Packed {
            let packed = deflate(&self.payload);
            if packed.len() < self.payload.len() {
                return write_frame(dst, Protocol::PACKED, self.opcode, &packed);
            }
        }
        self.encode(dst)
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Result<Bytes> {
        let mut b = BytesMut::with_capacity(HEADER_LEN + 1 + self.payload.len());
        self.encode(&mut b)?;
        Ok(b.freeze())
    }
}

fn write_frame(dst: &mut BytesMut, protocol: u8, opcode: u8, payload: &[u8]) -> Result<()> {
    let body = payload.len() + 1;
    if body > MAX_FRAME_LEN {
        return Err(WireError::FrameTooLarge {
            len: body as u64,
            max: MAX_FRAME_LEN,
        });
    }
    dst.reserve(HEADER_LEN + body);
    dst.put_u8(protocol);
    // body <= MAX_FRAME_LEN fits in u32.
    dst.put_u32_le(body as u32);
    dst.put_u8(opcode);
    dst.put_slice(payload);
    Ok(())
}

/// Streaming decoder: takes one whole frame off the front of `src`, or returns `Ok(None)` (and
/// leaves `src` untouched) until one is complete. The length is checked against
/// [`MAX_FRAME_LEN`] before anything is reserved. After an `Err` the stream is unusable.
pub fn decode(src: &mut BytesMut) -> Result<Option<Frame>> {
    let Some(&proto) = src.first() else {
        return Ok(None);
    };
    // Reject garbage at the first byte rather than waiting for a length that never makes sense.
    let protocol = Protocol::from_byte(proto)?;
    if src.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_le_bytes([src[1], src[2], src[3], src[4]]);
    let body = usize::try_from(len).unwrap_or(usize::MAX);
    if body == 0 {
        return Err(WireError::EmptyFrame);
    }
    if body > MAX_FRAME_LEN {
        return Err(WireError::FrameTooLarge {
            len: u64::from(len),
            max: MAX_FRAME_LEN,
        });
    }
    let total = HEADER_LEN + body;
    if src.len() < total {
        src.reserve(total - src.len());
        return Ok(None);
    }
    let mut frame = src.split_to(total);
    frame.advance(HEADER_LEN);
    let opcode = frame.get_u8();
    let raw = frame.freeze();
    let payload = match protocol {
        Protocol::Packed => Bytes::from(inflate(&raw, MAX_FRAME_LEN)?),
        _ => raw,
    };
    Ok(Some(Frame {
        protocol,
        opcode,
        payload,
    }))
}

/// zlib-compresses (`compress2` level 9 as eMule uses).
pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 16);
    // Reading from an in-memory encoder over a slice cannot fail.
    let _ = ZlibEncoder::new(data, Compression::best()).read_to_end(&mut out);
    out
}

/// Inflates a zlib stream, refusing to produce more than `max` bytes
/// ([`junction_core::inflate::zlib_bounded`], with its errors as [`WireError`]s).
pub fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>> {
    zlib_bounded(data, max).map_err(|e| match e {
        InflateError::TooLarge { max, .. } => WireError::InflatedTooLarge { max },
        InflateError::Corrupt(detail) => WireError::Inflate(detail),
    })
}

/// UDP protocol byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpProtocol {
    /// `0xE3`: client↔server UDP.
    Edonkey,
    /// `0xC5`: client↔client UDP.
    Emule,
    /// `0xE4`: Kad.
    Kad,
    /// `0xE5`: Kad with a zlib payload; a decoded [`UdpPacket`] holds the inflated payload.
    KadPacked,
}

impl UdpProtocol {
    pub fn from_byte(b: u8) -> Result<Self> {
        match b {
            0xE3 => Ok(Self::Edonkey),
            0xC5 => Ok(Self::Emule),
            0xE4 => Ok(Self::Kad),
            0xE5 => Ok(Self::KadPacked),
            other => Err(WireError::UnknownProtocol(other)),
        }
    }
    pub fn to_byte(self) -> u8 {
        match self {
            Self::Edonkey => 0xE3,
            Self::Emule => 0xC5,
            Self::Kad => 0xE4,
            Self::KadPacked => 0xE5,
        }
    }
}

/// One UDP datagram: `<protocol 1><opcode 1><payload>`, no length field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket {
    pub protocol: UdpProtocol,
    pub opcode: u8,
    pub payload: Bytes,
}

impl UdpPacket {
    pub fn new(protocol: UdpProtocol, opcode: u8, payload: impl Into<Bytes>) -> Self {
        Self {
            protocol,
            opcode,
            payload: payload.into(),
        }
    }

    /// Decodes a whole datagram.
    pub fn decode(mut datagram: Bytes) -> Result<Self> {
        let proto = crate::wire::codec::get_u8(&mut datagram, "UDP header")?;
        let protocol = UdpProtocol::from_byte(proto)?;
        let opcode = crate::wire::codec::get_u8(&mut datagram, "UDP header")?;
        let payload = match protocol {
            UdpProtocol::KadPacked => Bytes::from(inflate(&datagram, MAX_UDP_INFLATED)?),
            _ => datagram,
        };
        Ok(Self {
            protocol,
            opcode,
            payload,
        })
    }

    /// Writes the datagram (deflating a [`UdpProtocol::KadPacked`] payload).
    pub fn encode(&self, dst: &mut impl BufMut) {
        dst.put_u8(self.protocol.to_byte());
        dst.put_u8(self.opcode);
        if self.protocol == UdpProtocol::KadPacked {
            dst.put_slice(&deflate(&self.payload));
        } else {
            dst.put_slice(&self.payload);
        }
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(2 + self.payload.len());
        self.encode(&mut b);
        b.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_plain() {
        let f = Frame::new(Protocol::Edonkey, 0x38, &b"hello"[..]);
        let mut b = BytesMut::new();
        f.encode(&mut b).unwrap();
        assert_eq!(
            &b[..],
            &[0xE3, 6, 0, 0, 0, 0x38, b'h', b'e', b'l', b'l', b'o']
        );
        assert_eq!(decode(&mut b).unwrap(), Some(f));
        assert!(b.is_empty());
    }

    #[test]
    fn packed_roundtrip_and_auto() {
        let payload = vec![7u8; 10_000];
        let f = Frame::new(Protocol::Packed, 0x40, payload.clone());
        let mut b = BytesMut::new();
        f.encode(&mut b).unwrap();
        assert!(b.len() < 1000);
        assert_eq!(decode(&mut b).unwrap(), Some(f));

        let plain = Frame::new(Protocol::Emule, 0x40, payload);
        let mut b = BytesMut::new();
        plain.encode_packed_if_smaller(&mut b).unwrap();
        assert_eq!(b[0], 0xD4);
        let got = decode(&mut b).unwrap().unwrap();
        assert_eq!(got.protocol, Protocol::Packed);
        assert_eq!(got.payload, plain.payload);

        // Incompressible tiny payload stays plain.
        let small = Frame::new(Protocol::Emule, 0x60, &[1u8, 2, 3][..]);
        let mut b = BytesMut::new();
        small.encode_packed_if_smaller(&mut b).unwrap();
        assert_eq!(b[0], 0xC5);
    }

    #[test]
    fn every_split_point() {
        let frames = [
            Frame::new(Protocol::Edonkey, 0x01, &b"abcdefgh"[..]),
            Frame::new(Protocol::Packed, 0x46, vec![0u8; 3000]),
            Frame::new(Protocol::Emule, 0x55, Bytes::new()),
        ];
        let mut wire = BytesMut::new();
        for f in &frames {
            f.encode(&mut wire).unwrap();
        }
        let wire = wire.freeze();
        for split in 0..=wire.len() {
            let mut got = Vec::new();
            let mut buf = BytesMut::new();
            for part in [&wire[..split], &wire[split..]] {
                buf.extend_from_slice(part);
                while let Some(f) = decode(&mut buf).unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "split at {split}");
            assert!(buf.is_empty());
        }
        // Byte by byte.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn oversized_length_rejected_before_allocating() {
        let mut b = BytesMut::from(&[0xE3, 0xFF, 0xFF, 0xFF, 0x7F][..]);
        let err = decode(&mut b).unwrap_err();
        assert!(matches!(
            err,
            WireError::FrameTooLarge {
                len: 0x7FFF_FFFF,
                ..
            }
        ));
        assert!(err.to_string().contains("exceeds"));
        assert!(b.capacity() < 1024);
        let mut b = BytesMut::from(&[0xE3, 0x01, 0x00, 0x20, 0x00][..]);
        assert!(decode(&mut b).is_err());
        // exactly the maximum is fine (incomplete so far)
        let max = (MAX_FRAME_LEN as u32).to_le_bytes();
        let mut b = BytesMut::from(&[0xE3, max[0], max[1], max[2], max[3]][..]);
        assert_eq!(decode(&mut b).unwrap(), None);
    }

    #[test]
    fn bad_protocol_and_empty() {
        assert_eq!(
            decode(&mut BytesMut::from(&[0x00][..])),
            Err(WireError::UnknownProtocol(0))
        );
        assert_eq!(
            decode(&mut BytesMut::from(&[0xE3, 0, 0, 0, 0][..])),
            Err(WireError::EmptyFrame)
        );
        assert_eq!(decode(&mut BytesMut::new()), Ok(None));
        assert_eq!(decode(&mut BytesMut::from(&[0xC5, 1, 0][..])), Ok(None));
    }

    #[test]
    fn zip_bomb_is_bounded() {
        let bomb = deflate(&vec![0u8; MAX_FRAME_LEN + 10]);
        let mut b = BytesMut::new();
        write_frame(&mut b, Protocol::PACKED, 0x40, &bomb).unwrap();
        assert_eq!(
            decode(&mut b),
            Err(WireError::InflatedTooLarge { max: MAX_FRAME_LEN })
        );
        let mut b = BytesMut::new();
        write_frame(&mut b, Protocol::PACKED, 0x40, b"not zlib").unwrap();
        assert!(matches!(decode(&mut b), Err(WireError::Inflate(_))));
    }

    #[test]
    fn udp_roundtrip() {
        for p in [
            UdpProtocol::Edonkey,
            UdpProtocol::Emule,
            UdpProtocol::Kad,
            UdpProtocol::KadPacked,
        ] {
            let u = UdpPacket::new(p, 0x96, &b"\x01\x02\x03\x04"[..]);
            assert_eq!(UdpPacket::decode(u.to_bytes()).unwrap(), u);
        }
        assert!(UdpPacket::decode(Bytes::from_static(&[0xE3])).is_err());
        assert!(UdpPacket::decode(Bytes::from_static(&[0x12, 0x00])).is_err());
    }
}
