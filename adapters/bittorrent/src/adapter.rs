//! The BitTorrent [`Network`]: a cheap, clonable handle. Every method but `status` sends a
//! numbered command over a bounded channel to the engine's command loop
//! (`engine/event_loop.rs`), which alone owns the torrents map and the search index, and
//! awaits its answer under a timeout. The synchronous readers (`status`, `torrent_stats`,
//! `index_entry`) read the engine's atomic counters and the copies of the map and the index
//! the loop publishes after each change. Everything that runs (torrents, peers, the DHT,
//! the index) lives in [`crate::engine`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use junction_core::{
    Capabilities, ContentId, FetchEvents, FetchRequest, HashKind, HitStream, Network, NetworkError,
    NetworkId, NetworkState, NetworkStatus, Query, Reachability, SharedItem, Source, SourceStream,
    TransferSink,
};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::event_loop;
pub use crate::engine::index::IndexEntry;
use crate::engine::index::IndexView;
use crate::engine::requests::{Command, Requests};
use crate::engine::sync::lock;
use crate::engine::torrent::Ctx;
use crate::engine::torrents::TorrentsView;
use crate::engine::{fetch, share, torznab};
use crate::wire::id::{InfoHash, PeerId};

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

struct Inner {
    ctx: Arc<Ctx>,
    requests: Requests,
    cancel: CancellationToken,
    listen: SocketAddr,
    /// The search index as the command loop last published it.
    index: IndexView,
    /// The torrents map as the command loop last published it.
    torrents: TorrentsView,
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
        let e = event_loop::start(config).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                ctx: e.ctx,
                requests: e.requests,
                cancel: e.cancel,
                listen: e.listen,
                index: e.index,
                torrents: e.torrents,
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
        self.inner.index.get(ih)
    }

    pub fn torrent_stats(&self, ih: &InfoHash) -> Option<TorrentStats> {
        let t = self.inner.torrents.get(ih)?;
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
            has_metadata: t.metadata().is_some(),
        })
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
            // A magnet's metadata, from its swarm (a v2 one's too: its piece layers follow
            // over hash requests when it is fetched).
            identify_ids: vec![HashKind::Btih, HashKind::Btmh],
            ..Capabilities::default()
        }
    }

    fn status(&self) -> NetworkStatus {
        let ctx = &self.inner.ctx;
        let torrents = self.inner.torrents.all();
        let peers: usize = torrents.iter().map(|t| t.state().peers.len()).sum();
        let seeding = torrents.iter().filter(|t| t.is_complete()).count();
        NetworkStatus {
            state: if self.inner.cancel.is_cancelled() {
                NetworkState::Offline
            } else {
                NetworkState::Online
            },
            // Whether peers get in is not known: BitTorrent has no server to say so.
            reachability: Reachability {
                listening: Some(self.inner.listen),
                detail: format!("listening on {}", self.inner.listen),
                ..Reachability::default()
            },
            peers: peers as u32,
            servers: 0,
            dht_nodes: ctx.dht.as_ref().map_or(0, |d| d.node_count() as u32),
            bytes_in: ctx.bytes_in.load(Ordering::Relaxed),
            bytes_out: ctx.bytes_out.load(Ordering::Relaxed),
            last_error: lock(&ctx.last_error).clone(),
            details: [
                ("torrents".to_string(), torrents.len().to_string()),
                ("seeding".into(), seeding.to_string()),
                ("indexed".into(), self.inner.index.len().to_string()),
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
        let ctx = &self.inner.ctx;
        let query = q.clone();
        let hits = self
            .inner
            .requests
            .ask(|reply| Command::Search { query, reply })
            .await?;
        let local = futures::stream::iter(hits);
        // Torznab feeds, for the query's words; each feed's items arrive as it answers.
        let terms = q.expr.positive_terms().join(" ");
        let feeds = if terms.trim().is_empty() {
            Vec::new()
        } else {
            ctx.config.torznab.clone()
        };
        let remote = torznab::search_feeds(feeds, terms, ctx.config.tracker_timeout);
        Ok(local.chain(remote).boxed())
    }

    async fn locate(&self, id: ContentId) -> Result<SourceStream, NetworkError> {
        let ih = id
            .get(HashKind::Btih)
            .and_then(InfoHash::from_slice)
            .ok_or_else(|| NetworkError::Unsupported("BitTorrent locates by btih only".into()))?;
        let running = self
            .inner
            .requests
            .ask(|reply| Command::Peers { ih, reply })
            .await?;
        let addrs = fetch::locate_peers(&self.inner.ctx, ih, id.size, running).await;
        let sources: Vec<Source> = addrs
            .into_iter()
            .map(|a| Source {
                network: NetworkId::BITTORRENT,
                address: a.into(),
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
        let sink = Some(sink);
        self.inner
            .requests
            .ask(|reply| Command::Fetch { req, sink, reply })
            .await?
    }

    /// Fetches the torrent's metadata only (from a `.torrent` at once, else over
    /// ut_metadata), reports its files, hashes with the size, and name, and ends. The
    /// metadata is cached, so the fetch that follows starts from it.
    async fn identify(&self, req: FetchRequest) -> Result<FetchEvents, NetworkError> {
        let sink = None;
        self.inner
            .requests
            .ask(|reply| Command::Fetch { req, sink, reply })
            .await?
    }

    async fn share(&self, item: SharedItem) -> Result<ContentId, NetworkError> {
        // Hashing runs here, in the caller's task; the loop only starts the seeding.
        let prepared = Box::new(share::prepare(&self.inner.ctx, item).await?);
        self.inner
            .requests
            .ask(|reply| Command::Seed { prepared, reply })
            .await?
    }

    async fn add_endpoint(&self, address: String) -> Result<(), NetworkError> {
        if address.starts_with("http://") || address.starts_with("udp://") {
            let url = address;
            return self
                .inner
                .requests
                .ask(|reply| Command::AddTracker { url, reply })
                .await?;
        }
        if junction_core::addr::split_host_port(&address).is_ok() {
            let addr = junction_core::addr::resolve(&address, junction_core::addr::RESOLVE_TIMEOUT)
                .await?;
            match self.inner.ctx.dht.clone() {
                // A DHT node to bootstrap from.
                Some(dht) => {
                    let span = tracing::debug_span!("dht_add", %addr);
                    let cancel = self.inner.cancel.clone();
                    junction_core::task::spawn(span, cancel, async move { dht.add(addr).await });
                }
                // Without a DHT: a peer, offered to every running torrent.
                None => {
                    self.inner
                        .requests
                        .ask(|reply| Command::AddPeer { addr, reply })
                        .await?;
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
            let url = address;
            return self
                .inner
                .requests
                .ask(|reply| Command::RemoveTracker { url, reply })
                .await?;
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
        self.inner
            .requests
            .ask(|reply| Command::Unshare { id, reply })
            .await?
    }

    async fn shutdown(&self) {
        // The order every adapter follows: cancel, then wait, bounded, for the goodbyes:
        // here each torrent's `stopped` to its trackers.
        self.inner.cancel.cancel();
        let deadline = Instant::now() + Duration::from_secs(3);
        while !self.inner.torrents.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
