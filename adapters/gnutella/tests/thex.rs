//! THEX and the TTH: golden vectors from captured gtk-gnutella traffic (its DIME/THEX
//! answer, reproduced byte for byte; the `TT` roots in its hits), and Junction servents
//! on 127.0.0.1 whose hits carry the TTH and whose downloads check units of the Tiger
//! tree as they arrive — while a tree that does not hash up to the known root is ignored.

mod common;
mod net;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use junction_core::query::parse;
use junction_core::tiger_tree;
use junction_core::{ContentId, FetchRequest, HashKind, Network, NetworkId, Source};
use junction_gnutella::engine::hits::{RecordHashes, hit_record};
use junction_gnutella::wire::ext::ExtArea;
use junction_gnutella::wire::http::{
    HttpHead, RequestExt, RequestHead, ResponseExt, ResponseHead, Target,
};
use junction_gnutella::wire::message::Message;
use junction_gnutella::wire::thex::{self, LevelHasher};
use junction_gnutella::{Adapter, Sha1Hash, TigerHash};
use net::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn bravo() -> Vec<u8> {
    let line = b"The quick brown fox jumps over the lazy dog.\n";
    line.iter().copied().cycle().take(65536).collect()
}

fn tth(data: &[u8]) -> TigerHash {
    TigerHash(tiger_tree::root(data))
}

#[test]
fn tth_of_the_captured_files() {
    let alpha: Vec<u8> = (0..1_048_576u32).map(|i| i as u8).collect();
    let charlie: Vec<u8> = (0..100_000u32).map(|i| ((i * 7 + 3) % 251) as u8).collect();
    assert_eq!(
        tth(&alpha).to_base32(),
        "IUHOXFDC3H6J4BH7DMITVRGNXOI5L6QMXFCLS3A"
    );
    assert_eq!(
        tth(&bravo()).to_base32(),
        "V3OIMCCWACJQAKJCKCPXT5RM3QKWCZYT6C7SGBA"
    );
    assert_eq!(
        tth(&charlie).to_base32(),
        "DMTJ43KYFAUY3LJHUZDLVRTBSXAGE2W4IU3BLKQ"
    );
}

/// Capture 06k: gtk-gnutella's answer to `GET /uri-res/N2X?urn:sha1:…;<TTH>` for the
/// 65536-byte bravo file. We decode it, and our own answer for the same file is the
/// very same bytes.
#[test]
fn gtk_gnutella_thex_answer_decodes_and_is_reproduced_exactly() {
    let req = &common::requests("06k", &common::data("06k-http-get-thex-tree.a2b.bin"))[0];
    let Target::N2X(urn) = req.target() else {
        panic!("{:?}", req.target())
    };
    assert_eq!(
        urn.sha1().unwrap().to_base32(),
        "4A4FBL4XWBMMUTZEVC2RUSWBX7UPIOI7"
    );
    let resp = common::responses(
        "06k",
        &common::data("06k-http-get-thex-tree.b2a.bin"),
        &["GET"],
    );
    let (head, body) = &resp[0];
    assert_eq!(head.headers.get("Content-Type"), Some("application/dime"));
    let data = bravo();
    let root = tth(&data);
    let level = thex::decode_answer(&Bytes::from(body.clone()), 65536, &root).unwrap();
    assert_eq!((level.depth, level.unit_len), (0, 65536));
    assert_eq!(level.nodes, vec![root]);
    // Anything but the real root or size is refused.
    assert!(thex::decode_answer(&Bytes::from(body.clone()), 65536, &TigerHash([0; 24])).is_err());
    assert!(thex::decode_answer(&Bytes::from(body.clone()), 65535, &root).is_err());

    let mut h = LevelHasher::new(65536);
    h.update(&data);
    let ours = thex::encode_answer(65536, &h.finish()).unwrap();
    assert_eq!(
        ours, *body,
        "our DIME/THEX answer is gtk-gnutella's, byte for byte"
    );
}

/// Capture 04a: gtk-gnutella puts the TTH in each record as GGEP `TT` (COBS when the
/// root holds a NUL); our records do the same, and both read back.
#[test]
fn hits_carry_the_tth_as_ggep_tt() {
    let s = common::decode_stream("04a", &common::data("04a-query-keyword-and-hit.b2a.bin"));
    let Message::QueryHit(h) = &s[0].message else {
        panic!()
    };
    let roots: Vec<String> = h
        .results
        .iter()
        .map(|r| r.ext.tiger().unwrap().to_base32())
        .collect();
    assert_eq!(
        roots,
        [
            "IUHOXFDC3H6J4BH7DMITVRGNXOI5L6QMXFCLS3A",
            "V3OIMCCWACJQAKJCKCPXT5RM3QKWCZYT6C7SGBA",
            "DMTJ43KYFAUY3LJHUZDLVRTBSXAGE2W4IU3BLKQ"
        ]
    );
    let data = bravo();
    let root = tth(&data);
    for size in [65536u64, 5 << 30] {
        let hashes = RecordHashes {
            sha1: Sha1Hash::digest(&data),
            ed2k: None,
            tth: Some(root),
            btih: None,
        };
        let rec = hit_record(2, "bravo.txt", size, &hashes);
        let mut wire = Vec::new();
        rec.ext.encode(&mut wire);
        assert!(!wire.contains(&0), "no NUL inside a record's extensions");
        wire.push(0);
        let back = ExtArea::decode_nul_terminated(&mut Bytes::from(wire)).unwrap();
        assert_eq!(back.tiger(), Some(root));
        assert_eq!(back.sha1(), Some(Sha1Hash::digest(&data)));
        let tt = back.ggep("TT").unwrap();
        assert!(tt.is_cobs(), "bravo's root holds NULs, as in the capture");
    }
}

