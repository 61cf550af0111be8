//! A Junction leaf against gtk-gnutella's captured ultrapeer side (capture 01):
//! the fake ultrapeer answers with gtk-gnutella's handshake bytes and its
//! deflated stream, then the captured QueryHit and Bye.

mod net;

use bytes::BytesMut;
use futures::StreamExt;
use junction_core::query::parse;
use junction_core::{ContentId, HashKind, Network, SharedItem};
use junction_gnutella::wire::descriptor_header::{DescriptorDecoder, RawDescriptor};
use junction_gnutella::wire::message::{Descriptor, Message, QueryFlags};
use junction_gnutella::wire::qrp::QrpReceiver;
use net::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// gtk-gnutella's captured messages after its handshake (inflated): its QueryHit for
/// `gnutcap-alpha.bin` and its Bye.
fn captured_hit_and_bye(messages: &[u8]) -> (RawDescriptor, RawDescriptor) {
    let mut stream = BytesMut::from(messages);
    let mut gtk_msgs = Vec::new();
    while let Some(r) = DescriptorDecoder::default().decode(&mut stream).unwrap() {
        gtk_msgs.push(r);
    }
    let hit = gtk_msgs
        .iter()
        .find(|r| {
            matches!(r.message().unwrap(), Message::QueryHit(h)
                if h.results.len() == 1 && h.results[0].name_str() == "gnutcap-alpha.bin")
        })
        .unwrap()
        .clone();
    let bye = gtk_msgs
        .iter()
        .find(|r| matches!(r.message().unwrap(), Message::Bye(_)))
        .unwrap()
        .clone();
    (hit, bye)
}

#[tokio::test]
async fn junction_leaf_with_replayed_gtk_ultrapeer() {
    let b2a = data("01-leaf-to-gtkg-ultrapeer.b2a.bin");
    let b2a_z = data("01-leaf-to-gtkg-ultrapeer.b2a.deflate.bin");
    let (gtk_ok, hs_len) = junction_gnutella::wire::handshake::Handshake::parse(&b2a)
        .unwrap()
        .unwrap();
    assert_eq!(hs_len, 558);
    assert!(gtk_ok.content_deflate() && gtk_ok.ultrapeer() == Some(true));
    let (hit, bye) = captured_hit_and_bye(&b2a[hs_len..]);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_up = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "gnutcap harness leaf.bin", 4096, 1);
    let leaf = servent(false, &[fake_up]).await;
    leaf.share(SharedItem {
        path,
        name: "gnutcap harness leaf.bin".into(),
        size: 4096,
        id: ContentId::new(None),
        hashes: None,
    })
    .await
    .unwrap();

    let (mut s, _) = within("leaf dials", 10, listener.accept()).await.unwrap();
    let mut buf = BytesMut::new();
    let connect = read_handshake(&mut s, &mut buf).await;
    assert_eq!(connect.ultrapeer(), Some(false));
    assert!(
        connect.accepts_deflate(),
        "gtk-gnutella ultrapeers require deflate from leaves"
    );
    assert!(connect.query_routing().is_some());
    s.write_all(&b2a[..hs_len]).await.unwrap();
    let fin = read_handshake(&mut s, &mut buf).await;
    assert!(fin.is_ok() && fin.content_deflate());
    // gtk-gnutella's first deflated segment: Messages Supported + Features Supported.
    s.write_all(&b2a_z[..139]).await.unwrap();
    let mut gtk = RawPeer::from_stream(s, buf, true, false, fin);
    linked(&leaf, 1).await;

    // Our leaf sends its QRP table (and a ping).
    let mut qrp = QrpReceiver::new();
    let mut complete = false;
    while !complete {
        let d = gtk.next(5).await.expect("QRP from the leaf");
        if let Message::RouteTable(u) = &d.message {
            assert_eq!((d.header.ttl, d.header.hops), (1, 0));
            complete = qrp.apply(u).unwrap();
        }
    }
    let t = qrp.table().unwrap();
    assert!(t.matches_keywords("gnutcap harness"));
    assert!(!t.matches_keywords("nonexistentword"));

    // A search goes up with the 0x8000 mark gtk-gnutella insists on.
    let mut hits = leaf.search(parse("gnutcap alpha").unwrap()).await.unwrap();
    let (qh, q) = loop {
        let d = gtk.next(5).await.expect("query");
        if let Message::Query(q) = d.message {
            break (d.header, q);
        }
    };
    assert_eq!(q.text(), "gnutcap alpha");
    assert!(q.flags.has(QueryFlags::MARK));
    assert_eq!(qh.hops, 0);
    assert!(qh.ttl >= 1 && qh.ttl <= 4);

    // gtk-gnutella's captured hit, re-addressed to this query, as a stored block.
    let mut h = hit.clone();
    h.header.guid = qh.guid;
    let mut plain = Vec::new();
    h.encode(&mut plain);
    gtk.send_raw(&stored_block(&plain)).await;
    let got = within("hit", 5, hits.next()).await.unwrap().unwrap();
    assert_eq!(got.name, "gnutcap-alpha.bin");
    assert_eq!(got.size, 1_048_576);
    assert_eq!(
        got.id.get(HashKind::Sha1).map(hex::encode).as_deref(),
        Some("ecfc8e86fdd83811f9cc9bf500993b63069923be")
    );
    assert_eq!(got.locations[0].address.to_string(), "127.0.0.61:6461");
    let d = got.locations[0].detail.clone().unwrap();
    assert!(
        d.contains("guid=54cd3102ab408d4acfb983e172dbd151") && d.contains("push=0"),
        "{d}"
    );

    // gtk-gnutella's Bye (201 with its Server line) ends the link.
    let mut plain = Vec::new();
    bye.encode(&mut plain);
    gtk.send_raw(&stored_block(&plain)).await;
    eventually("link dropped after Bye", || leaf.status().peers == 0).await;
    let _ = Descriptor::from_raw(&bye).unwrap();
    leaf.shutdown().await;
}

