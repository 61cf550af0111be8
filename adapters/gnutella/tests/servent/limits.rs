//! Per-IP limits (issue 15): a flood from 127.0.0.1 is capped to its pending handshakes and
//! then backed off, while 127.0.0.2 still downloads; a connection that sends HTTP requests
//! faster than the request rate is dropped.

use std::net::Ipv4Addr;
use std::time::Duration;

use junction_core::{HashKind, Network};
use junction_gnutella::{Adapter, Sha1Hash};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "../../../core/testing/per_ip.rs"]
mod per_ip;
use per_ip::{connect_from, flood, limits};

use crate::net::*;

/// Reads one whole response to a `GET` with a body of `len` bytes; returns head and body.
async fn response(s: &mut TcpStream, len: usize) -> (String, Vec<u8>) {
    let mut all = Vec::new();
    let mut b = vec![0u8; 64 * 1024];
    loop {
        if let Some(end) = all.windows(4).position(|w| w == b"\r\n\r\n")
            && all.len() >= end + 4 + len
        {
            let head = String::from_utf8_lossy(&all[..end]).to_string();
            return (head, all[end + 4..end + 4 + len].to_vec());
        }
        let n = within("response", 5, s.read(&mut b)).await.unwrap();
        assert!(n > 0, "closed after {} bytes", all.len());
        all.extend_from_slice(&b[..n]);
    }
}

#[tokio::test]
async fn a_flood_from_one_address_is_capped_and_backed_off() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = make_file(dir.path(), "limits.bin", 100_000, 7);
    let up = Adapter::start(junction_gnutella::Config {
        limits: limits(),
        ..cfg(true, &[])
    })
    .await
    .unwrap();
    let id = share(&up, &path, "limits.bin").await;
    let urn = format!(
        "urn:sha1:{}",
        Sha1Hash(id.get(HashKind::Sha1).unwrap().try_into().unwrap()).to_base32()
    );
    let addr = up.local_addr();
    flood(addr).await;

    // Another address still downloads.
    let get = format!("GET /uri-res/N2R?{urn} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
    other.write_all(get.as_bytes()).await.unwrap();
    let (head, body) = response(&mut other, data.len()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == data, "the body differs from the file");

    // A third address asks too fast on one connection: after its burst it is dropped.
    let head_req = format!("HEAD /uri-res/N2R?{urn} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut fast = connect_from(Ipv4Addr::new(127, 0, 0, 3), addr).await;
    let mut answered = 0;
    for _ in 0..50 {
        if fast.write_all(head_req.as_bytes()).await.is_err() {
            break;
        }
        let mut b = vec![0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(5), fast.read(&mut b)).await {
            Ok(Ok(n)) if n > 0 => answered += 1,
            _ => break,
        }
    }
    assert!(
        (10..=12).contains(&answered),
        "{answered} HEAD requests answered before the drop"
    );
    up.shutdown().await;
}
