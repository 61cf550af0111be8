//! Queries routed between servents: leaf → ultrapeer → leaf, and dynamic querying over
//! several ultrapeers.

use std::time::Duration;

use futures::StreamExt;
use junction_core::query::parse;
use junction_core::{HashKind, Network, NetworkId, PeerAddr};
use junction_gnutella::Adapter;
use junction_gnutella::wire::guid::Guid;
use junction_gnutella::wire::message::{Descriptor, Message, Query};

use crate::net::*;

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
    // Direct, or a push while C does not know yet that it is reachable: C either way.
    let from_c = &hit.locations[0];
    assert_eq!(from_c.address.socket(), Some(c.local_addr()));
    let guid = match &from_c.address {
        PeerAddr::Push { servent, .. } => Guid(*servent).to_string(),
        _ => from_c.detail.clone().unwrap(),
    };
    assert!(guid.contains(&c.servent_guid().to_string()), "{from_c:?}");
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
    assert_eq!(hit.locations[0].address.socket(), Some(c.local_addr()));
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
