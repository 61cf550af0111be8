//! Per-IP limits on the gRPC API and the HTTP fronts (issue 15): a flood from 127.0.0.2 is
//! capped to its pending handshakes and then backed off, while 127.0.0.3 is still served.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Endpoint;

#[path = "../../adapters/core/testing/per_ip.rs"]
#[allow(dead_code)]
mod per_ip;
use per_ip::{connect_from, flood_from, limits};

use crate::harness::http::Fronts;
use crate::harness::start_with;

const FLOODER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// Whether a gRPC call from `from` is answered.
async fn grpc_served(from: Ipv4Addr, to: std::net::SocketAddr) -> bool {
    let call = async {
        let ch = Endpoint::from_shared(format!("http://{to}"))?
            .local_address(Some(IpAddr::V4(from)))
            .connect()
            .await?;
        let r = GatewayClient::new(ch)
            .list_networks(pb::ListNetworksRequest::default())
            .await;
        Ok::<_, Box<dyn std::error::Error>>(r.is_ok())
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(5), call).await,
        Ok(Ok(true))
    )
}

/// The status line of `GET /metrics` from `from`; empty when the connection was closed.
async fn http_status(from: Ipv4Addr, to: std::net::SocketAddr) -> String {
    let reply = http_reply(from, to).await;
    reply.lines().next().unwrap_or("").to_owned()
}

/// The whole reply to `GET /metrics` from `from`; empty when the connection was closed.
async fn http_reply(from: Ipv4Addr, to: std::net::SocketAddr) -> String {
    let mut c = connect_from(from, to).await;
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {to}\r\nConnection: close\r\n\r\n");
    if c.write_all(req.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply).into_owned()
}

/// An address asking faster than its request rate (here a burst of 10, then 5 a second)
/// is answered at once, without reaching a handler: 429 with `Retry-After` on the HTTP
/// fronts, `RESOURCE_EXHAUSTED` on the gRPC API. Once it slows down it is served again;
/// another address and the host's own are served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_rate_are_refused_until_the_client_slows_down() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_with(dir.path(), vec![], |c| c.limits = limits()).await;
    let fronts = Fronts::serve(&gw, Duration::from_secs(5)).await;

    let mut replies = Vec::new();
    for _ in 0..14 {
        replies.push(http_reply(OTHER, fronts.addr).await);
    }
    let status = |r: &String| r.lines().next().unwrap_or("").to_owned();
    assert!(
        replies[..10]
            .iter()
            .all(|r| status(r).starts_with("HTTP/1.1 200"))
    );
    let refused = &replies[13];
    assert!(status(refused).starts_with("HTTP/1.1 429"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    assert!(
        refused.contains("too many requests from this address"),
        "{refused}"
    );
    let host = http_status(Ipv4Addr::LOCALHOST, fronts.addr).await;
    assert!(host.starts_with("HTTP/1.1 200"), "127.0.0.1: {host:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = http_status(OTHER, fronts.addr).await;
    assert!(
        again.starts_with("HTTP/1.1 200"),
        "after a pause: {again:?}"
    );

    let ch = Endpoint::from_shared(format!("http://{}", gw.addr))
        .unwrap()
        .local_address(Some(IpAddr::V4(OTHER)))
        .connect()
        .await
        .unwrap();
    let mut client = GatewayClient::new(ch);
    let mut codes = Vec::new();
    for _ in 0..14 {
        let r = client
            .list_networks(pb::ListNetworksRequest::default())
            .await;
        codes.push(r.err().map(|e| e.code()));
    }
    assert!(codes[..10].iter().all(Option::is_none), "{codes:?}");
    assert_eq!(codes[13], Some(tonic::Code::ResourceExhausted), "{codes:?}");
    assert!(grpc_served(Ipv4Addr::LOCALHOST, gw.addr).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = client
        .list_networks(pb::ListNetworksRequest::default())
        .await;
    assert!(r.is_ok(), "after a pause: {r:?}");
    fronts.stop().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_a_flooding_address_and_serves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start_with(dir.path(), vec![], |c| c.limits = limits()).await;
    flood_from(FLOODER, gw.addr).await;
    assert!(
        !grpc_served(FLOODER, gw.addr).await,
        "a backed-off address was served"
    );
    assert!(
        grpc_served(OTHER, gw.addr).await,
        "another address was refused"
    );
    // The client connected before the flood is still answered.
    let req = pb::ListNetworksRequest::default();
    gw.client.list_networks(req).await.unwrap();
    // The host's own address is not limited: a script calling the CLI in a loop (here
    // past the burst and the pending cap that backed 127.0.0.2 off) is always served.
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(connect_from(Ipv4Addr::LOCALHOST, gw.addr).await);
    }
    for _ in 0..10 {
        assert!(
            grpc_served(Ipv4Addr::LOCALHOST, gw.addr).await,
            "127.0.0.1 was refused"
        );
    }
    drop(idle);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_refuses_a_flooding_address_and_serves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_with(dir.path(), vec![], |c| c.limits = limits()).await;
    let fronts = Fronts::serve(&gw, Duration::from_secs(5)).await;
    flood_from(FLOODER, fronts.addr).await;
    assert_eq!(
        http_status(FLOODER, fronts.addr).await,
        "",
        "a backed-off address was served"
    );
    let other = http_status(OTHER, fronts.addr).await;
    assert!(
        other.starts_with("HTTP/1.1 200"),
        "another address: {other:?}"
    );
    fronts.stop().await;
    gw.stop().await;
}

/// Connections that never send a byte hold an address's pending slots only until the
/// first-byte timeout; then they are closed and the address is served again, on the gRPC
/// API and on the HTTP fronts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_first_byte_timeout() {
    const SILENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
    let dir = tempfile::tempdir().unwrap();
    let gw = start_with(dir.path(), vec![], |c| {
        c.limits = limits();
        c.first_byte_timeout = Duration::from_secs(3);
    })
    .await;
    let fronts = Fronts::serve(&gw, Duration::from_secs(5)).await;
    for to in [gw.addr, fronts.addr] {
        let mut silent = Vec::new();
        for _ in 0..4 {
            silent.push(connect_from(SILENT, to).await);
        }
        let mut fifth = connect_from(SILENT, to).await;
        assert!(
            !per_ip::held(&mut fifth).await,
            "{to}: a fifth pending connection was held"
        );
        for s in &mut silent {
            assert!(per_ip::held(s).await, "{to}: closed before the timeout");
        }
        // The checks above took about 1.5 s of the 3.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        for s in &mut silent {
            assert!(
                !per_ip::held(s).await,
                "{to}: a silent connection outlived the timeout"
            );
        }
    }
    assert!(
        grpc_served(SILENT, gw.addr).await,
        "gRPC refused the address afterwards"
    );
    let status = http_status(SILENT, fronts.addr).await;
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "HTTP afterwards: {status:?}"
    );
    fronts.stop().await;
    gw.stop().await;
}

