//! The servent on 127.0.0.1: routing between three Junction servents, a
//! search and a verified download, a replayed gtk-gnutella leaf, and Byes on
//! malformed input.

mod net;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::query::parse;
use junction_core::{ContentId, FetchRequest, HashKind, Network, NetworkId, SharedItem};
use junction_gnutella::wire::header::{Guid, Header, kind};
use junction_gnutella::wire::message::{Descriptor, Message, Query, QueryFlags};
use junction_gnutella::{Adapter, Sha1Hash};
use net::*;

async fn share(a: &Adapter, path: &std::path::Path, name: &str) -> ContentId {
    a.share(SharedItem {
        path: path.to_owned(),
        name: name.to_owned(),
        size: std::fs::metadata(path).unwrap().len(),
        id: ContentId::new(None),
        hashes: None,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn leaf_ultrapeer_leaf_routing() {
    let dir = tempfile::tempdir().unwrap();
    let (p_c, _) = make_file(dir.path(), "alpha-routing.bin", 5000, 1);
    let (p_d, _) = make_file(dir.path(), "zulu-other.bin", 5000, 2);
    let up = servent(true, &[]).await;
    let ua = up.local_addr();
    let a = servent(false, &[ua]).await;
    let c = servent(false, &[ua]).await;
    let d = servent(false, &[ua]).await;
    let id_c = share(&c, &p_c, "alpha-routing.bin").await;
    share(&d, &p_d, "zulu-other.bin").await;
    linked(&up, 3).await;
    eventually("leaf QRP tables at the ultrapeer", || {
        detail_u64(&up, "leaf_qrp_tables") >= 3
    })
    .await;
    assert_eq!(detail(&up, "mode"), "ultrapeer");
    assert_eq!(detail(&a, "mode"), "leaf");

    let mut hits = a.search(parse("alpha routing").unwrap()).await.unwrap();
    let hit = within("hit from leaf C", 10, hits.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hit.network, NetworkId::GNUTELLA);
    assert_eq!(hit.name, "alpha-routing.bin");
    assert_eq!(hit.size, 5000);
    assert_eq!(hit.id.get(HashKind::Sha1), id_c.get(HashKind::Sha1));
    assert_eq!(hit.locations.len(), 1);
    assert_eq!(hit.locations[0].address, c.local_addr().to_string());
    let detail_c = hit.locations[0].detail.clone().unwrap();
    assert!(
        detail_c.contains(&format!("guid={}", c.servent_guid())),
        "{detail_c}"
    );
    // Only the leaf whose table matches saw the query.
    assert_eq!(detail_u64(&c, "queries_seen"), 1);
    assert_eq!(detail_u64(&d, "queries_seen"), 0);
    assert_eq!(detail_u64(&a, "queries_seen"), 0);

    // A raw leaf replays a query GUID: the duplicate is dropped at the ultrapeer.
    let mut raw = RawPeer::leaf(ua).await;
    linked(&up, 4).await;
    let guid = Guid::modern(rand_bytes());
    let q = Descriptor::new(guid, 3, 0, Message::Query(Query::keywords("alpha routing")));
    raw.send(&q).await;
    let mut got_hit = false;
    while let Some(m) = raw.next(5).await {
        if let Message::QueryHit(h) = &m.message {
            assert_eq!(m.header.guid, guid, "hit routed back by GUID");
            assert_eq!(h.servent, c.servent_guid());
            got_hit = true;
            break;
        }
    }
    assert!(got_hit, "the hit came back by the reverse path");
    let dups = detail_u64(&up, "duplicates_dropped");
    raw.send(&q).await;
    eventually("duplicate dropped", || {
        detail_u64(&up, "duplicates_dropped") > dups
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        detail_u64(&c, "queries_seen"),
        2,
        "the duplicate never reached C"
    );
    while let Some(m) = raw.next(1).await {
        assert!(
            !matches!(m.message, Message::QueryHit(_)),
            "no second hit for a duplicate"
        );
    }
    for s in [&a, &c, &d, &up] {
        s.shutdown().await;
    }
}

fn rand_bytes() -> [u8; 16] {
    let mut b = [0u8; 16];
    for (i, x) in b.iter_mut().enumerate() {
        *x = (i as u8).wrapping_mul(37) ^ 0x5a ^ (std::process::id() as u8);
    }
    b
}

#[tokio::test]
async fn search_and_download_verified() {
    let dir = tempfile::tempdir().unwrap();
    let len = 3 * 1024 * 1024 + 12345;
    let (path, data) = make_file(dir.path(), "Bravo Payload.bin", len, 7);
    let up = servent(true, &[]).await;
    let leaf = Adapter::start(junction_gnutella::Config {
        chunk_size: 512 * 1024,
        ..cfg(false, &[up.local_addr()])
    })
    .await
    .unwrap();
    // The gateway passes the eD2k hash it knows; hits then carry it as `urn:ed2khash:`.
    let ed2k = [0x5a; 16];
    let mut known = ContentId::new(None);
    known.set(HashKind::Ed2k, &ed2k);
    let id = up
        .share(SharedItem {
            path: path.clone(),
            name: "Bravo Payload.bin".into(),
            size: len as u64,
            id: known,
            hashes: None,
        })
        .await
        .unwrap();
    assert_eq!(id.size, Some(len as u64));
    assert_eq!(
        id.get(HashKind::Sha1).unwrap(),
        Sha1Hash::digest(&data).0.as_slice()
    );
    linked(&leaf, 1).await;

    let mut hits = leaf.search(parse("bravo payload").unwrap()).await.unwrap();
    let hit = within("hit", 10, hits.next()).await.unwrap().unwrap();
    drop(hits);
    assert_eq!(hit.name, "Bravo Payload.bin");
    assert_eq!(hit.size, len as u64);
    assert_eq!(hit.locations[0].address, up.local_addr().to_string());
    assert_eq!(hit.id.get(HashKind::Ed2k), Some(ed2k.as_slice()));

    let sink = file_sink(hit.size);
    let mut ev = leaf
        .fetch(
            FetchRequest {
                id: hit.id.clone(),
                name: hit.name.clone(),
                size: hit.size,
                sources: hit.locations.clone(),
                trackers: vec![],
                torrent: None,
            },
            sink.clone(),
        )
        .await
        .unwrap();
    within("download", 30, async { while ev.next().await.is_some() {} }).await;
    assert!(sink.is_verified(), "whole file verified");
    assert_eq!(sink.contents(), data);
    assert!(
        leaf.status().bytes_in >= len as u64,
        "{:?} / {:?}",
        leaf.status(),
        up.status()
    );
    assert!(up.status().bytes_out >= len as u64);
    assert!(detail_u64(&up, "uploads") >= 7, "served in Range chunks");

    // By URN too: a search naming the SHA-1 finds the same file.
    let urn = format!("urn:sha1:{}", Sha1Hash::digest(&data).to_base32());
    let mut hits = leaf.search(parse(&urn).unwrap()).await.unwrap();
    let h2 = within("urn hit", 10, hits.next()).await.unwrap().unwrap();
    assert_eq!(h2.id.get(HashKind::Sha1), hit.id.get(HashKind::Sha1));
    leaf.shutdown().await;
    up.shutdown().await;
}

#[tokio::test]
async fn sha1_mismatch_is_not_verified() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "liar.bin", 70_000, 9);
    let up = servent(true, &[]).await;
    let leaf = servent(false, &[up.local_addr()]).await;
    // The uploader believes a wrong (cached) SHA-1 for the file.
    let wrong = Sha1Hash::digest(b"something else");
    up.share(SharedItem {
        path: path.clone(),
        name: "liar.bin".into(),
        size: 70_000,
        id: ContentId::new(Some(70_000)).with(HashKind::Sha1, &wrong.0),
        hashes: None,
    })
    .await
    .unwrap();
    linked(&leaf, 1).await;
    let sink = file_sink(70_000);
    let src = junction_core::Source {
        network: NetworkId::GNUTELLA,
        address: up.local_addr().to_string(),
        detail: None,
    };
    let mut ev = leaf
        .fetch(
            FetchRequest {
                id: ContentId::new(Some(70_000)).with(HashKind::Sha1, &wrong.0),
                name: "liar.bin".into(),
                size: 70_000,
                sources: vec![src],
                trackers: vec![],
                torrent: None,
            },
            sink.clone(),
        )
        .await
        .unwrap();
    let mut notes = Vec::new();
    within("download attempts", 30, async {
        while let Some(e) = ev.next().await {
            notes.push(e);
        }
    })
    .await;
    assert!(!sink.is_verified());
    assert!(
        sink.discarded() >= 70_000,
        "the liar's bytes failed the SHA-1 check"
    );
    assert!(
        notes
            .iter()
            .any(|n| format!("{n:?}").contains("failed a hash check")),
        "{notes:?}"
    );
    leaf.shutdown().await;
    up.shutdown().await;
}

/// The captured gtk-gnutella leaf (02b): its CONNECT block, its final block,
/// then its first deflated segment (QRP RESET + PATCH, Ping, vendor messages)
/// byte for byte. Later we continue its zlib stream with stored blocks.
#[tokio::test]
async fn ultrapeer_accepts_replayed_gtk_gnutella_leaf() {
    let hs = std::fs::read(data_path("02b-gtkg-leaf-connects-out.a2b.bin")).unwrap();
    let (connect, n1) = junction_gnutella::wire::handshake::Handshake::parse(&hs)
        .unwrap()
        .unwrap();
    let (fin, n2) = junction_gnutella::wire::handshake::Handshake::parse(&hs[n1..])
        .unwrap()
        .unwrap();
    assert!(connect.ultrapeer() == Some(false) && fin.content_deflate());
    let deflated = std::fs::read(data_path("02b-gtkg-leaf-connects-out.a2b.deflate.bin")).unwrap();
    let first_segment = &deflated[..317];
    assert_eq!(&first_segment[313..], &[0, 0, 0xff, 0xff]);

    let up = servent(true, &[]).await;
    let searcher = servent(false, &[up.local_addr()]).await;
    linked(&up, 1).await;
    let mut gtk = RawPeer::handshake(up.local_addr(), &hs[..n1], &hs[n1..n1 + n2]).await;
    // What a gtk-gnutella leaf requires of its ultrapeer.
    let r = &gtk.response;
    assert_eq!(r.ultrapeer(), Some(true));
    assert!(r.degree().unwrap_or(0) >= 16);
    assert!(r.dynamic_querying().is_some());
    assert!(
        r.content_deflate(),
        "we compress towards a leaf that accepts deflate"
    );
    gtk.send_raw(first_segment).await;
    // The searcher's (empty) table and the replayed one.
    eventually("the replayed QRP table", || {
        detail_u64(&up, "leaf_qrp_tables") >= 2
    })
    .await;

    // A query the table does not match is not routed to it.
    let mut miss = searcher
        .search(parse("nomatch zzzzq").unwrap())
        .await
        .unwrap();
    // A matching one is.
    let mut hits = searcher
        .search(parse("gnutcap bravo").unwrap())
        .await
        .unwrap();
    let query = loop {
        let d = within("query at the gtk leaf", 10, gtk.next(10))
            .await
            .expect("link open");
        if let Message::Query(q) = &d.message {
            break (d.header, q.clone());
        }
    };
    let (qh, q) = query;
    assert_eq!(q.text(), "gnutcap bravo", "only the matching query arrives");
    assert!(q.flags.has(QueryFlags::MARK));
    assert_eq!((qh.ttl, qh.hops), (1, 1));

    // The captured QueryHit, re-addressed to this query's GUID, continues the
    // leaf's zlib stream as a stored block.
    let cap = std::fs::read(data_path(
        "04f-query-ultrapeer-to-gtkg-leaf-and-hit.a2b.bin",
    ))
    .unwrap();
    let mut hit = cap.clone();
    hit[..16].copy_from_slice(&qh.guid.0);
    let len = hit.len() as u16;
    let mut stored = vec![0x00];
    stored.extend_from_slice(&len.to_le_bytes());
    stored.extend_from_slice(&(!len).to_le_bytes());
    stored.extend_from_slice(&hit);
    gtk.send_raw(&stored).await;
    let h = within("hit from the gtk leaf", 10, hits.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.name, "gnutcap-bravo.txt");
    assert_eq!(h.size, 65536);
    assert_eq!(
        h.id.get(HashKind::Sha1).map(hex::encode).as_deref(),
        Some("e03850af97b058ca4f24a8b51a4ac1bfe8f4391f")
    );
    assert_eq!(h.locations[0].address, "127.0.0.64:6464");
    assert!(h.locations[0].detail.as_deref().unwrap().contains("push=1"));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), miss.next())
            .await
            .is_err(),
        "no hit for the unmatched query"
    );
    // Shutdown says Bye to the leaf.
    up.shutdown().await;
    let mut bye = None;
    while let Some(d) = gtk.next(5).await {
        if let Message::Bye(b) = d.message {
            bye = Some(b);
            break;
        }
    }
    assert_eq!(bye.expect("Bye on shutdown").code, 200);
    searcher.shutdown().await;
}

