//! The tasks: everything that owns a socket, a task or a timer. Torrents (picker, choker,
//! metadata fetch), peer connections, the DHT node, the tracker client and server, storage,
//! the HTTP client and Torznab feeds.

pub(crate) mod accept;
pub mod dht;
pub(crate) mod dht_tasks;
pub(crate) mod event_loop;
pub(crate) mod fetch;
pub mod http;
pub mod index;
pub(crate) mod metadata_cache;
pub mod peer;
pub(crate) mod requests;
pub(crate) mod share;
pub mod storage;
pub mod sync;
pub mod torrent;
pub(crate) mod torrent_task;
pub(crate) mod torrents;
pub mod torznab;
pub mod tracker_client;
pub mod tracker_server;

use std::net::{IpAddr, SocketAddr};

/// Connects to `addr` from `local` (the listen address's IP, when it is a specific one of
/// the same family), so peers and trackers see the address we accept connections on.
pub async fn tcp_connect(
    addr: SocketAddr,
    local: Option<IpAddr>,
) -> std::io::Result<tokio::net::TcpStream> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(ip) = local.filter(|ip| !ip.is_unspecified() && ip.is_ipv4() == addr.is_ipv4()) {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    sock.connect(addr).await
}