/// Writes `bytes` to `c` one a second, for at most `seconds`, reading past what the
/// server sends (a 408, a response); how long until the server closed the connection, if
/// it did.
async fn dribble(c: &mut tokio::net::TcpStream, bytes: &[u8], seconds: usize) -> Option<Duration> {
    let start = tokio::time::Instant::now();
    for i in 0..seconds {
        if let Some(b) = bytes.get(i)
            && c.write_all(&[*b]).await.is_err()
        {
            return Some(start.elapsed());
        }
        let mut buf = [0u8; 1024];
        let ended = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match c.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        if ended.is_ok() {
            return Some(start.elapsed());
        }
    }
    None
}

/// Slow clients are closed within the header timeout (the first-byte timeout, 3 s here),
/// though each byte comes well within the first-byte timeout of the one before: on the
/// HTTP fronts one dribbling an HTTP/1 request head that never ends, one dribbling the
/// HTTP/2 preface, and a kept-alive HTTP/1 connection left idle after its response; on the
/// gRPC API one dribbling the HTTP/2 preface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_within_the_header_timeout() {
    const SLOW: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
    let dir = tempfile::tempdir().unwrap();
    let gw = start_with(dir.path(), vec![], |c| {
        c.first_byte_timeout = Duration::from_secs(3);
    })
    .await;
    let fronts = Fronts::serve(&gw, Duration::from_secs(5)).await;
    let head: Vec<u8> = b"GET /metrics HTTP/1.1\r\nHost: junction\r\n"
        .iter()
        .chain(b"X-Slow: 1\r\n".iter().cycle())
        .copied()
        .take(15)
        .collect();
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut kept = connect_from(SLOW, fronts.addr).await;
    let req = b"GET /metrics HTTP/1.1\r\nHost: junction\r\n\r\n";
    kept.write_all(req).await.unwrap();
    let cases = [
        (
            "an HTTP/1 head",
            connect_from(SLOW, fronts.addr).await,
            head,
        ),
        (
            "the HTTP/2 preface",
            connect_from(SLOW, fronts.addr).await,
            preface.to_vec(),
        ),
        ("an idle kept-alive connection", kept, Vec::new()),
        (
            "the gRPC API's preface",
            connect_from(SLOW, gw.addr).await,
            preface.to_vec(),
        ),
    ];
    let runs = cases
        .into_iter()
        .map(|(what, mut c, bytes)| async move { (what, dribble(&mut c, &bytes, 15).await) });
    for (what, closed) in futures::future::join_all(runs).await {
        let closed = closed.unwrap_or_else(|| panic!("{what}: held for 15 s"));
        assert!(
            closed < Duration::from_secs(6),
            "{what}: closed after {closed:?}"
        );
    }
    fronts.stop().await;
    gw.stop().await;
}

