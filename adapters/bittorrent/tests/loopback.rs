//! Two (and more) Junction BitTorrent adapters on 127.0.0.1 with the crate's own tracker:
//! one shares a file, the others fetch it from the `.torrent`, from a magnet (metadata over
//! ut_metadata, peers from the UDP tracker), and past a peer that sends corrupt pieces.
//! This file holds the set-up the parts share: a seeder with its `.torrent`, and fetches run
//! to their end.

#[path = "loopback/endpoints.rs"]
mod endpoints;
#[path = "loopback/fetch.rs"]
mod fetch;
#[path = "loopback/limits.rs"]
mod limits;
#[path = "loopback/peer_wire.rs"]
mod peer_wire;
#[path = "loopback/search.rs"]
mod search;
#[path = "loopback/swarm.rs"]
mod swarm;
#[path = "loopback/v2.rs"]
mod v2;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use junction_bittorrent::{Adapter, Config, InfoHash, TrackerServer};
use junction_core::testing::MemSink;
use junction_core::{ContentId, FetchEvent, FetchRequest, HashKind, Network, SharedItem};

const SIZE: usize = 6 * 1024 * 1024 + 12345;
const PIECE: u32 = 64 * 1024;

fn test_config(trackers: Vec<String>) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        trackers,
        share_piece_length: Some(PIECE),
        udp_retry_base: Duration::from_secs(1),
        min_announce_interval: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
        ..Config::default()
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in &mut v {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    v
}

/// A made-up eD2k hash handed to share() (the adapter does not compute MD4 itself).
const ED2K: [u8; 16] = [0xE2; 16];

fn sha1_of(data: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(data).into()
}

struct Seeded {
    _dir: tempfile::TempDir,
    data: Vec<u8>,
    seeder: Adapter,
    ih: InfoHash,
    torrent: Bytes,
}

async fn seed(tracker: &TrackerServer) -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junction test file.bin");
    let data = random_bytes(SIZE);
    std::fs::write(&path, &data).unwrap();
    let seeder = Adapter::start(test_config(vec![tracker.announce_url()]))
        .await
        .unwrap();
    let id = seeder
        .share(SharedItem {
            path: path.clone(),
            name: "junction test file.bin".into(),
            size: SIZE as u64,
            // An eD2k hash the gateway knows already goes into the torrent as `ed2k`.
            id: ContentId::new(Some(SIZE as u64)).with(HashKind::Ed2k, &ED2K),
            hashes: None,
        })
        .await
        .unwrap();
    // share() hashed the whole file in the same pass as the pieces.
    assert_eq!(id.get(HashKind::Sha1), Some(&sha1_of(&data)[..]));
    assert_eq!(id.get(HashKind::Ed2k), Some(&ED2K[..]));
    let ih = InfoHash::from_slice(id.get(HashKind::Btih).unwrap()).unwrap();
    let torrent = seeder.index_entry(&ih).unwrap().torrent.unwrap();
    Seeded {
        _dir: dir,
        data,
        seeder,
        ih,
        torrent,
    }
}

/// The crate's tracker on loopback (no UDP).
async fn local_tracker() -> TrackerServer {
    TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 2)
        .await
        .unwrap()
}

/// Shares the `SIZE`-byte file at `path` as `name`; returns its info-hash.
async fn share_file(a: &Adapter, path: std::path::PathBuf, name: &str) -> InfoHash {
    let id = a
        .share(SharedItem {
            path,
            name: name.into(),
            size: SIZE as u64,
            id: ContentId::new(None),
            hashes: None,
        })
        .await
        .unwrap();
    InfoHash::from_slice(id.get(HashKind::Btih).unwrap()).unwrap()
}

/// Runs a fetch to its end (the stream closes when everything is verified).
async fn run_fetch(a: &Adapter, req: FetchRequest, sink: Arc<MemSink>) -> Vec<FetchEvent> {
    run_to_end(a.fetch(req, sink).await.unwrap()).await
}

/// Collects a fetch's (or an identify's) events until the stream ends.
async fn run_to_end(mut events: junction_core::FetchEvents) -> Vec<FetchEvent> {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(e) = events.next().await {
            seen.push(e);
        }
    })
    .await;
    assert!(r.is_ok(), "fetch timed out; events so far: {seen:?}");
    seen
}

fn request(ih: &InfoHash, torrent: Option<Bytes>, trackers: Vec<String>) -> FetchRequest {
    FetchRequest {
        id: ContentId::new(Some(SIZE as u64)).with(HashKind::Btih, &ih.0),
        name: "x".into(),
        size: SIZE as u64,
        sources: Vec::new(),
        trackers,
        torrent,
    }
}
