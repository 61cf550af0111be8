//! One transfer, every network: a file on eD2k, Gnutella and BitTorrent in the lab is
//! fetched as one swarm. Each byte comes once, from whichever network is free; every
//! network's bytes are verified by whatever hash covers them; a lying source is dropped
//! and its bytes never reach the file.

use std::time::{Duration, Instant};

use junction_core::NetworkId;
use lab::World;
use proto::v1 as pb;
use proto::v1::transfer::State;

use crate::harness::wait_until;
use crate::lab::{MIB, gateway, search_until_complete, world};

/// Seeders of the large file: eD2k peer 0, Gnutella leaf 1, BitTorrent seeders 0 and 1.
const LARGE_SEEDERS: u64 = 4;

fn share(t: &pb::Transfer, net: NetworkId) -> Option<&pb::TransferNetwork> {
    t.per_network.iter().find(|n| n.network == net.as_str())
}

async fn start_large(gw: &mut crate::harness::Running, world: &World) -> (pb::Transfer, u64) {
    let items = search_until_complete(gw, world, "lab").await;
    let large = world.files.iter().find(|f| f.large).unwrap();
    let item = items.iter().find(|i| i.name == large.name).unwrap();
    let t = crate::harness::start_item(&mut gw.client, &item.id).await;
    (t, large.size)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_on_three_networks_comes_once_from_all_of_them() {
    const RATE: u64 = 2 * MIB;
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 64, Some(RATE)).await;
    let mut gw = gateway(&world, dir.path()).await;
    let (t, size) = start_large(&mut gw, &world).await;
    let started = Instant::now();
    let mut client = gw.client.clone();
    let id = t.id.clone();
    let timeline = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(t) = client
                .get_transfer(pb::TransferRef { id: id.clone() })
                .await
            else {
                break;
            };
            let t = t.into_inner();
            eprintln!(
                "  {:>4.1}s {}",
                started.elapsed().as_secs_f64(),
                t.per_network
                    .iter()
                    .map(|n| format!(
                        "{} {}MiB {} src",
                        n.network,
                        n.bytes_received >> 20,
                        n.sources
                    ))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            if t.state() == State::Complete {
                break;
            }
        }
    });
    let done = wait_until(&mut gw.client, &t.id, 120, |t| t.state() == State::Complete).await;
    timeline.abort();
    let took = started.elapsed();
    let large = world.files.iter().find(|f| f.large).unwrap();
    assert!(std::fs::read(&done.path).unwrap() == std::fs::read(&large.path).unwrap());

    let received: u64 = done.per_network.iter().map(|n| n.bytes_received).sum();
    let ideal = Duration::from_secs_f64(size as f64 / (LARGE_SEEDERS * RATE) as f64);
    eprintln!(
        "swarm: {size} bytes in {took:.1?} (ideal {ideal:.1?}, {:.2}x); received {:.3}x the size; {}",
        took.as_secs_f64() / ideal.as_secs_f64(),
        received as f64 / size as f64,
        done.per_network
            .iter()
            .map(|n| format!(
                "{} {:.0}%",
                n.network,
                n.bytes_verified as f64 * 100.0 / size as f64
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        received as f64 <= 1.03 * size as f64,
        "fetched {received} bytes for {size}: {:?}",
        done.per_network
    );
    for net in [NetworkId::ED2K, NetworkId::GNUTELLA, NetworkId::BITTORRENT] {
        let n = share(&done, net).unwrap_or_else(|| panic!("{net} did not take part"));
        assert!(
            n.bytes_verified * 100 >= 15 * size,
            "{net} delivered only {} of {size}: {:?}",
            n.bytes_verified,
            done.per_network
        );
    }
    assert_eq!(done.peers, 0, "a finished transfer has no peers");
    assert!(
        took.as_secs_f64() <= ideal.as_secs_f64() / 0.8,
        "took {took:?}, more than the ideal {ideal:?} / 0.8"
    );
    gw.stop().await;
    world.shutdown().await;
}

/// The first peer of `liar` serves corrupt bytes under the right hashes; the others serve
/// good ones. A file on all three networks is fetched `runs` times: each time it ends
/// byte-identical to the original, the liar is dropped if it sent anything, and no honest
/// source is ever dropped.
async fn fetch_past_a_liar(liar: NetworkId, runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = lab::LabConfig::new(dir.path());
    cfg.seed = 42;
    cfg.large_size = 4 * MIB;
    cfg.liar = Some(liar);
    let world = World::start(&cfg).await.unwrap();
    let mut gw = gateway(&world, dir.path()).await;
    let items = search_until_complete(&mut gw, &world, "lab").await;
    // On eD2k peers 0 and 1, Gnutella leaf 0 and BitTorrent seeder 0.
    let file = world
        .files
        .iter()
        .find(|f| f.name == "Lab Sunrise Timelapse 1080p.mkv")
        .unwrap();
    let original = std::fs::read(&file.path).unwrap();
    let item = items.iter().find(|i| i.name == file.name).unwrap();
    let mut caught = 0;
    for run in 0..runs {
        let t = crate::harness::start_item(&mut gw.client, &item.id).await;
        let done = wait_until(&mut gw.client, &t.id, 60, |t| t.state() == State::Complete).await;
        assert!(
            std::fs::read(&done.path).unwrap() == original,
            "run {run}: the file differs from the original: {:?}",
            done.per_network
        );
        for n in &done.per_network {
            if n.network == liar.as_str() {
                assert!(
                    n.sources_dropped <= 1,
                    "run {run}: an honest {liar} source was dropped: {n:?}"
                );
                assert!(
                    n.failed_checks >= n.sources_dropped,
                    "run {run}: a source dropped without a failed check: {n:?}"
                );
                caught += n.sources_dropped;
            } else {
                assert_eq!(
                    n.sources_dropped, 0,
                    "run {run}: an honest source was dropped: {n:?}"
                );
            }
        }
        gw.client
            .cancel_transfer(pb::CancelTransferRequest {
                id: t.id.clone(),
                keep_data: false,
            })
            .await
            .unwrap();
    }
    eprintln!("liar on {liar}: caught in {caught} of {runs} runs");
    assert!(
        caught > 0,
        "the {liar} liar was never caught in {runs} runs"
    );
    gw.stop().await;
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_ed2k_peer_is_dropped_and_the_file_is_right() {
    fetch_past_a_liar(NetworkId::ED2K, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_gnutella_leaf_is_dropped_and_the_file_is_right() {
    fetch_past_a_liar(NetworkId::GNUTELLA, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_bittorrent_seeder_is_dropped_and_the_file_is_right() {
    fetch_past_a_liar(NetworkId::BITTORRENT, 20).await;
}

async fn transfer(gw: &mut crate::harness::Running, id: &str) -> pb::Transfer {
    gw.client
        .get_transfer(pb::TransferRef { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

/// Reads a transfer from offset 0 while it downloads; returns the bytes and the share of
/// the file that was downloaded when the reader had its first 5%.
async fn read_while_downloading(
    gw: &mut crate::harness::Running,
    id: &str,
    size: u64,
) -> (Vec<u8>, f64) {
    let mut stream = gw
        .client
        .read_content(pb::ReadContentRequest {
            transfer_id: id.into(),
            offset: 0,
            length: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut read = Vec::new();
    let mut verified_then = None;
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        read.extend_from_slice(&chunk.unwrap().data);
        if read.len() as u64 >= size / 20 && verified_then.is_none() {
            verified_then = Some(transfer(gw, id).await.bytes_verified);
        }
    }
    (read, verified_then.unwrap_or(size) as f64 / size as f64)
}

/// A magnet names only the torrent; its metadata carries the file's SHA-1 and ed2k hash,
/// and with them eD2k and Gnutella join the transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_brings_in_the_networks_its_metadata_names() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 32, Some(2 * MIB)).await;
    let mut gw = gateway(&world, dir.path()).await;
    let large = world.files.iter().find(|f| f.large).unwrap();
    let magnet = large.magnet(world.tracker_url()).unwrap();
    let t = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(magnet)),
            networks: vec![],
            files: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let done = wait_until(&mut gw.client, &t.id, 120, |t| t.state() == State::Complete).await;
    assert!(std::fs::read(&done.path).unwrap() == std::fs::read(&large.path).unwrap());
    for net in [NetworkId::ED2K, NetworkId::GNUTELLA, NetworkId::BITTORRENT] {
        let n = share(&done, net).unwrap_or_else(|| panic!("{net} never joined"));
        assert!(
            n.bytes_verified > 0,
            "{net} delivered nothing: {:?}",
            done.per_network
        );
    }
    assert!(
        done.content
            .unwrap()
            .urns
            .iter()
            .any(|u| u.starts_with("urn:ed2k:")),
        "the ed2k hash was learnt"
    );
    gw.stop().await;
    world.shutdown().await;
}

/// The gateway stops halfway through a three-network transfer and starts again: the
/// transfer resumes and no verified byte is fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_restarted_midway_fetches_no_verified_byte_again() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 48, Some(2 * MIB)).await;
    let mut gw = gateway(&world, dir.path()).await;
    let (t, size) = start_large(&mut gw, &world).await;
    let mid = wait_until(&mut gw.client, &t.id, 60, |t| {
        t.bytes_verified >= size * 2 / 5
    })
    .await;
    let every = mid
        .per_network
        .iter()
        .filter(|n| n.bytes_verified > 0)
        .count();
    assert_eq!(
        every, 3,
        "not all networks were delivering: {:?}",
        mid.per_network
    );
    gw.stop().await;

    let mut gw = gateway(&world, dir.path()).await;
    let resumed = transfer(&mut gw, &t.id).await;
    assert!(resumed.bytes_verified >= mid.bytes_verified, "{resumed:?}");
    assert_ne!(resumed.state(), State::Complete);
    let done = wait_until(&mut gw.client, &t.id, 120, |t| t.state() == State::Complete).await;
    let large = world.files.iter().find(|f| f.large).unwrap();
    assert!(std::fs::read(&done.path).unwrap() == std::fs::read(&large.path).unwrap());
    let missing = size - resumed.bytes_verified;
    let received: u64 = done.per_network.iter().map(|n| n.bytes_received).sum();
    eprintln!(
        "restart: {missing} bytes were missing, {received} received after the restart ({:.3}x)",
        received as f64 / missing as f64
    );
    assert!(
        received as f64 <= missing as f64 * 1.05,
        "fetched {received} bytes after the restart for {missing} missing: {:?}",
        done.per_network
    );
    gw.stop().await;
    world.shutdown().await;
}

/// A reader from offset 0 of a BitTorrent-only transfer gets its bytes early: pieces are
/// fetched from the reader's position on, not rarest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bittorrent_transfer_streams_from_where_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 32, Some(2 * MIB)).await;
    let mut gw = gateway(&world, dir.path()).await;
    let large = world.files.iter().find(|f| f.large).unwrap();
    let t = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(
                large.magnet(world.tracker_url()).unwrap(),
            )),
            networks: vec![NetworkId::BITTORRENT.as_str().into()],
            files: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let (read, at) = read_while_downloading(&mut gw, &t.id, large.size).await;
    assert_eq!(read.len() as u64, large.size);
    eprintln!(
        "streaming: the first 5% was read when {:.1}% was downloaded",
        at * 100.0
    );
    assert!(
        at < 0.3,
        "the first 5% came only when {:.0}% was downloaded",
        at * 100.0
    );
    gw.stop().await;
    world.shutdown().await;
}

/// A single-file `.torrent` with the file's SHA-1 (as Junction's own torrents carry it).
fn torrent_of(name: &str, data: &[u8], piece: usize) -> Vec<u8> {
    use sha1::Digest;
    let mut pieces = Vec::new();
    for c in data.chunks(piece) {
        pieces.extend_from_slice(&sha1::Sha1::digest(c));
    }
    let mut out = b"d4:infod".to_vec();
    out.extend(format!("6:lengthi{}e", data.len()).bytes());
    out.extend(format!("4:name{}:{name}", name.len()).bytes());
    out.extend(format!("12:piece lengthi{piece}e").bytes());
    out.extend(format!("6:pieces{}:", pieces.len()).bytes());
    out.extend(pieces);
    out.extend(b"4:sha120:");
    out.extend(sha1::Sha1::digest(data));
    out.extend(b"ee");
    out
}

/// Gnutella alone checks only the whole file's SHA-1; with a torrent's piece hashes known,
/// its bytes are verified piece by piece, so a Gnutella-only transfer streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gnutella_only_transfer_streams_when_piece_hashes_are_known() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 24, Some(2 * MIB)).await;
    let mut gw = gateway(&world, dir.path()).await;
    let large = world.files.iter().find(|f| f.large).unwrap();
    let data = std::fs::read(&large.path).unwrap();
    let t = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Torrent(torrent_of(
                &large.name,
                &data,
                256 * 1024,
            ))),
            networks: vec![NetworkId::GNUTELLA.as_str().into()],
            files: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let (read, at) = read_while_downloading(&mut gw, &t.id, large.size).await;
    assert!(read == data, "the streamed bytes differ");
    eprintln!(
        "gnutella streaming: the first 5% was read when {:.1}% was downloaded",
        at * 100.0
    );
    assert!(
        at < 0.3,
        "the first 5% came only when {:.0}% was downloaded",
        at * 100.0
    );
    let done = wait_until(&mut gw.client, &t.id, 60, |t| t.state() == State::Complete).await;
    assert_eq!(done.per_network.len(), 1, "{:?}", done.per_network);
    gw.stop().await;
    world.shutdown().await;
}