/// A peer dropped for asking faster than the request rate is backed off as well (here on
/// Gnutella's HTTP uploads): its next connection is closed at once, so it cannot reconnect
/// and ask again, while another address is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_dropped_for_its_request_rate_is_backed_off() {
    use junction_core::Network;
    const FAST: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);
    let up = gnutella::Adapter::start(gnutella::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        limits: limits(),
        ..gnutella::Config::default()
    })
    .await
    .unwrap();
    let addr = up.local_addr();
    // HEAD requests for a file it does not have: each answered 404 on the same connection.
    let req = b"HEAD /uri-res/N2R?urn:sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\n\r\n";
    let answered = |from: Ipv4Addr, count: usize| async move {
        let mut c = connect_from(from, addr).await;
        let mut answered = 0;
        for _ in 0..count {
            if c.write_all(req).await.is_err() {
                break;
            }
            let mut b = [0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(5), c.read(&mut b)).await {
                Ok(Ok(n)) if n > 0 => answered += 1,
                _ => break,
            }
        }
        answered
    };
    let fast = answered(FAST, 50).await;
    assert!((10..=12).contains(&fast), "{fast} requests answered");
    let mut again = connect_from(FAST, addr).await;
    assert!(
        !per_ip::held(&mut again).await,
        "the address was let back in at once"
    );
    assert_eq!(answered(OTHER, 3).await, 3, "another address was refused");
    up.shutdown().await;
}

/// An HTTP/2 client that answers the server's pings and settings but never asks anything
/// (or asked once, long ago) is asked to leave once its connection is older than the
/// maximum age: a GOAWAY, then the close. On the gRPC API and on the HTTP fronts, whose
/// first-request timeout is set far off here so that only the age can close it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_that_only_answers_pings_is_closed_at_the_maximum_age() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_with(dir.path(), vec![], |c| {
        c.first_byte_timeout = Duration::from_secs(60);
        c.max_connection_age = Duration::from_secs(2);
    })
    .await;
    let fronts = Fronts::serve(&gw, Duration::from_secs(5)).await;
    for to in [gw.addr, fronts.addr] {
        let t = tokio::time::Instant::now();
        let (goaway, closed) =
            h2_idle(connect_from(OTHER, to).await, Duration::from_secs(15)).await;
        assert!(goaway && closed, "{to}: goaway {goaway}, closed {closed}");
        let secs = t.elapsed().as_secs_f64();
        assert!(
            (1.5..10.0).contains(&secs),
            "{to}: closed after {secs:.1} s"
        );
    }
    fronts.stop().await;
    gw.stop().await;
}

/// Plays an HTTP/2 client that sends its preface and settings, then only acknowledges what
/// the server sends (settings, pings) for up to `limit`: whether a GOAWAY came, and
/// whether the server closed the connection.
async fn h2_idle(mut c: tokio::net::TcpStream, limit: Duration) -> (bool, bool) {
    const SETTINGS: u8 = 4;
    const PING: u8 = 6;
    const GOAWAY: u8 = 7;
    let frame = |kind: u8, flags: u8, payload: &[u8]| {
        let len = (payload.len() as u32).to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    };
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(SETTINGS, 0, &[]));
    c.write_all(&hello).await.unwrap();
    let deadline = tokio::time::Instant::now() + limit;
    let mut goaway = false;
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let n = match tokio::time::timeout_at(deadline, c.read(&mut chunk)).await {
            Err(_) => return (goaway, false),
            Ok(Ok(0) | Err(_)) => return (goaway, true),
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 9 {
            let len = usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let payload = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            let reply = match kind {
                SETTINGS if flags & 1 == 0 => frame(SETTINGS, 1, &[]),
                PING if flags & 1 == 0 => frame(PING, 1, &payload),
                GOAWAY => {
                    goaway = true;
                    continue;
                }
                _ => continue,
            };
            let _ = c.write_all(&reply).await;
        }
    }
}
