//! A torrent's own task: announces to its trackers, looks it up in the DHT, dials peers,
//! runs the choker, and reports progress to the fetch that started it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use junction_core::{FetchEvent, HashKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span};

use super::index::{IndexEntry, add_to_index, entry_of};
use super::metadata_cache::cache_metadata;
use super::peer;
use super::storage::Storage;
use super::sync::lock;
use super::torrent::Torrent;
use super::tracker_client::{AnnounceParams, Announced, Tiers};
use crate::wire::tracker::Event as TrackerEvent;

type AnnounceResult = (Tiers, Result<(String, Announced), String>);

/// A torrent's own task: announces, dials peers, runs the choker and reports progress.
pub(crate) async fn run_torrent(
    t: Arc<Torrent>,
    trackers: Vec<Vec<String>>,
    events: Option<mpsc::Sender<FetchEvent>>,
    index: Arc<Mutex<Vec<IndexEntry>>>,
    torrent_bytes: Option<Bytes>,
    adapter_cancel: CancellationToken,
) {
    let ctx = t.ctx.clone();
    let cfg = ctx.config.clone();
    let key: u32 = rand::random();
    let mut tiers = Some(Tiers::new(trackers.clone()));
    let (ann_tx, mut ann_rx) = mpsc::channel::<AnnounceResult>(2);
    let mut next_announce = Instant::now();
    let mut tracker_event = TrackerEvent::Started;
    let mut sent_event = TrackerEvent::Started;
    let mut was_complete = t.is_complete();
    let mut events = events;
    let mut last_peers = u32::MAX;
    let mut indexed = false;
    // Sent for .torrent fetches too: the info dict may carry whole-file hashes.
    let mut identified = false;
    let had_metadata = t.metadata().is_some();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut adopt = tokio::time::interval(Duration::from_millis(50));
    adopt.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut complete_rx = t.complete.subscribe();
    let mut last_choke = Instant::now();
    let slots = cfg.upload_slots;
    let (dial_tx, mut dial_rx) = mpsc::channel::<(SocketAddr, Duration)>(256);
    let (dht_tx, mut dht_rx) = mpsc::channel::<Vec<SocketAddr>>(2);
    let mut next_dht = Instant::now();
    let mut dht_busy = false;
    loop {
        tokio::select! {
            _ = t.cancel.cancelled() => break,
            _ = adapter_cancel.cancelled() => { t.cancel.cancel(); break }
            _ = tick.tick() => {}
            // Pieces other networks verified are taken over quickly, so requests still out
            // for them are cancelled before the seeder sends them.
            _ = adopt.tick() => { t.adopt_verified(); continue }
            Some((addr, lasted)) = dial_rx.recv() => { t.state().dial_ended(addr, lasted); continue }
            Some(found) = dht_rx.recv() => {
                dht_busy = false;
                debug!(peers = found.len(), "DHT lookup done");
                let mut st = t.state();
                for p in found {
                    st.add_known(p);
                }
            }
            Some((back, res)) = ann_rx.recv() => {
                tiers = Some(back);
                match res {
                    Ok((url, a)) => {
                        debug!(%url, peers = a.peers.len(), interval = ?a.interval, "announced");
                        if tracker_event == sent_event {
                            tracker_event = TrackerEvent::None;
                        }
                        let mut st = t.state();
                        for p in a.peers {
                            st.add_known(p);
                        }
                        next_announce = Instant::now() + a.interval.max(cfg.min_announce_interval);
                    }
                    Err(e) => {
                        debug!(error = %e, "no tracker answered");
                        next_announce = Instant::now() + cfg.min_announce_interval.max(Duration::from_secs(15));
                    }
                }
                // Fall through: dial the new peers now.
            }
            _ = complete_rx.changed() => {}
            _ = async { match &events { Some(tx) => tx.closed().await, None => std::future::pending().await } } => {
                if !t.is_complete() {
                    debug!("fetch stream dropped: stopping the torrent");
                    t.cancel.cancel();
                    break;
                }
                events = None;
                continue;
            }
        }
        let complete = t.is_complete();
        if complete && !was_complete {
            was_complete = true;
            tracker_event = TrackerEvent::Completed;
            next_announce = Instant::now();
        }
        // Metadata arrived (magnet): tell the gateway, index it.
        if !identified && let Some(meta) = t.metadata() {
            identified = true;
            if !had_metadata {
                let peers = t.state().peers.values().filter_map(|p| p.listen).collect();
                cache_metadata(&ctx, &meta.info, peers);
            }
            let mut id = meta.info.content_id();
            id.set(HashKind::Btih, &t.info_hash.0);
            if let Some(tx) = &events {
                // A folder of files: the gateway lays the bytes out as those files.
                if meta.info.multi_file && !meta.info.files.is_empty() {
                    let _ = tx.try_send(FetchEvent::Files(meta.info.file_spans()));
                }
                let _ = tx.try_send(FetchEvent::Identified(id));
                let _ = tx.try_send(FetchEvent::Named(meta.info.name.clone()));
            }
            // An identify (see start_fetch) ends here.
            if matches!(t.storage, Storage::MetadataOnly)
                && let Some(tx) = events.take()
            {
                let _ = tx.try_send(FetchEvent::Note(format!(
                    "metadata only: {} bytes; fetch again into a sink of that size",
                    meta.info.total_length
                )));
                t.cancel.cancel();
            }
        }
        // A torrent stopped meanwhile (unshared) is not listed again.
        if !indexed
            && !t.cancel.is_cancelled()
            && let Some(e) = entry_of(&t, &trackers, torrent_bytes.clone())
        {
            indexed = true;
            add_to_index(&index, e);
        }
        // Announce when due.
        let extra: Vec<String> = lock(&ctx.extra_trackers).clone();
        if let Some(mut tr) = tiers.take() {
            for u in extra {
                tr.add(u);
            }
            if !tr.is_empty() && Instant::now() >= next_announce {
                let params = AnnounceParams {
                    info_hash: t.info_hash,
                    peer_id: ctx.peer_id,
                    port: ctx.port.load(Ordering::Relaxed),
                    uploaded: t.uploaded.load(Ordering::Relaxed),
                    downloaded: t.downloaded.load(Ordering::Relaxed),
                    left: t.left(),
                    event: tracker_event,
                    key,
                };
                let cfg = cfg.clone();
                let ann_tx = ann_tx.clone();
                next_announce = Instant::now() + Duration::from_secs(3600);
                sent_event = tracker_event;
                tokio::spawn(async move {
                    let r = tr.announce(&params, &cfg).await.map_err(|e| e.to_string());
                    let _ = ann_tx.send((tr, r)).await;
                });
            } else {
                tiers = Some(tr);
            }
        }
        // DHT: look for peers and announce ourselves (not for private torrents).
        let private = t.metadata().is_some_and(|m| m.info.private);
        if let Some(dht) = ctx.dht.clone()
            && !private
            && !dht_busy
            && Instant::now() >= next_dht
            && dht.node_count() > 0
        {
            dht_busy = true;
            // Often while we have no peers, rarely once we do.
            let few = t.state().peers.is_empty();
            next_dht = Instant::now() + Duration::from_secs(if few { 5 } else { 300 });
            let (ih, port, tx) = (
                t.info_hash,
                ctx.port.load(Ordering::Relaxed),
                dht_tx.clone(),
            );
            // A torrent the index only wants the metadata of is not ours to offer: look
            // up, do not announce. An identify for a fetch announces, so that peers which
            // look us up can bring the metadata as well.
            let indexing = matches!(t.storage, Storage::MetadataOnly) && events.is_none();
            let announce = (!indexing).then_some(port);
            tokio::spawn(async move {
                let peers = dht.get_peers(ih, announce).await;
                let _ = tx.send(peers).await;
            });
        }
        // Dial known peers.
        let to_dial: Vec<SocketAddr> = {
            let mut st = t.state();
            let room = cfg
                .max_peers_per_torrent
                .saturating_sub(st.peers.len() + st.connecting.len())
                .min(10);
            let mut v = Vec::new();
            for _ in 0..room {
                match st.next_to_dial() {
                    Some(a) => {
                        st.connecting.insert(a);
                        v.push(a);
                    }
                    None => break,
                }
            }
            v
        };
        for addr in to_dial {
            let (t2, tx) = (t.clone(), dial_tx.clone());
            tokio::spawn(
                async move {
                    // Connection ended: the address may be dialled again later.
                    let began = Instant::now();
                    let r = peer::connect(t2, addr).await;
                    if let Err(e) = r {
                        debug!(error = %e, "outgoing peer ended");
                    }
                    let _ = tx.send((addr, began.elapsed())).await;
                }
                .instrument(info_span!("peer_out", %addr)),
            );
        }
        if last_choke.elapsed() >= Duration::from_secs(10) {
            last_choke = Instant::now();
            t.state().choke_round(slots, complete);
        }
        if let Some(tx) = &events {
            let n = t.state().peers.len() as u32;
            if n != last_peers {
                last_peers = n;
                let _ = tx.try_send(FetchEvent::Peers(n));
            }
            if complete {
                let _ = tx.try_send(FetchEvent::Note("download complete and verified".into()));
                events = None; // the fetch stream ends; the torrent keeps seeding
            }
        }
    }
    if let Some(tx) = &events {
        let why = lock(&t.error)
            .clone()
            .unwrap_or_else(|| "the torrent was stopped".into());
        let _ = tx.try_send(FetchEvent::Note(format!("stopped: {why}")));
    }
    // Say goodbye to the trackers, briefly.
    if let Some(mut tr) = tiers {
        let params = AnnounceParams {
            info_hash: t.info_hash,
            peer_id: ctx.peer_id,
            port: ctx.port.load(Ordering::Relaxed),
            uploaded: t.uploaded.load(Ordering::Relaxed),
            downloaded: t.downloaded.load(Ordering::Relaxed),
            left: t.left(),
            event: TrackerEvent::Stopped,
            key,
        };
        let mut quick = cfg.clone();
        quick.tracker_timeout = Duration::from_secs(2);
        quick.udp_tracker_attempts = 1;
        quick.udp_retry_base = Duration::from_secs(2);
        let _ = tokio::time::timeout(Duration::from_secs(3), tr.announce(&params, &quick)).await;
    }
    let mut map = lock(&ctx.torrents);
    if map.get(&t.info_hash).is_some_and(|x| Arc::ptr_eq(x, &t)) {
        map.remove(&t.info_hash);
    }
    debug!("torrent stopped");
}
