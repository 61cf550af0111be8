//! The tracker client (HTTP and UDP, tiers, back-off, scrape) against the crate's tracker.

use std::time::{Duration, Instant};

use junction_bittorrent::net::tracker_client::{self, AnnounceError, AnnounceParams, Tiers};
use junction_bittorrent::tracker::Event;
use junction_bittorrent::{Config, InfoHash, PeerId, TrackerServer};

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