/// Bytes the sink holds verified.
fn verified(sink: &FileSink) -> u64 {
    sink.swarm.ledger().verified().covered()
}

/// A seeder shares a 2 MiB file (its hits carry the TTH); a leaf finds it, downloads it
/// with the TTH known from the hit, takes the THEX tree (16 units of 128 KiB) and the
/// ledger verifies units while the rest is still coming.
#[tokio::test]
async fn units_are_verified_before_the_end_by_the_seeders_thex() {
    let dir = tempfile::tempdir().unwrap();
    let len = 2 << 20;
    let (path, data) = make_file(dir.path(), "Thex Payload.bin", len, 11);
    let up = Adapter::start(junction_gnutella::Config {
        upload_limit: Some(1_500_000),
        ..cfg(true, &[])
    })
    .await
    .unwrap();
    let leaf = Adapter::start(junction_gnutella::Config {
        chunk_size: 128 << 10,
        download_sources: 1,
        ..cfg(false, &[up.local_addr()])
    })
    .await
    .unwrap();
    let id = share(&up, &path, "Thex Payload.bin").await;
    let root = tth(&data);
    assert_eq!(
        id.get(HashKind::Tth),
        Some(root.0.as_slice()),
        "shares get a TTH"
    );
    assert_eq!(
        id.get(HashKind::Sha1),
        Some(Sha1Hash::digest(&data).0.as_slice())
    );
    linked(&leaf, 1).await;
    let mut hits = leaf.search(parse("thex payload").unwrap()).await.unwrap();
    let hit = within("hit", 10, hits.next()).await.unwrap().unwrap();
    drop(hits);
    assert_eq!(
        hit.id.get(HashKind::Tth),
        Some(root.0.as_slice()),
        "hits carry it"
    );
    assert!(hit.link.as_deref().unwrap().contains("urn:bitprint:"));

    let sink = file_sink(hit.size);
    let mut ev = leaf
        .fetch(
            FetchRequest {
                id: hit.id.clone(),
                name: hit.name.clone(),
                size: hit.size,
                sources: hit.locations.clone(),
                trackers: vec![],
                torrent: None,
            },
            sink.clone(),
        )
        .await
        .unwrap();
    let watch = sink.clone();
    let early = tokio::spawn(async move {
        // The most bytes seen verified before all were (the SHA-1 alone verifies
        // nothing until the whole file is in).
        let mut best = 0u64;
        loop {
            let v = verified(&watch);
            if v == len as u64 {
                return best;
            }
            best = best.max(v);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    within("download", 60, async { while ev.next().await.is_some() {} }).await;
    assert!(sink.is_verified(), "whole file verified");
    assert_eq!(sink.contents(), data);
    let best = within("watcher", 5, early).await.unwrap();
    assert!(
        best >= 128 << 10 && best % (128 << 10) == 0,
        "whole 128 KiB units were verified before the last byte came ({best} bytes)"
    );
    leaf.shutdown().await;
    up.shutdown().await;
}

/// A source serving `served` by ranges, each answer naming `root` in `X-Thex-URI`, and at
/// that URI `bad_tree` (a tree that misses `root`); `asked` counts the tree requests.
async fn serve_with_bad_tree(
    listener: tokio::net::TcpListener,
    served: Arc<Vec<u8>>,
    sha1: Sha1Hash,
    root: TigerHash,
    bad_tree: Vec<u8>,
    asked: Arc<AtomicUsize>,
) {
    loop {
        let (mut s, _) = listener.accept().await.unwrap();
        let (asked, data, bad_tree) = (asked.clone(), served.clone(), bad_tree.clone());
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            loop {
                let req = loop {
                    if let Some((r, n)) = RequestHead::parse(&buf).unwrap() {
                        let _ = buf.split_to(n);
                        break r;
                    }
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                };
                let mut out;
                match req.target() {
                    Target::N2X(_) => {
                        asked.fetch_add(1, Ordering::SeqCst);
                        out = ResponseHead::new(
                            200,
                            "OK",
                            junction_core::http::Headers::new()
                                .with("Content-Type", "application/dime")
                                .with("Content-Length", bad_tree.len().to_string()),
                        )
                        .to_bytes();
                        out.extend_from_slice(&bad_tree);
                    }
                    _ => {
                        let r = req.range().unwrap().unwrap()[0]
                            .resolve(data.len() as u64)
                            .unwrap();
                        let urn = junction_gnutella::Urn::Sha1(sha1);
                        let mut head =
                            ResponseHead::partial(r.0, r.1, data.len() as u64, "fake", Some(&urn));
                        head.headers.push(
                            "X-Thex-URI",
                            format!("/uri-res/N2X?{urn};{}", root.to_base32()),
                        );
                        out = head.to_bytes();
                        out.extend_from_slice(&data[r.0 as usize..=r.1 as usize]);
                    }
                }
                if s.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// A source whose THEX tree does not hash up to the TTH we knew: the tree is ignored
/// (asked for once), and the file is still fetched and checked by its SHA-1.
#[tokio::test]
async fn a_tree_that_misses_the_known_root_is_ignored() {
    let len: usize = 600 << 10;
    let data: Vec<u8> = (0..len).map(|i| (i * 13 % 255) as u8).collect();
    let sha1 = Sha1Hash::digest(&data);
    let root = tth(&data);
    // The tree of other bytes of the same size, served as this file's.
    let other: Vec<u8> = data.iter().map(|b| b ^ 0x55).collect();
    let mut h = LevelHasher::new(len as u64);
    h.update(&other);
    let bad_tree = thex::encode_answer(len as u64, &h.finish()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let thex_asked = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn(serve_with_bad_tree(
        listener,
        Arc::new(data.clone()),
        sha1,
        root,
        bad_tree,
        thex_asked.clone(),
    ));
    let leaf = Adapter::start(junction_gnutella::Config {
        chunk_size: 64 << 10,
        ..cfg(false, &[])
    })
    .await
    .unwrap();
    let sink = file_sink(len as u64);
    let id = ContentId::new(Some(len as u64))
        .with(HashKind::Sha1, &sha1.0)
        .with(HashKind::Tth, &root.0);
    let mut ev = leaf
        .fetch(
            FetchRequest {
                id,
                name: "x.bin".into(),
                size: len as u64,
                sources: vec![Source {
                    network: NetworkId::GNUTELLA,
                    address: addr.into(),
                    detail: None,
                }],
                trackers: vec![],
                torrent: None,
            },
            sink.clone(),
        )
        .await
        .unwrap();
    let mut early = 0;
    within("download", 30, async {
        loop {
            tokio::select! {
                e = ev.next() => if e.is_none() { break },
                () = tokio::time::sleep(Duration::from_millis(2)) => {
                    let v = verified(&sink);
                    if v < len as u64 { early = early.max(v); }
                }
            }
        }
    })
    .await;
    assert!(sink.is_verified(), "checked by the SHA-1 at the end");
    assert_eq!(sink.contents(), data);
    assert_eq!(
        thex_asked.load(Ordering::SeqCst),
        1,
        "the tree was asked for once"
    );
    assert_eq!(early, 0, "nothing was verified by the rejected tree");
    server.abort();
    leaf.shutdown().await;
}

/// The body of `fuzz/fuzz_targets/gnutella_thex.rs`, run here on seeds (the captured
/// answer, ours, and damaged copies) so its checks are known to hold and to build.
fn fuzz_one(data: &[u8]) {
    use junction_gnutella::wire::dime;
    let body = Bytes::copy_from_slice(data);
    if let Ok(records) = dime::decode_message(&body) {
        let mut v = Vec::new();
        if dime::encode_message(&records, &mut v).is_ok() {
            assert_eq!(
                dime::decode_message(&Bytes::from(v)).ok(),
                Some(records.clone())
            );
        }
        for r in &records {
            let _ = thex::parse_xml(&r.data);
        }
    }
    let (size, root) = match data.get(..32) {
        Some(head) => {
            let mut s = [0u8; 8];
            s.copy_from_slice(&head[..8]);
            let mut r = [0u8; 24];
            r.copy_from_slice(&head[8..]);
            (u64::from_le_bytes(s) >> (head[0] % 64), r)
        }
        None => (65536, [0u8; 24]),
    };
    if let Ok(level) = thex::decode_answer(&body, size, &TigerHash(root)) {
        assert_eq!(level.root(), Some(TigerHash(root)));
        assert!(level.unit_len >= 1024 && (level.unit_len / 1024).is_power_of_two());
    }
    for body in [body.slice(32.min(body.len())..), body] {
        let _ = thex::decode_answer(&body, 65536, &TigerHash(root));
    }
}

#[test]
fn fuzz_checks_hold_on_seeds() {
    let captured = common::responses(
        "06k",
        &common::data("06k-http-get-thex-tree.b2a.bin"),
        &["GET"],
    )
    .remove(0)
    .1;
    let data: Vec<u8> = (0..(300u32 << 10)).map(|i| (i % 253) as u8).collect();
    let mut h = LevelHasher::new(data.len() as u64);
    h.update(&data);
    let ours = thex::encode_answer(data.len() as u64, &h.finish()).unwrap();
    for seed in [captured, ours] {
        fuzz_one(&seed);
        for i in (0..seed.len()).step_by(7) {
            fuzz_one(&seed[..i]);
            let mut bad = seed.clone();
            bad[i] ^= 0xA5;
            fuzz_one(&bad);
        }
    }
}
