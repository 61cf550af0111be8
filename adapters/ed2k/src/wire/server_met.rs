//! `server.met`: `<version 1><count u32>` then per server `<ip 4><port u16><tag list>`.

use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::{Buf, BufMut};

use crate::error::{Result, WireError};
use crate::wire::codec::{WireString, check_count, count_as, get_ipv4, get_u8, get_u16, get_u32};
use crate::wire::tag::{self, Tag, TagEncoding, TagsExt, st};

/// Header byte eMule writes.
pub const VERSION_EMULE: u8 = 0xE0;
/// `MET_HEADER`, also accepted.
pub const VERSION_MET: u8 = 0x0E;

/// Smallest encoded entry: ip + port + empty tag count.
const MIN_ENTRY_LEN: usize = 4 + 2 + 4;

/// One server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMetEntry {
    /// IP `0.0.0.0` for dynamic-IP servers (see [`ServerMetEntry::dyn_ip`]).
    pub addr: SocketAddrV4,
    /// Classic tags: `ST_SERVERNAME`, `ST_DESCRIPTION`, `"users"`, …
    pub tags: Vec<Tag>,
}

impl ServerMetEntry {
    pub fn new(addr: SocketAddrV4) -> Self {
        Self {
            addr,
            tags: Vec::new(),
        }
    }
    pub fn name(&self) -> Option<&WireString> {
        self.tags.string_of(st::SERVERNAME)
    }
    pub fn description(&self) -> Option<&WireString> {
        self.tags.string_of(st::DESCRIPTION)
    }
    /// Host name of a dynamic-IP server.
    pub fn dyn_ip(&self) -> Option<&WireString> {
        self.tags.string_of(st::DYNIP)
    }
}

/// A whole `server.met` file.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMet {
    pub version: u8,
    pub servers: Vec<ServerMetEntry>,
}

impl Default for ServerMet {
    fn default() -> Self {
        Self {
            version: VERSION_EMULE,
            servers: Vec::new(),
        }
    }
}

impl ServerMet {
    /// Parses a file's bytes; the count is bounded by the bytes present.
    pub fn decode(mut buf: impl Buf) -> Result<Self> {
        let buf = &mut buf;
        let version = get_u8(buf, "server.met header")?;
        if version != VERSION_EMULE && version != VERSION_MET {
            return Err(WireError::InvalidValue {
                what: "server.met header byte (expected 0xE0 or 0x0E)",
                value: version.into(),
            });
        }
        let count = get_u32(buf, "server.met count")?;
        let n = check_count(
            count.into(),
            MIN_ENTRY_LEN,
            buf.remaining(),
            "server.met entry",
        )?;
        let mut servers = Vec::with_capacity(n);
        for _ in 0..n {
            let ip: Ipv4Addr = get_ipv4(buf, "server.met entry")?;
            let port = get_u16(buf, "server.met entry")?;
            let tags = tag::decode_list(buf)?;
            servers.push(ServerMetEntry {
                addr: SocketAddrV4::new(ip, port),
                tags,
            });
        }
        Ok(Self { version, servers })
    }

    /// Writes the file (classic tags, as every reader understands).
    pub fn encode(&self, dst: &mut impl BufMut) -> Result<()> {
        dst.put_u8(self.version);
        let n: u32 = count_as(self.servers.len(), "server.met entries", u32::MAX as usize)?;
        dst.put_u32_le(n);
        for s in &self.servers {
            dst.put_slice(&s.addr.ip().octets());
            dst.put_u16_le(s.addr.port());
            tag::encode_list(&s.tags, dst, TagEncoding::Classic)?;
        }
        Ok(())
    }

    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TagValue;

    #[test]
    fn byte_layout_and_roundtrip() {
        let met = ServerMet {
            version: VERSION_EMULE,
            servers: vec![ServerMetEntry {
                addr: SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1), 4661),
                tags: vec![
                    Tag::string(st::SERVERNAME, "lab"),
                    Tag::named(st::USERS, TagValue::U32(7)),
                ],
            }],
        };
        let bytes = met.to_vec().unwrap();
        let want: Vec<u8> = [
            &[0xE0, 1, 0, 0, 0, 127, 0, 0, 1, 0x35, 0x12, 2, 0, 0, 0][..],
            &[0x02, 1, 0, 0x01, 3, 0, b'l', b'a', b'b'],
            &[0x03, 5, 0, b'u', b's', b'e', b'r', b's', 7, 0, 0, 0],
        ]
        .concat();
        assert_eq!(bytes, want);
        let back = ServerMet::decode(&bytes[..]).unwrap();
        assert_eq!(back, met);
        assert_eq!(back.servers[0].name().unwrap().to_string(), "lab");
    }

    #[test]
    fn bounded_and_checked() {
        // Count claims 4 billion servers in 10 bytes.
        let bad = [0xE0, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0];
        assert!(matches!(
            ServerMet::decode(&bad[..]),
            Err(WireError::CountTooLarge { .. })
        ));
        assert!(ServerMet::decode(&[0x55, 0, 0, 0, 0][..]).is_err());
        assert!(ServerMet::decode(&[0x0E, 1, 0, 0, 0, 1, 2, 3][..]).is_err());
        assert_eq!(
            ServerMet::decode(&[0x0E, 0, 0, 0, 0][..]).unwrap().servers,
            vec![]
        );
    }
}