/// gtk-gnutella's ultrapeer connecting to a Junction ultrapeer (capture 02a
/// replayed: handshake, then its deflated stream segment by segment).
#[tokio::test]
async fn junction_ultrapeer_with_replayed_gtk_ultrapeer() {
    let a2b = data("02a-gtkg-ultrapeer-connects-out.a2b.bin");
    let a2b_z = data("02a-gtkg-ultrapeer-connects-out.a2b.deflate.bin");
    let (_, n1) = junction_gnutella::wire::handshake::Handshake::parse(&a2b)
        .unwrap()
        .unwrap();
    let (_, n2) = junction_gnutella::wire::handshake::Handshake::parse(&a2b[n1..])
        .unwrap()
        .unwrap();
    assert_eq!(n1 + n2, 632);
    // Segments as gtk-gnutella flushed them: [0] QRP, Ping, vendor messages;
    // [1] Query 'gnutcap' (TTL 3, hops 1); [2] Query 'gnutcap alpha'.
    let seg = [&a2b_z[..318], &a2b_z[318..356], &a2b_z[356..393]];
    for s in seg {
        assert_eq!(&s[s.len() - 4..], &[0, 0, 0xff, 0xff]);
    }
    let mut inflated = BytesMut::from(&a2b[632..]);
    let mut queries = Vec::new();
    while let Some(r) = DescriptorDecoder::default().decode(&mut inflated).unwrap() {
        if let Message::Query(q) = r.message().unwrap() {
            queries.push((r.header, q));
        }
    }
    assert_eq!(queries[0].1.text(), "gnutcap");
    assert_eq!(queries[1].1.text(), "gnutcap alpha");

    let up = servent(true, &[]).await;
    let c = servent(false, &[up.local_addr()]).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "gnutcap-foxtrot.bin", 2048, 2);
    c.share(SharedItem {
        path,
        name: "gnutcap-foxtrot.bin".into(),
        size: 2048,
        id: ContentId::new(None),
        hashes: None,
    })
    .await
    .unwrap();
    eventually("C's table", || detail_u64(&up, "leaf_qrp_tables") >= 1).await;

    let mut gtk = RawPeer::handshake(up.local_addr(), &a2b[..n1], &a2b[n1..n1 + n2]).await;
    let r = &gtk.response;
    assert_eq!(r.ultrapeer(), Some(true));
    assert!(r.degree().unwrap_or(0) >= 16 && r.dynamic_querying().is_some());
    assert!(r.ultrapeer_query_routing().is_some());
    assert_ne!(
        r.ultrapeer_needed(),
        Some(false),
        "gtk-gnutella refuses to be demoted"
    );
    gtk.send_raw(seg[0]).await;
    gtk.send_raw(seg[1]).await;

    // Our last-hop table (ours plus our leaves'), a pong, and C's hit for
    // gtk-gnutella's query, routed back on its GUID.
    let mut qrp = QrpReceiver::new();
    let mut table_done = false;
    let mut hit = None;
    while !(table_done && hit.is_some()) {
        let d = within("messages from our ultrapeer", 10, gtk.next(10))
            .await
            .expect("link open");
        match d.message {
            Message::RouteTable(u) => table_done |= qrp.apply(&u).unwrap(),
            Message::QueryHit(h) => hit = Some((d.header, h)),
            _ => {}
        }
    }
    assert!(qrp.table().unwrap().matches_keywords("gnutcap foxtrot"));
    let (hh, h) = hit.unwrap();
    assert_eq!(hh.guid, queries[0].0.guid);
    assert_eq!(h.servent, c.servent_guid());
    assert_eq!(h.results[0].name_str(), "gnutcap-foxtrot.bin");

    // 'gnutcap alpha' does not match C's table: it is not routed there.
    gtk.send_raw(seg[2]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(detail_u64(&c, "queries_seen"), 1);
    assert_eq!(detail_u64(&up, "queries_seen"), 2);
    c.shutdown().await;
    up.shutdown().await;
}
