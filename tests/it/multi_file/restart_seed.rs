//! Finished torrents seed again after the gateway restarts, as qBittorrent's and
//! Transmission's do: BitTorrent forgets its torrents when the gateway stops, and turns
//! away peers asking for one it is not running.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use junction_core::{ContentId, DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::transfer::State;

use sha1::Digest;

use super::{PIECE, bytes, files, loopback, seeder, torrent_of, torrent_with};
use crate::harness::{Running, start, start_link, start_torrent, wait_until};

/// Two finished torrents of one gateway, one fetched whole and one with notes.txt alone
/// (the others left out, which BitTorrent does not seed by itself), are seeded again once
/// the gateway is stopped and started on the same data: a BitTorrent peer of its own,
/// given only the gateway's address, fetches each and checks it piece by piece. Nothing
/// is fetched again for it. Once the transfers are cancelled they are seeded no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_torrents_seed_again_after_a_restart() {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let all = files();
    // The second names each file by its SHA-1 too, so its info-hash differs.
    let (data, whole) = torrent_of(&url, &all);
    let (_, notes) = torrent_with(&url, &all, true);
    let size = data.len() as u64;
    let dir = tempfile::tempdir().unwrap();

    let (mut gw, _) = gateway(dir.path()).await;
    let seeds = [
        seeder(&url, &data, &whole).await,
        seeder(&url, &data, &notes).await,
    ];
    let a = start_torrent(&mut gw.client, whole.clone(), vec![]).await;
    let b = start_torrent(&mut gw.client, notes.clone(), vec![3]).await;
    for t in [&a, &b] {
        wait_until(&mut gw.client, &t.id, 60, |t| t.state() == State::Complete).await;
    }
    for (peer, _) in &seeds {
        DynNetwork::shutdown(peer).await;
    }
    gw.stop().await;
    // No tracker either: the peers below find the gateway by its address alone.
    tracker.shutdown();

    let began = Instant::now();
    let (mut gw, from) = gateway(dir.path()).await;
    let took = fetch_from(from, &data, &whole, 0..size, 30).await;
    let took = took.expect("the finished torrent is not seeded after a restart");
    eprintln!(
        "the whole torrent fetched from the gateway {:?} after it started ({took:?} for the fetch)",
        began.elapsed()
    );
    let took = fetch_from(from, &data, &notes, size - 15..size, 30).await;
    let took =
        took.expect("the finished torrent with files left out is not seeded after a restart");
    eprintln!("notes.txt fetched in {took:?}");
    for t in [&a, &b] {
        let t = gw
            .client
            .get_transfer(pb::TransferRef { id: t.id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(t.state(), State::Complete, "{t:?}");
        let received: u64 = t.per_network.iter().map(|n| n.bytes_received).sum();
        assert_eq!(received, 0, "bytes were fetched again: {t:?}");
    }

    // Cancelled (its files kept): seeded no more.
    for t in [&a, &b] {
        gw.client
            .cancel_transfer(pb::CancelTransferRequest {
                id: t.id.clone(),
                keep_data: true,
            })
            .await
            .unwrap();
    }
    let (after_whole, after_notes) = tokio::join!(
        fetch_from(from, &data, &whole, 0..size, 5),
        fetch_from(from, &data, &notes, size - 15..size, 5),
    );
    assert!(after_whole.is_none(), "a cancelled torrent is seeded");
    assert!(after_notes.is_none(), "a cancelled torrent is seeded");
    gw.stop().await;
}

/// A magnet's metadata stays with its transfer: once finished and the gateway restarted,
/// with its seeder and tracker gone, a peer that knows only the magnet gets the torrent
/// from the gateway alone. Had the gateway to fetch the metadata again, nobody could give
/// it, and neither side could start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_magnet_is_seeded_after_a_restart_without_its_metadata_fetched_again() {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let data = bytes(5 * PIECE + 123, 9);
    let pieces: Vec<u8> = data.chunks(PIECE).flat_map(sha1::Sha1::digest).collect();
    let mut info = format!(
        "d6:lengthi{}e4:name8:clip.mkv12:piece lengthi{PIECE}e6:pieces{}:",
        data.len(),
        pieces.len()
    )
    .into_bytes();
    info.extend(pieces);
    info.push(b'e');
    let btih = hex::encode(sha1::Sha1::digest(&info));
    let torrent = [&b"d4:info"[..], &info, b"e"].concat();
    let size = data.len() as u64;
    let dir = tempfile::tempdir().unwrap();

    let (mut gw, _) = gateway(dir.path()).await;
    let seed = seeder(&url, &data, &torrent).await;
    let magnet = format!("magnet:?xt=urn:btih:{btih}&xl={size}&dn=clip.mkv&tr={url}");
    let t = start_link(&mut gw.client, magnet).await;
    wait_until(&mut gw.client, &t.id, 60, |t| t.state() == State::Complete).await;
    DynNetwork::shutdown(&seed.0).await;
    gw.stop().await;
    tracker.shutdown();

    let (mut gw, from) = gateway(dir.path()).await;
    let id = ContentId::new(Some(size)).with(HashKind::Btih, &hex::decode(&btih).unwrap());
    let took = fetch_by(from, &data, None, id, 0..size, 30).await;
    let took = took.expect("the finished magnet is not seeded after a restart");
    eprintln!("the magnet fetched from the restarted gateway alone in {took:?}");
    let t = gw
        .client
        .get_transfer(pb::TransferRef { id: t.id })
        .await
        .unwrap()
        .into_inner();
    let received: u64 = t.per_network.iter().map(|n| n.bytes_received).sum();
    assert_eq!(received, 0, "bytes were fetched again: {t:?}");
    gw.stop().await;
}

