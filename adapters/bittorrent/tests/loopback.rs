//! Two (and more) Junction BitTorrent adapters on 127.0.0.1 with the crate's own tracker:
//! one shares a file, the others fetch it from the `.torrent`, from a magnet (metadata over
//! ut_metadata, peers from the UDP tracker), and past a peer that sends corrupt pieces.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use junction_bittorrent::wire::{Handshake, Message, MessageDecoder, PieceBlock, Reserved};
use junction_bittorrent::{Adapter, Config, InfoHash, PeerId, TrackerServer};
use junction_core::{
    ContentId, FetchEvent, FetchRequest, HashKind, Network, NetworkId, SharedItem, Source,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::FileSink;

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

/// Runs a fetch to its end (the stream closes when everything is verified).
async fn run_fetch(a: &Adapter, req: FetchRequest, sink: Arc<FileSink>) -> Vec<FetchEvent> {
    let mut events = a.fetch(req, sink).await.unwrap();
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
    let sink = Arc::new(FileSink::new(SIZE as u64));
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
    assert!(sink.contents() == s.data, "downloaded bytes differ");
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
    let sink2 = Arc::new(FileSink::new(SIZE as u64));
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
    assert!(sink2.contents() == s.data, "magnet download differs");
    let st = leech2.torrent_stats(&s.ih).unwrap();
    assert!(st.has_metadata && st.complete);
    assert_eq!(st.name, "junction test file.bin");

    // The leechers now seed: the status says so, and the index finds the torrent by name.
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
    let link = junction_bittorrent::magnet::Magnet::parse(hit.link.as_ref().unwrap()).unwrap();
    assert_eq!(link.swarm_hash(), Some(s.ih));
    assert!(
        hit.link
            .as_ref()
            .unwrap()
            .contains(&format!("xt=urn:sha1:{}", HashKind::Sha1.format(&sha1))),
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

    leech.shutdown().await;
    leech2.shutdown().await;
    s.seeder.shutdown().await;
}

/// A peer that claims every piece and answers every request with garbage.
async fn evil_peer(ih: InfoHash) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut hb = [0u8; 68];
                if s.read_exact(&mut hb).await.is_err() {
                    return;
                }
                let hs = Handshake {
                    reserved: Reserved::default().with(Reserved::FAST),
                    info_hash: ih,
                    peer_id: PeerId(*b"-EV0001-evilevilevil"),
                };
                let mut out = BytesMut::new();
                hs.encode(&mut out);
                Message::HaveAll.encode(&mut out);
                Message::Unchoke.encode(&mut out);
                if s.write_all(&out).await.is_err() {
                    return;
                }
                let mut buf = BytesMut::new();
                let mut dec = MessageDecoder::default();
                loop {
                    match s.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    while let Ok(Some(m)) = dec.decode(&mut buf) {
                        if let Message::Request(r) = m {
                            let msg = Message::Piece(PieceBlock {
                                index: r.index,
                                begin: r.begin,
                                data: Bytes::from(vec![0xEE; r.length as usize]),
                            });
                            if s.write_all(&msg.to_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_peer_is_banned_and_piece_refetched() {
    let tracker = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 2)
        .await
        .unwrap();
    let s = seed(&tracker).await;
    let evil = evil_peer(s.ih).await;
    let leech = Adapter::start(test_config(vec![])).await.unwrap();
    let sink = Arc::new(FileSink::new(SIZE as u64));
    let mut req = request(&s.ih, Some(s.torrent.clone()), vec![]);
    // The evil peer first; the good one comes from the tracker in the .torrent.
    req.sources = vec![Source {
        network: NetworkId::BITTORRENT,
        address: evil.to_string(),
        detail: None,
    }];
    run_fetch(&leech, req, sink.clone()).await;
    assert!(
        sink.contents() == s.data,
        "bytes differ after a corrupt peer"
    );
    let st = leech.torrent_stats(&s.ih).unwrap();
    assert!(
        st.failed_pieces >= 1,
        "the evil peer's pieces were checked: {st:?}"
    );
    assert!(st.banned >= 1, "the evil peer was banned: {st:?}");
    assert!(*sink.failures.lock().unwrap() >= 1);
    leech.shutdown().await;
    s.seeder.shutdown().await;
}

/// Connects to `addr`, handshakes for `ih`, sends `bytes`, and reports whether the
/// remote closed the connection within a few seconds (reading whatever it sent first).
async fn closed_after(addr: std::net::SocketAddr, ih: InfoHash, bytes: &[u8]) -> bool {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let hs = Handshake {
        reserved: Reserved::default().with(Reserved::FAST),
        info_hash: ih,
        peer_id: PeerId(*b"-TS0001-malformed000"),
    };
    s.write_all(&hs.to_bytes()).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    r.unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_closes_only_that_peer() {
    let tracker = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 2)
        .await
        .unwrap();
    let s = seed(&tracker).await;
    let addr = s.seeder.listen_addr();
    // A piece index out of range.
    let mut bad = BytesMut::new();
    Message::Request(junction_bittorrent::wire::BlockRequest {
        index: 1_000_000,
        begin: 0,
        length: 16384,
    })
    .encode(&mut bad);
    assert!(closed_after(addr, s.ih, &bad).await, "out-of-range request");
    // A block larger than 16 KiB.
    let mut big = BytesMut::new();
    Message::Request(junction_bittorrent::wire::BlockRequest {
        index: 0,
        begin: 0,
        length: 65536,
    })
    .encode(&mut big);
    assert!(closed_after(addr, s.ih, &big).await, "oversized block");
    // An oversized length prefix.
    assert!(
        closed_after(addr, s.ih, &[0xFF, 0xFF, 0xFF, 0xF0, 7]).await,
        "huge frame"
    );
    // A handshake for a torrent it does not have.
    assert!(
        closed_after(addr, InfoHash([9; 20]), &[]).await,
        "unknown info-hash"
    );
    // A valid request, after all that, is still served.
    let mut ok = BytesMut::new();
    Message::Interested.encode(&mut ok);
    assert!(
        !closed_after(addr, s.ih, &ok).await,
        "a well-behaved peer stays connected"
    );
    let sink = Arc::new(FileSink::new(SIZE as u64));
    let leech = Adapter::start(test_config(vec![])).await.unwrap();
    run_fetch(
        &leech,
        request(&s.ih, Some(s.torrent.clone()), vec![]),
        sink.clone(),
    )
    .await;
    assert!(sink.contents() == s.data);
    leech.shutdown().await;
    s.seeder.shutdown().await;
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
    let id = seeder
        .share(SharedItem {
            path,
            name: "dht file.bin".into(),
            size: SIZE as u64,
            id: ContentId::new(None),
            hashes: None,
        })
        .await
        .unwrap();
    let ih = InfoHash::from_slice(id.get(HashKind::Btih).unwrap()).unwrap();
    let mut cfg = test_config(vec![]);
    cfg.dht_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.dht_bootstrap = vec![seeder.dht_addr().unwrap().to_string()];
    let leech = Adapter::start(cfg).await.unwrap();
    let sink = Arc::new(FileSink::new(SIZE as u64));
    let magnet = format!("magnet:?xt=urn:btih:{}", ih.to_hex());
    run_fetch(&leech, request(&ih, None, vec![magnet]), sink.clone()).await;
    assert!(sink.contents() == data);
    assert!(leech.status().dht_nodes >= 1);
    assert!(seeder.status().dht_nodes >= 1);
    leech.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pex_introduces_peers_and_upload_limit_holds() {
    let tracker = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 2)
        .await
        .unwrap();
    // A seeder limited to 2 MB/s.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.bin");
    let data = random_bytes(SIZE);
    std::fs::write(&path, &data).unwrap();
    let mut cfg = test_config(vec![tracker.announce_url()]);
    cfg.upload_rate_limit = Some(2_000_000);
    cfg.pex_interval = Duration::from_secs(1);
    let seeder = Adapter::start(cfg).await.unwrap();
    let id = seeder
        .share(SharedItem {
            path,
            name: "slow.bin".into(),
            size: SIZE as u64,
            id: ContentId::new(None),
            hashes: None,
        })
        .await
        .unwrap();
    let ih = InfoHash::from_slice(id.get(HashKind::Btih).unwrap()).unwrap();
    let torrent = seeder.index_entry(&ih).unwrap().torrent.unwrap();
    // L1 finds the seeder through the tracker; L2 knows only L1 and must learn of the
    // seeder over PEX (from L1, or from the seeder once L1 introduced them).
    let mut cfg = test_config(vec![]);
    cfg.pex_interval = Duration::from_secs(1);
    let l1 = Adapter::start(cfg.clone()).await.unwrap();
    let l2 = Adapter::start(cfg).await.unwrap();
    let sink1 = Arc::new(FileSink::new(SIZE as u64));
    let sink2 = Arc::new(FileSink::new(SIZE as u64));
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
        address: l1.listen_addr().to_string(),
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
    assert!(sink1.contents() == data && sink2.contents() == data);
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
async fn magnet_without_a_size_is_looked_up_then_fetched_from_the_cached_metadata() {
    let tracker = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 2)
        .await
        .unwrap();
    let s = seed(&tracker).await;
    let leech = Adapter::start(test_config(vec![])).await.unwrap();
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&tr={}",
        s.ih.to_hex(),
        tracker.announce_url()
    );
    // 1. Size unknown: an empty request into an empty sink fetches the metadata only.
    let mut req = request(&s.ih, None, vec![magnet.clone()]);
    req.size = 0;
    req.id.size = None;
    let ev = run_fetch(&leech, req, Arc::new(FileSink::new(0))).await;
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
    let sink = Arc::new(FileSink::new(SIZE as u64));
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
    assert!(sink.contents() == s.data, "bytes differ");
    leech.shutdown().await;
    s.seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn magnet_into_a_sink_of_the_wrong_size_fails_with_a_note() {
    let tracker = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 2)
        .await
        .unwrap();
    let s = seed(&tracker).await;
    let leech = Adapter::start(test_config(vec![tracker.announce_url()]))
        .await
        .unwrap();
    let sink = Arc::new(FileSink::new(SIZE as u64 - 1));
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
async fn search_merges_torznab_feed_items() {
    const XML: &str = r#"<?xml version="1.0"?><rss xmlns:torznab="http://torznab.com/schemas/2015/feed"><channel>
<item><title>Big Buck Bunny 1080p</title><size>276134947</size>
<torznab:attr name="seeders" value="7"/><torznab:attr name="peers" value="9"/>
<torznab:attr name="infohash" value="dd8255ecdc7ca55fb0bbf81323d87062db1f6d1c"/></item>
</channel></rss>"#;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feed = format!("http://{}/api?apikey=test", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\n\r\n{XML}",
                XML.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    let mut cfg = test_config(vec![]);
    cfg.torznab = vec![feed];
    let a = Adapter::start(cfg).await.unwrap();
    let hits: Vec<_> = a
        .search(junction_core::query::parse("bunny").unwrap())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    let h = hits[0].as_ref().unwrap();
    assert_eq!(h.name, "Big Buck Bunny 1080p");
    assert_eq!(
        (h.size, h.sources, h.complete_sources),
        (276_134_947, 9, Some(7))
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_samples_feed_the_search_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sampled over the dht.bin");
    std::fs::write(&path, random_bytes(300_000)).unwrap();
    let mut cfg = test_config(vec![]);
    cfg.dht_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.dht_index = false;
    let seeder = Adapter::start(cfg).await.unwrap();
    seeder
        .share(SharedItem {
            path,
            name: String::new(),
            size: 300_000,
            id: ContentId::new(None),
            hashes: None,
        })
        .await
        .unwrap();
    let mut cfg = test_config(vec![]);
    cfg.dht_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.dht_bootstrap = vec![seeder.dht_addr().unwrap().to_string()];
    cfg.dht_sample_interval = Duration::from_secs(1);
    let indexer = Adapter::start(cfg).await.unwrap();
    let q = || junction_core::query::parse("sampled dht").unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut hits = Vec::new();
    while Instant::now() < deadline {
        hits = indexer.search(q()).await.unwrap().collect().await;
        if !hits.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(hits.len(), 1, "the indexer learnt the torrent from the DHT");
    let h = hits[0].as_ref().unwrap();
    assert_eq!(
        (h.name.as_str(), h.size),
        ("sampled over the dht.bin", 300_000)
    );
    indexer.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_limit_holds() {
    let tracker = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 2)
        .await
        .unwrap();
    let s = seed(&tracker).await;
    let mut cfg = test_config(vec![]);
    cfg.download_rate_limit = Some(2_000_000);
    let leech = Adapter::start(cfg).await.unwrap();
    let sink = Arc::new(FileSink::new(SIZE as u64));
    let t0 = Instant::now();
    run_fetch(
        &leech,
        request(&s.ih, Some(s.torrent.clone()), vec![]),
        sink.clone(),
    )
    .await;
    let secs = t0.elapsed().as_secs_f64();
    assert!(sink.contents() == s.data);
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
async fn resumes_from_what_the_sink_has_verified() {
    use junction_core::TransferSink;
    let tracker = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 2)
        .await
        .unwrap();
    let s = seed(&tracker).await;
    let sink = Arc::new(FileSink::new(SIZE as u64));
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
    assert!(sink.contents() == s.data);
    let st = leech.torrent_stats(&s.ih).unwrap();
    // Only the missing pieces moved (the partly verified piece is fetched whole).
    assert_eq!(st.downloaded, (SIZE - half) as u64, "{st:?}");
    leech.shutdown().await;
    s.seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_extension_allowed_fast_and_reject_while_choked() {
    let tracker = TrackerServer::bind("127.0.0.1:0".parse().unwrap(), None, 2)
        .await
        .unwrap();
    let s = seed(&tracker).await;
    let mut c = tokio::net::TcpStream::connect(s.seeder.listen_addr())
        .await
        .unwrap();
    let hs = Handshake {
        reserved: Reserved::default().with(Reserved::FAST),
        info_hash: s.ih,
        peer_id: PeerId(*b"-TS0001-fastfastfast"),
    };
    c.write_all(&hs.to_bytes()).await.unwrap();
    let mut buf = BytesMut::new();
    let mut dec = MessageDecoder::default();
    let mut got_hs = false;
    let mut msgs = Vec::new();
    // Read the greeting (handshake, have-all, allowed-fast set).
    let _ = tokio::time::timeout(Duration::from_millis(700), async {
        loop {
            if c.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
            if !got_hs {
                if Handshake::decode(&mut buf).unwrap().is_none() {
                    continue;
                }
                got_hs = true;
            }
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                msgs.push(m);
            }
        }
    })
    .await;
    assert_eq!(msgs.first(), Some(&Message::HaveAll), "{msgs:?}");
    let allowed: Vec<u32> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::AllowedFast(i) => Some(*i),
            _ => None,
        })
        .collect();
    assert_eq!(allowed.len(), 10, "{msgs:?}");
    let other = (0..96).find(|i| !allowed.contains(i)).unwrap();
    // Still choked: an allowed piece is served, another is rejected.
    let mut out = BytesMut::new();
    for index in [allowed[0], other] {
        Message::Request(junction_bittorrent::wire::BlockRequest {
            index,
            begin: 0,
            length: 16384,
        })
        .encode(&mut out);
    }
    c.write_all(&out).await.unwrap();
    let mut answers = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while answers.len() < 2 {
            if c.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                match m {
                    Message::Piece(p) => answers.push((p.index, true, p.data)),
                    Message::Reject(r) => answers.push((r.index, false, Bytes::new())),
                    _ => {}
                }
            }
        }
    })
    .await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    let served = answers.iter().find(|a| a.1).unwrap();
    assert_eq!(served.0, allowed[0]);
    let off = allowed[0] as usize * PIECE as usize;
    assert_eq!(&served.2[..], &s.data[off..off + 16384]);
    assert!(answers.iter().any(|a| !a.1 && a.0 == other));
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
    let id = seeder
        .share(SharedItem {
            path,
            name: "swarm.bin".into(),
            size: SIZE as u64,
            id: ContentId::new(None),
            hashes: None,
        })
        .await
        .unwrap();
    let ih = InfoHash::from_slice(id.get(HashKind::Btih).unwrap()).unwrap();
    let torrent = seeder.index_entry(&ih).unwrap().torrent.unwrap();
    let mut leechers = Vec::new();
    for _ in 0..3 {
        leechers.push(Adapter::start(test_config(vec![])).await.unwrap());
    }
    let sinks: Vec<_> = (0..3)
        .map(|_| Arc::new(FileSink::new(SIZE as u64)))
        .collect();
    let runs = leechers
        .iter()
        .zip(&sinks)
        .map(|(l, s)| run_fetch(l, request(&ih, Some(torrent.clone()), vec![]), s.clone()));
    futures::future::join_all(runs).await;
    for s in &sinks {
        assert!(s.contents() == data);
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
