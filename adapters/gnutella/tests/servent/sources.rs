//! Reaching sources: a push to a firewalled leaf, and a second source learnt from
//! alternate locations.

use futures::StreamExt;
use junction_core::query::parse;
use junction_core::{HashKind, Network, NetworkId, PeerAddr};
use junction_gnutella::{Adapter, Sha1Hash};

use crate::net::*;

#[tokio::test]
async fn push_download_from_firewalled_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = make_file(dir.path(), "echo-pushed.bin", 300_000, 3);
    let up = servent(true, &[]).await;
    // F announces an address nobody listens on: only a push reaches it.
    let f = firewalled_leaf(&[up.local_addr()]).await;
    // L knows it is reachable (a firewalled F does not answer firewalled queriers).
    let l = reachable_leaf(&[up.local_addr()]).await;
    share(&f, &path, "echo-pushed.bin").await;
    linked(&up, 2).await;
    eventually("tables", || detail_u64(&up, "leaf_qrp_tables") >= 2).await;
    let mut hits = l.search(parse("echo pushed").unwrap()).await.unwrap();
    let hit = within("hit", 10, hits.next()).await.unwrap().unwrap();
    // A push source: F's address is no use, its GUID is.
    assert!(
        matches!(&hit.locations[0].address,
            PeerAddr::Push { addr, .. } if addr.to_string() == "127.0.0.1:9"),
        "{:?}",
        hit.locations[0]
    );
    let (sink, _) = fetch_all(&l, &hit, 30).await;
    assert!(sink.is_verified());
    assert_eq!(sink.contents(), data);
    assert!(detail_u64(&f, "uploads") >= 1);
    for s in [&l, &f, &up] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn alternate_locations_add_a_second_source() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let len = 4 << 20;
    let (p1, data) = make_file(dir.path(), "golf.bin", len, 8);
    let p2 = dir.path().join("golf-copy.bin");
    std::fs::copy(&p1, &p2).unwrap();
    let u1 = servent(true, &[]).await;
    let u2 = servent(true, &[]).await;
    let id = share(&u1, &p1, "golf.bin").await;
    share(&u2, &p2, "golf.bin").await;
    let urn = format!(
        "urn:sha1:{}",
        Sha1Hash(id.get(HashKind::Sha1).unwrap().try_into().unwrap()).to_base32()
    );
    // Someone tells U1 (in X-Alt) that U2 has the file too.
    let mut s = tokio::net::TcpStream::connect(u1.local_addr())
        .await
        .unwrap();
    let req = format!(
        "GET /uri-res/N2R?{urn} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\nX-Alt: {}\r\nConnection: close\r\n\r\n",
        u2.local_addr()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    within("response", 5, s.read_to_end(&mut resp))
        .await
        .unwrap();
    assert!(resp.starts_with(b"HTTP/1.1 206"));

    // A leaf that only knows U1 learns U2 from U1's X-Alt and uses both.
    let leaf = Adapter::start(junction_gnutella::Config {
        chunk_size: 16 * 1024,
        ..cfg(false, &[])
    })
    .await
    .unwrap();
    let mut hit = junction_core::Hit::new(NetworkId::GNUTELLA, id.clone(), "golf.bin", len as u64);
    hit.locations = vec![junction_core::Source {
        network: NetworkId::GNUTELLA,
        address: u1.local_addr().into(),
        detail: None,
    }];
    let (sink, events) = fetch_all(&leaf, &hit, 60).await;
    assert!(sink.is_verified());
    assert_eq!(sink.contents(), data);
    assert!(
        events.contains(&junction_core::FetchEvent::Peers(2)),
        "{events:?}"
    );
    assert!(detail_u64(&u1, "uploads") >= 2);
    assert!(
        detail_u64(&u2, "uploads") >= 1,
        "the alternate location served too"
    );
    for a in [&leaf, &u1, &u2] {
        a.shutdown().await;
    }
}