/// A gateway on `dir` with one BitTorrent peer, and that peer's address.
async fn gateway(dir: &Path) -> (Running, SocketAddr) {
    let bt = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        ..Default::default()
    })
    .await
    .unwrap();
    let addr = bt.listen_addr();
    (start(dir, vec![Arc::new(bt)], None).await, addr)
}

/// How long a BitTorrent peer of its own took to fetch `wanted` of the torrent (the rest
/// left out) from `from` alone and verify it by the torrent's piece hashes; None when it
/// did not within `secs`. The bytes are checked against `data` too.
pub(super) async fn fetch_from(
    from: SocketAddr,
    data: &[u8],
    torrent: &[u8],
    wanted: Range<u64>,
    secs: u64,
) -> Option<Duration> {
    let id = ContentId::new(Some(data.len() as u64));
    fetch_by(from, data, Some(torrent), id, wanted, secs).await
}

/// [`fetch_from`] by a `.torrent`, or with none by `id`'s info-hash alone (a magnet,
/// whose metadata must come from `from`).
async fn fetch_by(
    from: SocketAddr,
    data: &[u8],
    torrent: Option<&[u8]>,
    id: ContentId,
    wanted: Range<u64>,
    secs: u64,
) -> Option<Duration> {
    use junction_core::swarm::{MemStore, Store, Swarm, SwarmSink};
    use junction_core::{FetchRequest, NetworkId, RangeSet, Source};
    let peer = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        ..Default::default()
    })
    .await
    .unwrap();
    let size = data.len() as u64;
    let swarm = Arc::new(Swarm::new(MemStore::new(size), size, RangeSet::new()));
    let mut skipped = RangeSet::full(size);
    skipped.remove(wanted.clone());
    swarm.ledger().set_skipped(skipped);
    let req = FetchRequest {
        id,
        name: "Show S1".into(),
        size,
        sources: vec![Source {
            network: NetworkId::BITTORRENT,
            address: from.into(),
            detail: None,
        }],
        trackers: Vec::new(),
        torrent: torrent.map(|t| t.to_vec().into()),
    };
    let began = Instant::now();
    let sink = SwarmSink::new(swarm.clone(), NetworkId::BITTORRENT);
    let _events = DynNetwork::fetch(&peer, req, sink).await.unwrap();
    let deadline = began + Duration::from_secs(secs);
    let mut fetched = false;
    while !fetched && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        fetched = swarm.ledger().verified().contains(wanted.clone());
    }
    let took = began.elapsed();
    DynNetwork::shutdown(&peer).await;
    if !fetched {
        return None;
    }
    let mut got = vec![0u8; (wanted.end - wanted.start) as usize];
    swarm.store().read_at(&mut got, wanted.start).unwrap();
    assert!(
        got == data[wanted.start as usize..wanted.end as usize],
        "wrong bytes"
    );
    Some(took)
}
