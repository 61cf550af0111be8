//! The gateway with the real eD2k, Gnutella and BitTorrent adapters, each peering on
//! 127.0.0.1 with another Junction peer that shares the same file: one gRPC search finds it
//! on eD2k and Gnutella, and a download through each network completes and verifies; and
//! one download cap holds over all three networks together.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use junction_core::rate::{Caps, RateLimit};
use junction_core::{ContentId, DynNetwork, HashKind, SharedItem};
use proto::v1 as pb;
use proto::v1::search_event::Event;
use proto::v1::transfer::State;

use crate::harness::{Running, search_all, start, wait_until};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn content(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

async fn share(net: &dyn DynNetwork, path: &std::path::Path) -> ContentId {
    net.share(SharedItem {
        path: path.to_path_buf(),
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        size: std::fs::metadata(path).unwrap().len(),
        id: ContentId::new(None),
        hashes: None,
    })
    .await
    .unwrap()
}

/// eD2k: an index server, a seeding peer sharing `path`, and the gateway's peer (under
/// `caps`), both logged in.
async fn ed2k_peers(
    path: &std::path::Path,
    caps: &Caps,
) -> (ed2k::IndexServer, ed2k::Adapter, ed2k::Adapter) {
    let server = ed2k::IndexServer::start(ed2k::ServerConfig {
        enabled: true,
        listen: loopback(),
        ..Default::default()
    })
    .await
    .unwrap();
    let ed2k_cfg = || ed2k::Config {
        listen: Some(loopback()),
        servers: vec![server.local_addr().to_string()],
        source_requery: Duration::from_secs(2),
        ..Default::default()
    };
    let ed2k_seed = ed2k::Adapter::start(ed2k_cfg()).await.unwrap();
    assert!(ed2k_seed.wait_logged_in(Duration::from_secs(15)).await);
    share(&ed2k_seed, path).await;
    let ed2k_gw = ed2k::Adapter::start(ed2k::Config {
        caps: caps.clone(),
        ..ed2k_cfg()
    })
    .await
    .unwrap();
    assert!(ed2k_gw.wait_logged_in(Duration::from_secs(15)).await);
    (server, ed2k_seed, ed2k_gw)
}

/// Gnutella: a seeding ultrapeer sharing `path`, and the gateway's leaf (under `caps`)
/// connected to it.
async fn gnutella_peers(
    path: &std::path::Path,
    caps: &Caps,
) -> (gnutella::Adapter, gnutella::Adapter) {
    let ultrapeer = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        ultrapeer: true,
        ..Default::default()
    })
    .await
    .unwrap();
    share(&ultrapeer, path).await;
    let leaf = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        peers: vec![ultrapeer.local_addr().to_string()],
        caps: caps.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    (ultrapeer, leaf)
}

/// BitTorrent: a tracker, a seeder of `path` announcing to it, and the gateway's peer
/// (under `caps`). Also returns what the seeder shares `path` as (its info-hash).
async fn bittorrent_peers(
    path: &std::path::Path,
    caps: &Caps,
) -> (
    bittorrent::TrackerServer,
    bittorrent::Adapter,
    bittorrent::Adapter,
    ContentId,
) {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let bt_seed = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        trackers: vec![tracker.announce_url()],
        ..Default::default()
    })
    .await
    .unwrap();
    let btih = share(&bt_seed, path).await;
    let bt_gw = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        caps: caps.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    (tracker, bt_seed, bt_gw, btih)
}

