//! Source exchange: the peers another client knows for a file (`OP_ANSWERSOURCES[2]`).

use std::net::SocketAddrV4;

use bytes::{Buf, BufMut};

use crate::error::{Result, WireError};
use crate::wire::codec::{
    ClientId, Hash16, check_count, count_as, get_hash, get_ipv4, get_u8, get_u16, get_u32,
};

/// Hard cap on `OP_ANSWERSOURCES2` entries (eMule sends at most 501).
pub const MAX_EXCHANGE_SOURCES: usize = 501;

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
