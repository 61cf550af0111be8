//! Search through real gRPC: fan-out, merge, deadlines, failures, filtering, cancellation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use junction_core::{ContentId, DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::network_progress::State;
use proto::v1::search_event::Event;

use crate::harness::{search_all, start};
use crate::testnet::{Behavior, TestFile, TestNet};

fn sha1(b: u8) -> ContentId {
    ContentId::new(None).with(HashKind::Sha1, &[b; 20])
}

fn final_progress(events: &[Event], network: &str) -> pb::NetworkProgress {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Progress(p) if p.network == network => Some(p.clone()),
            _ => None,
        })
        .next_back()
        .unwrap_or_else(|| panic!("no progress from {network}"))
}

fn items(events: &[Event]) -> Vec<pb::Item> {
    // The last state of each item, in order of first appearance.
    let mut out: Vec<pb::Item> = Vec::new();
    for e in events {
        if let Event::Item(i) | Event::Update(i) = e {
            match out.iter_mut().find(|x| x.id == i.id) {
                Some(x) => *x = i.clone(),
                None => out.push(i.clone()),
            }
        }
    }
    out
}

#[tokio::test]
async fn one_search_merges_networks_and_survives_slow_and_failing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let shared = TestFile::new("Big Buck Bunny.mkv", 1000, 1, sha1(1));
    let on_full = TestFile::new(
        "big_buck_bunny.mkv",
        1000,
        1,
        sha1(1).with(HashKind::Ed2k, &[9; 16]),
    );
    let only_fast = TestFile::new("bunny ears.jpg", 10, 2, sha1(2));
    let nets: Vec<Arc<dyn DynNetwork>> = vec![
        Arc::new(TestNet::new(
            "fast",
            TestNet::keywords_only(),
            Behavior::Normal(Duration::ZERO),
            vec![shared, only_fast],
        )),
        Arc::new(TestNet::new(
            "full",
            TestNet::everything(),
            Behavior::Normal(Duration::from_millis(50)),
            vec![on_full],
        )),
        Arc::new(TestNet::new(
            "slow",
            TestNet::everything(),
            Behavior::Silent,
            vec![],
        )),
        Arc::new(TestNet::new(
            "broken",
            TestNet::everything(),
            Behavior::Fails("tracker down"),
            vec![],
        )),
    ];
    let mut gw = start(dir.path(), nets, None).await;
    let started = std::time::Instant::now();
    let events = search_all(&mut gw.client, "bunny", 700).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the deadline was not kept"
    );

    let items = items(&events);
    assert_eq!(items.len(), 2, "{items:#?}");
    let bunny = items
        .iter()
        .find(|i| i.name.to_lowercase().contains("buck"))
        .unwrap();
    let nets: Vec<&str> = bunny
        .availability
        .iter()
        .map(|a| a.network.as_str())
        .collect();
    assert_eq!(nets, vec!["fast", "full"]);
    let urns = &bunny.content.as_ref().unwrap().urns;
    assert!(
        urns.iter().any(|u| u.starts_with("urn:ed2k:"))
            && urns.iter().any(|u| u.starts_with("urn:sha1:"))
    );

    assert_eq!(final_progress(&events, "fast").state(), State::Done);
    assert_eq!(final_progress(&events, "full").state(), State::Done);
    assert_eq!(final_progress(&events, "slow").state(), State::TimedOut);
    let broken = final_progress(&events, "broken");
    assert_eq!(broken.state(), State::Failed);
    assert!(broken.error.contains("tracker down"), "{broken:?}");
    assert!(matches!(events.last(), Some(Event::Finished(f)) if f.items == 2));
    gw.stop().await;
}

#[tokio::test]
async fn parts_a_network_cannot_evaluate_are_filtered_by_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        TestFile::new("ubuntu desktop.iso", 5000, 1, sha1(1)),
        TestFile::new("debian netinst.iso", 3000, 2, sha1(2)),
        TestFile::new("debian netinst beta.iso", 3000, 3, sha1(3)),
        TestFile::new("debian tiny.iso", 10, 4, sha1(4)),
        TestFile::new("fedora.iso", 5000, 5, sha1(5)),
    ];
    let mut net = TestNet::new(
        "kw",
        TestNet::keywords_only(),
        Behavior::Normal(Duration::ZERO),
        files,
    );
    // Answer every query with everything, like a loose network would.
    net.ignore_query = true;
    let loose = Arc::new(net);
    let mut gw = start(dir.path(), vec![loose], None).await;
    let events = search_all(&mut gw.client, "(ubuntu OR debian) -beta size>1000", 2000).await;
    let mut names: Vec<String> = items(&events).into_iter().map(|i| i.name).collect();
    names.sort();
    assert_eq!(names, vec!["debian netinst.iso", "ubuntu desktop.iso"]);
    let p = final_progress(&events, "kw");
    assert!(p.ignored_terms.contains(&"-beta".to_owned()), "{p:?}");
    gw.stop().await;
}

