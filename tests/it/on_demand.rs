//! Bridging on demand in the lab (issue 12): an eD2k user of the gateway's own index
//! server finds a file that only BitTorrent has, with no transfer running, and fetches it
//! from the gateway, which fetches it from BitTorrent while the user waits in its queue.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::{DynNetwork, HashKind, Hit, NetworkId};
use lab::World;

use crate::lab::world;

/// The gateway's eD2k side: an index server of its own, with its client logged into it.
async fn ed2k_with_index_server() -> ed2k::Adapter {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let a = ed2k::Adapter::start(ed2k::Config {
        listen: Some(loopback),
        server: ed2k::ServerConfig {
            enabled: true,
            listen: loopback,
            ..Default::default()
        },
        nick: "gateway".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let server = a.index_server_addr().unwrap();
    junction_core::Network::add_endpoint(&a, server.to_string())
        .await
        .unwrap();
    assert!(a.wait_logged_in(Duration::from_secs(15)).await);
    a
}

/// An eD2k user (a Junction eD2k client, as aMule would be) of `server`.
async fn ed2k_user(server: std::net::SocketAddr) -> ed2k::Adapter {
    let a = ed2k::Adapter::start(ed2k::Config {
        listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        servers: vec![server.to_string()],
        nick: "user".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(a.wait_logged_in(Duration::from_secs(15)).await);
    a
}

/// Searches until the index server lists `name` (the gateway's DHT index may need a
/// moment to learn the lab's torrents).
async fn search(user: &ed2k::Adapter, name: &str) -> Hit {
    let word = name.split(' ').nth(1).unwrap().to_lowercase();
    for _ in 0..20 {
        let q = junction_core::query::parse(&word).unwrap();
        let mut hits = DynNetwork::search(user, q).await.unwrap();
        while let Ok(Some(h)) = tokio::time::timeout(Duration::from_secs(10), hits.next()).await {
            if let Ok(h) = h
                && h.name == name
            {
                return h;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("the index server never listed {name:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed2k_user_fetches_what_only_bittorrent_has() {
    let dir = tempfile::tempdir().unwrap();
    let world: World = world(dir.path(), 8, None).await;
    let file = world
        .files
        .iter()
        .find(|f| f.is_on(NetworkId::BITTORRENT) && f.networks().count() == 1)
        .expect("the lab has a BitTorrent-only file")
        .clone();
    let data = std::fs::read(&file.path).unwrap();
    let ed2k = ed2k_with_index_server().await;
    let server = ed2k.index_server_addr().unwrap();
    let mut networks = world.gateway_networks().await.unwrap();
    for n in networks.iter().filter(|n| n.id() == NetworkId::ED2K) {
        n.shutdown().await;
    }
    networks.retain(|n| n.id() != NetworkId::ED2K);
    networks.insert(0, Arc::new(ed2k));
    let gw = crate::harness::start(dir.path(), networks, None).await;

    let user = ed2k_user(server).await;
    let hit = search(&user, &file.name).await;
    let ed2k_hash = junction_core::hashing::ed2k::ed2k_hash(&data).root;
    assert_eq!(
        hit.id.get(HashKind::Ed2k),
        Some(&ed2k_hash[..]),
        "a real hash"
    );
    assert!(
        gw.gw.transfers.list().is_empty(),
        "a search alone starts no transfer"
    );

    // The user asks for it: the gateway fetches it from BitTorrent, then serves it.
    let got = crate::bridge::fetch_from(&user, &hit).await;
    assert_eq!(got, data, "the eD2k user got other bytes");
    let t = gw.gw.transfers.list();
    assert_eq!(t.len(), 1, "one transfer, started for the user");
    assert_eq!(t[0].name, file.name);
    DynNetwork::shutdown(&user).await;
    gw.stop().await;
}
