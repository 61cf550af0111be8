//! End-to-end tests on the lab (`junction lab`'s world): a gateway attached to an eD2k
//! index server with two peers, a Gnutella ultrapeer with two leaves and a BitTorrent
//! tracker, DHT node and two seeders, all Junction's own protocol code on 127.0.0.1,
//! driven through real gRPC.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use junction_core::NetworkId;
use lab::{LabConfig, LabFile, World};
use proto::v1 as pb;
use proto::v1::network_progress::State as Progress;
use proto::v1::search_event::Event;
use proto::v1::transfer::State;

use crate::harness::{Running, search_all, start, wait_until};

pub(crate) const MIB: u64 = 1024 * 1024;

pub(crate) async fn world(dir: &std::path::Path, large_mib: u64, rate: Option<u64>) -> World {
    let mut cfg = LabConfig::new(dir);
    cfg.seed = 42;
    cfg.large_size = large_mib * MIB;
    cfg.seed_rate_limit = rate;
    World::start(&cfg).await.unwrap()
}

pub(crate) async fn gateway(world: &World, dir: &std::path::Path) -> Running {
    start(dir, world.gateway_networks().await.unwrap(), None).await
}

fn items(events: &[Event]) -> Vec<pb::Item> {
    // The last version of each item (updates carry the whole item).
    let mut out: Vec<pb::Item> = Vec::new();
    for e in events {
        if let Event::Item(i) | Event::Update(i) = e {
            match out.iter_mut().find(|o| o.id == i.id) {
                Some(o) => *o = i.clone(),
                None => out.push(i.clone()),
            }
        }
    }
    out
}

fn nets(item: &pb::Item) -> BTreeSet<String> {
    item.availability
        .iter()
        .map(|a| a.network.clone())
        .collect()
}

fn catalog_nets(f: &LabFile) -> BTreeSet<String> {
    f.networks().map(|n| n.as_str().to_owned()).collect()
}