#[tokio::test]
async fn dropping_the_stream_cancels_every_network() {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(TestNet::new(
        "endless",
        TestNet::keywords_only(),
        Behavior::Endless,
        vec![TestFile::new("forever.txt", 10, 1, sha1(1))],
    ));
    let live = net.live_streams.clone();
    let mut gw = start(dir.path(), vec![net], None).await;
    let req = pb::SearchRequest {
        query: "forever".into(),
        timeout_ms: 60_000,
        ..Default::default()
    };
    let mut stream = gw.client.search(req).await.unwrap().into_inner();
    let mut seen = 0;
    while seen < 3 {
        if let Some(Ok(_)) = stream.next().await {
            seen += 1;
        }
    }
    assert_eq!(
        live.load(Ordering::SeqCst),
        1,
        "the network search should be running"
    );
    drop(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while live.load(Ordering::SeqCst) != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the network search was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_search_item_starts_a_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let file = TestFile::new("song.mp3", 200_000, 7, sha1(7));
    let data = file.data.clone();
    let net = Arc::new(TestNet::new(
        "fast",
        TestNet::keywords_only(),
        Behavior::Normal(Duration::ZERO),
        vec![file],
    ));
    let mut gw = start(dir.path(), vec![net], None).await;
    let events = search_all(&mut gw.client, "song type:audio", 1000).await;
    let item = items(&events).pop().expect("one item");
    assert_eq!(item.file_type, "audio");
    let t = crate::harness::start_item(&mut gw.client, &item.id).await;
    let done = crate::harness::wait_until(&mut gw.client, &t.id, 10, |t| {
        t.state() == proto::v1::transfer::State::Complete
    })
    .await;
    assert_eq!(std::fs::read(&done.path).unwrap(), *data);
    assert!(done.path.ends_with("downloads/song.mp3"), "{}", done.path);
    // The same content again is the same transfer.
    let again = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::ItemId(item.id)),
            networks: vec![],
            files: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, t.id);
    gw.stop().await;
}

#[tokio::test]
async fn hashes_learnt_from_a_share_merge_hits_from_different_networks() {
    use sha1::Digest;
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("hello world.txt");
    let data = b"hello world, the same bytes on two networks".to_vec();
    std::fs::write(&path, &data).unwrap();
    let sha: [u8; 20] = sha1::Sha1::digest(&data).into();
    let n = data.len();
    let by_sha1 = TestFile::new(
        "hello world.txt",
        n,
        0,
        ContentId::new(None).with(HashKind::Sha1, &sha),
    );
    let by_ed2k = TestFile::new(
        "hello_world.txt",
        n,
        0,
        ContentId::new(None).with(
            HashKind::Ed2k,
            &junction_core::hashing::ed2k::ed2k_hash(&data).root,
        ),
    );
    let a = TestNet::new(
        "a",
        TestNet::keywords_only(),
        Behavior::Normal(Duration::ZERO),
        vec![by_sha1],
    );
    let mut b = TestNet::new(
        "b",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![by_ed2k],
    );
    b.share_kind = HashKind::Ed2k;
    let mut gw = start(dir.path(), vec![Arc::new(a), Arc::new(b)], None).await;

    assert_eq!(
        items(&search_all(&mut gw.client, "hello", 1000).await).len(),
        2
    );
    gw.client
        .share(pb::ShareRequest {
            path: path.to_string_lossy().into(),
        })
        .await
        .unwrap();
    let merged = items(&search_all(&mut gw.client, "hello", 1000).await);
    assert_eq!(merged.len(), 1, "{merged:#?}");
    assert_eq!(merged[0].availability.len(), 2);
    gw.stop().await;
}
