//! The BitTorrent [`Network`]: a cheap handle that sends commands over a bounded channel to
//! one event-loop task; the loop starts torrents (each with its own task: trackers, dialing,
//! choker) and a listener task hands incoming connections to them.

mod fetch;
mod index;
mod share;

use self::fetch::*;
pub use self::index::IndexEntry;
use self::index::*;
use self::share::*;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use junction_core::query::Candidate;
use junction_core::{
    Capabilities, ContentId, FetchEvent, FetchEvents, FetchRequest, HashKind, Hit, HitStream,
    Network, NetworkError, NetworkId, NetworkState, NetworkStatus, Query, SharedItem, Source,
    SourceStream, TransferSink,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span};

use crate::config::Config;
use crate::engine::dht::Dht;
use crate::engine::peer;
use crate::engine::storage::Storage;
use crate::engine::sync::lock;
use crate::engine::torrent::{Ctx, Torrent};
use crate::engine::torznab;
use crate::engine::tracker_client::{AnnounceParams, Tiers};
use crate::wire::id::{InfoHash, PeerId};
use crate::wire::magnet::Magnet;
use crate::wire::metainfo::{Info, Metainfo, TorrentBuilder, piece_length_for};
use crate::wire::tracker::Event as TrackerEvent;

/// Most incoming connections waiting for their handshake.
const MAX_PENDING_ACCEPTS: usize = 64;

/// Per-torrent figures, for tests and status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TorrentStats {
    pub name: String,
    pub peers: u32,
    pub complete: bool,
    pub downloaded: u64,
    pub uploaded: u64,
    pub verified: u64,
    pub failed_pieces: u64,
    pub banned: u32,
    pub has_metadata: bool,
}

enum Command {
    /// A fetch into `sink`; `None`: only the metadata ([`Network::identify`]).
    Fetch {
        req: FetchRequest,
        sink: Option<Arc<dyn TransferSink>>,
        reply: oneshot::Sender<Result<FetchEvents, NetworkError>>,
    },
    Share {
        item: SharedItem,
        reply: oneshot::Sender<Result<ContentId, NetworkError>>,
    },
}

struct Inner {
    ctx: Arc<Ctx>,
    cmd: mpsc::Sender<Command>,
    cancel: CancellationToken,
    listen: SocketAddr,
    index: Arc<Mutex<Vec<IndexEntry>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The BitTorrent adapter handle; clones share one running instance.
#[derive(Clone)]
pub struct Adapter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("bittorrent::Adapter")
            .field("listen", &self.inner.listen)
            .finish()
    }
}

