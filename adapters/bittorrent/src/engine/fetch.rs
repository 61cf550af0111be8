//! Starting a fetch: from a `.torrent`, a magnet or a bare info-hash (then from the cached
//! info dict of an earlier look-up, when there is one), into a transfer's sink or, for an
//! identify, for the metadata alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use junction_core::{FetchEvents, FetchRequest, HashKind, NetworkError, TransferSink};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use super::metadata_cache::MetadataCache;
use super::storage::Storage;
use super::torrent::{Ctx, Torrent};
use super::torrent_task::run_torrent;
use super::torrents::Torrents;
use super::tracker_client::{AnnounceParams, Tiers};
use crate::wire::id::InfoHash;
use crate::wire::magnet::Magnet;
use crate::wire::metainfo::Metainfo;
use crate::wire::tracker::Event as TrackerEvent;

pub(crate) fn start_fetch(
    ctx: &Arc<Ctx>,
    torrents: &mut Torrents,
    cache: &MetadataCache,
    cancel: &CancellationToken,
    req: FetchRequest,
    sink: Option<Arc<dyn TransferSink>>,
) -> Result<FetchEvents, NetworkError> {
    let mut tiers: Vec<Vec<String>> = Vec::new();
    let mut peers: Vec<SocketAddr> = Vec::new();
    // A v2 torrent's `piece layers` live outside the info dict: only a `.torrent` has them.
    let mut layers = std::collections::BTreeMap::new();
    let (info_hash, info) = match &req.torrent {
        Some(bytes) => {
            let m = Metainfo::parse(bytes).map_err(|e| NetworkError::Invalid(e.to_string()))?;
            tiers = m.tracker_tiers();
            layers = m.piece_layers;
            (m.info.swarm_hash(), Some(m.info))
        }
        None => {
            // A v2 (btmh) id joins the swarm under its truncated hash (BEP 52).
            let ih = req
                .id
                .get(HashKind::Btih)
                .and_then(InfoHash::from_slice)
                .or_else(|| {
                    req.id
                        .get(HashKind::Btmh)
                        .and_then(crate::wire::id::InfoHashV2::from_slice)
                        .map(|h| h.truncated())
                })
                // Content named by no BitTorrent hash: not this network's, not an error.
                .ok_or_else(|| {
                    NetworkError::Unsupported(
                        "BitTorrent needs a .torrent, a btih or a btmh".into(),
                    )
                })?;
            // Metadata fetched earlier (an identify, the DHT index) is not fetched again,
            // and the peers that had it are tried first.
            let cached = cache.get(&ih).map(|(info, had)| {
                peers.extend(had);
                info
            });
            (ih, cached)
        }
    };
    for t in &req.trackers {
        if let Ok(m) = Magnet::parse(t) {
            peers.extend(m.peer_addrs());
            tiers.extend(m.trackers.into_iter().map(|u| vec![u]));
        } else {
            tiers.push(vec![t.clone()]);
        }
    }
    for s in &req.sources {
        if let Some(a) = s.address.direct() {
            peers.push(a);
        }
    }
    if tiers.is_empty() {
        tiers.extend(ctx.config.trackers.iter().map(|u| vec![u.clone()]));
    }
    // The latest fetch of a torrent wins: one still running (or seeding from an older
    // transfer) is stopped first.
    if let Some(old) = torrents.remove(&info_hash) {
        old.cancel.cancel();
    }
    let name = info
        .as_ref()
        .map_or_else(|| req.name.clone(), |i| i.name.clone());
    // No sink (identify): fetch the metadata only, report the size and hashes
    // (Identified) and end, so the caller can make a sink of the right size and fetch
    // again (then from the cached metadata).
    let storage = match sink {
        Some(sink) => Storage::Sink(sink),
        None => Storage::MetadataOnly,
    };
    let t = Torrent::new(ctx.clone(), info_hash, name, storage);
    if let Some(i) = info {
        t.set_metadata_with(i, &layers)
            .map_err(NetworkError::Invalid)?;
    }
    {
        let mut st = t.state();
        for p in peers {
            st.add_known(p);
        }
    }
    torrents.insert(t.clone());
    let (tx, rx) = mpsc::channel(64);
    let torrent_bytes = req.torrent.clone();
    // Not junction_core::task::spawn: cancelled, a torrent still says `stopped` to its
    // trackers (bounded, 3 s), which `shutdown` waits for.
    tokio::spawn(
        run_torrent(t, tiers, Some(tx), torrent_bytes, cancel.child_token())
            .instrument(info_span!("torrent", %info_hash)),
    );
    Ok(ReceiverStream::new(rx).boxed())
}

/// The peers of the running torrent of `ih` (none when it is not running).
pub(crate) fn running_peers(torrents: &Torrents, ih: InfoHash) -> Vec<SocketAddr> {
    torrents
        .get(&ih)
        .map(|t| t.state().peers.values().map(|p| p.addr).collect())
        .unwrap_or_default()
}

/// The peers `ih` has that we know of: `running` (the running torrent's, from the command
/// loop), and what the configured trackers answer to one announce.
pub(crate) async fn locate_peers(
    ctx: &Ctx,
    ih: InfoHash,
    size: Option<u64>,
    running: Vec<SocketAddr>,
) -> Vec<SocketAddr> {
    let mut addrs = running;
    let mut tiers = Tiers::new(
        ctx.config
            .trackers
            .iter()
            .map(|u| vec![u.clone()])
            .collect(),
    );
    if !tiers.is_empty() {
        let params = AnnounceParams {
            info_hash: ih,
            peer_id: ctx.peer_id,
            port: ctx.port.load(Ordering::Relaxed),
            uploaded: 0,
            downloaded: 0,
            left: size.unwrap_or(1).max(1),
            event: TrackerEvent::None,
            key: rand::random(),
        };
        if let Ok((_, a)) = tiers.announce(&params, &ctx.config).await {
            addrs.extend(a.peers);
        }
    }
    addrs.sort();
    addrs.dedup();
    addrs
}
