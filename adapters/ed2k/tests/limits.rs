//! Per-IP limits (issue 15) on the peer listener and the index server: a flood from
//! 127.0.0.1 is capped to its pending handshakes and then backed off, while 127.0.0.2 still
//! says hello and logs in; a peer asking faster than the request rate is dropped.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use bytes::BytesMut;
use junction_core::Network;
use junction_ed2k::wire::peer::Hello;
use junction_ed2k::wire::server::LoginRequest;
use junction_ed2k::wire::{ClientId, Frame, PeerMessage, ServerMessage, TagEncoding};
use junction_ed2k::{Adapter, Config, IndexServer, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "../../core/testing/per_ip.rs"]
mod per_ip;
use per_ip::{connect_from, flood, limits};

fn bytes(f: &Frame) -> Vec<u8> {
    let mut b = BytesMut::new();
    f.encode(&mut b).unwrap();
    b.to_vec()
}

fn peer_msg(m: PeerMessage) -> Vec<u8> {
    bytes(&m.to_frame(TagEncoding::Classic).unwrap())
}

/// The next frame from `s`, or `None` once it is closed.
async fn next_frame(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Frame> {
    loop {
        if let Some(f) = junction_ed2k::wire::frame::decode(buf).unwrap() {
            return Some(f);
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

fn hello() -> PeerMessage {
    PeerMessage::Hello(Hello {
        user_hash: [7; 16],
        client_id: ClientId(0x0200_007f),
        port: 4662,
        tags: Vec::new(),
        server: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        trailer: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_is_capped_and_backed_off() {
    let a = Adapter::start(Config {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        limits: limits(),
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = a.peer_addr().unwrap();
    flood(addr).await;

    // Another address says hello and gets the answer.
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
    other.write_all(&peer_msg(hello())).await.unwrap();
    let mut buf = BytesMut::new();
    let f = next_frame(&mut other, &mut buf).await.expect("an answer");
    assert!(matches!(
        PeerMessage::decode_frame(&f),
        Ok(PeerMessage::HelloAnswer(_))
    ));

    // A third asks for its public IP over and over: after its burst it is dropped.
    let mut fast = connect_from(Ipv4Addr::new(127, 0, 0, 3), addr).await;
    fast.write_all(&peer_msg(hello())).await.unwrap();
    let mut buf = BytesMut::new();
    assert!(next_frame(&mut fast, &mut buf).await.is_some());
    let mut answered = 0;
    for _ in 0..50 {
        if fast
            .write_all(&peer_msg(PeerMessage::PublicIpRequest))
            .await
            .is_err()
        {
            break;
        }
        match next_frame(&mut fast, &mut buf).await {
            Some(_) => answered += 1,
            None => break,
        }
    }
    assert_eq!(answered, 10, "requests answered before the drop");
    a.shutdown().await;
}

/// An index server at the test limits (burst 10, then 5 requests a second).
async fn limited_server() -> IndexServer {
    IndexServer::start(ServerConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse().unwrap(),
        connect_back: false,
        limits: limits(),
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

/// A login from `from` with user hash `[hash; 16]`: the connection once the server has
/// given it an ID, or `None`.
async fn log_in(server: &IndexServer, from: Ipv4Addr, hash: u8) -> Option<TcpStream> {
    let mut c = connect_from(from, server.local_addr()).await;
    let login = ServerMessage::LoginRequest(LoginRequest {
        user_hash: [hash; 16],
        client_id: ClientId(0),
        port: 0,
        tags: Vec::new(),
    });
    let frame = bytes(&login.to_frame(TagEncoding::Classic).unwrap());
    c.write_all(&frame).await.ok()?;
    let mut buf = BytesMut::new();
    while let Some(f) = next_frame(&mut c, &mut buf).await {
        if let Ok(ServerMessage::IdChange(_)) = ServerMessage::decode_frame(&f) {
            return Some(c);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_server_caps_one_address_and_serves_another() {
    let server = limited_server().await;
    flood(server.local_addr()).await;
    let other = log_in(&server, Ipv4Addr::new(127, 0, 0, 2), 9).await;
    assert!(other.is_some(), "no id from the server");
    assert_eq!(server.stats().users, 1);
    server.shutdown();
}

/// A logged-in client asking the index server faster than its request rate (here a burst
/// of 10, then 5 a second) is dropped and its address backed off; another address logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_server_drops_a_client_over_its_request_rate() {
    use junction_ed2k::wire::server::SourceRequest;
    let server = limited_server().await;
    let fast = Ipv4Addr::new(127, 0, 0, 3);
    let mut c = log_in(&server, fast, 5)
        .await
        .expect("no id from the server");
    let ask = bytes(
        &ServerMessage::GetSources(vec![SourceRequest {
            hash: [1; 16],
            size: 1000,
        }])
        .to_frame(TagEncoding::Classic)
        .unwrap(),
    );
    let mut buf = BytesMut::new();
    let mut answered = 0;
    for _ in 0..50 {
        if c.write_all(&ask).await.is_err() {
            break;
        }
        // Each request is answered with its (empty) source list.
        let mut found = false;
        while let Some(f) = next_frame(&mut c, &mut buf).await {
            if let Ok(ServerMessage::FoundSources { .. }) = ServerMessage::decode_frame(&f) {
                found = true;
                break;
            }
        }
        if !found {
            break;
        }
        answered += 1;
    }
    assert!(
        (10..=12).contains(&answered),
        "{answered} requests answered"
    );
    let mut again = connect_from(fast, server.local_addr()).await;
    assert!(
        !per_ip::held(&mut again).await,
        "the address was let back in at once"
    );
    let other = log_in(&server, Ipv4Addr::new(127, 0, 0, 4), 6).await;
    assert!(other.is_some(), "another address could not log in");
    server.shutdown();
}