impl Adapter {
    /// Binds the peer listener and starts the event loop.
    pub async fn start(config: Config) -> Result<Self, NetworkError> {
        let listener = TcpListener::bind(config.listen).await?;
        let upload_limit = config.upload_rate_limit;
        let download_limit = config.download_rate_limit;
        let listen = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let dht = match config.dht_listen {
            Some(addr) => Some(
                Dht::bind(addr, config.limits.ip_rates(), cancel.child_token())
                    .await
                    .map_err(|e| NetworkError::Other(Box::new(e)))?,
            ),
            None => None,
        };
        let ctx = Arc::new(Ctx::new(
            config,
            listen.port(),
            dht.clone(),
            upload_limit,
            download_limit,
        ));
        let index = Arc::new(Mutex::new(Vec::new()));
        if let Some(d) = dht {
            let boot = ctx.config.dht_bootstrap.clone();
            tokio::spawn(
                dht_maintenance(d.clone(), boot, cancel.clone()).instrument(info_span!("dht_boot")),
            );
            if ctx.config.dht_index {
                tokio::spawn(
                    dht_indexer(d, ctx.clone(), index.clone(), cancel.clone())
                        .instrument(info_span!("dht_index")),
                );
            }
        }
        let (cmd, rx) = mpsc::channel(64);
        let span = info_span!("bittorrent", %listen);
        tokio::spawn(accept_loop(listener, ctx.clone(), cancel.clone()).instrument(span.clone()));
        tokio::spawn(event_loop(rx, ctx.clone(), index.clone(), cancel.clone()).instrument(span));
        info!(%listen, "bittorrent adapter listening");
        Ok(Self {
            inner: Arc::new(Inner {
                ctx,
                cmd,
                cancel,
                listen,
                index,
            }),
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.listen
    }

    /// The DHT node's UDP address, when the DHT is enabled.
    pub fn dht_addr(&self) -> Option<SocketAddr> {
        self.inner.ctx.dht.as_ref().and_then(|d| d.local_addr())
    }

    pub fn peer_id(&self) -> PeerId {
        self.inner.ctx.peer_id
    }

    /// The index entry (name, `.torrent`, magnet) of a torrent Junction knows.
    pub fn index_entry(&self, ih: &InfoHash) -> Option<IndexEntry> {
        lock(&self.inner.index)
            .iter()
            .find(|e| e.info_hash == *ih)
            .cloned()
    }

    pub fn torrent_stats(&self, ih: &InfoHash) -> Option<TorrentStats> {
        let t = self.inner.ctx.torrent(ih)?;
        let st = t.state();
        Some(TorrentStats {
            name: st.name.clone(),
            peers: st.peers.len() as u32,
            complete: t.is_complete(),
            downloaded: t.downloaded.load(Ordering::Relaxed),
            uploaded: t.uploaded.load(Ordering::Relaxed),
            verified: t.verified_bytes.load(Ordering::Relaxed),
            failed_pieces: t.failed_pieces.load(Ordering::Relaxed),
            banned: st.banned_count,
            has_metadata: t.meta().is_some(),
        })
    }

    async fn command(&self, c: Command) -> Result<(), NetworkError> {
        self.inner
            .cmd
            .send(c)
            .await
            .map_err(|_| NetworkError::Shutdown)
    }
}

/// Bootstraps the DHT from the configured nodes, again whenever the table runs empty, and
/// refreshes it every 15 minutes.
async fn dht_maintenance(dht: Dht, boot: Vec<String>, cancel: CancellationToken) {
    let mut last_refresh = Instant::now();
    loop {
        if dht.node_count() == 0 && !boot.is_empty() {
            let mut addrs = Vec::new();
            for b in &boot {
                match junction_core::addr::resolve(b, junction_core::addr::RESOLVE_TIMEOUT).await {
                    Ok(a) if a.is_ipv4() => addrs.push(a),
                    Ok(a) => tracing::warn!(node = %b, %a, "DHT bootstrap: not IPv4, skipped"),
                    Err(e) => tracing::warn!(node = %b, error = %e, "DHT bootstrap: skipped"),
                }
            }
            dht.bootstrap(&addrs).await;
        } else if last_refresh.elapsed() > Duration::from_secs(15 * 60) {
            last_refresh = Instant::now();
            dht.refresh().await;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, cancel: CancellationToken) {
    let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_ACCEPTS));
    let limiter = junction_core::limit::ConnLimiter::new(ctx.config.limits.clone());
    loop {
        let (mut s, addr) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over its per-IP limits: closed at once.
        let Ok(mut lim) = limiter.admit(addr.ip()) else {
            continue;
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            continue; // too many half-open connections: drop this one
        };
        let ctx = ctx.clone();
        tokio::spawn(
            async move {
                let hs = match peer::read_handshake(&mut s, ctx.config.handshake_timeout).await {
                    Ok(hs) => hs,
                    Err(e) => {
                        debug!(error = %e, "incoming handshake failed");
                        return;
                    }
                };
                drop(permit);
                lim.handshake_done();
                let Some(t) = ctx.torrent(&hs.info_hash) else {
                    debug!(info_hash = %hs.info_hash, "incoming peer for an unknown torrent");
                    return;
                };
                // Breaking the request rate also backs the address off.
                let _ = peer::accepted(t, s, addr, hs, lim.request_rate()).await;
                drop(lim);
            }
            .instrument(info_span!("peer_in", %addr)),
        );
    }
}

async fn event_loop(
    mut rx: mpsc::Receiver<Command>,
    ctx: Arc<Ctx>,
    index: Arc<Mutex<Vec<IndexEntry>>>,
    cancel: CancellationToken,
) {
    loop {
        let cmd = tokio::select! {
            _ = cancel.cancelled() => break,
            c = rx.recv() => match c { Some(c) => c, None => break },
        };
        match cmd {
            Command::Fetch { req, sink, reply } => {
                let _ = reply.send(start_fetch(&ctx, &index, &cancel, req, sink));
            }
            Command::Share { item, reply } => {
                let (ctx, index, cancel) = (ctx.clone(), index.clone(), cancel.clone());
                tokio::spawn(async move {
                    let _ = reply.send(share(ctx, index, cancel, item).await);
                });
            }
        }
    }
    let torrents: Vec<_> = lock(&ctx.torrents).values().cloned().collect();
    for t in torrents {
        t.cancel.cancel();
    }
}

impl Network for Adapter {
    fn id(&self) -> NetworkId {
        NetworkId::BITTORRENT
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            keywords: true,
            ids: vec![HashKind::Btih],
            // The index also knows a single-file torrent by the whole-file hashes its info
            // dictionary gives (`sha1`, `ed2k`, `md5sum`); it fetches by info-hash only.
            search_ids: vec![HashKind::Sha1, HashKind::Ed2k, HashKind::Md5],
            // A v2 torrent is fetched under its truncated hash (BEP 52).
            fetch_ids: vec![HashKind::Btmh],
            // A magnet's metadata, from its swarm.
            identify_ids: vec![HashKind::Btih],
            ..Capabilities::default()
        }
    }

    fn status(&self) -> NetworkStatus {
        let ctx = &self.inner.ctx;
        let torrents: Vec<Arc<Torrent>> = lock(&ctx.torrents).values().cloned().collect();
        let peers: usize = torrents.iter().map(|t| t.state().peers.len()).sum();
        let seeding = torrents.iter().filter(|t| t.is_complete()).count();
        NetworkStatus {
            state: if self.inner.cancel.is_cancelled() {
                NetworkState::Offline
            } else {
                NetworkState::Online
            },
            reachability: format!("listening on {}", self.inner.listen),
            peers: peers as u32,
            servers: 0,
            dht_nodes: ctx.dht.as_ref().map_or(0, |d| d.node_count() as u32),
            bytes_in: ctx.bytes_in.load(Ordering::Relaxed),
            bytes_out: ctx.bytes_out.load(Ordering::Relaxed),
            last_error: lock(&ctx.last_error).clone(),
            details: [
                ("torrents".to_string(), torrents.len().to_string()),
                ("seeding".into(), seeding.to_string()),
                ("indexed".into(), lock(&self.inner.index).len().to_string()),
            ]
            .into_iter()
            // Every tracker shares are announced to, so links out can name them.
            .chain(
                ctx.config
                    .trackers
                    .iter()
                    .map(|t| (NetworkStatus::TRACKER.into(), t.clone())),
            )
            .collect(),
        }
    }

    async fn search(&self, q: Query) -> Result<HitStream, NetworkError> {
        let entries = lock(&self.inner.index).clone();
        let ctx = self.inner.ctx.clone();
        let mut hits = Vec::new();
        for e in entries {
            let mut id = e.id.clone();
            id.set(HashKind::Btih, &e.info_hash.0);
            let peers = ctx
                .torrent(&e.info_hash)
                .map_or(0, |t| t.state().peers.len() as u32);
            let matched = std::iter::once(e.name.as_str())
                .chain(e.files.iter().map(String::as_str))
                .any(|name| {
                    q.expr.matches(&Candidate {
                        name,
                        size: e.size,
                        sources: peers + 1,
                        id: &id,
                    })
                });
            if matched {
                let mut h = Hit::new(NetworkId::BITTORRENT, id, e.name.clone(), e.size);
                h.sources = peers + 1;
                h.link = Some(e.magnet());
                hits.push(Ok(h));
            }
        }
        let local = futures::stream::iter(hits);
        // Torznab feeds, for the query's words; each feed's items arrive as it answers.
        let terms = q.expr.positive_terms().join(" ");
        let feeds = if terms.trim().is_empty() {
            Vec::new()
        } else {
            ctx.config.torznab.clone()
        };
        let deadline = ctx.config.tracker_timeout;
        let remote = futures::stream::iter(feeds)
            .map(move |feed| {
                let terms = terms.clone();
                async move {
                    match torznab::search(&feed, &terms, deadline).await {
                        Ok(items) => items
                            .iter()
                            .filter_map(torznab::Item::to_hit)
                            .map(Ok)
                            .collect::<Vec<_>>(),
                        Err(e) => {
                            debug!(%feed, error = %e, "torznab search failed");
                            vec![Err(NetworkError::Unreachable(format!("torznab feed: {e}")))]
                        }
                    }
                }
            })
            .buffer_unordered(4)
            .flat_map(futures::stream::iter);
        Ok(local.chain(remote).boxed())
    }

    async fn locate(&self, id: ContentId) -> Result<SourceStream, NetworkError> {
        let ih = id
            .get(HashKind::Btih)
            .and_then(InfoHash::from_slice)
            .ok_or_else(|| NetworkError::Unsupported("BitTorrent locates by btih only".into()))?;
        let ctx = self.inner.ctx.clone();
        let mut addrs: Vec<SocketAddr> = ctx
            .torrent(&ih)
            .map(|t| t.state().peers.values().map(|p| p.addr).collect())
            .unwrap_or_default();
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
                left: id.size.unwrap_or(1).max(1),
                event: TrackerEvent::None,
                key: rand::random(),
            };
            if let Ok((_, a)) = tiers.announce(&params, &ctx.config).await {
                addrs.extend(a.peers);
            }
        }
        addrs.sort();
        addrs.dedup();
        let sources: Vec<Source> = addrs
            .into_iter()
            .map(|a| Source {
                network: NetworkId::BITTORRENT,
                address: a.to_string(),
                detail: Some(ih.to_hex()),
            })
            .collect();
        Ok(futures::stream::iter(sources).boxed())
    }

    async fn fetch(
        &self,
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
    ) -> Result<FetchEvents, NetworkError> {
        let (reply, rx) = oneshot::channel();
        let sink = Some(sink);
        self.command(Command::Fetch { req, sink, reply }).await?;
        rx.await.map_err(|_| NetworkError::Shutdown)?
    }

    /// Fetches the torrent's metadata only (from a `.torrent` at once, else over
    /// ut_metadata), reports its files, hashes with the size, and name, and ends. The
    /// metadata is cached, so the fetch that follows starts from it.
    async fn identify(&self, req: FetchRequest) -> Result<FetchEvents, NetworkError> {
        let (reply, rx) = oneshot::channel();
        let sink = None;
        self.command(Command::Fetch { req, sink, reply }).await?;
        rx.await.map_err(|_| NetworkError::Shutdown)?
    }

    async fn share(&self, item: SharedItem) -> Result<ContentId, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.command(Command::Share { item, reply }).await?;
        rx.await.map_err(|_| NetworkError::Shutdown)?
    }

    async fn add_endpoint(&self, address: String) -> Result<(), NetworkError> {
        if address.starts_with("http://") || address.starts_with("udp://") {
            let mut extra = lock(&self.inner.ctx.extra_trackers);
            if extra.len() >= 100 {
                return Err(NetworkError::Invalid("too many trackers".into()));
            }
            if !extra.contains(&address) {
                extra.push(address);
            }
            return Ok(());
        }
        if junction_core::addr::split_host_port(&address).is_ok() {
            let addr = junction_core::addr::resolve(&address, junction_core::addr::RESOLVE_TIMEOUT)
                .await?;
            match self.inner.ctx.dht.clone() {
                // A DHT node to bootstrap from.
                Some(dht) => {
                    tokio::spawn(async move { dht.add(addr).await });
                }
                // Without a DHT: a peer, offered to every running torrent.
                None => {
                    for t in lock(&self.inner.ctx.torrents).values() {
                        t.state().add_known(addr);
                    }
                }
            }
            return Ok(());
        }
        Err(NetworkError::Invalid(format!(
            "not a tracker URL or host:port: {address}"
        )))
    }

    async fn remove_endpoint(&self, address: String) -> Result<(), NetworkError> {
        if address.starts_with("http://") || address.starts_with("udp://") {
            // Announces from now on leave it out.
            let mut extra = lock(&self.inner.ctx.extra_trackers);
            let before = extra.len();
            extra.retain(|t| t != &address);
            if extra.len() == before {
                return Err(NetworkError::NotFound(format!(
                    "no tracker {address:?} was added"
                )));
            }
            return Ok(());
        }
        let addr =
            junction_core::addr::resolve(&address, junction_core::addr::RESOLVE_TIMEOUT).await?;
        match &self.inner.ctx.dht {
            Some(dht) if dht.forget(addr) => Ok(()),
            Some(_) => Err(NetworkError::NotFound(format!(
                "DHT node {address} ({addr}) is not in the routing table"
            ))),
            None => Err(NetworkError::Unsupported(
                "a peer stays known to the torrents it was offered to while the gateway runs; \
                 it is not added again after a restart"
                    .into(),
            )),
        }
    }

    async fn unshare(&self, id: ContentId) -> Result<(), NetworkError> {
        unshare(&self.inner.ctx, &self.inner.index, &id)
    }

    async fn shutdown(&self) {
        self.inner.cancel.cancel();
        // Give torrents a moment to send `stopped` to their trackers.
        let deadline = Instant::now() + Duration::from_secs(3);
        while !lock(&self.inner.ctx.torrents).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
