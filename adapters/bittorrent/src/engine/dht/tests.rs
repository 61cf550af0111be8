use junction_core::limit::PeerLimits;

use super::*;

#[tokio::test]
async fn two_nodes_find_each_others_peers() {
    let cancel = CancellationToken::new();
    let lo = "127.0.0.1:0".parse().unwrap();
    let rates = || PeerLimits::default().ip_rates();
    let a = Dht::bind(lo, rates(), cancel.clone()).await.unwrap();
    let b = Dht::bind(lo, rates(), cancel.clone()).await.unwrap();
    let c = Dht::bind(lo, rates(), cancel.clone()).await.unwrap();
    b.bootstrap(&[a.local_addr().unwrap()]).await;
    c.bootstrap(&[b.local_addr().unwrap()]).await;
    assert!(a.node_count() >= 1 && b.node_count() >= 1 && c.node_count() >= 1);
    let ih = InfoHash([0x42; 20]);
    assert!(b.get_peers(ih, Some(4242)).await.is_empty());
    let peers = c.get_peers(ih, None).await;
    assert_eq!(
        peers,
        vec!["127.0.0.1:4242".parse().unwrap()],
        "c found b's announce"
    );
    // A bad token is refused.
    let r = c
        .query(
            a.local_addr().unwrap(),
            Method::AnnouncePeer {
                info_hash: ih,
                port: 1,
                token: b"forged".to_vec(),
                implied_port: false,
            },
        )
        .await;
    assert!(matches!(r, Err(DhtError::Remote(203, _))));
    // sample_infohashes (BEP 51) reports what was announced.
    let r = c
        .query(
            a.local_addr().unwrap(),
            Method::SampleInfohashes {
                target: NodeId([0; 20]),
                want: Default::default(),
            },
        )
        .await
        .unwrap();
    assert!(r.interval.is_some() && r.samples.is_some());
    cancel.cancel();
}

/// Pings `to` from `from` `n` times in a row, then sends a malformed packet; the
/// responses and the errors that came back within 1 s of silence.
async fn pings_answered(from: &UdpSocket, to: SocketAddr, n: u16) -> (usize, usize) {
    for i in 0..n {
        let m = Message {
            transaction_id: i.to_be_bytes().to_vec(),
            version: None,
            ip: None,
            read_only: true,
            body: Body::Query(Query {
                id: NodeId([7; 20]),
                method: Method::Ping,
            }),
        };
        from.send_to(&m.encode(), to).await.unwrap();
    }
    from.send_to(b"d1:t2:xxe", to).await.unwrap();
    let (mut answered, mut errors) = (0, 0);
    let mut buf = [0u8; 1500];
    while let Ok(Ok(len)) = tokio::time::timeout(Duration::from_secs(1), from.recv(&mut buf)).await
    {
        match Message::decode(&buf[..len]).map(|m| m.body) {
            Ok(Body::Response(_)) => answered += 1,
            Ok(Body::Error(_)) => errors += 1,
            _ => {}
        }
    }
    (answered, errors)
}

#[tokio::test]
async fn a_flooding_address_is_dropped_and_the_others_answered() {
    let cancel = CancellationToken::new();
    let limits = PeerLimits {
        requests_per_sec: 1,
        requests_burst: 10,
        ..PeerLimits::default()
    };
    let lo = "127.0.0.1:0".parse().unwrap();
    let node = Dht::bind(lo, limits.ip_rates(), cancel.clone())
        .await
        .unwrap();
    let to = node.local_addr().unwrap();
    // The burst is answered; the rest, malformed packet included, is dropped.
    let flooder = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    assert_eq!(pings_answered(&flooder, to, 50).await, (10, 0));
    // Another address is served, its malformed packet answered with an error.
    let other = UdpSocket::bind("127.0.0.3:0").await.unwrap();
    assert_eq!(pings_answered(&other, to, 5).await, (5, 1));
    cancel.cancel();
}

/// A node the user removed stays out of the table when another node names it in an
/// answer, and comes back when it is added again.
#[tokio::test]
async fn a_removed_node_stays_out_until_added_again() {
    let cancel = CancellationToken::new();
    let lo = "127.0.0.1:0".parse().unwrap();
    let rates = || PeerLimits::default().ip_rates();
    let a = Dht::bind(lo, rates(), cancel.clone()).await.unwrap();
    let b = Dht::bind(lo, rates(), cancel.clone()).await.unwrap();
    let c = Dht::bind(lo, rates(), cancel.clone()).await.unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    b.bootstrap(&[a_addr]).await;
    c.bootstrap(&[b_addr]).await;
    let knows_a = |d: &Dht| d.some_nodes(100).contains(&a_addr);
    assert!(knows_a(&c), "c learnt a from b");
    assert!(c.forget(a_addr));
    assert!(!knows_a(&c));
    // b names a again in its answers to c's lookups.
    c.bootstrap(&[b_addr]).await;
    c.get_peers(InfoHash([7; 20]), None).await;
    assert!(
        !knows_a(&c),
        "a removed node came back from another node's answer"
    );
    // Bootstrapping from configured nodes does not bring it back either.
    c.bootstrap(&[a_addr]).await;
    assert!(
        !knows_a(&c),
        "a removed node came back from the configured bootstrap"
    );
    c.add(a_addr).await;
    assert!(knows_a(&c), "added again, it is back");
    cancel.cancel();
}

/// A lookup cancelled half-way (its torrent stopped) leaves no waiter behind: unanswered
/// ones would fill the pending table.
#[tokio::test]
async fn a_dropped_query_leaves_the_pending_table() {
    let cancel = CancellationToken::new();
    let lo = "127.0.0.1:0".parse().unwrap();
    let node = Dht::bind(lo, PeerLimits::default().ip_rates(), cancel.clone())
        .await
        .unwrap();
    // a socket that never answers
    let silent = tokio::net::UdpSocket::bind(lo).await.unwrap();
    let to = silent.local_addr().unwrap();
    let q = node.query(to, Method::Ping);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), q)
            .await
            .is_err()
    );
    assert!(lock(&node.inner.pending).is_empty());
    cancel.cancel();
}
