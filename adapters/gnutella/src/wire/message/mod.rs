//! Descriptor payloads and the [`Message`] enum.

mod bye;
mod ping;
mod push;
mod query;
mod query_hit;
mod route;
mod vendor;

pub use bye::Bye;
pub use ping::{Ping, Pong};
pub use push::{FW2FW_FILE_INDEX, Push};
pub use query::{Query, QueryFlags};
pub use query_hit::{HitRecord, QhdTrailer, QueryHit, qhd};
pub use route::{RouteTableUpdate, qrp_compressor};
pub use vendor::{
    HOPS_FLOW, MESSAGES_SUPPORTED, PUSH_PROXY_ACK, PUSH_PROXY_REQUEST, QUERY_DONE,
    SupportedMessage, TCP_CONNECT_BACK, VendorMessage,
};

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::wire::descriptor_header::{Header, RawDescriptor, kind};
use crate::wire::guid::Guid;

/// A decoded descriptor payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// 0x00.
    Ping(Ping),
    /// 0x01.
    Pong(Pong),
    /// 0x02.
    Bye(Bye),
    /// 0x30: QRP RESET / PATCH.
    RouteTable(RouteTableUpdate),
    /// 0x31 / 0x32.
    Vendor(VendorMessage),
    /// 0x40.
    Push(Push),
    /// 0x80.
    Query(Query),
    /// 0x81.
    QueryHit(QueryHit),
    /// Any other type (RUDP, DHT, HSEP...), kept opaque.
    Unknown {
        /// Payload type.
        kind: u8,
        /// Raw payload.
        payload: Bytes,
    },
}

impl Message {
    /// Decode a payload of type `kind`.
    pub fn decode(kind: u8, payload: Bytes) -> Result<Self> {
        Ok(match kind {
            kind::PING => Message::Ping(Ping::decode(payload)?),
            kind::PONG => Message::Pong(Pong::decode(payload)?),
            kind::BYE => Message::Bye(Bye::decode(payload)?),
            kind::QRP => Message::RouteTable(RouteTableUpdate::decode(payload)?),
            kind::VENDOR | kind::VENDOR_STD => {
                Message::Vendor(VendorMessage::decode(kind == kind::VENDOR_STD, payload)?)
            }
            kind::PUSH => Message::Push(Push::decode(payload)?),
            kind::QUERY => Message::Query(Query::decode(payload)?),
            kind::QUERY_HIT => Message::QueryHit(QueryHit::decode(payload)?),
            _ => Message::Unknown { kind, payload },
        })
    }

    /// The payload type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Ping(_) => kind::PING,
            Message::Pong(_) => kind::PONG,
            Message::Bye(_) => kind::BYE,
            Message::RouteTable(_) => kind::QRP,
            Message::Vendor(v) => {
                if v.standard {
                    kind::VENDOR_STD
                } else {
                    kind::VENDOR
                }
            }
            Message::Push(_) => kind::PUSH,
            Message::Query(_) => kind::QUERY,
            Message::QueryHit(_) => kind::QUERY_HIT,
            Message::Unknown { kind, .. } => *kind,
        }
    }

    /// Write the payload.
    pub fn encode(&self, dst: &mut impl BufMut) {
        match self {
            Message::Ping(m) => m.encode(dst),
            Message::Pong(m) => m.encode(dst),
            Message::Bye(m) => m.encode(dst),
            Message::RouteTable(m) => m.encode(dst),
            Message::Vendor(m) => m.encode(dst),
            Message::Push(m) => m.encode(dst),
            Message::Query(m) => m.encode(dst),
            Message::QueryHit(m) => m.encode(dst),
            Message::Unknown { payload, .. } => dst.put_slice(payload),
        }
    }

    /// The payload bytes.
    pub fn to_payload(&self) -> Bytes {
        let mut b = BytesMut::new();
        self.encode(&mut b);
        b.freeze()
    }
}

/// A descriptor: header and decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// Header as received (or to be sent; `payload_len` is recomputed on encode).
    pub header: Header,
    /// The payload.
    pub message: Message,
}

impl RawDescriptor {
    /// Decode the payload according to the header's type.
    pub fn message(&self) -> Result<Message> {
        Message::decode(self.header.kind, self.payload.clone())
    }
}

impl Descriptor {
    /// A descriptor for `message`.
    pub fn new(guid: Guid, ttl: u8, hops: u8, message: Message) -> Self {
        Descriptor {
            header: Header::new(guid, message.kind(), ttl, hops, 0),
            message,
        }
    }

    /// Decode the payload of a framed descriptor.
    pub fn from_raw(raw: &RawDescriptor) -> Result<Self> {
        Ok(Descriptor {
            header: raw.header,
            message: raw.message()?,
        })
    }

    /// Write header and payload; the header's type and length come from the
    /// message. Fails if the payload does not fit the 32-bit length field.
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<()> {
        let payload = self.message.to_payload();
        let len = u32::try_from(payload.len())
            .map_err(|_| Error::too_large("descriptor payload", payload.len(), u32::MAX))?;
        let mut h = self.header;
        h.kind = self.message.kind();
        h.payload_len = len;
        h.encode(dst);
        dst.put_slice(&payload);
        Ok(())
    }

    /// The encoded bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }
}

/// Read exactly `N` bytes from the front of `b` or fail with `what`.
pub(crate) fn take<const N: usize>(b: &mut Bytes, what: &'static str) -> Result<[u8; N]> {
    if b.len() < N {
        return Err(Error::truncated(what));
    }
    let mut out = [0u8; N];
    out.copy_from_slice(&b.split_to(N));
    Ok(out)
}

/// Split off a NUL-terminated string (NUL consumed, not returned).
pub(crate) fn take_cstr(b: &mut Bytes, what: &'static str) -> Result<Bytes> {
    let Some(n) = b.iter().position(|&c| c == 0) else {
        return Err(Error::truncated(what));
    };
    let s = b.split_to(n);
    bytes::Buf::advance(b, 1);
    Ok(s)
}
