//! Compact peer addresses (BEP 23, BEP 7): 4-byte IPv4 or 16-byte IPv6, then a 2-byte
//! port, all in network byte order. Used by trackers, PEX and the DHT.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::error::CompactError;

pub const V4_LEN: usize = 6;
pub const V6_LEN: usize = 18;

/// Splits `data` into `entry`-sized chunks, refusing a ragged tail.
pub(crate) fn chunks(
    data: &[u8],
    entry: usize,
) -> Result<std::slice::ChunksExact<'_, u8>, CompactError> {
    if !data.len().is_multiple_of(entry) {
        return Err(CompactError {
            len: data.len(),
            entry,
        });
    }
    Ok(data.chunks_exact(entry))
}

fn port(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Decodes one 6-byte IPv4 entry.
pub fn v4_from(b: &[u8; 6]) -> SocketAddrV4 {
    let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    SocketAddrV4::new(ip, port([b[4], b[5]]))
}

/// Decodes one 18-byte IPv6 entry.
pub fn v6_from(b: &[u8; 18]) -> SocketAddrV6 {
    let mut ip = [0; 16];
    ip.copy_from_slice(&b[..16]);
    SocketAddrV6::new(Ipv6Addr::from(ip), port([b[16], b[17]]), 0, 0)
}

/// Decodes a string of 6-byte IPv4 entries.
pub fn decode_v4(data: &[u8]) -> Result<Vec<SocketAddrV4>, CompactError> {
    Ok(chunks(data, V4_LEN)?
        .filter_map(|c| c.try_into().ok().map(v4_from))
        .collect())
}

/// Decodes a string of 18-byte IPv6 entries.
pub fn decode_v6(data: &[u8]) -> Result<Vec<SocketAddrV6>, CompactError> {
    Ok(chunks(data, V6_LEN)?
        .filter_map(|c| c.try_into().ok().map(v6_from))
        .collect())
}

/// Decodes a single entry of either size (DHT `values` items).
pub fn decode_one(data: &[u8]) -> Result<SocketAddr, CompactError> {
    if let Ok(b) = <&[u8; V4_LEN]>::try_from(data) {
        Ok(v4_from(b).into())
    } else if let Ok(b) = <&[u8; V6_LEN]>::try_from(data) {
        Ok(v6_from(b).into())
    } else {
        Err(CompactError {
            len: data.len(),
            entry: V4_LEN,
        })
    }
}

/// Decodes a bare compact IP (4 or 16 bytes), e.g. BEP 10 `yourip`.
pub fn decode_ip(data: &[u8]) -> Option<IpAddr> {
    if let Ok(b) = <[u8; 4]>::try_from(data) {
        Some(Ipv4Addr::from(b).into())
    } else if let Ok(b) = <[u8; 16]>::try_from(data) {
        Some(Ipv6Addr::from(b).into())
    } else {
        None
    }
}

pub fn encode_ip(ip: &IpAddr, out: &mut Vec<u8>) {
    match ip {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

/// Appends one entry: 6 bytes for IPv4, 18 for IPv6.
pub fn encode(addr: &SocketAddr, out: &mut Vec<u8>) {
    encode_ip(&addr.ip(), out);
    out.extend_from_slice(&addr.port().to_be_bytes());
}

pub fn encode_v4(addrs: &[SocketAddrV4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(addrs.len() * V4_LEN);
    addrs.iter().for_each(|a| encode(&(*a).into(), &mut out));
    out
}

pub fn encode_v6(addrs: &[SocketAddrV6]) -> Vec<u8> {
    let mut out = Vec::with_capacity(addrs.len() * V6_LEN);
    addrs.iter().for_each(|a| encode(&(*a).into(), &mut out));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_network_order() {
        let peers = decode_v4(&[10, 0, 0, 1, 0x1A, 0xE1, 127, 0, 0, 1, 0, 80]).unwrap();
        assert_eq!(peers[0], "10.0.0.1:6881".parse().unwrap());
        assert_eq!(peers[1], "127.0.0.1:80".parse().unwrap());
        let one: SocketAddr = "[::1]:6881".parse().unwrap();
        let mut buf = Vec::new();
        encode(&one, &mut buf);
        assert_eq!(buf.len(), 18);
        assert_eq!(decode_one(&buf).unwrap(), one);
    }

    #[test]
    fn ragged_lists_are_errors() {
        assert_eq!(decode_v4(&[0; 7]), Err(CompactError { len: 7, entry: 6 }));
        assert!(decode_v6(&[0; 17]).is_err());
        assert!(decode_one(&[0; 5]).is_err());
        assert_eq!(decode_ip(&[1, 2, 3]), None);
    }
}
