//! The handshake bodies: `OP_HELLO` / `OP_HELLOANSWER` and the eMule capability info.

use std::net::SocketAddrV4;

use bytes::{Buf, BufMut, Bytes};

use crate::error::Result;
use crate::wire::codec::{ClientId, Hash16, get_hash, get_ipv4, get_u16, get_u32};
use crate::wire::tag::{self, Tag, TagEncoding};

/// The LE `u32` MLdonkey appends to its hello (wire bytes `"MLDK"`).
pub const MLDONKEY_MAGIC: u32 = 0x4B44_4C4D;

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
    pub(super) fn decode_body(buf: &mut Bytes) -> Result<Self> {
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
    pub(super) fn encode_body(&self, dst: &mut impl BufMut, enc: TagEncoding) -> Result<()> {
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
