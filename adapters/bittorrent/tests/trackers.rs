//! The tracker client (HTTP and UDP, tiers, back-off, scrape) against the crate's tracker.

use std::time::{Duration, Instant};

use junction_bittorrent::engine::tracker_client::{self, AnnounceError, AnnounceParams, Tiers};
use junction_bittorrent::wire::tracker::Event;
use junction_bittorrent::wire::tracker::udp;
use junction_bittorrent::{Config, InfoHash, PeerId, TrackerServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

#[path = "../../core/testing/per_ip.rs"]
#[allow(dead_code)]
mod per_ip;

fn params(peer: u8, port: u16, left: u64) -> AnnounceParams {
    AnnounceParams {
        info_hash: InfoHash([0x11; 20]),
        peer_id: PeerId([peer; 20]),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event: Event::Started,
        key: 7,
    }
}

fn cfg() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        udp_retry_base: Duration::from_millis(100),
        udp_tracker_attempts: 2,
        tracker_timeout: Duration::from_secs(2),
        ..Config::default()
    }
}

#[tokio::test]
async fn http_and_udp_announce_and_scrape() {
    let t = TrackerServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.1:0".parse().unwrap()),
        30,
    )
    .await
    .unwrap();
    let (http, udp) = (t.announce_url(), t.udp_url().unwrap());
    let c = cfg();
    // A seeder over HTTP, a leecher over UDP: each sees the other.
    let a = tracker_client::announce(&http, &params(1, 1001, 0), &c)
        .await
        .unwrap();
    assert!(a.peers.is_empty());
    assert_eq!(a.interval, Duration::from_secs(30));
    let b = tracker_client::announce(&udp, &params(2, 1002, 5), &c)
        .await
        .unwrap();
    assert_eq!(b.peers, vec!["127.0.0.1:1001".parse().unwrap()]);
    assert_eq!((b.seeders, b.leechers), (Some(1), Some(1)));
    let a = tracker_client::announce(&http, &params(1, 1001, 0), &c)
        .await
        .unwrap();
    assert_eq!(a.peers, vec!["127.0.0.1:1002".parse().unwrap()]);
    // Scrape both ways.
    let ih = InfoHash([0x11; 20]);
    for url in [&http, &udp] {
        let s = tracker_client::scrape(url, &[ih, InfoHash([0x22; 20])], &c)
            .await
            .unwrap();
        assert_eq!(s.len(), 2, "{url}");
        assert_eq!((s[0].1.complete, s[0].1.incomplete), (1, 1), "{url}");
        assert_eq!((s[1].1.complete, s[1].1.incomplete), (0, 0), "{url}");
    }
    // A stopped peer leaves the swarm.
    let mut stop = params(2, 1002, 5);
    stop.event = Event::Stopped;
    tracker_client::announce(&udp, &stop, &c).await.unwrap();
    let a = tracker_client::announce(&http, &params(1, 1001, 0), &c)
        .await
        .unwrap();
    assert!(a.peers.is_empty());
    // The tracker's `failure reason` comes back as an error.
    let e = tracker_client::announce(&http, &params(3, 0, 1), &c)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("port 0"), "{e}");
}

#[tokio::test]
async fn udp_back_off_gives_up_and_tiers_fall_through() {
    // Nothing listens here: two attempts, 100 ms then 200 ms.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("udp://{}", dead.local_addr().unwrap());
    drop(dead);
    let c = cfg();
    let t0 = Instant::now();
    let e = tracker_client::announce(&dead_url, &params(1, 1, 1), &c)
        .await
        .unwrap_err();
    assert!(matches!(e, AnnounceError::NoAnswer(2)), "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(250));
    let t = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 30)
        .await
        .unwrap();
    let mut tiers = Tiers::new(vec![
        vec![dead_url.clone(), "http://127.0.0.1:9/announce".into()],
        vec![t.announce_url()],
    ]);
    let (url, _) = tiers.announce(&params(1, 1, 1), &c).await.unwrap();
    assert_eq!(url, t.announce_url());
    assert!(
        tracker_client::announce("https://127.0.0.1/announce", &params(1, 1, 1), &c)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_udp_tracker_that_only_ever_answers_connect_is_given_up() {
    // Every packet gets a connect reply with its own transaction id (BEP 15 layout:
    // action 0, transaction id, connection id).
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}", sock.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            if n >= 16 {
                let mut reply = vec![0, 0, 0, 0];
                reply.extend_from_slice(&buf[12..16]);
                reply.extend_from_slice(&[9; 8]);
                let _ = sock.send_to(&reply, from).await;
            }
        }
    });
    let mut c = cfg();
    c.udp_retry_base = Duration::from_secs(5);
    let e = tokio::time::timeout(
        Duration::from_secs(5),
        tracker_client::announce(&url, &params(1, 1, 1), &c),
    )
    .await
    .expect("gives up at once, not after the back-off")
    .unwrap_err();
    assert!(matches!(e, AnnounceError::NoAnswer(_)), "{e}");
    server.abort();
}

/// An HTTP announce from `from` on a connection of its own; the reply's status line.
async fn http_announce(from: std::net::Ipv4Addr, to: std::net::SocketAddr) -> String {
    let mut c = per_ip::connect_from(from, to).await;
    let q = format!(
        "GET /announce?info_hash={ih}&peer_id={ih}&port=1&left=0 HTTP/1.0\r\n\r\n",
        ih = "%11".repeat(20)
    );
    c.write_all(q.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// `n` UDP connect requests from `from` at once; how many were answered.
async fn udp_connects(from: std::net::Ipv4Addr, to: std::net::SocketAddr, n: u32) -> usize {
    let s = UdpSocket::bind((from, 0)).await.unwrap();
    for transaction_id in 0..n {
        let req = udp::Request::Connect { transaction_id };
        s.send_to(&req.to_vec(), to).await.unwrap();
    }
    let (mut answered, mut buf) = (0, [0u8; 1500]);
    while let Ok(Ok(len)) = tokio::time::timeout(Duration::from_secs(1), s.recv(&mut buf)).await {
        let r = udp::Response::decode(&buf[..len], udp::Family::V4);
        answered += usize::from(matches!(r, Ok(udp::Response::Connect { .. })));
    }
    answered
}

/// Per-IP limits (issue 15): a flood of HTTP connections from 127.0.0.2 is capped and
/// backed off, and of its UDP requests only the burst is answered; 127.0.0.3 is served on
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_address_is_refused_and_the_others_served() {
    let limits = per_ip::limits();
    let lo = "127.0.0.1:0".parse().unwrap();
    let t = TrackerServer::bind_with_limits(lo, Some(lo), 30, &limits)
        .await
        .unwrap();
    let (one, other) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());
    per_ip::flood_from(one, t.http_addr()).await;
    assert_eq!(
        http_announce(one, t.http_addr()).await,
        "",
        "a backed-off address was answered"
    );
    assert!(
        http_announce(other, t.http_addr()).await.contains(" 200 "),
        "another address is refused"
    );
    let udp_addr = t.udp_addr().unwrap();
    let burst = limits.requests_burst as usize;
    assert_eq!(udp_connects(one, udp_addr, 50).await, burst);
    assert_eq!(udp_connects(other, udp_addr, 3).await, 3);
}
