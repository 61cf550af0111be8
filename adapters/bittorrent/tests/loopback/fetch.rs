//! Fetching one seeder's file: from the `.torrent`, from a magnet (metadata over
//! ut_metadata, peers from the tracker or the DHT, or the cached metadata), into a sink of the
//! wrong size, and resumed from what the sink has verified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use junction_bittorrent::{Adapter, TrackerServer};
use junction_core::{FetchEvent, HashKind, Network};

use crate::{
    ED2K, SIZE, Seeded, local_tracker, random_bytes, request, run_fetch, run_to_end, seed, sha1_of,
    share_file, test_config,
};
use junction_core::testing::MemSink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_from_torrent_and_magnet_then_search() {
    let tracker = TrackerServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Some("127.0.0.1:0".parse().unwrap()),
        2,
    )
    .await
    .unwrap();
    let s = seed(&tracker).await;

    // 1. From the .torrent (HTTP tracker inside it).
    let leech = Adapter::start(test_config(vec![])).await.unwrap();
    let sink = Arc::new(MemSink::new(SIZE as u64));
    let t0 = Instant::now();
    let ev = run_fetch(
        &leech,
        request(&s.ih, Some(s.torrent.clone()), vec![]),
        sink.clone(),
    )
    .await;
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        ev.contains(&FetchEvent::Note("download complete and verified".into())),
        "{ev:?}"
    );
    assert_eq!(sink.verified_bytes(), SIZE as u64);
    assert!(sink.data() == s.data, "downloaded bytes differ");
    eprintln!(
        "torrent fetch: {SIZE} bytes in {secs:.2}s ({:.1} MB/s)",
        SIZE as f64 / secs / 1e6
    );

    // 2. From a magnet only: metadata over ut_metadata, peers from the UDP tracker.
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&tr={}",
        s.ih.to_hex(),
        tracker.udp_url().unwrap()
    );
    let leech2 = Adapter::start(test_config(vec![])).await.unwrap();
    let sink2 = Arc::new(MemSink::new(SIZE as u64));
    let ev = run_fetch(&leech2, request(&s.ih, None, vec![magnet]), sink2.clone()).await;
    // The info dict fetched over ut_metadata carries the whole-file hashes.
    let sha1 = sha1_of(&s.data);
    assert!(
        ev.iter().any(|e| matches!(e, FetchEvent::Identified(id)
            if id.size == Some(SIZE as u64)
                && id.get(HashKind::Sha1) == Some(&sha1[..])
                && id.get(HashKind::Ed2k) == Some(&ED2K[..]))),
        "{ev:?}"
    );
    assert!(sink2.data() == s.data, "magnet download differs");
    let st = leech2.torrent_stats(&s.ih).unwrap();
    assert!(st.has_metadata && st.complete);
    assert_eq!(st.name, "junction test file.bin");

    assert_seeding_and_indexed(&s, &leech2, &sha1).await;

    leech.shutdown().await;
    leech2.shutdown().await;
    s.seeder.shutdown().await;
}

