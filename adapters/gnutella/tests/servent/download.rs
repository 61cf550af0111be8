//! Downloads checked by the SHA-1: found by a search, by index, resumed after a restart,
//! and a source lying about the hash.

use futures::StreamExt;
use junction_core::query::parse;
use junction_core::{ContentId, FetchRequest, HashKind, Network, NetworkId, SharedItem};
use junction_gnutella::{Adapter, Sha1Hash};

use crate::net::*;

#[tokio::test]
async fn search_and_download_verified() {
    let dir = tempfile::tempdir().unwrap();
    let len = 3 * 1024 * 1024 + 12345;
    let (path, data) = make_file(dir.path(), "Bravo Payload.bin", len, 7);
    let up = servent(true, &[]).await;
    let leaf = Adapter::start(junction_gnutella::Config {
        chunk_size: 512 * 1024,
        ..cfg(false, &[up.local_addr()])
    })
    .await
    .unwrap();
    // The gateway passes the eD2k hash it knows; hits then carry it as `urn:ed2khash:`.
    let ed2k = [0x5a; 16];
    let mut known = ContentId::new(None);
    known.set(HashKind::Ed2k, &ed2k);
    let id = up
        .share(SharedItem {
            path: path.clone(),
            name: "Bravo Payload.bin".into(),
            size: len as u64,
            id: known,
            hashes: None,
        })
        .await
        .unwrap();
    assert_eq!(id.size, Some(len as u64));
    assert_eq!(
        id.get(HashKind::Sha1).unwrap(),
        Sha1Hash::digest(&data).0.as_slice()
    );
    linked(&leaf, 1).await;

    let mut hits = leaf.search(parse("bravo payload").unwrap()).await.unwrap();
    let hit = within("hit", 10, hits.next()).await.unwrap().unwrap();
    drop(hits);
    assert_eq!(hit.name, "Bravo Payload.bin");
    assert_eq!(hit.size, len as u64);
    assert_eq!(hit.locations[0].address.socket(), Some(up.local_addr()));
    assert_eq!(hit.id.get(HashKind::Ed2k), Some(ed2k.as_slice()));

    let (sink, _) = fetch_all(&leaf, &hit, 30).await;
    assert!(sink.is_verified(), "whole file verified");
    assert_eq!(sink.contents(), data);
    assert!(
        leaf.status().bytes_in >= len as u64,
        "{:?} / {:?}",
        leaf.status(),
        up.status()
    );
    assert!(up.status().bytes_out >= len as u64);
    assert!(detail_u64(&up, "uploads") >= 7, "served in Range chunks");

    // By URN too: a search naming the SHA-1 finds the same file.
    let urn = format!("urn:sha1:{}", Sha1Hash::digest(&data).to_base32());
    let mut hits = leaf.search(parse(&urn).unwrap()).await.unwrap();
    let h2 = within("urn hit", 10, hits.next()).await.unwrap().unwrap();
    assert_eq!(h2.id.get(HashKind::Sha1), hit.id.get(HashKind::Sha1));
    leaf.shutdown().await;
    up.shutdown().await;
}

#[tokio::test]
async fn sha1_mismatch_is_not_verified() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "liar.bin", 70_000, 9);
    let up = servent(true, &[]).await;
    let leaf = servent(false, &[up.local_addr()]).await;
    // The uploader believes a wrong (cached) SHA-1 for the file.
    let wrong = Sha1Hash::digest(b"something else");
    up.share(SharedItem {
        path: path.clone(),
        name: "liar.bin".into(),
        size: 70_000,
        id: ContentId::new(Some(70_000)).with(HashKind::Sha1, &wrong.0),
        hashes: None,
    })
    .await
    .unwrap();
    linked(&leaf, 1).await;
    let sink = file_sink(70_000);
    let src = junction_core::Source {
        network: NetworkId::GNUTELLA,
        address: up.local_addr().into(),
        detail: None,
    };
    let mut ev = leaf
        .fetch(
            FetchRequest {
                id: ContentId::new(Some(70_000)).with(HashKind::Sha1, &wrong.0),
                name: "liar.bin".into(),
                size: 70_000,
                sources: vec![src],
                trackers: vec![],
                torrent: None,
            },
            sink.clone(),
        )
        .await
        .unwrap();
    let mut notes = Vec::new();
    within("download attempts", 30, async {
        while let Some(e) = ev.next().await {
            notes.push(e);
        }
    })
    .await;
    assert!(!sink.is_verified());
    assert!(
        sink.discarded() >= 70_000,
        "the liar's bytes failed the SHA-1 check"
    );
    assert!(
        notes
            .iter()
            .any(|n| format!("{n:?}").contains("failed a hash check")),
        "{notes:?}"
    );
    leaf.shutdown().await;
    up.shutdown().await;
}

