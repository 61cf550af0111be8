//! A torrent's own task: announces to its trackers, looks it up in the DHT, dials peers,
//! runs the choker, and reports progress to the fetch that started it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use junction_core::{FetchEvent, HashKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, debug_span, info_span};

use super::index::entry_of;
use super::metadata_cache::META_CACHE_BYTES;
use super::peer;
use super::requests::Report;
use super::storage::Storage;
use super::sync::lock;
use super::torrent::{Ctx, Torrent};
use super::tracker_client::{AnnounceParams, Announced, Tiers};
use crate::config::Config;
use crate::wire::tracker::Event as TrackerEvent;

type AnnounceResult = (Tiers, Result<(String, Announced), String>);

/// A torrent's own task: announces, dials peers, runs the choker and reports progress.
pub(crate) async fn run_torrent(
    t: Arc<Torrent>,
    trackers: Vec<Vec<String>>,
    events: Option<mpsc::Sender<FetchEvent>>,
    torrent_bytes: Option<Bytes>,
    adapter_cancel: CancellationToken,
) {
    let (ann_tx, mut ann_rx) = mpsc::channel::<AnnounceResult>(2);
    let (dial_tx, mut dial_rx) = mpsc::channel::<(SocketAddr, Duration)>(256);
    let (dht_tx, mut dht_rx) = mpsc::channel::<Vec<SocketAddr>>(2);
    let mut task = TorrentTask {
        ctx: t.ctx.clone(),
        cfg: t.ctx.config.clone(),
        key: rand::random(),
        tiers: Some(Tiers::new(trackers.clone())),
        trackers,
        ann_tx,
        next_announce: Instant::now(),
        tracker_event: TrackerEvent::Started,
        sent_event: TrackerEvent::Started,
        was_complete: t.is_complete(),
        events,
        last_peers: u32::MAX,
        indexed: false,
        identified: false,
        had_metadata: t.metadata().is_some(),
        torrent_bytes,
        last_choke: Instant::now(),
        dial_tx,
        dht_tx,
        next_dht: Instant::now(),
        dht_busy: false,
        adapter_cancel: adapter_cancel.clone(),
        t: t.clone(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut adopt = tokio::time::interval(Duration::from_millis(50));
    adopt.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut complete_rx = t.complete.subscribe();
    loop {
        tokio::select! {
            _ = t.cancel.cancelled() => break,
            _ = adapter_cancel.cancelled() => { t.cancel.cancel(); break }
            _ = tick.tick() => {}
            // Pieces other networks verified are taken over quickly, so requests still out
            // for them are cancelled before the seeder sends them.
            _ = adopt.tick() => { t.adopt_verified(); continue }
            Some((addr, lasted)) = dial_rx.recv() => { t.state().dial_ended(addr, lasted); continue }
            Some(found) = dht_rx.recv() => task.on_dht_peers(found),
            // Then fall through: dial the new peers now.
            Some((back, res)) = ann_rx.recv() => task.on_announced(back, res),
            _ = complete_rx.changed() => {}
            _ = fetch_closed(&task.events) => {
                if !t.is_complete() {
                    debug!("fetch stream dropped: stopping the torrent");
                    t.cancel.cancel();
                    break;
                }
                task.events = None;
                continue;
            }
        }
        task.step();
    }
    task.finish().await;
}

/// Resolves when the fetch stream is dropped; never, when there is none.
async fn fetch_closed(events: &Option<mpsc::Sender<FetchEvent>>) {
    match events {
        Some(tx) => tx.closed().await,
        None => std::future::pending().await,
    }
}

/// What a torrent's task keeps between wake-ups.
struct TorrentTask {
    t: Arc<Torrent>,
    ctx: Arc<Ctx>,
    cfg: Config,
    /// The torrent's own tracker tiers, as its index entry lists them.
    trackers: Vec<Vec<String>>,
    /// The fetch's events; `None` once the fetch stream ended (the torrent may seed on).
    events: Option<mpsc::Sender<FetchEvent>>,
    torrent_bytes: Option<Bytes>,
    /// Our announce key, the same in every announce of this torrent.
    key: u32,
    /// The tiers; `None` while an announce has them.
    tiers: Option<Tiers>,
    ann_tx: mpsc::Sender<AnnounceResult>,
    next_announce: Instant,
    /// The event the next announce carries, and the one the last announce sent.
    tracker_event: TrackerEvent,
    sent_event: TrackerEvent,
    was_complete: bool,
    last_peers: u32,
    indexed: bool,
    /// Sent for .torrent fetches too: the info dict may carry whole-file hashes.
    identified: bool,
    had_metadata: bool,
    last_choke: Instant,
    dial_tx: mpsc::Sender<(SocketAddr, Duration)>,
    dht_tx: mpsc::Sender<Vec<SocketAddr>>,
    /// Ends the peer connections: they stop on the torrent's token by themselves, and
    /// their ending gives the transfer back the pieces they held, so only the adapter's
    /// shutdown cuts them.
    adapter_cancel: CancellationToken,
    next_dht: Instant,
    dht_busy: bool,
}

impl TorrentTask {
    fn on_dht_peers(&mut self, found: Vec<SocketAddr>) {
        self.dht_busy = false;
        debug!(peers = found.len(), "DHT lookup done");
        let mut st = self.t.state();
        for p in found {
            st.add_known(p);
        }
    }

    fn on_announced(&mut self, back: Tiers, res: Result<(String, Announced), String>) {
        self.tiers = Some(back);
        let cfg = &self.cfg;
        match res {
            Ok((url, a)) => {
                debug!(%url, peers = a.peers.len(), interval = ?a.interval, "announced");
                if self.tracker_event == self.sent_event {
                    self.tracker_event = TrackerEvent::None;
                }
                let mut st = self.t.state();
                for p in a.peers {
                    st.add_known(p);
                }
                self.next_announce = Instant::now() + a.interval.max(cfg.min_announce_interval);
            }
            Err(e) => {
                debug!(error = %e, "no tracker answered");
                self.next_announce =
                    Instant::now() + cfg.min_announce_interval.max(Duration::from_secs(15));
            }
        }
    }

    /// Everything a wake-up does, in order.
    fn step(&mut self) {
        let complete = self.t.is_complete();
        if complete && !self.was_complete {
            self.was_complete = true;
            self.tracker_event = TrackerEvent::Completed;
            self.next_announce = Instant::now();
        }
        self.report_metadata();
        self.add_to_index();
        self.announce_if_due();
        self.look_up_in_dht();
        self.dial_known_peers();
        if self.last_choke.elapsed() >= Duration::from_secs(10) {
            self.last_choke = Instant::now();
            self.t.state().choke_round(self.cfg.upload_slots, complete);
        }
        self.report_progress(complete);
    }

    /// Metadata arrived (magnet): tell the gateway, index it.
    fn report_metadata(&mut self) {
        let t = &self.t;
        if self.identified {
            return;
        }
        let Some(meta) = t.metadata() else {
            return;
        };
        self.identified = true;
        if !self.had_metadata {
            // For the metadata cache: the next fetch starts from it and these peers.
            if meta.info.raw.len() <= META_CACHE_BYTES {
                let peers = t.state().peers.values().filter_map(|p| p.listen).collect();
                let info = meta.info.clone();
                let _ = self.ctx.reports.send(Report::MetadataFetched(info, peers));
            }
        }
        let mut id = meta.info.content_id();
        id.set(HashKind::Btih, &t.info_hash.0);
        if let Some(tx) = &self.events {
            // A folder of files: the gateway lays the bytes out as those files.
            if meta.info.multi_file && !meta.info.files.is_empty() {
                let _ = tx.try_send(FetchEvent::Files(meta.info.file_spans()));
            }
            let _ = tx.try_send(FetchEvent::Identified(id));
            let _ = tx.try_send(FetchEvent::Named(meta.info.name.clone()));
            // The gateway keeps it, and hands it back with later requests.
            let _ = tx.try_send(FetchEvent::Metadata(meta.info.raw.clone()));
        }
        // An identify (see start_fetch) ends here.
        if matches!(t.storage, Storage::MetadataOnly)
            && let Some(tx) = self.events.take()
        {
            let _ = tx.try_send(FetchEvent::Note(format!(
                "metadata only: {} bytes; fetch again into a sink of that size",
                meta.info.total_length
            )));
            t.cancel.cancel();
        }
    }

    /// Lists the torrent in the search index once its metadata is known. A torrent stopped
    /// meanwhile (unshared) is not listed again.
    fn add_to_index(&mut self) {
        if !self.indexed
            && !self.t.cancel.is_cancelled()
            && let Some(e) = entry_of(&self.t, &self.trackers, self.torrent_bytes.clone())
        {
            self.indexed = true;
            let _ = self.ctx.reports.send(Report::Indexed(e));
        }
    }

    fn announce_params(&self, event: TrackerEvent) -> AnnounceParams {
        let (t, ctx) = (&self.t, &self.ctx);
        AnnounceParams {
            info_hash: t.info_hash,
            peer_id: ctx.peer_id,
            port: ctx.port.load(Ordering::Relaxed),
            uploaded: t.uploaded.load(Ordering::Relaxed),
            downloaded: t.downloaded.load(Ordering::Relaxed),
            left: t.left(),
            event,
            key: self.key,
        }
    }

    /// Announces when due, in a task of its own that hands the tiers back with the answer.
    fn announce_if_due(&mut self) {
        let extra: Vec<String> = self.ctx.extra_trackers.borrow().clone();
        let Some(mut tr) = self.tiers.take() else {
            return;
        };
        for u in extra {
            tr.add(u);
        }
        if tr.is_empty() || Instant::now() < self.next_announce {
            self.tiers = Some(tr);
            return;
        }
        let params = self.announce_params(self.tracker_event);
        let cfg = self.cfg.clone();
        let ann_tx = self.ann_tx.clone();
        self.next_announce = Instant::now() + Duration::from_secs(3600);
        self.sent_event = self.tracker_event;
        // Not junction_core::task::spawn: an announce the tracker is answering completes
        // even when the torrent stops meanwhile (a tracker sees whole requests); it is
        // bounded by the tracker timeouts.
        let span = debug_span!("announce", event = ?params.event);
        tokio::spawn(
            async move {
                let r = tr.announce(&params, &cfg).await.map_err(|e| e.to_string());
                let _ = ann_tx.send((tr, r)).await;
            }
            .instrument(span),
        );
    }

    /// DHT: look for peers and announce ourselves (not for private torrents).
    fn look_up_in_dht(&mut self) {
        let (t, ctx) = (&self.t, &self.ctx);
        let private = t.metadata().is_some_and(|m| m.info.private);
        let Some(dht) = ctx.dht.clone() else {
            return;
        };
        if private || self.dht_busy || Instant::now() < self.next_dht || dht.node_count() == 0 {
            return;
        }
        self.dht_busy = true;
        // Often while we have no peers, rarely once we do.
        let few = t.state().peers.is_empty();
        self.next_dht = Instant::now() + Duration::from_secs(if few { 5 } else { 300 });
        let (ih, port, tx) = (
            t.info_hash,
            ctx.port.load(Ordering::Relaxed),
            self.dht_tx.clone(),
        );
        // A torrent the index only wants the metadata of is not ours to offer: look
        // up, do not announce. An identify for a fetch announces, so that peers which
        // look us up can bring the metadata as well.
        let indexing = matches!(t.storage, Storage::MetadataOnly) && self.events.is_none();
        let announce = (!indexing).then_some(port);
        let span = debug_span!("dht_get_peers", info_hash = %ih);
        junction_core::task::spawn(span, t.cancel.clone(), async move {
            let peers = dht.get_peers(ih, announce).await;
            let _ = tx.send(peers).await;
        });
    }

    /// Dials known peers, up to 10 at a time and the torrent's peer limit; each dial's task
    /// reports back when its connection ends.
    fn dial_known_peers(&self) {
        let t = &self.t;
        let to_dial: Vec<SocketAddr> = {
            let mut st = t.state();
            let room = self
                .cfg
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
            let (t2, tx) = (t.clone(), self.dial_tx.clone());
            let span = info_span!("peer_out", %addr);
            let cancel = self.adapter_cancel.clone();
            junction_core::task::spawn(span, cancel, async move {
                // Connection ended: the address may be dialled again later.
                let began = Instant::now();
                let r = peer::connect(t2, addr).await;
                if let Err(e) = r {
                    debug!(error = %e, "outgoing peer ended");
                }
                let _ = tx.send((addr, began.elapsed())).await;
            });
        }
    }

    /// Tells the fetch the peer count when it changed, and ends the fetch stream once the
    /// download is complete (the torrent keeps seeding).
    fn report_progress(&mut self, complete: bool) {
        if let Some(tx) = &self.events {
            let n = self.t.state().peers.len() as u32;
            if n != self.last_peers {
                self.last_peers = n;
                let _ = tx.try_send(FetchEvent::Peers(n));
            }
            if complete {
                let _ = tx.try_send(FetchEvent::Note("download complete and verified".into()));
                self.events = None; // the fetch stream ends; the torrent keeps seeding
            }
        }
    }

    /// The torrent stopped: tell the fetch why, say goodbye to the trackers (briefly), and
    /// have the command loop take it out of the torrents map (unless a newer torrent took
    /// this one's place).
    async fn finish(mut self) {
        let tiers = self.tiers.take();
        let (t, ctx) = (&self.t, &self.ctx);
        if let Some(tx) = &self.events {
            let why = lock(&t.error)
                .clone()
                .unwrap_or_else(|| "the torrent was stopped".into());
            let _ = tx.try_send(FetchEvent::Note(format!("stopped: {why}")));
        }
        if let Some(mut tr) = tiers {
            let params = self.announce_params(TrackerEvent::Stopped);
            let mut quick = self.cfg.clone();
            quick.tracker_timeout = Duration::from_secs(2);
            quick.udp_tracker_attempts = 1;
            quick.udp_retry_base = Duration::from_secs(2);
            let _ =
                tokio::time::timeout(Duration::from_secs(3), tr.announce(&params, &quick)).await;
        }
        let _ = ctx.reports.send(Report::Stopped(t.clone()));
        debug!("torrent stopped");
    }
}