/// The leechers now seed: the status says so, and the index finds the torrent by name.
async fn assert_seeding_and_indexed(s: &Seeded, leech2: &Adapter, sha1: &[u8; 20]) {
    let status = leech2.status();
    assert_eq!(
        status
            .details
            .iter()
            .find(|d| d.0 == "seeding")
            .map(|d| d.1.as_str()),
        Some("1")
    );
    assert!(status.bytes_in >= SIZE as u64);
    assert!(s.seeder.status().bytes_out >= SIZE as u64);
    let q = junction_core::query::parse("junction test").unwrap();
    let hits: Vec<_> = s.seeder.search(q).await.unwrap().collect().await;
    assert_eq!(hits.len(), 1);
    let hit = hits[0].as_ref().unwrap();
    assert_eq!(hit.size, SIZE as u64);
    assert_eq!(hit.id.get(HashKind::Sha1), Some(&sha1[..]));
    assert_eq!(hit.id.get(HashKind::Ed2k), Some(&ED2K[..]));
    assert_eq!(hit.id.get(HashKind::Btih), Some(&s.ih.0[..]));
    assert!(
        hit.link
            .as_ref()
            .unwrap()
            .starts_with("magnet:?xt=urn:btih:")
    );
    let link =
        junction_bittorrent::wire::magnet::Magnet::parse(hit.link.as_ref().unwrap()).unwrap();
    assert_eq!(link.swarm_hash(), Some(s.ih));
    assert!(
        hit.link
            .as_ref()
            .unwrap()
            .contains(&format!("xt=urn:sha1:{}", HashKind::Sha1.format(sha1))),
        "{:?}",
        hit.link
    );
    let q = junction_core::query::parse("nothing here").unwrap();
    assert_eq!(s.seeder.search(q).await.unwrap().count().await, 0);
    let hits: Vec<_> = leech2
        .search(junction_core::query::parse("test").unwrap())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        hits.len(),
        1,
        "metadata fetched over ut_metadata is indexed"
    );
    let hit = hits[0].as_ref().unwrap();
    assert_eq!(hit.id.get(HashKind::Sha1), Some(&sha1[..]));
    assert_eq!(hit.id.get(HashKind::Ed2k), Some(&ED2K[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_over_the_dht_without_trackers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dht file.bin");
    let data = random_bytes(SIZE);
    std::fs::write(&path, &data).unwrap();
    let mut cfg = test_config(vec![]);
    cfg.dht_listen = Some("127.0.0.1:0".parse().unwrap());
    let seeder = Adapter::start(cfg).await.unwrap();
    let ih = share_file(&seeder, path, "dht file.bin").await;
    let mut cfg = test_config(vec![]);
    cfg.dht_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.dht_bootstrap = vec![seeder.dht_addr().unwrap().to_string()];
    let leech = Adapter::start(cfg).await.unwrap();
    let sink = Arc::new(MemSink::new(SIZE as u64));
    let magnet = format!("magnet:?xt=urn:btih:{}", ih.to_hex());
    run_fetch(&leech, request(&ih, None, vec![magnet]), sink.clone()).await;
    assert!(sink.data() == data);
    assert!(leech.status().dht_nodes >= 1);
    assert!(seeder.status().dht_nodes >= 1);
    leech.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_without_a_size_is_looked_up_then_fetched_from_the_cached_metadata() {
    let tracker = local_tracker().await;
    let s = seed(&tracker).await;
    let leech = Adapter::start(test_config(vec![])).await.unwrap();
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&tr={}",
        s.ih.to_hex(),
        tracker.announce_url()
    );
    // 1. Size unknown: identify fetches the metadata only, which the adapter says it can.
    assert!(leech.capabilities().identify_ids.contains(&HashKind::Btih));
    let mut req = request(&s.ih, None, vec![magnet.clone()]);
    req.size = 0;
    req.id.size = None;
    let ev = run_to_end(leech.identify(req).await.unwrap()).await;
    let id = ev
        .iter()
        .find_map(|e| match e {
            FetchEvent::Identified(id) => Some(id.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Identified event: {ev:?}"));
    assert_eq!(id.size, Some(SIZE as u64));
    assert_eq!(id.get(HashKind::Sha1), Some(&sha1_of(&s.data)[..]));
    assert!(
        ev.iter()
            .any(|e| matches!(e, FetchEvent::Note(n) if n.starts_with("metadata only"))),
        "{ev:?}"
    );
    // 2. With the size: the metadata is there before any peer is asked again.
    let sink = Arc::new(MemSink::new(SIZE as u64));
    let mut events = leech
        .fetch(request(&s.ih, None, vec![magnet]), sink.clone())
        .await
        .unwrap();
    assert!(leech.torrent_stats(&s.ih).unwrap().has_metadata);
    let done = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(e) = events.next().await {
            if e == FetchEvent::Note("download complete and verified".into()) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(done.ok(), Some(true));
    assert!(sink.data() == s.data, "bytes differ");
    leech.shutdown().await;
    s.seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_into_a_sink_of_the_wrong_size_fails_with_a_note() {
    let tracker = local_tracker().await;
    let s = seed(&tracker).await;
    let leech = Adapter::start(test_config(vec![tracker.announce_url()]))
        .await
        .unwrap();
    let sink = Arc::new(MemSink::new(SIZE as u64 - 1));
    let magnet = format!("magnet:?xt=urn:btih:{}", s.ih.to_hex());
    let ev = run_fetch(&leech, request(&s.ih, None, vec![magnet]), sink).await;
    assert!(
        ev.iter().any(|e| matches!(e, FetchEvent::Note(n) if n.starts_with("stopped:") && n.contains("room for"))),
        "{ev:?}"
    );
    assert!(leech.status().last_error.is_some());
    leech.shutdown().await;
    s.seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_what_the_sink_has_verified() {
    use junction_core::TransferSink;
    let tracker = local_tracker().await;
    let s = seed(&tracker).await;
    let sink = Arc::new(MemSink::new(SIZE as u64));
    // The first 3 MiB (48 whole pieces) and a ragged tail part are already verified.
    let half = 3 * 1024 * 1024;
    sink.write(0, &s.data[..half]).unwrap();
    sink.verified(0..half as u64, true);
    sink.write(half as u64, &s.data[half..half + 1000]).unwrap();
    sink.verified(half as u64..half as u64 + 1000, true);
    let leech = Adapter::start(test_config(vec![])).await.unwrap();
    run_fetch(
        &leech,
        request(&s.ih, Some(s.torrent.clone()), vec![]),
        sink.clone(),
    )
    .await;
    assert!(sink.data() == s.data);
    let st = leech.torrent_stats(&s.ih).unwrap();
    // Only the missing pieces moved (the partly verified piece is fetched whole).
    assert_eq!(st.downloaded, (SIZE - half) as u64, "{st:?}");
    leech.shutdown().await;
    s.seeder.shutdown().await;
}
