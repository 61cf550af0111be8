//! Files of a multi-file torrent fetched by their own hashes: into the folder transfer
//! from eD2k and Gnutella (BEP 47 `sha1`), and the other way, a transfer of one file
//! fetched by BitTorrent through a torrent that holds it.

use std::path::Path;
use std::sync::Arc;

use junction_core::{ContentId, DynNetwork};
use proto::v1 as pb;
use proto::v1::transfer::State;
use sha1::Digest;

use super::{bittorrent_and_ultrapeer, files, loopback, seeder, torrent_with};
use crate::harness::{start, start_torrent, wait_until};

/// A file of a multi-file torrent that the torrent names by its own SHA-1 comes from
/// Gnutella when no BitTorrent peer has the torrent: fetched into its place in the folder,
/// checked there, and the transfer completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_a_torrent_comes_from_gnutella_by_its_own_hash() {
    file_by_its_own_hash(false).await;
}

/// The same file chosen while the transfer runs (another file, which no network has, was
/// chosen first): its fetch starts with the choice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_chosen_while_running_is_fetched_by_its_own_hash() {
    file_by_its_own_hash(true).await;
}

async fn file_by_its_own_hash(chosen_later: bool) {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let all = files();
    // No BitTorrent peer seeds it.
    let (_, torrent) = torrent_with(&url, &all, true);
    let e2 = all[2].1.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (bt, ultrapeer) = bittorrent_and_ultrapeer().await;
    // A Gnutella leaf of the gateway's ultrapeer shares the file alone.
    let leaf = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        peers: vec![ultrapeer.local_addr().to_string()],
        ..Default::default()
    })
    .await
    .unwrap();
    let shared = dir.path().join("shared-e2.mkv");
    std::fs::write(&shared, &e2).unwrap();
    junction_core::Network::share(
        &leaf,
        junction_core::SharedItem {
            path: shared,
            name: "e2.mkv".into(),
            size: e2.len() as u64,
            id: ContentId::new(Some(e2.len() as u64)),
            hashes: None,
        },
    )
    .await
    .unwrap();
    let data_dir = dir.path().join("gateway");
    let mut gw = start(&data_dir, vec![Arc::new(bt), Arc::new(ultrapeer)], None).await;
    // notes.txt first: no network has it.
    let t = start_torrent(
        &mut gw.client,
        torrent,
        vec![if chosen_later { 3 } else { 1 }],
    )
    .await;
    if chosen_later {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        gw.client
            .select_files(pb::SelectFilesRequest {
                id: t.id.clone(),
                files: vec![1],
            })
            .await
            .unwrap();
    }
    let done = wait_until(&mut gw.client, &t.id, 60, |t| t.state() == State::Complete).await;
    let folder = Path::new(&done.path);
    assert!(std::fs::read(folder.join("Season 1/e2.mkv")).unwrap() == e2);
    let gnutella = done
        .per_network
        .iter()
        .find(|n| n.network == "gnutella")
        .unwrap();
    assert!(
        gnutella.bytes_verified >= e2.len() as u64,
        "{:?}",
        done.per_network
    );
    DynNetwork::shutdown(&leaf).await;
    gw.stop().await;
}

/// Two files of a torrent fetched at once on one network, each by its own SHA-1, from a
/// peer each: the network's sources and the transfer's peers are their sum (each fetch
/// once overwrote the other's count, so it read 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peers_of_a_networks_file_fetches_add_up() {
    use crate::testnet::{Behavior, Serving, TestFile, TestNet};
    let all = files();
    let (_, torrent) = torrent_with("http://127.0.0.1:1/announce", &all, true);
    let silent = |name: &str, bytes: &[u8], seed: u8| {
        let mut id = ContentId::new(Some(bytes.len() as u64));
        id.set(junction_core::HashKind::Sha1, &sha1::Sha1::digest(bytes));
        let mut f = TestFile::new(name, bytes.len(), seed, id);
        f.serving = Serving::Silent;
        f
    };
    let (e1, e2) = (all[0].1.clone().unwrap(), all[2].1.clone().unwrap());
    let net = TestNet::new(
        "testnet",
        TestNet::everything(),
        Behavior::Normal(std::time::Duration::ZERO),
        vec![silent("e1.mkv", &e1, 1), silent("e2.mkv", &e2, 2)],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), vec![Arc::new(net)], None).await;
    let t = start_torrent(&mut gw.client, torrent, vec![]).await;
    let both = wait_until(&mut gw.client, &t.id, 10, |t| t.peers == 2).await;
    let testnet = both
        .per_network
        .iter()
        .find(|n| n.network == "testnet")
        .unwrap();
    assert_eq!(testnet.sources, 2, "{:?}", both.per_network);
    gw.stop().await;
}

