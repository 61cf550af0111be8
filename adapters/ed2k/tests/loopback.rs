//! Junction's index server and Junction eD2k adapters on 127.0.0.1: search, multi-part
//! download with part verification, a corrupt uploader, a LowID source reached by callback,
//! and malformed input.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::query::parse;
use junction_core::swarm::{MemStore, Swarm, SwarmSink};
use junction_core::{
    ContentId, FetchEvent, FetchRequest, HashKind, Hit, Network, NetworkId, NetworkState, RangeSet,
    SharedItem, TransferSink,
};
use junction_ed2k::hash::{PART_SIZE, ed2k_hash};
use junction_ed2k::{Adapter, Config, IndexServer, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../../../tests/examples/common/pseudo_random.rs"]
mod pseudo_random;
#[path = "loopback/servers.rs"]
mod servers;
use pseudo_random::pseudo_random;

/// An in-memory sink that checks parts, as the gateway's does.
type MemSink = SwarmSink<MemStore>;

fn mem_sink(size: u64) -> Arc<MemSink> {
    let swarm = Arc::new(Swarm::new(MemStore::new(size), size, RangeSet::new()));
    SwarmSink::new(swarm, NetworkId::ED2K)
}

/// Bytes eD2k received that failed a part check.
fn discarded(sink: &MemSink) -> u64 {
    let l = sink.swarm.ledger();
    l.figures().get(&NetworkId::ED2K).map_or(0, |f| f.discarded)
}

/// Compressible content: text-like lines.
fn compressible(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(format!("line {i} of a compressible Junction test file\n").as_bytes());
        i += 1;
    }
    v.truncate(len);
    v
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

async fn index_server() -> IndexServer {
    IndexServer::start(ServerConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse().unwrap(),
        connect_back_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

fn cfg(server: &IndexServer, nick: &str, listen: bool) -> Config {
    Config {
        listen: listen.then(|| "127.0.0.1:0".parse().unwrap()),
        servers: vec![server.local_addr().to_string()],
        nick: nick.into(),
        connect_timeout: Duration::from_secs(5),
        peer_timeout: Duration::from_secs(15),
        callback_timeout: Duration::from_secs(10),
        source_requery: Duration::from_secs(2),
        fetch_idle_timeout: Duration::from_secs(30),
        ..Config::default()
    }
}

async fn start(server: &IndexServer, nick: &str, listen: bool) -> Adapter {
    let a = Adapter::start(cfg(server, nick, listen)).await.unwrap();
    assert!(
        a.wait_logged_in(Duration::from_secs(15)).await,
        "{nick} did not log in"
    );
    a
}

async fn share(a: &Adapter, path: &Path) -> ContentId {
    a.share(SharedItem {
        path: path.to_path_buf(),
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        size: 0,
        id: ContentId::new(None),
        hashes: None,
    })
    .await
    .unwrap()
}

async fn search(a: &Adapter, q: &str, want: usize) -> Vec<Hit> {
    for _ in 0..40 {
        let mut s = a.search(parse(q).unwrap()).await.unwrap();
        let mut hits = Vec::new();
        while let Ok(Some(h)) = tokio::time::timeout(Duration::from_secs(5), s.next()).await {
            hits.push(h.unwrap());
        }
        if hits.len() >= want {
            return hits;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("search {q:?} never found {want} hits");
}

/// Fetches into a memory sink, draining events until the fetch ends.
async fn fetch(
    a: &Adapter,
    id: ContentId,
    name: &str,
    size: u64,
    sources: Vec<junction_core::Source>,
) -> (Arc<MemSink>, Vec<FetchEvent>) {
    let sink = mem_sink(size);
    let req = FetchRequest {
        id,
        name: name.into(),
        size,
        sources,
        trackers: Vec::new(),
        torrent: None,
    };
    let mut ev = a.fetch(req, sink.clone()).await.unwrap();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match tokio::time::timeout_at(deadline, ev.next()).await {
            Ok(Some(e)) => {
                let done = matches!(&e, FetchEvent::Note(n) if n.starts_with("complete"));
                events.push(e);
                if done {
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => panic!("fetch of {name} timed out; events {events:?}"),
        }
    }
    (sink, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_fetch_multi_part_and_exact_part_files() {
    let dir = tempfile::tempdir().unwrap();
    let big = pseudo_random(10 * 1024 * 1024, 7);
    let exact = compressible(PART_SIZE as usize);
    let big_p = write_file(dir.path(), "alpha big.bin", &big);
    let exact_p = write_file(dir.path(), "alpha exact.txt", &exact);

    let server = index_server().await;
    let a = start(&server, "alice", true).await;
    let b = start(&server, "bob", true).await;
    let id_big = share(&a, &big_p).await;
    let id_exact = share(&a, &exact_p).await;
    assert_eq!(id_big.get(HashKind::Ed2k).unwrap(), ed2k_hash(&big).root);
    assert_eq!(
        hex::encode_upper(id_exact.get(HashKind::Ed2k).unwrap()),
        hex::encode_upper(ed2k_hash(&exact).root)
    );
    assert!(id_big.get(HashKind::Aich).is_some());

    let hits = search(&b, "alpha", 2).await;
    assert_eq!(hits.len(), 2);
    let typed = search(&b, "alpha type:doc", 1).await;
    assert_eq!(typed.len(), 1);
    assert_eq!(typed[0].name, "alpha exact.txt");
    let neg = search(&b, "alpha -exact size>1MB", 1).await;
    assert_eq!(neg.len(), 1);
    assert_eq!(neg[0].name, "alpha big.bin");

    for h in &hits {
        assert!(h.sources >= 1);
        assert_eq!(h.locations.len(), 1, "HighID source in the result");
        let t0 = std::time::Instant::now();
        let (sink, events) = fetch(&b, h.id.clone(), &h.name, h.size, h.locations.clone()).await;
        let got = sink.swarm.store().bytes();
        let want = if h.name.contains("big") { &big } else { &exact };
        assert_eq!(got.len(), want.len());
        assert!(got == *want, "bytes differ for {}", h.name);
        assert_eq!(
            ed2k_hash(&got).root.as_slice(),
            h.id.get(HashKind::Ed2k).unwrap()
        );
        assert!(sink.wanted().is_empty());
        assert_eq!(discarded(&sink), 0);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, FetchEvent::Peers(n) if *n >= 1))
        );
        eprintln!(
            "fetched {} ({} bytes) in {:?}",
            h.name,
            h.size,
            t0.elapsed()
        );
    }

    let st = a.status();
    assert_eq!(st.state, NetworkState::Online);
    assert!(
        st.reachability.detail.starts_with("HighID"),
        "{}",
        st.reachability
    );
    // The server reached us: in, and at the address it saw.
    assert_eq!(st.reachability.reachable, Some(true));
    assert_eq!(st.reachability.external, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(st.reachability.listening, a.peer_addr());
    assert!(st.bytes_out > big.len() as u64 / 2);
    let sb = b.status();
    assert!(sb.bytes_in > big.len() as u64);
    let stats = server.stats();
    assert_eq!(stats.users, 2);
    assert_eq!(stats.files, 2);
    assert!(
        sb.details
            .iter()
            .any(|(k, v)| k == "server_files" && v == "2")
    );

    // locate finds alice.
    let mut srcs = b.locate(id_big.clone()).await.unwrap();
    let s = tokio::time::timeout(Duration::from_secs(5), srcs.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.address, a.peer_addr().unwrap().into());

    a.shutdown().await;
    b.shutdown().await;
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowid_source_is_reached_through_a_callback() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(PART_SIZE as usize + 1000, 3);
    let p = write_file(dir.path(), "delta lowid.bin", &data);
    let server = index_server().await;
    let low = start(&server, "firewalled", false).await;
    let st = low.status();
    assert!(
        st.reachability.detail.starts_with("LowID"),
        "{}",
        st.reachability
    );
    assert_eq!(
        st.reachability.reachable,
        Some(false),
        "a LowID is firewalled"
    );
    assert_eq!(st.reachability.external, None);
    let id = share(&low, &p).await;
    let high = start(&server, "reachable", true).await;
    let hits = search(&high, "delta", 1).await;
    assert!(
        hits[0].locations.is_empty(),
        "a LowID is not a direct location"
    );
    let (sink, _) = fetch(
        &high,
        id.clone(),
        "delta lowid.bin",
        data.len() as u64,
        Vec::new(),
    )
    .await;
    assert!(sink.swarm.store().bytes() == data);
    assert_eq!(server.stats().low_id_users, 1);

    // Two LowIDs cannot reach each other: the fetch ends without data instead of hanging.
    let other_low = Adapter::start(Config {
        fetch_idle_timeout: Duration::from_secs(3),
        ..cfg(&server, "low2", false)
    })
    .await
    .unwrap();
    assert!(other_low.wait_logged_in(Duration::from_secs(15)).await);
    let sink2 = mem_sink(data.len() as u64);
    let req = FetchRequest {
        id,
        name: "x".into(),
        size: data.len() as u64,
        sources: Vec::new(),
        trackers: Vec::new(),
        torrent: None,
    };
    let mut ev = other_low.fetch(req, sink2.clone()).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while ev.next().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok());
    assert!(!sink2.wanted().is_empty());
    for a in [&low, &high, &other_low] {
        a.shutdown().await;
    }
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_closes_only_that_connection() {
    let server = index_server().await;
    let a = start(&server, "sturdy", true).await;
    let peer = a.peer_addr().unwrap();
    for garbage in [
        &[0xE3, 0xFF, 0xFF, 0xFF, 0x7F, 0x01][..], // oversized length
        &[0x42, 0, 0, 0, 0][..],                   // unknown protocol
        &[0xE3, 0x03, 0, 0, 0, 0x01, 0xFF, 0xFF][..], // truncated hello
        &[0xE3, 0x02, 0, 0, 0, 0xEE, 0x00][..],    // unknown opcode first
    ] {
        for addr in [peer, server.local_addr()] {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(garbage).await.unwrap();
            let mut buf = [0u8; 64];
            let r = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await;
            assert!(
                matches!(r, Ok(Ok(0)) | Ok(Err(_))),
                "connection to {addr} not closed: {r:?}"
            );
        }
    }
    // Still serving: a new client logs in and searches.
    let b = start(&server, "after", true).await;
    let mut s = b.search(parse("nothing").unwrap()).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(server.stats().users, 2);
    a.shutdown().await;
    b.shutdown().await;
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_slot_limit_queues_the_second_downloader() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(2 * PART_SIZE as usize, 5);
    let p = write_file(dir.path(), "epsilon.bin", &data);
    let server = index_server().await;
    let seeder = Adapter::start(Config {
        upload_slots: 1,
        ..cfg(&server, "seeder", true)
    })
    .await
    .unwrap();
    assert!(seeder.wait_logged_in(Duration::from_secs(15)).await);
    let id = share(&seeder, &p).await;
    let d1 = start(&server, "d1", true).await;
    let d2 = start(&server, "d2", true).await;
    let size = data.len() as u64;
    let (r1, r2) = tokio::join!(
        fetch(&d1, id.clone(), "epsilon.bin", size, Vec::new()),
        fetch(&d2, id.clone(), "epsilon.bin", size, Vec::new())
    );
    assert!(r1.0.swarm.store().bytes() == data && r2.0.swarm.store().bytes() == data);
    let queued = |ev: &[FetchEvent]| {
        ev.iter()
            .any(|e| matches!(e, FetchEvent::Note(n) if n.starts_with("queued at rank")))
    };
    assert!(
        queued(&r1.1) || queued(&r2.1),
        "one downloader waits for the single slot"
    );
    for a in [&seeder, &d1, &d2] {
        a.shutdown().await;
    }
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_cache_spares_a_second_hashing_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = index_server().await;
    let data = pseudo_random(PART_SIZE as usize + 1234, 77);
    let path = write_file(dir.path(), "cached.bin", &data);
    let cache = dir.path().join("state").join("ed2k-hashes");
    let with_cache = |nick: &str| Config {
        hash_cache: Some(cache.clone()),
        ..cfg(&server, nick, false)
    };
    let expect = ed2k_hash(&data).root;

    let a = Adapter::start(with_cache("first")).await.unwrap();
    let id = share(&a, &path).await;
    assert_eq!(id.get(HashKind::Ed2k), Some(&expect[..]));
    assert_eq!(a.files_hashed(), 1);
    a.shutdown().await;
    assert!(cache.exists(), "the cache was not written");

    // A new instance (a restart) shares the same file from the cache, with the same hashes.
    let b = Adapter::start(with_cache("second")).await.unwrap();
    let id2 = share(&b, &path).await;
    assert_eq!(b.files_hashed(), 0, "the second instance hashed again");
    assert_eq!(id2.get(HashKind::Ed2k), id.get(HashKind::Ed2k));
    assert_eq!(id2.get(HashKind::Aich), id.get(HashKind::Aich));

    // A changed file (other size) is hashed again, never answered from the cache.
    let changed = pseudo_random(PART_SIZE as usize + 99, 78);
    std::fs::write(&path, &changed).unwrap();
    let id3 = share(&b, &path).await;
    assert_eq!(b.files_hashed(), 1);
    assert_eq!(id3.get(HashKind::Ed2k), Some(&ed2k_hash(&changed).root[..]));
    b.shutdown().await;

    // A corrupt cache file is ignored: the file is hashed and the cache rewritten.
    std::fs::write(&cache, b"JED2KHC1\xff\xff garbage").unwrap();
    let c = Adapter::start(with_cache("third")).await.unwrap();
    let id4 = share(&c, &path).await;
    assert_eq!(c.files_hashed(), 1);
    assert_eq!(id4.get(HashKind::Ed2k), id3.get(HashKind::Ed2k));
    c.shutdown().await;
    let d = Adapter::start(with_cache("fourth")).await.unwrap();
    share(&d, &path).await;
    assert_eq!(d.files_hashed(), 0, "the rebuilt cache was not used");
    d.shutdown().await;
}

/// eMule and aMule re-list their pending blocks in every `OP_REQUESTPARTS` (a window of three
/// sliding by one); the uploader must send each block once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relisted_block_requests_are_served_once() {
    use junction_ed2k::wire::peer::{ByteRange, Hello};
    use junction_ed2k::wire::{PeerMessage, TagEncoding};
    let dir = tempfile::tempdir().unwrap();
    let server = index_server().await;
    let a = start(&server, "uploader", true).await;
    let data = pseudo_random(6 * 184_320, 5);
    let path = write_file(dir.path(), "blocks.bin", &data);
    let id = share(&a, &path).await;
    let hash: [u8; 16] = id.get(HashKind::Ed2k).unwrap().try_into().unwrap();

    let mut s = tokio::net::TcpStream::connect(a.peer_addr().unwrap())
        .await
        .unwrap();
    let send = |m: PeerMessage| {
        let f = m.to_frame(TagEncoding::Classic).unwrap();
        let mut b = bytes::BytesMut::new();
        f.encode(&mut b).unwrap();
        b.to_vec()
    };
    let hello = Hello {
        user_hash: [7; 16],
        client_id: junction_ed2k::wire::ClientId(0x0100_007f),
        port: 4662,
        tags: Vec::new(),
        server: std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
        trailer: None,
    };
    s.write_all(&send(PeerMessage::Hello(hello))).await.unwrap();
    s.write_all(&send(PeerMessage::SetReqFileId(hash)))
        .await
        .unwrap();
    s.write_all(&send(PeerMessage::StartUploadRequest(Some(hash))))
        .await
        .unwrap();
    let b = |i: u64| ByteRange::new(i * 184_320, (i + 1) * 184_320).unwrap();
    // Windows [0,1,2], [1,2,3], [2,3,4], [3,4,5]: six distinct blocks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for w in 0..4u64 {
        let ranges = [b(w), b(w + 1), b(w + 2)];
        s.write_all(&send(PeerMessage::RequestParts { hash, ranges }))
            .await
            .unwrap();
    }
    // Read everything the uploader sends for 2 s and count the payload bytes of part data.
    let mut buf = bytes::BytesMut::new();
    let mut payload = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        while let Some(f) = junction_ed2k::wire::frame::decode(&mut buf).unwrap() {
            if let Ok(PeerMessage::SendingPart { data, .. }) = PeerMessage::decode_frame(&f) {
                payload += data.len() as u64;
            }
        }
        let mut chunk = [0u8; 65536];
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    assert_eq!(payload, 6 * 184_320, "each requested block exactly once");
    a.shutdown().await;
}

/// The same liar, with a sink that checks parts itself (as the gateway's does): every byte
/// ends up right, the liar's bytes are counted as discarded, and the fetch ends by itself.
/// Without an AICH root, a liar's part fails its MD4 check whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checking_sink_verifies_parts_and_drops_the_liar() {
    let figures = fetch_past_a_liar(false).await;
    assert!(
        figures.discarded >= PART_SIZE,
        "the corrupt peer never got to send a part: {figures:?}"
    );
}

/// With the AICH root from the link, the part's block hashes come from a peer (proven
/// against the root), and a liar's bad block fails alone: far less than a part is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aich_blocks_confine_a_liar_to_single_blocks() {
    let figures = fetch_past_a_liar(true).await;
    assert!(
        figures.discarded > 0 && figures.discarded < PART_SIZE / 2,
        "AICH blocks should confine the loss: {figures:?}"
    );
}

/// Fetches a 3-part file from an honest peer and one whose uploads are corrupt; returns
/// eD2k's figures once the file is whole and identical.
async fn fetch_past_a_liar(with_aich: bool) -> junction_core::swarm::NetFigures {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(3 * PART_SIZE as usize + 12345, 12);
    let p = write_file(dir.path(), "delta.bin", &data);
    let server = index_server().await;
    let honest = start(&server, "honest", true).await;
    let mut c = cfg(&server, "mallory", true);
    c.corrupt_uploads_from = Some(0);
    let bad = Adapter::start(c).await.unwrap();
    assert!(bad.wait_logged_in(Duration::from_secs(15)).await);
    let mut id = share(&honest, &p).await;
    assert!(
        id.get(HashKind::Aich).is_some(),
        "shares name their AICH root"
    );
    share(&bad, &p).await;
    let dl = start(&server, "downloader", true).await;
    for _ in 0..50 {
        let mut s = dl.locate(id.clone()).await.unwrap();
        let mut n = 0;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), s.next()).await {
            n += 1;
        }
        if n >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let size = data.len() as u64;
    let swarm = Arc::new(Swarm::new(MemStore::new(size), size, RangeSet::new()));
    let sink = SwarmSink::new(swarm.clone(), NetworkId::ED2K);
    if !with_aich {
        id = ContentId::new(id.size).with(HashKind::Ed2k, id.get(HashKind::Ed2k).unwrap());
    }
    let req = FetchRequest {
        id: id.clone(),
        name: "delta.bin".into(),
        size,
        sources: Vec::new(),
        trackers: Vec::new(),
        torrent: None,
    };
    let mut ev = dl.fetch(req, sink.clone()).await.unwrap();
    let mut events = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(120), ev.next())
        .await
        .expect("the fetch did not end")
    {
        events.push(e);
    }
    assert!(sink.wanted().is_empty(), "not all verified: {events:?}");
    assert!(swarm.store().bytes() == data, "downloaded bytes differ");
    let figures = swarm.ledger().figures()[&NetworkId::ED2K].clone();
    assert_eq!(figures.verified, size, "{figures:?}");
    assert_eq!(
        figures.dropped, 1,
        "the liar, and only it, is dropped: {figures:?}"
    );
    for a in [&honest, &bad, &dl] {
        a.shutdown().await;
    }
    server.shutdown();
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_limit_holds_and_unlimited_is_not_held() {
    const MIB: usize = 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    // Incompressible, so the packets on the wire are as large as the data.
    let slow = pseudo_random(3 * MIB, 21);
    let fast = pseudo_random(3 * MIB, 22);
    let slow_p = write_file(dir.path(), "kappa slow.bin", &slow);
    let fast_p = write_file(dir.path(), "kappa fast.bin", &fast);
    let server = index_server().await;
    // One seeder limited to 1 MiB/s, one without a limit.
    let limited = Adapter::start(Config {
        upload_limit: Some(MIB as u64),
        ..cfg(&server, "limited", true)
    })
    .await
    .unwrap();
    assert!(limited.wait_logged_in(Duration::from_secs(15)).await);
    let free = start(&server, "free", true).await;
    let slow_id = share(&limited, &slow_p).await;
    let fast_id = share(&free, &fast_p).await;
    let dl = start(&server, "downloader", true).await;
    let source = |a: &Adapter| {
        vec![junction_core::Source {
            network: junction_core::NetworkId::ED2K,
            address: a.peer_addr().unwrap().into(),
            detail: None,
        }]
    };

    let t0 = std::time::Instant::now();
    let (sink, _) = fetch(
        &dl,
        fast_id,
        "kappa fast.bin",
        fast.len() as u64,
        source(&free),
    )
    .await;
    let unlimited = t0.elapsed().as_secs_f64();
    assert!(
        sink.swarm.store().bytes() == fast,
        "downloaded bytes differ"
    );

    let out_before = limited.status().bytes_out;
    let t0 = std::time::Instant::now();
    let (sink, _) = fetch(
        &dl,
        slow_id,
        "kappa slow.bin",
        slow.len() as u64,
        source(&limited),
    )
    .await;
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        sink.swarm.store().bytes() == slow,
        "downloaded bytes differ"
    );
    let out = (limited.status().bytes_out - out_before) as f64;
    eprintln!("3 MiB: unlimited {unlimited:.2}s, at 1 MiB/s {secs:.2}s ({out} bytes out)");
    assert!(
        secs >= 2.0,
        "1 MiB/s upload limit: 3 MiB took only {secs:.2}s"
    );
    assert!(secs < 15.0, "1 MiB/s upload limit: 3 MiB took {secs:.2}s");
    assert!(
        out / secs < 1.5 * MIB as f64,
        "the limited seeder sent {out} bytes in {secs:.2}s"
    );
    assert!(
        unlimited < 2.0,
        "without a limit, 3 MiB over loopback took {unlimited:.2}s"
    );
    for a in [&limited, &free, &dl] {
        a.shutdown().await;
    }
    server.shutdown();
}
