//! Several adapters at once: PEX introducing peers, the upload and download limits, and a
//! swarm of leechers trading pieces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use junction_bittorrent::{Adapter, TrackerServer};
use junction_core::{Network, NetworkId, Source};

use crate::{SIZE, local_tracker, random_bytes, request, run_fetch, seed, share_file, test_config};
use junction_core::testing::MemSink;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pex_introduces_peers_and_upload_limit_holds() {
    let tracker = local_tracker().await;
    // A seeder limited to 2 MB/s.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.bin");
    let data = random_bytes(SIZE);
    std::fs::write(&path, &data).unwrap();
    let mut cfg = test_config(vec![tracker.announce_url()]);
    cfg.upload_rate_limit = Some(2_000_000);
    cfg.pex_interval = Duration::from_secs(1);
    let seeder = Adapter::start(cfg).await.unwrap();
    let ih = share_file(&seeder, path, "slow.bin").await;
    let torrent = seeder.index_entry(&ih).unwrap().torrent.unwrap();
    // L1 finds the seeder through the tracker; L2 knows only L1 and must learn of the
    // seeder over PEX (from L1, or from the seeder once L1 introduced them).
    let mut cfg = test_config(vec![]);
    cfg.pex_interval = Duration::from_secs(1);
    let l1 = Adapter::start(cfg.clone()).await.unwrap();
    let l2 = Adapter::start(cfg).await.unwrap();
    let sink1 = Arc::new(MemSink::new(SIZE as u64));
    let sink2 = Arc::new(MemSink::new(SIZE as u64));
    let t0 = Instant::now();
    let f1 = run_fetch(
        &l1,
        request(&ih, Some(torrent.clone()), vec![]),
        sink1.clone(),
    );
    let mut req2 = request(&ih, None, vec![]);
    req2.torrent = None;
    req2.sources = vec![Source {
        network: NetworkId::BITTORRENT,
        address: l1.listen_addr().into(),
        detail: None,
    }];
    // No tracker for L2: strip the announce URL by giving it only the info-hash.
    let f2 = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        run_fetch(&l2, req2, sink2.clone()).await
    };
    let pex_seen = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if l2.torrent_stats(&ih).is_some_and(|s| s.peers >= 2) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    let (_, _, saw) = tokio::join!(f1, f2, pex_seen);
    let secs = t0.elapsed().as_secs_f64();
    assert!(sink1.data() == data && sink2.data() == data);
    assert!(saw, "L2 got a second peer (the seeder) over PEX");
    assert!(
        secs > 1.5,
        "2 MB/s upload limit: {SIZE} bytes took only {secs:.2}s"
    );
    let out = seeder.status().bytes_out as f64;
    assert!(
        out / secs < 4_000_000.0,
        "seeder uploaded {out} bytes in {secs:.2}s"
    );
    l1.shutdown().await;
    l2.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_limit_holds() {
    let tracker = local_tracker().await;
    let s = seed(&tracker).await;
    let mut cfg = test_config(vec![]);
    cfg.download_rate_limit = Some(2_000_000);
    let leech = Adapter::start(cfg).await.unwrap();
    let sink = Arc::new(MemSink::new(SIZE as u64));
    let t0 = Instant::now();
    run_fetch(
        &leech,
        request(&s.ih, Some(s.torrent.clone()), vec![]),
        sink.clone(),
    )
    .await;
    let secs = t0.elapsed().as_secs_f64();
    assert!(sink.data() == s.data);
    // One second's burst, then 2 MB/s: at least (SIZE - 2 MB) / 2 MB/s.
    let least = (SIZE as f64 - 2e6) / 2e6;
    assert!(
        secs > least * 0.9,
        "2 MB/s download limit: {SIZE} bytes took only {secs:.2}s (at least {least:.2}s)"
    );
    leech.shutdown().await;
    s.seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_of_leechers_trade_pieces() {
    let tracker = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 1)
        .await
        .unwrap();
    // A seeder slow enough (3 MB/s) that leechers get pieces from each other.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("swarm.bin");
    let data = random_bytes(SIZE);
    std::fs::write(&path, &data).unwrap();
    let mut cfg = test_config(vec![tracker.announce_url()]);
    cfg.upload_rate_limit = Some(3_000_000);
    let seeder = Adapter::start(cfg).await.unwrap();
    let ih = share_file(&seeder, path, "swarm.bin").await;
    let torrent = seeder.index_entry(&ih).unwrap().torrent.unwrap();
    let mut leechers = Vec::new();
    for _ in 0..3 {
        leechers.push(Adapter::start(test_config(vec![])).await.unwrap());
    }
    let sinks: Vec<_> = (0..3)
        .map(|_| Arc::new(MemSink::new(SIZE as u64)))
        .collect();
    let runs = leechers
        .iter()
        .zip(&sinks)
        .map(|(l, s)| run_fetch(l, request(&ih, Some(torrent.clone()), vec![]), s.clone()));
    futures::future::join_all(runs).await;
    for s in &sinks {
        assert!(s.data() == data);
    }
    let traded: u64 = leechers
        .iter()
        .map(|l| l.torrent_stats(&ih).unwrap().uploaded)
        .sum();
    let from_seed = seeder.torrent_stats(&ih).unwrap().uploaded;
    eprintln!("seeder uploaded {from_seed}, leechers uploaded {traded} to each other");
    assert!(traded > 0, "leechers exchanged pieces");
    assert!(
        from_seed < 3 * SIZE as u64,
        "the seeder did not send every copy itself"
    );
    for l in &leechers {
        l.shutdown().await;
    }
    seeder.shutdown().await;
}