#[tokio::test]
async fn download_by_index_learns_and_checks_the_sha1() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = make_file(dir.path(), "hotel index.bin", 150_000, 12);
    let up = servent(true, &[]).await;
    let leaf = servent(false, &[up.local_addr()]).await;
    let id = share(&up, &path, "hotel index.bin").await;
    linked(&leaf, 1).await;
    let mut hits = leaf.search(parse("hotel index").unwrap()).await.unwrap();
    let mut hit = within("hit", 10, hits.next()).await.unwrap().unwrap();
    assert!(
        hit.locations[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("index=1")
    );
    // As if the hit had carried no hash: the download goes by /get/<index>/<name>.
    hit.id = ContentId::new(Some(hit.size));
    let (sink, events) = fetch_all(&leaf, &hit, 20).await;
    assert!(sink.is_verified(), "{events:?}");
    assert_eq!(sink.contents(), data);
    let learned = events.iter().find_map(|e| match e {
        junction_core::FetchEvent::Identified(i) => Some(i.clone()),
        _ => None,
    });
    assert_eq!(
        learned.unwrap().get(HashKind::Sha1),
        id.get(HashKind::Sha1),
        "the SHA-1 announced by the source is reported"
    );
    leaf.shutdown().await;
    up.shutdown().await;
}

/// A download resumed after a restart: the bytes written before (unverified, since Gnutella
/// verifies the whole file) are not fetched again, and the final SHA-1 covers them too;
/// wrong bytes written before are caught by it and fetched again.
#[tokio::test]
async fn resumed_download_skips_written_bytes_and_verifies_them() {
    let dir = tempfile::tempdir().unwrap();
    let len = 2 * 1024 * 1024 + 99;
    let (path, data) = make_file(dir.path(), "Kilo Resume.bin", len, 11);
    let up = servent(true, &[]).await;
    let leaf = Adapter::start(cfg(false, &[up.local_addr()]))
        .await
        .unwrap();
    let id = share(&up, &path, "Kilo Resume.bin").await;
    linked(&leaf, 1).await;
    let req = FetchRequest {
        id: id.clone(),
        name: "Kilo Resume.bin".into(),
        size: len as u64,
        sources: vec![junction_core::Source {
            network: NetworkId::GNUTELLA,
            address: up.local_addr().into(),
            detail: None,
        }],
        trackers: vec![],
        torrent: None,
    };
    let half = (len / 2) as u64;
    for (earlier, refetch_all) in [
        (data[..len / 2].to_vec(), false),
        (vec![0u8; len / 2], true),
    ] {
        let sink = file_sink(len as u64);
        sink.earlier_run(0, &earlier);
        let before = up.status().bytes_out;
        let mut ev = leaf.fetch(req.clone(), sink.clone()).await.unwrap();
        within("resumed download", 30, async {
            while ev.next().await.is_some() {}
        })
        .await;
        assert!(
            sink.is_verified(),
            "verified (earlier bytes wrong: {refetch_all})"
        );
        assert_eq!(sink.contents(), data);
        let sent = up.status().bytes_out - before;
        if refetch_all {
            assert!(
                sent >= len as u64,
                "bad earlier bytes were fetched again: {sent}"
            );
        } else {
            // bytes_out counts HTTP headers too: a few hundred bytes per request.
            let missing = len as u64 - half;
            assert!(
                sent <= missing + 4096,
                "sent {sent}, only {missing} were missing"
            );
        }
    }
    leaf.shutdown().await;
    up.shutdown().await;
}
