//! The address lists Gnutella carries in handshake and HTTP headers (`X-Try`, `X-Alt`,
//! `X-Node`...), where the port defaults to 6346. The header list itself is core's
//! [`Headers`].

use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use junction_core::http::Headers;

/// Default Gnutella port, implied when an address list omits the port.
pub const DEFAULT_PORT: u16 = 6346;

/// The `ip[:port]` items of every `name` header (port 6346 when omitted). Items that are
/// not IPv4 addresses (host names, garbage) are skipped, not fatal: such lists are
/// advisory.
pub fn addr_list(headers: &Headers, name: &str) -> Vec<SocketAddrV4> {
    headers.list(name).filter_map(parse_addr_v4).collect()
}

/// Parse `a.b.c.d[:port]`, implying port 6346.
pub fn parse_addr_v4(s: &str) -> Option<SocketAddrV4> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddrV4>() {
        return Some(a);
    }
    s.parse().ok().map(|ip| SocketAddrV4::new(ip, DEFAULT_PORT))
}

/// Parse `ip:port` (IPv4 or `[v6]:port`) or a bare IP (port 6346).
pub fn parse_socket_addr(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    s.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_lists_imply_the_gnutella_port() {
        let h = Headers::new()
            .with("x-try", "1.2.3.4:5, 6.7.8.9, host.example")
            .with("X-Try", "10.0.0.1:99");
        assert_eq!(
            addr_list(&h, "X-Try"),
            vec![
                "1.2.3.4:5".parse().unwrap(),
                "6.7.8.9:6346".parse().unwrap(),
                "10.0.0.1:99".parse().unwrap()
            ]
        );
        assert_eq!(
            parse_socket_addr("::1"),
            Some("[::1]:6346".parse().unwrap())
        );
    }
}