fn data_path(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Sends `bad` on a fresh plain leaf link after the greeting ping, and expects
/// exactly one Bye with a 4xx code, then the link closed.
async fn expect_bye_only(up: &Adapter, bad: &[u8]) {
    let mut raw = RawPeer::leaf(up.local_addr()).await;
    let hello = raw.next(5).await.expect("greeting ping");
    assert_eq!(hello.header.kind, kind::PING);
    raw.send_raw(bad).await;
    let d = raw.next(5).await.expect("a Bye");
    match d.message {
        Message::Bye(b) => {
            assert!((400..500).contains(&b.code), "code {}", b.code);
            assert_eq!((d.header.ttl, d.header.hops), (1, 0));
        }
        other => panic!("expected Bye, got {other:?}"),
    }
    assert!(raw.next(5).await.is_none(), "nothing after the Bye");
}

#[tokio::test]
async fn malformed_descriptors_get_bye_and_close() {
    let up = servent(true, &[]).await;
    // A Pong whose payload is too short.
    let mut pong = Vec::new();
    Header::new(Guid([1; 16]), kind::PONG, 1, 0, 3).encode(&mut pong);
    pong.extend_from_slice(&[1, 2, 3]);
    expect_bye_only(&up, &pong).await;
    // A Query without its NUL.
    let mut q = Vec::new();
    Header::new(Guid([2; 16]), kind::QUERY, 2, 0, 5).encode(&mut q);
    q.extend_from_slice(&[0x80, 0x00, b'a', b'b', b'c']);
    expect_bye_only(&up, &q).await;
    // A length beyond 64 KiB.
    let mut big = Vec::new();
    Header::new(Guid([3; 16]), kind::QUERY, 2, 0, 1 << 20).encode(&mut big);
    expect_bye_only(&up, &big).await;
    // A QRP PATCH before any RESET.
    let mut p = Vec::new();
    Header::new(Guid([4; 16]), kind::QRP, 1, 0, 6).encode(&mut p);
    p.extend_from_slice(&[1, 1, 1, 0, 4, 0]);
    expect_bye_only(&up, &p).await;
    // The servent is still fine.
    let raw = RawPeer::leaf(up.local_addr()).await;
    drop(raw);
    assert_eq!(detail(&up, "mode"), "ultrapeer");
    up.shutdown().await;
}

async fn fetch_all(
    leaf: &Adapter,
    hit: &junction_core::Hit,
    secs: u64,
) -> (Arc<FileSink>, Vec<junction_core::FetchEvent>) {
    let sink = file_sink(hit.size);
    let mut ev = leaf
        .fetch(
            FetchRequest {
                id: hit.id.clone(),
                name: hit.name.clone(),
                size: hit.size,
                sources: hit.locations.clone(),
                trackers: vec![],
                torrent: None,
            },
            sink.clone(),
        )
        .await
        .unwrap();
    let mut events = Vec::new();
    within("download", secs, async {
        while let Some(e) = ev.next().await {
            events.push(e);
        }
    })
    .await;
    (sink, events)
}

#[tokio::test]
async fn push_download_from_firewalled_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = make_file(dir.path(), "echo-pushed.bin", 300_000, 3);
    let up = servent(true, &[]).await;
    // F announces an address nobody listens on: only a push reaches it.
    let f = Adapter::start(junction_gnutella::Config {
        advertised: Some("127.0.0.1:9".parse().unwrap()),
        firewalled: Some(true),
        ..cfg(false, &[up.local_addr()])
    })
    .await
    .unwrap();
    // L knows it is reachable (a firewalled F does not answer firewalled queriers).
    let l = Adapter::start(junction_gnutella::Config {
        firewalled: Some(false),
        ..cfg(false, &[up.local_addr()])
    })
    .await
    .unwrap();
    share(&f, &path, "echo-pushed.bin").await;
    linked(&up, 2).await;
    eventually("tables", || detail_u64(&up, "leaf_qrp_tables") >= 2).await;
    let mut hits = l.search(parse("echo pushed").unwrap()).await.unwrap();
    let hit = within("hit", 10, hits.next()).await.unwrap().unwrap();
    assert_eq!(hit.locations[0].address, "127.0.0.1:9");
    assert!(
        hit.locations[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("push=1")
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
async fn busy_uploader_answers_503_and_is_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = make_file(dir.path(), "foxtrot.bin", 200_000, 4);
    let up = Adapter::start(junction_gnutella::Config {
        upload_slots: 1,
        ..cfg(true, &[])
    })
    .await
    .unwrap();
    let id = share(&up, &path, "foxtrot.bin").await;
    let urn = format!(
        "urn:sha1:{}",
        Sha1Hash(id.get(HashKind::Sha1).unwrap().try_into().unwrap()).to_base32()
    );
    let get = format!("GET /uri-res/N2R?{urn} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n");
    // The first client takes the only slot and keeps its connection.
    let mut first = tokio::net::TcpStream::connect(up.local_addr())
        .await
        .unwrap();
    first.write_all(get.as_bytes()).await.unwrap();
    let mut b = vec![0u8; 4096];
    let n = within("206", 5, first.read(&mut b)).await.unwrap();
    let head = String::from_utf8_lossy(&b[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(head.contains("Content-Range: bytes 0-0/200000"), "{head}");
    assert!(
        head.contains(&format!("X-Gnutella-Content-URN: {urn}")),
        "{head}"
    );
    // A second one is told to come back later.
    let mut second = tokio::net::TcpStream::connect(up.local_addr())
        .await
        .unwrap();
    second.write_all(get.as_bytes()).await.unwrap();
    let n = within("503", 5, second.read(&mut b)).await.unwrap();
    let head = String::from_utf8_lossy(&b[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("Retry-After: "), "{head}");

    // A download meets the busy slot, waits, and completes once it frees up.
    let leaf = servent(false, &[up.local_addr()]).await;
    linked(&leaf, 1).await;
    let mut hit = junction_core::Hit::new(NetworkId::GNUTELLA, id.clone(), "foxtrot.bin", 200_000);
    hit.locations = vec![junction_core::Source {
        network: NetworkId::GNUTELLA,
        address: up.local_addr().to_string(),
        detail: None,
    }];
    let release = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(first);
    };
    let ((sink, _), ()) = tokio::join!(fetch_all(&leaf, &hit, 40), release);
    assert!(sink.is_verified());
    assert_eq!(sink.contents(), data);
    leaf.shutdown().await;
    up.shutdown().await;
}

#[tokio::test]
async fn two_ultrapeers_dynamic_query() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "charlie-far.bin", 1000, 5);
    let up1 = servent(true, &[]).await;
    let up2 = servent(true, &[up1.local_addr()]).await;
    let a = servent(false, &[up1.local_addr()]).await;
    let c = servent(false, &[up2.local_addr()]).await;
    share(&c, &path, "charlie-far.bin").await;
    linked(&up1, 2).await;
    linked(&up2, 2).await;
    assert_eq!(detail_u64(&up1, "ultrapeers"), 1);
    eventually("C's table at UP2", || {
        detail_u64(&up2, "leaf_qrp_tables") >= 1
    })
    .await;
    let mut hits = a.search(parse("charlie far").unwrap()).await.unwrap();
    let hit = within("hit across two ultrapeers", 10, hits.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hit.name, "charlie-far.bin");
    assert_eq!(hit.locations[0].address, c.local_addr().to_string());
    assert!(detail_u64(&up1, "queries_forwarded") >= 1);
    assert_eq!(detail_u64(&c, "queries_seen"), 1);
    for s in [&a, &c, &up2, &up1] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn dynamic_query_stops_widening_with_enough_hits() {
    dynamic_query(1, 2).await;
}

#[tokio::test]
async fn dynamic_query_widens_while_hits_are_missing() {
    dynamic_query(64, 3).await;
}

/// A hub ultrapeer with three ultrapeer neighbours, each with one leaf
/// sharing the file; a leaf of the hub searches. Returns when `expect_seen`
/// leaves saw the query and no more.
async fn dynamic_query(wanted_hits: u32, expect_seen: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "delta-widening.bin", 1000, 6);
    let one = |ultrapeer: bool, peers: &[std::net::SocketAddr]| junction_gnutella::Config {
        max_ultrapeers: 1,
        ..cfg(ultrapeer, peers)
    };
    let hub = Adapter::start(junction_gnutella::Config {
        wanted_hits,
        ..cfg(true, &[])
    })
    .await
    .unwrap();
    let a = Adapter::start(one(false, &[hub.local_addr()]))
        .await
        .unwrap();
    let mut ups = Vec::new();
    let mut leaves = Vec::new();
    for _ in 0..3 {
        let up = Adapter::start(one(true, &[hub.local_addr()]))
            .await
            .unwrap();
        let leaf = Adapter::start(one(false, &[up.local_addr()]))
            .await
            .unwrap();
        share(&leaf, &path, "delta-widening.bin").await;
        ups.push(up);
        leaves.push(leaf);
    }
    linked(&hub, 4).await;
    for up in &ups {
        linked(up, 2).await;
        eventually("leaf table", || detail_u64(up, "leaf_qrp_tables") >= 1).await;
    }
    let mut hits = a.search(parse("delta widening").unwrap()).await.unwrap();
    within("first hit", 10, hits.next()).await.unwrap().unwrap();
    // Two ultrapeers are probed first; with enough hits the third is never
    // asked, even after several step intervals; otherwise the next step asks it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let seen: Vec<u64> = leaves
        .iter()
        .map(|l| detail_u64(l, "queries_seen"))
        .collect();
    assert_eq!(seen.iter().sum::<u64>(), expect_seen, "{seen:?}");
    assert_eq!(detail_u64(&hub, "queries_forwarded"), expect_seen);
    for s in leaves.iter().chain(&ups).chain([&a, &hub]) {
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
        address: u1.local_addr().to_string(),
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

#[tokio::test]
async fn hosts_learnt_from_pongs_and_try_headers() {
    let up1 = servent(true, &[]).await;
    let up2 = servent(true, &[up1.local_addr()]).await;
    linked(&up1, 1).await;
    linked(&up2, 1).await;
    // The leaf is told about UP1 only; UP1's X-Try-Ultrapeers and cached pongs
    // name UP2, and the leaf connects there too.
    let leaf = servent(false, &[up1.local_addr()]).await;
    eventually("leaf linked to both ultrapeers", || {
        detail_u64(&leaf, "ultrapeers") == 2
    })
    .await;
    assert!(detail_u64(&leaf, "hosts_cached") >= 1);
    eventually("UP2 has the leaf", || detail_u64(&up2, "leaves") == 1).await;
    for s in [&leaf, &up2, &up1] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn pongs_carry_ggep_and_leaf_queries_are_flood_limited() {
    let up = servent(true, &[]).await;
    let mut raw = RawPeer::leaf(up.local_addr()).await;
    let ping = Descriptor::new(
        Guid::modern(rand_bytes()),
        1,
        0,
        Message::Ping(Default::default()),
    );
    raw.send(&ping).await;
    let pong = loop {
        let d = raw.next(5).await.expect("pong");
        if let Message::Pong(p) = d.message {
            assert_eq!(d.header.guid, ping.header.guid);
            break p;
        }
    };
    assert_eq!(
        std::net::SocketAddr::from((pong.ip, pong.port)),
        up.local_addr()
    );
    let b = pong.ext.ggep_blocks().next().expect("GGEP in our pong");
    assert_eq!(&b.vendor_code().unwrap().unwrap().vendor, b"JNCT");
    let slots = b.ultrapeer_slots().unwrap().unwrap();
    assert_eq!(slots.free_leaf_slots, 31, "32 leaf slots, one taken");

    // 60 distinct queries at once from one leaf: a burst of 20 passes.
    for i in 0..60u8 {
        let mut g = rand_bytes();
        g[0] = i;
        let q = Descriptor::new(Guid(g), 2, 0, Message::Query(Query::keywords("flood")));
        raw.send(&q).await;
    }
    eventually("queries processed", || {
        detail_u64(&up, "queries_seen") + detail_u64(&up, "flood_dropped") == 60
    })
    .await;
    let seen = detail_u64(&up, "queries_seen");
    assert!((20..=25).contains(&seen), "{seen}");
    up.shutdown().await;
}

#[tokio::test]
async fn a_leaf_refuses_links_and_the_dialler_reports_why() {
    let l1 = servent(false, &[]).await;
    let l2 = servent(false, &[l1.local_addr()]).await;
    eventually("dial error reported", || l2.status().last_error.is_some()).await;
    let e = l2.status().last_error.unwrap();
    assert!(e.contains("503") && e.contains("shielded leaf"), "{e}");
    assert_eq!(l1.status().peers, 0);
    assert_eq!(l2.status().state, junction_core::NetworkState::Degraded);
    l2.shutdown().await;
    l1.shutdown().await;
    assert_eq!(l1.status().state, junction_core::NetworkState::Offline);
}

#[tokio::test]
async fn download_by_index_learns_and_checks_the_sha1() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = make_file(dir.path(), "hotel index.bin", 150_000, 12);
    let up = servent(true, &[]).await;
    let leaf = servent(false, &[up.local_addr()]).await;
    let id = share(&up, &path, "hotel index.bin").await;
    linked(&leaf, 1).await;
    let mut hits = leaf.search(parse("hotel index").unwrap()).await.unwrap();
    let mut hit = within("hit", 10, hits.next()).await.unwrap().unwrap();
    assert!(
        hit.locations[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("index=1")
    );
    // As if the hit had carried no hash: the download goes by /get/<index>/<name>.
    hit.id = ContentId::new(Some(hit.size));
    let (sink, events) = fetch_all(&leaf, &hit, 20).await;
    assert!(sink.is_verified(), "{events:?}");
    assert_eq!(sink.contents(), data);
    let learned = events.iter().find_map(|e| match e {
        junction_core::FetchEvent::Identified(i) => Some(i.clone()),
        _ => None,
    });
    assert_eq!(
        learned.unwrap().get(HashKind::Sha1),
        id.get(HashKind::Sha1),
        "the SHA-1 announced by the source is reported"
    );
    leaf.shutdown().await;
    up.shutdown().await;
}

/// A download resumed after a restart: the bytes written before (unverified, since Gnutella
/// verifies the whole file) are not fetched again, and the final SHA-1 covers them too;
/// wrong bytes written before are caught by it and fetched again.
#[tokio::test]
async fn resumed_download_skips_written_bytes_and_verifies_them() {
    let dir = tempfile::tempdir().unwrap();
    let len = 2 * 1024 * 1024 + 99;
    let (path, data) = make_file(dir.path(), "Kilo Resume.bin", len, 11);
    let up = servent(true, &[]).await;
    let leaf = Adapter::start(cfg(false, &[up.local_addr()]))
        .await
        .unwrap();
    let id = share(&up, &path, "Kilo Resume.bin").await;
    linked(&leaf, 1).await;
    let req = FetchRequest {
        id: id.clone(),
        name: "Kilo Resume.bin".into(),
        size: len as u64,
        sources: vec![junction_core::Source {
            network: NetworkId::GNUTELLA,
            address: up.local_addr().to_string(),
            detail: None,
        }],
        trackers: vec![],
        torrent: None,
    };
    let half = (len / 2) as u64;
    for (earlier, refetch_all) in [
        (data[..len / 2].to_vec(), false),
        (vec![0u8; len / 2], true),
    ] {
        let sink = file_sink(len as u64);
        sink.earlier_run(0, &earlier);
        let before = up.status().bytes_out;
        let mut ev = leaf.fetch(req.clone(), sink.clone()).await.unwrap();
        within("resumed download", 30, async {
            while ev.next().await.is_some() {}
        })
        .await;
        assert!(
            sink.is_verified(),
            "verified (earlier bytes wrong: {refetch_all})"
        );
        assert_eq!(sink.contents(), data);
        let sent = up.status().bytes_out - before;
        if refetch_all {
            assert!(
                sent >= len as u64,
                "bad earlier bytes were fetched again: {sent}"
            );
        } else {
            // bytes_out counts HTTP headers too: a few hundred bytes per request.
            let missing = len as u64 - half;
            assert!(
                sent <= missing + 4096,
                "sent {sent}, only {missing} were missing"
            );
        }
    }
    leaf.shutdown().await;
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_limit_holds_and_unlimited_is_not_held() {
    const MIB: usize = 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let (slow_p, slow) = make_file(dir.path(), "kilo slow.bin", 3 * MIB, 21);
    let (fast_p, fast) = make_file(dir.path(), "kilo fast.bin", 3 * MIB, 22);
    // An ultrapeer limited to 1 MiB/s, and one without a limit.
    let limited = Adapter::start(junction_gnutella::Config {
        upload_limit: Some(MIB as u64),
        ..cfg(true, &[])
    })
    .await
    .unwrap();
    let free = servent(true, &[]).await;
    let slow_id = share(&limited, &slow_p, "kilo slow.bin").await;
    let fast_id = share(&free, &fast_p, "kilo fast.bin").await;
    let leaf = servent(false, &[limited.local_addr()]).await;
    linked(&leaf, 1).await;
    let hit = |a: &Adapter, id: &ContentId, name: &str| {
        let mut h = junction_core::Hit::new(NetworkId::GNUTELLA, id.clone(), name, 3 * MIB as u64);
        h.locations = vec![junction_core::Source {
            network: NetworkId::GNUTELLA,
            address: a.local_addr().to_string(),
            detail: None,
        }];
        h
    };

    let t0 = std::time::Instant::now();
    let (sink, _) = fetch_all(&leaf, &hit(&free, &fast_id, "kilo fast.bin"), 30).await;
    let unlimited = t0.elapsed().as_secs_f64();
    assert!(sink.is_verified());
    assert!(sink.contents() == fast, "downloaded bytes differ");

    let out_before = limited.status().bytes_out;
    let t0 = std::time::Instant::now();
    let (sink, _) = fetch_all(&leaf, &hit(&limited, &slow_id, "kilo slow.bin"), 30).await;
    let secs = t0.elapsed().as_secs_f64();
    assert!(sink.is_verified());
    assert!(sink.contents() == slow, "downloaded bytes differ");
    let out = (limited.status().bytes_out - out_before) as f64;
    eprintln!("3 MiB: unlimited {unlimited:.2}s, at 1 MiB/s {secs:.2}s ({out} bytes out)");
    assert!(
        secs >= 2.0,
        "1 MiB/s upload limit: 3 MiB took only {secs:.2}s"
    );
    assert!(secs < 15.0, "1 MiB/s upload limit: 3 MiB took {secs:.2}s");
    assert!(
        out / secs < 1.5 * MIB as f64,
        "the limited servent sent {out} bytes in {secs:.2}s"
    );
    assert!(
        unlimited < 2.0,
        "without a limit, 3 MiB over loopback took {unlimited:.2}s"
    );
    for s in [&leaf, &free, &limited] {
        s.shutdown().await;
    }
}