/// One search: the file is found on eD2k and on Gnutella (the leaf may need a moment to
/// send its route table and be reached). Returns its item on each, in that order.
async fn found_on_ed2k_and_gnutella(gw: &mut Running) -> (pb::Item, pb::Item) {
    let mut found = Vec::new();
    for _ in 0..20 {
        let events = search_all(&mut gw.client, "junctiontest", 3000).await;
        found = events
            .into_iter()
            .filter_map(|e| match e {
                Event::Item(i) | Event::Update(i) => Some(i),
                _ => None,
            })
            .collect();
        let nets: Vec<&str> = found
            .iter()
            .flat_map(|i| i.availability.iter().map(|a| a.network.as_str()))
            .collect();
        if nets.contains(&"ed2k") && nets.contains(&"gnutella") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let on = |net: &str| {
        found
            .iter()
            .rev()
            .find(|i| i.availability.iter().any(|a| a.network == net))
            .unwrap_or_else(|| panic!("not found on {net}: {found:#?}"))
            .clone()
    };
    (on("ed2k"), on("gnutella"))
}

/// A download through each network, started the ways a client would: the eD2k and
/// Gnutella items by id, on their network, and BitTorrent by `magnet`. Returns the
/// transfers' ids.
async fn start_one_download_per_network(
    gw: &mut Running,
    items: [&pb::Item; 2],
    magnet: String,
) -> Vec<String> {
    let mut ids = Vec::new();
    for item in items {
        let t = gw
            .client
            .start_transfer(pb::StartTransferRequest {
                source: Some(pb::start_transfer_request::Source::ItemId(item.id.clone())),
                networks: vec![item.availability[0].network.clone()],
                files: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        ids.push(t.id);
    }
    let t = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(magnet)),
            networks: vec!["bittorrent".into()],
            files: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    ids.push(t.id);
    ids
}

/// Shares a 3 MiB file on every network, then downloads it through the gateway once per
/// network at the same time, under `caps`. Returns how long the three downloads took.
async fn download_through_all_three(caps: &Caps) -> Duration {
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("junctiontest sample.bin");
    let data = content(3 * 1024 * 1024 + 17);
    std::fs::write(&path, &data).unwrap();

    let (server, ed2k_seed, ed2k_gw) = ed2k_peers(&path, caps).await;
    let (ultrapeer, leaf) = gnutella_peers(&path, caps).await;
    let (tracker, bt_seed, bt_gw, btih) = bittorrent_peers(&path, caps).await;

    let dir = tempfile::tempdir().unwrap();
    let nets: Vec<Arc<dyn DynNetwork>> = vec![Arc::new(ed2k_gw), Arc::new(leaf), Arc::new(bt_gw)];
    let mut gw = start(dir.path(), nets, None).await;

    let (ed2k_item, gnut_item) = found_on_ed2k_and_gnutella(&mut gw).await;
    assert_eq!(ed2k_item.size, data.len() as u64);

    let magnet = format!(
        "magnet:?xt=urn:btih:{}&xl={}&dn=bt.bin&tr={}",
        hex(btih.get(HashKind::Btih).unwrap()),
        data.len(),
        tracker.announce_url()
    );
    let t0 = std::time::Instant::now();
    let ids = start_one_download_per_network(&mut gw, [&ed2k_item, &gnut_item], magnet).await;
    for id in ids {
        let done = wait_until(&mut gw.client, &id, 90, |t| t.state() == State::Complete).await;
        assert_eq!(std::fs::read(&done.path).unwrap(), data, "{done:?}");
    }
    let took = t0.elapsed();
    gw.stop().await;
    drop((ed2k_seed, ultrapeer, bt_seed, server, tracker));
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gateway_searches_and_downloads_through_all_three_networks() {
    download_through_all_three(&Caps::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_download_cap_holds_over_all_three_networks_together() {
    // 9 MiB in all under one 4 MiB/s cap: at least about 2.1 s (less the first burst of
    // 512 KiB). Were the cap each network's own, the three would take about 0.75 s.
    const MIB: u64 = 1024 * 1024;
    let caps = Caps {
        download: RateLimit::new(Some(4 * MIB)),
        ..Caps::default()
    };
    let took = download_through_all_three(&caps).await.as_secs_f64();
    eprintln!("3 × 3 MiB under a 4 MiB/s cap over all networks: {took:.2} s");
    assert!(
        took >= 2.0,
        "9 MiB under a 4 MiB/s cap took only {took:.2} s"
    );
    assert!(took < 30.0, "9 MiB under a 4 MiB/s cap took {took:.2} s");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
