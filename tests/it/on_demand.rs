//! Bridging on demand in the lab (issue 12): a user of the gateway's own eD2k index
//! server, or a leaf of its Gnutella ultrapeer, finds a file that only BitTorrent has,
//! with no transfer running, and fetches it from the gateway, which fetches it from
//! BitTorrent while the user waits in its queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::{DynNetwork, HashKind, Hit, NetworkId};

use crate::harness::Running;
use crate::harness::http::{self, Reply};
use crate::lab::world;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The gateway's eD2k side: an index server of its own, and no other server.
async fn ed2k_with_index_server() -> ed2k::Adapter {
    let a = ed2k::Adapter::start(ed2k::Config {
        listen: Some(loopback()),
        server: ed2k::ServerConfig {
            enabled: true,
            listen: loopback(),
            ..Default::default()
        },
        nick: "gateway".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    // Naming no other server, its client logs into its own index server.
    assert!(a.wait_logged_in(Duration::from_secs(15)).await);
    a
}

/// The gateway's Gnutella side: an ultrapeer with no peers but the leaves that join it.
async fn gnutella_ultrapeer() -> gnutella::Adapter {
    gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        ultrapeer: true,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A gateway over the lab whose `net` adapter is `own` instead of the lab's client.
async fn gateway_with(
    world: &lab::World,
    dir: &std::path::Path,
    own: Arc<dyn DynNetwork>,
) -> Running {
    let mut networks = world.gateway_networks().await.unwrap();
    for n in networks.iter().filter(|n| n.id() == own.id()) {
        n.shutdown().await;
    }
    networks.retain(|n| n.id() != own.id());
    networks.insert(0, own);
    crate::harness::start(dir, networks, None).await
}

/// A word of a lab file's name that finds it.
fn word_of(name: &str) -> String {
    name.split(' ').nth(1).unwrap().to_lowercase()
}

/// Searches `user` for `query` until a hit for `name` comes (the gateway's DHT index may
/// need a moment to learn the lab's torrents).
async fn search(user: &dyn DynNetwork, query: &str, name: &str) -> Hit {
    for _ in 0..20 {
        let q = junction_core::query::parse(query).unwrap();
        // Before the user's network has a peer, its search ends at once with why.
        let Ok(mut hits) = user.search(q).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        while let Ok(Some(h)) = tokio::time::timeout(Duration::from_secs(10), hits.next()).await {
            if let Ok(h) = h
                && h.name == name
            {
                return h;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{}: no hit for {name:?}", user.id());
}

/// The whole check: `own` is the gateway's adapter that `user` (made after the gateway
/// starts) reaches; `needs` is the hash its hits must carry. The user searches by a word
/// of the name, or with `by_hash` by that hash alone.
async fn fetch_on_demand(
    own: Arc<dyn DynNetwork>,
    user: impl AsyncFnOnce() -> Arc<dyn DynNetwork>,
    needs: HashKind,
    by_hash: bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 8, None).await;
    let file = world
        .files
        .iter()
        .find(|f| f.is_on(NetworkId::BITTORRENT) && f.networks().count() == 1)
        .expect("the lab has a BitTorrent-only file")
        .clone();
    let data = std::fs::read(&file.path).unwrap();
    let gw = gateway_with(&world, dir.path(), own).await;
    let user = user().await;
    let hashes = junction_core::hashing::hash_bytes(
        &data,
        junction_core::hashing::Want {
            sha1: true,
            ed2k: true,
            ..Default::default()
        },
    );
    let real = match needs {
        HashKind::Ed2k => hashes.ed2k.map(|h| h.root.to_vec()),
        _ => hashes.sha1.map(|h| h.to_vec()),
    };
    let query = match (by_hash, &real) {
        (true, Some(h)) => format!("urn:{}:{}", needs.urn_prefix(), needs.format(h)),
        _ => word_of(&file.name),
    };
    let hit = search(&*user, &query, &file.name).await;
    assert_eq!(hit.id.get(needs).map(<[u8]>::to_vec), real, "a real hash");
    assert!(
        gw.gw.transfers.list().is_empty(),
        "a search alone starts no transfer"
    );

    // The user asks for it: the gateway fetches it from BitTorrent, then serves it.
    let got = crate::bridge::fetch_from(&*user, &hit).await;
    assert_eq!(got, data, "{}: the user got other bytes", user.id());
    let t = gw.gw.transfers.list();
    assert_eq!(t.len(), 1, "one transfer, started for the user");
    assert_eq!(t[0].name, file.name);
    user.shutdown().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed2k_user_fetches_what_only_bittorrent_has() {
    let own = ed2k_with_index_server().await;
    let server = own.index_server_addr().unwrap();
    let user = async move || {
        let a = ed2k::Adapter::start(ed2k::Config {
            listen: Some(loopback()),
            servers: vec![server.to_string()],
            nick: "user".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(a.wait_logged_in(Duration::from_secs(15)).await);
        Arc::new(a) as Arc<dyn DynNetwork>
    };
    fetch_on_demand(Arc::new(own), user, HashKind::Ed2k, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gnutella_leaf_fetches_what_only_bittorrent_has() {
    gnutella_leaf_fetches_what_only_bittorrent_has(false).await;
}

/// The same by a query for the file's `urn:sha1` alone, as a Gnutella client sends to
/// find more sources for a download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gnutella_leafs_urn_query_finds_what_only_bittorrent_has() {
    gnutella_leaf_fetches_what_only_bittorrent_has(true).await;
}

async fn gnutella_leaf_fetches_what_only_bittorrent_has(by_hash: bool) {
    let own = gnutella_ultrapeer().await;
    let up = own.local_addr();
    let user = async move || {
        let leaf = gnutella::Adapter::start(gnutella::Config {
            listen: loopback(),
            peers: vec![up.to_string()],
            ..Default::default()
        })
        .await
        .unwrap();
        for _ in 0..150 {
            if DynNetwork::status(&leaf).peers > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Arc::new(leaf) as Arc<dyn DynNetwork>
    };
    fetch_on_demand(Arc::new(own), user, HashKind::Sha1, by_hash).await;
}

/// `GET path` for `range` (`from-to`), answered within 20 s.
async fn get_range(addr: SocketAddr, path: &str, range: &str) -> Reply {
    let range = format!("bytes={range}");
    http::get(addr, path, &[("Range", &range)], Duration::from_secs(20)).await
}

/// While the gateway fetches a bridged file (its BitTorrent seed capped), the ultrapeer
/// serves each verified range at once, says which ranges it has, and never serves a byte
/// it has not verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridged_file_is_served_by_range_as_it_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 8, Some(2 * 1024 * 1024)).await;
    let file = world
        .files
        .iter()
        .find(|f| f.is_on(NetworkId::BITTORRENT) && f.networks().count() == 1)
        .unwrap()
        .clone();
    let data = std::fs::read(&file.path).unwrap();
    let own = gnutella_ultrapeer().await;
    let up = own.local_addr();
    let gw = gateway_with(&world, dir.path(), Arc::new(own)).await;
    let leaf = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        peers: vec![up.to_string()],
        ..Default::default()
    })
    .await
    .unwrap();
    let hit = search(&leaf, &word_of(&file.name), &file.name).await;
    let sha1 = hit.id.get(HashKind::Sha1).unwrap();
    let path = format!("/uri-res/N2R?urn:sha1:{}", HashKind::Sha1.format(sha1));
    let size = data.len() as u64;
    let (mut partial, mut gap) = (false, false);
    for _ in 0..400 {
        let r = get_range(up, &path, &format!("0-{}", size - 1)).await;
        match r.status {
            503 => assert!(r.header("retry-after").is_some(), "{}", r.head),
            206 => {
                let range = r.header("content-range").unwrap();
                assert!(range.starts_with("bytes 0-"), "{range}");
                assert_eq!(
                    r.body,
                    data[..r.body.len()],
                    "only verified bytes are served"
                );
                if (r.body.len() as u64) == size {
                    break;
                }
                partial = true;
                // The first byte not served was not verified a moment ago: unless it has
                // been since, it gets 416 with the ranges there are. (The last byte is no
                // good probe: the picker may well have verified the end already.)
                let next = r.body.len();
                let r = get_range(up, &path, &format!("{next}-{next}")).await;
                gap |= r.status == 416 && r.header("x-available-ranges").is_some();
            }
            // The start is not verified yet: the answer says which ranges are, and the
            // first of them is served.
            416 => {
                let have = r.header("x-available-ranges").expect("the ranges it has");
                gap = true;
                let first = have.trim_start_matches("bytes ").split(',').next().unwrap();
                let (a, b) = first.split_once('-').unwrap();
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                let r = get_range(up, &path, first).await;
                assert_eq!(r.status, 206, "{}", r.head);
                assert_eq!(r.body, data[a..=b], "only verified bytes are served");
                partial = true;
            }
            200 => {
                assert_eq!(r.body, data);
                break;
            }
            _ => panic!("{}", r.head),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        partial,
        "never served a verified range before the whole file"
    );
    assert!(gap, "never answered 416 with X-Available-Ranges for a gap");
    DynNetwork::shutdown(&leaf).await;
    gw.stop().await;
}