/// The other direction: transfers of single files, by their SHA-1 alone, which no network
/// has by that hash. BitTorrent fetches each through the torrent that holds it (known
/// from an earlier transfer of the torrent, with these files left out), keeping only the
/// file's bytes, and each transfer completes, checked by the file's SHA-1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_comes_from_bittorrent_through_a_torrent_that_holds_it() {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let all = files();
    let (data, torrent) = torrent_with(&url, &all, true);
    let _seed = seeder(&url, &data, &torrent).await;
    let dir = tempfile::tempdir().unwrap();
    let (bt, ultrapeer) = bittorrent_and_ultrapeer().await;
    let mut gw = start(dir.path(), vec![Arc::new(bt), Arc::new(ultrapeer)], None).await;
    // notes.txt alone: the gateway now knows the torrent and where each file lies in it.
    let notes = start_torrent(&mut gw.client, torrent, vec![3]).await;
    wait_until(&mut gw.client, &notes.id, 60, |t| {
        t.state() == State::Complete
    })
    .await;

    // Two files of it at once: one is fetched through the torrent, the other waits for
    // it (BitTorrent runs one fetch per torrent) rather than stopping it.
    let mut started = Vec::new();
    for (path, bytes) in [&all[0], &all[2]] {
        let bytes = bytes.clone().unwrap();
        let link = format!(
            "magnet:?xt=urn:sha1:{}&xl={}&dn=file.mkv",
            junction_core::HashKind::Sha1.format(&sha1::Sha1::digest(&bytes)),
            bytes.len()
        );
        let t = crate::harness::start_link(&mut gw.client, link).await;
        started.push((path, bytes, t.id));
    }
    for (path, bytes, id) in started {
        let done = wait_until(&mut gw.client, &id, 60, |t| t.state() == State::Complete).await;
        assert!(
            std::fs::read(&done.path).unwrap() == bytes,
            "{path}: the file's bytes differ"
        );
        let bt = done
            .per_network
            .iter()
            .find(|n| n.network == "bittorrent")
            .unwrap();
        assert_eq!(
            bt.bytes_verified,
            bytes.len() as u64,
            "{path}: {:?}",
            done.per_network
        );
    }
    gw.stop().await;
}

/// A finished torrent with files left out seeds what it has, and seeds again once a file
/// fetched through it meanwhile (which takes BitTorrent's one fetch of the torrent) is
/// done or cancelled. BitTorrent counts the pieces of files left out as missing, so it
/// stopped such a torrent when its transfer finished, and nothing offered it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_torrent_seeds_again_once_a_file_fetched_through_it_ends() {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let all = files();
    let (data, torrent) = torrent_with(&url, &all, true);
    let dir = tempfile::tempdir().unwrap();
    let (bt, ultrapeer) = bittorrent_and_ultrapeer().await;
    let gateway_bt = bt.listen_addr();
    let mut gw = start(dir.path(), vec![Arc::new(bt), Arc::new(ultrapeer)], None).await;
    let link = |bytes: &[u8]| {
        format!(
            "magnet:?xt=urn:sha1:{}&xl={}&dn=file.mkv",
            junction_core::HashKind::Sha1.format(&sha1::Sha1::digest(bytes)),
            bytes.len()
        )
    };

    // notes.txt alone, from a seeder that then leaves: the gateway alone has it.
    let seed = seeder(&url, &data, &torrent).await;
    let notes = start_torrent(&mut gw.client, torrent.clone(), vec![3]).await;
    wait_until(&mut gw.client, &notes.id, 60, |t| {
        t.state() == State::Complete
    })
    .await;
    DynNetwork::shutdown(&seed.0).await;
    assert!(
        notes_from(gateway_bt, &data, &torrent).await,
        "the finished torrent is not seeded"
    );

    // 1. A file fetched through it completes.
    let seed = seeder(&url, &data, &torrent).await;
    let e2 = all[2].1.clone().unwrap();
    let t = crate::harness::start_link(&mut gw.client, link(&e2)).await;
    let done = wait_until(&mut gw.client, &t.id, 60, |t| t.state() == State::Complete).await;
    assert!(std::fs::read(&done.path).unwrap() == e2);
    DynNetwork::shutdown(&seed.0).await;
    assert!(
        notes_from(gateway_bt, &data, &torrent).await,
        "not seeded again after a file fetched through it completed"
    );

    // 2. A file fetched through it, which no peer has, is cancelled.
    let e1 = all[0].1.clone().unwrap();
    let t = crate::harness::start_link(&mut gw.client, link(&e1)).await;
    wait_until(&mut gw.client, &t.id, 30, |t| {
        t.per_network
            .iter()
            .any(|n| n.network == "bittorrent" && n.state == "fetching")
    })
    .await;
    gw.client
        .cancel_transfer(pb::CancelTransferRequest {
            id: t.id.clone(),
            keep_data: false,
        })
        .await
        .unwrap();
    assert!(
        notes_from(gateway_bt, &data, &torrent).await,
        "not seeded again after a file fetched through it was cancelled"
    );
    gw.stop().await;
}

/// Whether a BitTorrent peer of its own fetches notes.txt (the torrent's last 15 bytes;
/// every other file left out) from `from` alone, within 20 s.
async fn notes_from(from: std::net::SocketAddr, data: &[u8], torrent: &[u8]) -> bool {
    let size = data.len() as u64;
    super::restart_seed::fetch_from(from, data, torrent, size - 15..size, 20)
        .await
        .is_some()
}
