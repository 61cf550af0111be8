//! Links: a replayed gtk-gnutella leaf, Byes on malformed descriptors, hosts learnt from
//! pongs and `X-Try`, GGEP pongs and flood limits, and leaves refusing links.

use futures::StreamExt;
use junction_core::query::parse;
use junction_core::{HashKind, Network};
use junction_gnutella::Adapter;
use junction_gnutella::wire::descriptor_header::{Header, kind};
use junction_gnutella::wire::guid::Guid;
use junction_gnutella::wire::message::{Descriptor, Message, Query, QueryFlags};

use crate::common;
use crate::net::*;

/// The captured gtk-gnutella leaf (02b): its CONNECT block, its final block,
/// then its first deflated segment (QRP RESET + PATCH, Ping, vendor messages)
/// byte for byte. Later we continue its zlib stream with stored blocks.
#[tokio::test]
async fn ultrapeer_accepts_replayed_gtk_gnutella_leaf() {
    let hs = std::fs::read(common::path("02b-gtkg-leaf-connects-out.a2b.bin")).unwrap();
    let (connect, n1) = junction_gnutella::wire::handshake::Handshake::parse(&hs)
        .unwrap()
        .unwrap();
    let (fin, n2) = junction_gnutella::wire::handshake::Handshake::parse(&hs[n1..])
        .unwrap()
        .unwrap();
    assert!(connect.ultrapeer() == Some(false) && fin.content_deflate());
    let deflated =
        std::fs::read(common::path("02b-gtkg-leaf-connects-out.a2b.deflate.bin")).unwrap();
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
    let cap = std::fs::read(common::path(
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
    // The gtk leaf is firewalled: a push source at the address it gave.
    assert!(
        matches!(&h.locations[0].address,
            junction_core::PeerAddr::Push { addr, .. } if addr.to_string() == "127.0.0.64:6464"),
        "{:?}",
        h.locations[0]
    );
    // No hit for the unmatched query, and with nobody else to ask it is done at once.
    let end = within("the unmatched query to end", 3, miss.next()).await;
    assert!(end.is_none(), "no hit for the unmatched query: {end:?}");
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

/// Abusive messages (issue 15): a 2 GB length prefix, endless GGEP, and a QRP patch of a
/// million entries for a small table each get one Bye and a closed link.
#[tokio::test]
async fn abusive_messages_get_bye_and_close() {
    let up = servent(true, &[]).await;
    let mut big = Vec::new();
    Header::new(Guid([5; 16]), kind::QUERY, 2, 0, 0x7FFF_FFFF).encode(&mut big);
    expect_bye_only(&up, &big).await;
    // A Query whose GGEP block never ends (no extension marked last).
    let mut payload = vec![0u8, 0];
    payload.extend_from_slice(b"abc\0\xC3");
    for _ in 0..5000 {
        payload.extend_from_slice(&[0x01, b'X', 0x40]);
    }
    let mut q = Vec::new();
    Header::new(Guid([6; 16]), kind::QUERY, 2, 0, payload.len() as u32).encode(&mut q);
    q.extend_from_slice(&payload);
    expect_bye_only(&up, &q).await;
    // RESET to 1024 slots, then one patch inflating to a million entries.
    let patch = {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0x11u8; 1_000_000]).unwrap();
        z.finish().unwrap()
    };
    let mut m = Vec::new();
    Header::new(Guid([7; 16]), kind::QRP, 1, 0, 6).encode(&mut m);
    m.extend_from_slice(&[0, 0, 4, 0, 0, 7]);
    Header::new(Guid([8; 16]), kind::QRP, 1, 0, 5 + patch.len() as u32).encode(&mut m);
    m.extend_from_slice(&[1, 1, 1, 1, 8]);
    m.extend_from_slice(&patch);
    expect_bye_only(&up, &m).await;
    assert_eq!(detail(&up, "mode"), "ultrapeer");
    up.shutdown().await;
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
