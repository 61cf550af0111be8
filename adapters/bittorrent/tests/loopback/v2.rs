//! BEP 52 between Junctions: a v2-only torrent of three files (each starting a piece, the
//! last piece short) seeded by one adapter, fetched by another from the `.torrent` (piece
//! layers inside) and by a third from its btmh magnet alone (info dict over ut_metadata,
//! piece layers over hash requests the seeder answers with their proofs); and a hybrid
//! Junction shares, whose connections a peer offering v2 gets upgraded to v2.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use junction_bittorrent::wire::metainfo::Metainfo;
use junction_bittorrent::wire::{Handshake, Reserved};
use junction_bittorrent::{Adapter, InfoHash, PeerId};
use junction_core::hashing::bt::V2Hasher;
use junction_core::testing::MemSink;
use junction_core::{ContentId, FetchEvent, FetchRequest, HashKind, Network, TransferSink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{local_tracker, random_bytes, run_fetch, test_config};

const PL: u32 = 32 * 1024;

/// A v2-only `.torrent` of `files` in a folder `dir`, as libtorrent makes one: the file
/// tree, and piece layers for the files longer than a piece.
fn v2_torrent(dir: &str, files: &[(&str, &[u8])], tracker: &str) -> Vec<u8> {
    let mut tree = Vec::new();
    let mut layers = Vec::new();
    for (path, data) in files {
        let mut h = V2Hasher::new();
        h.update(data);
        let t = h.finish(u64::from(PL)).unwrap();
        tree.extend_from_slice(
            format!(
                "{}:{path}d0:d6:lengthi{}e11:pieces root32:",
                path.len(),
                data.len()
            )
            .as_bytes(),
        );
        tree.extend_from_slice(&t.pieces_root);
        tree.extend_from_slice(b"ee");
        if t.piece_layer.len() > 1 {
            layers.push((t.pieces_root, t.piece_layer.concat()));
        }
    }
    layers.sort();
    let mut t = format!("d8:announce{}:{tracker}4:infod9:file treed", tracker.len()).into_bytes();
    t.extend_from_slice(&tree);
    t.extend_from_slice(
        format!(
            "e12:meta versioni2e4:name{}:{dir}12:piece lengthi{PL}ee",
            dir.len()
        )
        .as_bytes(),
    );
    t.extend_from_slice(b"12:piece layersd");
    for (root, layer) in layers {
        t.extend_from_slice(b"32:");
        t.extend_from_slice(&root);
        t.extend_from_slice(format!("{}:", layer.len()).as_bytes());
        t.extend_from_slice(&layer);
    }
    t.extend_from_slice(b"ee");
    t
}

fn fetch_request(
    ih: &InfoHash,
    size: u64,
    torrent: Option<Bytes>,
    trackers: Vec<String>,
) -> FetchRequest {
    FetchRequest {
        id: ContentId::new(Some(size)).with(HashKind::Btih, &ih.0),
        name: "v2".into(),
        size,
        sources: Vec::new(),
        trackers,
        torrent,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_only_torrent_goes_between_junctions_by_torrent_and_by_btmh_magnet() {
    let tracker = local_tracker().await;
    let (a, b, c) = (
        random_bytes(100_000),
        b"five!".to_vec(),
        random_bytes(300_000),
    );
    let files: [(&str, &[u8]); 3] = [("a.bin", &a), ("b.txt", &b), ("c.bin", &c)];
    let torrent = Bytes::from(v2_torrent("dir", &files, &tracker.announce_url()));
    let m = Metainfo::parse(&torrent).unwrap();
    let ih = m.info.swarm_hash();
    let v2 = m.info.info_hash_v2.unwrap();
    assert_eq!(ih, v2.truncated());
    // The transfer's bytes: each file from a piece boundary, zeros between.
    let size = m.info.total_length;
    assert_eq!(size, 5 * u64::from(PL) + 300_000);
    let mut layout = a.clone();
    layout.resize(4 * PL as usize, 0);
    layout.extend_from_slice(&b);
    layout.resize(5 * PL as usize, 0);
    layout.extend_from_slice(&c);
    assert_eq!(layout.len() as u64, size);

    // The seeder: a sink that holds everything verified already.
    let seeder = Adapter::start(test_config(vec![])).await.unwrap();
    let full = Arc::new(MemSink::new(size));
    full.write(0, &layout).unwrap();
    full.verified(0..size, true);
    let _seeding = seeder
        .fetch(
            fetch_request(&ih, size, Some(torrent.clone()), vec![]),
            full,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seeder.torrent_stats(&ih).is_some_and(|s| s.complete));

    // From the .torrent: every piece checked by SHA-256 Merkle against the piece layers.
    let leech = Adapter::start(test_config(vec![])).await.unwrap();
    let sink = Arc::new(MemSink::new(size));
    let ev = run_fetch(
        &leech,
        fetch_request(&ih, size, Some(torrent), vec![]),
        sink.clone(),
    )
    .await;
    assert!(
        ev.contains(&FetchEvent::Note("download complete and verified".into())),
        "{ev:?}"
    );
    assert!(sink.data() == layout, "the .torrent fetch differs");
    assert_eq!(sink.failures(), 0);

    // From the btmh magnet alone: the piece layers come from the seeders' hashes answers.
    let magnet = format!(
        "magnet:?xt=urn:btmh:{}&tr={}",
        v2.to_multihash_hex(),
        tracker.announce_url()
    );
    let leech2 = Adapter::start(test_config(vec![])).await.unwrap();
    let sink2 = Arc::new(MemSink::new(size));
    let ev = run_fetch(
        &leech2,
        fetch_request(&ih, size, None, vec![magnet]),
        sink2.clone(),
    )
    .await;
    assert!(
        ev.contains(&FetchEvent::Note("download complete and verified".into())),
        "{ev:?}"
    );
    assert!(sink2.data() == layout, "the magnet fetch differs");
    assert_eq!(leech2.torrent_stats(&ih).map(|s| s.failed_pieces), Some(0));

    leech.shutdown().await;
    leech2.shutdown().await;
    seeder.shutdown().await;
}

/// Dials `seeder` for `ih` with `reserved` and returns the handshake it answers with.
async fn greeting(seeder: &Adapter, ih: InfoHash, reserved: Reserved) -> Handshake {
    let mut c = tokio::net::TcpStream::connect(seeder.listen_addr())
        .await
        .unwrap();
    let hs = Handshake {
        reserved,
        info_hash: ih,
        peer_id: PeerId(*b"-TS0001-v2v2v2v2v2v2"),
    };
    c.write_all(&hs.to_bytes()).await.unwrap();
    let mut b = [0u8; 68];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut b))
        .await
        .expect("a handshake in time")
        .unwrap();
    Handshake::parse(&b).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_offering_v2_on_a_shared_hybrid_is_upgraded() {
    let tracker = crate::local_tracker().await;
    let s = crate::seed(&tracker).await;
    let v2 = Metainfo::parse(&s.torrent)
        .unwrap()
        .info
        .info_hash_v2
        .unwrap();
    let v1_peer = Reserved::default().with(Reserved::FAST);
    let hs = greeting(&s.seeder, s.ih, v1_peer).await;
    assert_eq!(hs.info_hash, s.ih, "a v1 peer stays on v1");
    assert!(!hs.reserved.has(Reserved::V2_UPGRADE));
    let hs = greeting(&s.seeder, s.ih, v1_peer.with(Reserved::V2_UPGRADE)).await;
    assert_eq!(
        hs.info_hash,
        v2.truncated(),
        "BEP 52: answered with the v2 info-hash"
    );
    assert!(hs.reserved.has(Reserved::V2_UPGRADE));
    s.seeder.shutdown().await;
}