/// Searches until every network has answered with what the lab shares (the gateway's
/// BitTorrent index fills from the DHT a few seconds after start).
pub(crate) async fn search_until_complete(
    gw: &mut Running,
    world: &World,
    query: &str,
) -> Vec<pb::Item> {
    let mut found = Vec::new();
    for _ in 0..30 {
        found = items(&search_all(&mut gw.client, query, 4000).await);
        let complete = world.files.iter().all(|f| {
            found
                .iter()
                .any(|i| i.name == f.name && nets(i) == catalog_nets(f))
        });
        if complete {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the lab's files never all showed up on their networks: {found:#?}");
}

async fn read_all(gw: &mut Running, id: &str) -> (Vec<u8>, bool) {
    let mut stream = gw
        .client
        .read_content(pb::ReadContentRequest {
            transfer_id: id.into(),
            offset: 0,
            length: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut data = Vec::new();
    let mut read_before_complete = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert_eq!(chunk.offset as usize, data.len());
        data.extend_from_slice(&chunk.data);
        if !read_before_complete {
            let t = gw
                .client
                .get_transfer(pb::TransferRef { id: id.into() })
                .await
                .unwrap()
                .into_inner();
            read_before_complete = t.state() != State::Complete;
        }
    }
    (data, read_before_complete)
}

async fn start_on(gw: &mut Running, link: String, net: NetworkId) -> pb::Transfer {
    gw.client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(link)),
            networks: vec![net.as_str().to_owned()],
            files: vec![],
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_search_merges_filters_and_downloads_from_each_network() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 16, Some(4 * MIB)).await;
    let mut gw = gateway(&world, &dir.path().join("gw")).await;

    // 1. One search: every file once, listing exactly the networks that share it, so the
    //    files on two or three networks came back merged into single items.
    let found = search_until_complete(&mut gw, &world, "lab").await;
    for f in &world.files {
        let same: Vec<&pb::Item> = found.iter().filter(|i| i.name == f.name).collect();
        assert_eq!(same.len(), 1, "{} is not one item: {same:#?}", f.name);
    }
    assert!(
        found.iter().any(|i| nets(i).len() == 3),
        "no item on all three networks"
    );

    // 2. OR, a size bound and an exclusion: only matching items, including from Gnutella,
    //    which evaluates none of those parts itself (the gateway filters for it).
    let events = search_all(&mut gw.client, "(sunrise OR ocean) size>4.5MB -beta", 4000).await;
    let names: BTreeSet<String> = items(&events).into_iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "Lab Sunrise Timelapse 1080p.mkv".to_owned(),
            "Lab Ocean Waves.mp3".to_owned()
        ]),
        "{events:#?}"
    );
    let sunrise = items(&events)
        .into_iter()
        .find(|i| i.name.contains("1080p"))
        .unwrap();
    assert!(nets(&sunrise).contains("gnutella"), "{sunrise:?}");

    // 3. One download from each network, each of a file only that network has.
    let only = |net: NetworkId| {
        world
            .files
            .iter()
            .find(|f| f.is_on(net) && f.networks().count() == 1)
            .unwrap()
    };
    let gnut_file = only(NetworkId::GNUTELLA);
    let gnut_item = found.iter().find(|i| i.name == gnut_file.name).unwrap();
    let mut started = vec![(
        gw.client
            .start_transfer(pb::StartTransferRequest {
                source: Some(pb::start_transfer_request::Source::ItemId(
                    gnut_item.id.clone(),
                )),
                networks: vec![],
                files: vec![],
            })
            .await
            .unwrap()
            .into_inner(),
        gnut_file,
    )];
    let ed2k_file = only(NetworkId::ED2K);
    started.push((
        start_on(&mut gw, ed2k_file.ed2k_link().unwrap(), NetworkId::ED2K).await,
        ed2k_file,
    ));
    let bt_file = only(NetworkId::BITTORRENT);
    // A magnet without xl= or dn=: the transfer exists at once, BitTorrent fetches the
    // metadata for the size, and the file gets the torrent's name.
    let magnet = bt_file.magnet(world.tracker_url()).unwrap();
    let magnet: Vec<&str> = magnet
        .split('&')
        .filter(|p| !p.starts_with("xl=") && !p.starts_with("dn="))
        .collect();
    let magnet = magnet.join("&");
    assert!(
        !magnet.contains("xl=") && !magnet.contains("dn="),
        "{magnet}"
    );
    let asked = std::time::Instant::now();
    let queued = start_on(&mut gw, magnet, NetworkId::BITTORRENT).await;
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "start waited for the metadata"
    );
    assert_eq!(queued.state(), State::Active);
    started.push((queued, bt_file));
    for (t, f) in started {
        let done = wait_until(&mut gw.client, &t.id, 120, |t| t.state() == State::Complete).await;
        assert_eq!(done.name, f.name, "the name comes from the metadata");
        assert_eq!(
            std::fs::read(&done.path).unwrap(),
            std::fs::read(&f.path).unwrap(),
            "{}",
            f.name
        );
    }

    // 4. ReadContent streams the large file while it is still downloading (the seeders
    //    are limited to 4 MiB/s each), and the bytes match.
    let large = world.files.iter().find(|f| f.large).unwrap();
    let t = start_on(
        &mut gw,
        large.magnet(world.tracker_url()).unwrap(),
        NetworkId::BITTORRENT,
    )
    .await;
    let (data, early) = read_all(&mut gw, &t.id).await;
    assert!(early, "the read only began once the download was complete");
    assert!(
        data == std::fs::read(&large.path).unwrap(),
        "streamed bytes differ"
    );

    gw.stop().await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_network_killed_gives_failed_or_timed_out_and_the_others_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut world = world(dir.path(), 4, None).await;
    let mut gw = gateway(&world, &dir.path().join("gw")).await;
    search_until_complete(&mut gw, &world, "lab").await;

    // The eD2k server and peers go away just as the next search is sent.
    let mut stream = gw
        .client
        .search(pb::SearchRequest {
            query: "lab".into(),
            timeout_ms: 4000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    world.stop_network(NetworkId::ED2K).await;
    let mut events = Vec::new();
    while let Some(ev) = stream.next().await {
        events.push(ev.unwrap().event.unwrap());
    }
    // A search sent before the eD2k side noticed may still have been answered; the next
    // one cannot be.
    let ed2k_state = |events: &[Event]| {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Progress(p) if p.network == "ed2k" => Some(p.state()),
                _ => None,
            })
            .next_back()
            .unwrap()
    };
    if ed2k_state(&events) == Progress::Done {
        events = search_all(&mut gw.client, "lab", 4000).await;
    }
    let state = ed2k_state(&events);
    assert!(
        matches!(state, Progress::Failed | Progress::TimedOut),
        "ed2k ended {state:?}: {events:#?}"
    );
    let found = items(&events);
    for net in ["gnutella", "bittorrent"] {
        assert!(
            found.iter().any(|i| nets(i).contains(net)),
            "no {net} items after eD2k went away: {found:#?}"
        );
    }
    gw.stop().await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_gateway_restarted_mid_download_finishes_without_refetching() {
    let dir = tempfile::tempdir().unwrap();
    let gw_dir = dir.path().join("gw");
    // 2 MiB/s per seeder: the 16 MiB download takes seconds, so it can be interrupted.
    let world = world(dir.path(), 16, Some(2 * MIB)).await;
    let large = world.files.iter().find(|f| f.large).unwrap().clone();
    let magnet = large.magnet(world.tracker_url()).unwrap();

    let mut gw = gateway(&world, &gw_dir).await;
    let t = start_on(&mut gw, magnet, NetworkId::BITTORRENT).await;
    // What was verified just before the stop; the stop persists at least that much.
    let before = wait_until(&mut gw.client, &t.id, 60, |t| {
        t.bytes_verified >= large.size / 2
    })
    .await;
    gw.stop().await;
    let served_before = world.bytes_served(NetworkId::BITTORRENT);

    let mut gw = gateway(&world, &gw_dir).await;
    let resumed = wait_until(&mut gw.client, &t.id, 10, |_| true).await;
    assert!(
        resumed.bytes_verified >= before.bytes_verified,
        "{resumed:?}"
    );
    assert_ne!(resumed.state(), State::Complete, "{resumed:?}");
    let done = wait_until(&mut gw.client, &t.id, 120, |t| t.state() == State::Complete).await;
    assert!(std::fs::read(&done.path).unwrap() == std::fs::read(&large.path).unwrap());
    // Nothing verified before the restart came again: the gateway drops (and counts)
    // every byte that lands on a verified range.
    assert_eq!(done.bytes_redundant, 0, "{done:?}");
    // And the seeders sent the missing half, not the whole file again (end game asks both
    // seeders for the last blocks; the cancels reach them before most are sent). Blocks of
    // a piece written before the stop are kept (written, not yet verified) and not sent
    // again: the least the seeders send is what was not written.
    let refetched = world.bytes_served(NetworkId::BITTORRENT) - served_before;
    let missing = large.size - before.bytes_verified;
    assert!(
        refetched >= large.size - resumed.bytes_written && refetched <= missing + missing / 8,
        "the seeders sent {refetched} bytes after the restart; {missing} were missing"
    );
    gw.stop().await;
    world.shutdown().await;
}
