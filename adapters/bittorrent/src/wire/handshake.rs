//! The 68-byte peer handshake (BEP 3) and its reserved bits (BEP 4).

use bytes::{Buf, BufMut, BytesMut};

use crate::error::WireError;
use crate::wire::id::{InfoHash, PeerId};

pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
pub const HANDSHAKE_LEN: usize = 68;

/// The 8 reserved bytes: capability flags, most of them assigned in BEP 4.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// BEP 10 extension protocol: `reserved[5] & 0x10`.
    pub const EXTENSION_PROTOCOL: (usize, u8) = (5, 0x10);
    /// BEP 5 DHT: `reserved[7] & 0x01` (the peer will send a `port` message).
    pub const DHT: (usize, u8) = (7, 0x01);
    /// BEP 6 Fast extension: `reserved[7] & 0x04`.
    pub const FAST: (usize, u8) = (7, 0x04);
    /// BEP 52 hybrid torrent v1→v2 upgrade: `reserved[7] & 0x10`.
    pub const V2_UPGRADE: (usize, u8) = (7, 0x10);

    /// What Junction offers: the extension protocol, DHT and Fast.
    pub fn junction() -> Self {
        Self::default()
            .with(Self::EXTENSION_PROTOCOL)
            .with(Self::DHT)
            .with(Self::FAST)
    }

    pub fn has(&self, (byte, mask): (usize, u8)) -> bool {
        self.0.get(byte).is_some_and(|b| b & mask != 0)
    }

    #[must_use]
    pub fn with(mut self, (byte, mask): (usize, u8)) -> Self {
        if let Some(b) = self.0.get_mut(byte) {
            *b |= mask;
        }
        self
    }

    pub fn extension_protocol(&self) -> bool {
        self.has(Self::EXTENSION_PROTOCOL)
    }
    pub fn dht(&self) -> bool {
        self.has(Self::DHT)
    }
    pub fn fast(&self) -> bool {
        self.has(Self::FAST)
    }
}

impl std::fmt::Debug for Reserved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reserved({})", data_encoding::HEXLOWER.encode(&self.0))
    }
}

/// `<19>"BitTorrent protocol"<reserved 8><info_hash 20><peer_id 20>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: Reserved,
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
}

impl Handshake {
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(19);
        out.put_slice(PROTOCOL);
        out.put_slice(&self.reserved.0);
        out.put_slice(&self.info_hash.0);
        out.put_slice(&self.peer_id.0);
    }

    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        self.encode(&mut &mut out[..]);
        out
    }

    /// Checks the protocol header as soon as its 20 bytes are in, so a connection that
    /// speaks something else (e.g. encrypted MSE) is refused before waiting for 68 bytes.
    pub fn check_prefix(data: &[u8]) -> Result<(), WireError> {
        let n = data.len().min(20);
        let mut want = [0u8; 20];
        want[0] = 19;
        want[1..].copy_from_slice(PROTOCOL);
        if data[..n] != want[..n] {
            return Err(WireError::BadHandshake(
                "not the \"BitTorrent protocol\" header",
            ));
        }
        Ok(())
    }

    /// Parses exactly one handshake.
    pub fn parse(data: &[u8; HANDSHAKE_LEN]) -> Result<Self, WireError> {
        Self::check_prefix(data)?;
        let mut rest = &data[20..];
        let mut reserved = [0; 8];
        rest.copy_to_slice(&mut reserved);
        let mut info_hash = [0; 20];
        rest.copy_to_slice(&mut info_hash);
        let mut peer_id = [0; 20];
        rest.copy_to_slice(&mut peer_id);
        Ok(Self {
            reserved: Reserved(reserved),
            info_hash: InfoHash(info_hash),
            peer_id: PeerId(peer_id),
        })
    }

    /// Streaming form: `Ok(None)` until 68 bytes are buffered, then consumes them.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Self>, WireError> {
        Self::check_prefix(buf)?;
        let Some(head) = buf.get(..HANDSHAKE_LEN) else {
            return Ok(None);
        };
        let arr: &[u8; HANDSHAKE_LEN] = head
            .try_into()
            .map_err(|_| WireError::BadHandshake("short"))?;
        let hs = Self::parse(arr)?;
        buf.advance(HANDSHAKE_LEN);
        Ok(Some(hs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake {
            reserved: Reserved::junction(),
            info_hash: InfoHash([0xAA; 20]),
            peer_id: PeerId(*b"-JN0001-123456789012"),
        }
    }

    #[test]
    fn layout_matches_bep3() {
        let b = sample().to_bytes();
        assert_eq!(b[0], 19);
        assert_eq!(&b[1..20], b"BitTorrent protocol");
        assert_eq!(&b[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        assert_eq!(&b[28..48], &[0xAA; 20]);
        assert_eq!(&b[48..68], b"-JN0001-123456789012");
        assert_eq!(Handshake::parse(&b).unwrap(), sample());
        let r = Handshake::parse(&b).unwrap().reserved;
        assert!(r.extension_protocol() && r.dht() && r.fast());
        assert!(!r.has(Reserved::V2_UPGRADE));
    }

    #[test]
    fn streaming_waits_then_consumes() {
        let b = sample().to_bytes();
        for split in 0..HANDSHAKE_LEN {
            let mut buf = BytesMut::from(&b[..split]);
            assert_eq!(Handshake::decode(&mut buf), Ok(None));
            buf.extend_from_slice(&b[split..]);
            buf.extend_from_slice(&[0, 0, 0, 0]);
            assert_eq!(Handshake::decode(&mut buf), Ok(Some(sample())));
            assert_eq!(&buf[..], &[0, 0, 0, 0]);
        }
    }

    #[test]
    fn wrong_protocol_is_refused_early() {
        let mut buf = BytesMut::from(&b"\x13BitTorrent prot0"[..]);
        assert!(Handshake::decode(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1"[..]);
        assert!(Handshake::decode(&mut buf).is_err());
    }
}
