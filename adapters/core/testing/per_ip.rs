//! Shared by the adapters' per-IP limit tests (included with `#[path]`): the limits they
//! run under, connections from a chosen loopback address, and the flood every listener
//! must cap and back off.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use junction_core::limit::PeerLimits;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// Small limits: 4 pending handshakes and 8 connections per IP, a burst of 40 new
/// connections then 1 a second, a back-off of a minute; 10 requests then 5 a second.
pub fn limits() -> PeerLimits {
    PeerLimits {
        max_conns_per_ip: 8,
        max_pending_per_ip: 4,
        new_conns_per_sec: 1,
        new_conns_burst: 40,
        backoff_base: Duration::from_secs(60),
        requests_per_sec: 5,
        requests_burst: 10,
        ..PeerLimits::default()
    }
}

/// Connects to `to` from the loopback address `from` (any of 127.0.0.0/8).
pub async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind((from, 0).into()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), s.connect(to))
        .await
        .expect("connect timed out")
        .unwrap()
}

/// Whether `s` is still held open: a read that waits means open; an end of stream or a
/// reset means it was closed. What a server sends first (an HTTP/2 server's settings) is
/// read past.
pub async fn held(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 256];
    let closed = async {
        while let Ok(n) = s.read(&mut b).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_millis(300), closed)
        .await
        .is_err()
}

/// Floods `addr` from 127.0.0.1 under [`limits`]: see [`flood_from`].
pub async fn flood(addr: SocketAddr) {
    flood_from(Ipv4Addr::LOCALHOST, addr).await;
}

/// Floods `addr` from `one` under [`limits`]: of 30 idle connections 4 are held (pending
/// handshakes) and the rest closed at once; 20 more pass the burst, and then even a single
/// new one is closed, though the idle ones are gone.
pub async fn flood_from(one: Ipv4Addr, addr: SocketAddr) {
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(connect_from(one, addr).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut open = 0;
    for s in &mut idle {
        open += usize::from(held(s).await);
    }
    assert_eq!(open, 4, "idle connections to {addr} held from one address");
    for _ in 0..20 {
        drop(connect_from(one, addr).await);
    }
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut late = connect_from(one, addr).await;
    assert!(!held(&mut late).await, "{addr} served a backed-off address");
}
