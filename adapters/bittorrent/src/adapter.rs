//! The BitTorrent [`Network`]: a cheap handle that sends commands over a bounded channel to
//! one event-loop task; the loop starts torrents (each with its own task: trackers, dialing,
//! choker) and a listener task hands incoming connections to them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
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
use crate::id::{InfoHash, PeerId};
use crate::magnet::Magnet;
use crate::metainfo::{Info, Metainfo, PieceHasher, TorrentBuilder, piece_length_for};
use crate::net::dht::Dht;
use crate::net::peer;
use crate::net::storage::Storage;
use crate::net::torrent::{Bucket, Ctx, Torrent, lock};
use crate::net::torznab;
use crate::net::tracker_client::{AnnounceParams, Tiers};
use crate::tracker::Event as TrackerEvent;

/// Most torrents kept in the search index.
const MAX_INDEX: usize = 10_000;
/// Most incoming connections waiting for their handshake.
const MAX_PENDING_ACCEPTS: usize = 64;

/// A torrent Junction knows, searchable by name.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    pub files: Vec<String>,
    pub trackers: Vec<String>,
    /// The `.torrent` file, for torrents Junction made or was given.
    pub torrent: Option<Bytes>,
    /// Size, info-hashes and, for a single-file torrent, the whole-file hashes its info
    /// dictionary carries (`sha1`, `filehash`, `ed2k`, `md5sum`).
    pub id: ContentId,
}

impl IndexEntry {
    pub fn magnet(&self) -> String {
        let mut m = format!(
            "magnet:?xt=urn:btih:{}&dn={}&xl={}",
            self.info_hash.to_hex(),
            crate::percent::encode(self.name.as_bytes()),
            self.size
        );
        // The whole-file hashes as more `xt`s, so other networks' clients can match it.
        for (kind, digest) in self.id.hashes() {
            if matches!(kind, HashKind::Sha1 | HashKind::Ed2k | HashKind::Md5) {
                m.push_str(&format!(
                    "&xt=urn:{}:{}",
                    kind.urn_prefix(),
                    kind.format(digest)
                ));
            }
        }
        for t in &self.trackers {
            m.push_str("&tr=");
            m.push_str(&crate::percent::encode(t.as_bytes()));
        }
        m
    }
}

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
    Fetch {
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
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

fn new_peer_id() -> PeerId {
    let mut id = *b"-JN0001-000000000000";
    for b in &mut id[8..] {
        *b = b"0123456789abcdefghijklmnopqrstuvwxyz"[rand::random::<u32>() as usize % 36];
    }
    PeerId(id)
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
                Dht::bind(addr, cancel.child_token())
                    .await
                    .map_err(|e| NetworkError::Other(Box::new(e)))?,
            ),
            None => None,
        };
        let ctx = Arc::new(Ctx {
            config,
            peer_id: new_peer_id(),
            port: AtomicU16::new(listen.port()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            next_conn: AtomicU64::new(1),
            torrents: Mutex::new(HashMap::new()),
            last_error: Mutex::new(None),
            dht: dht.clone(),
            upload_bucket: upload_limit.map(|r| Mutex::new(Bucket::new(r))),
            download_bucket: download_limit.map(|r| Mutex::new(Bucket::new(r))),
            hashers: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            )),
            extra_trackers: Mutex::new(Vec::new()),
            meta_cache: Mutex::new(std::collections::VecDeque::new()),
        });
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
                if let Ok(mut it) = tokio::net::lookup_host(b.as_str()).await {
                    addrs.extend(it.by_ref().filter(SocketAddr::is_ipv4).take(4));
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

/// Info-hashes whose metadata is fetched at once for the index, and how long one may take.
const INDEX_FETCHES: usize = 2;
const INDEX_FETCH_TIME: Duration = Duration::from_secs(120);
const MAX_INDEX_QUEUE: usize = 200;

/// Learns info-hashes from DHT nodes with BEP 51 `sample_infohashes` and fetches their
/// metadata (DHT `get_peers`, then ut_metadata from those peers) into the search index.
async fn dht_indexer(
    dht: Dht,
    ctx: Arc<Ctx>,
    index: Arc<Mutex<Vec<IndexEntry>>>,
    cancel: CancellationToken,
) {
    let mut queue: std::collections::VecDeque<InfoHash> = std::collections::VecDeque::new();
    let mut seen: std::collections::HashSet<InfoHash> = std::collections::HashSet::new();
    let mut running: Vec<(InfoHash, Instant)> = Vec::new();
    let mut next_sample = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if Instant::now() >= next_sample && dht.node_count() > 0 {
            next_sample = Instant::now() + ctx.config.dht_sample_interval;
            for node in dht.some_nodes(8) {
                let Ok(samples) = dht.sample(node).await else {
                    continue;
                };
                for ih in samples {
                    if seen.len() < 100_000 && seen.insert(ih) && queue.len() < MAX_INDEX_QUEUE {
                        queue.push_back(ih);
                    }
                }
            }
        }
        // Finished or overdue metadata fetches end.
        running.retain(|(ih, started)| {
            let Some(t) = ctx.torrent(ih) else {
                return false;
            };
            if t.meta().is_some() || started.elapsed() > INDEX_FETCH_TIME {
                if matches!(t.storage, Storage::MetadataOnly) {
                    t.cancel.cancel();
                }
                return false;
            }
            true
        });
        while running.len() < INDEX_FETCHES {
            let Some(ih) = queue.pop_front() else { break };
            let known = lock(&index).iter().any(|e| e.info_hash == ih);
            if known || ctx.torrent(&ih).is_some() {
                continue;
            }
            debug!(info_hash = %ih, "fetching metadata for the index");
            let t = Torrent::new(ctx.clone(), ih, String::new(), Storage::MetadataOnly);
            lock(&ctx.torrents).insert(ih, t.clone());
            running.push((ih, Instant::now()));
            tokio::spawn(
                run_torrent(
                    t,
                    Vec::new(),
                    None,
                    index.clone(),
                    None,
                    cancel.child_token(),
                )
                .instrument(info_span!("index_meta", info_hash = %ih)),
            );
        }
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, cancel: CancellationToken) {
    let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_ACCEPTS));
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
                let Some(t) = ctx.torrent(&hs.info_hash) else {
                    debug!(info_hash = %hs.info_hash, "incoming peer for an unknown torrent");
                    return;
                };
                let _ = peer::accepted(t, s, addr, hs).await;
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

fn add_to_index(index: &Mutex<Vec<IndexEntry>>, e: IndexEntry) {
    let mut idx = lock(index);
    if let Some(old) = idx.iter_mut().find(|x| x.info_hash == e.info_hash) {
        if e.torrent.is_some() || old.torrent.is_none() {
            *old = e;
        }
        return;
    }
    if idx.len() >= MAX_INDEX {
        idx.remove(0);
    }
    idx.push(e);
}

fn entry_of(t: &Torrent, trackers: &[Vec<String>], torrent: Option<Bytes>) -> Option<IndexEntry> {
    let meta = t.meta()?;
    Some(IndexEntry {
        info_hash: t.info_hash,
        name: meta.info.name.clone(),
        size: meta.info.total_length,
        files: meta
            .info
            .files
            .iter()
            .filter(|f| !f.pad)
            .map(|f| f.path.join("/"))
            .collect(),
        trackers: trackers.iter().flatten().cloned().collect(),
        torrent,
        id: meta.info.content_id(),
    })
}

fn start_fetch(
    ctx: &Arc<Ctx>,
    index: &Arc<Mutex<Vec<IndexEntry>>>,
    cancel: &CancellationToken,
    req: FetchRequest,
    sink: Arc<dyn TransferSink>,
) -> Result<FetchEvents, NetworkError> {
    let mut tiers: Vec<Vec<String>> = Vec::new();
    let mut peers: Vec<SocketAddr> = Vec::new();
    let (info_hash, info) = match &req.torrent {
        Some(bytes) => {
            let m = Metainfo::parse(bytes).map_err(|e| NetworkError::Invalid(e.to_string()))?;
            tiers = m.tracker_tiers();
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
                        .and_then(crate::id::InfoHashV2::from_slice)
                        .map(|h| h.truncated())
                })
                .ok_or_else(|| {
                    NetworkError::Invalid(
                        "a BitTorrent fetch needs a .torrent, a btih or a btmh".into(),
                    )
                })?;
            // Metadata fetched earlier (a size lookup, the DHT index) is not fetched again,
            // and the peers that had it are tried first.
            let cached = cached_meta(ctx, &ih).map(|(info, had)| {
                peers.extend(had);
                info
            });
            (ih, cached)
        }
    };
    // A magnet without `xl` into an empty sink: fetch the metadata only, report the size
    // and hashes (Identified) and end, so the caller can make a sink of the right size and
    // fetch again (then from the cached metadata).
    let size_lookup = req.torrent.is_none() && req.size == 0 && sink.size() == 0;
    for t in &req.trackers {
        if let Ok(m) = Magnet::parse(t) {
            peers.extend(m.peer_addrs());
            tiers.extend(m.trackers.into_iter().map(|u| vec![u]));
        } else {
            tiers.push(vec![t.clone()]);
        }
    }
    for s in &req.sources {
        if let Ok(a) = s.address.parse() {
            peers.push(a);
        }
    }
    if tiers.is_empty() {
        tiers.extend(ctx.config.trackers.iter().map(|u| vec![u.clone()]));
    }
    // The latest fetch of a torrent wins: one still running (or seeding from an older
    // transfer) is stopped first.
    if let Some(old) = lock(&ctx.torrents).remove(&info_hash) {
        old.cancel.cancel();
    }
    let name = info
        .as_ref()
        .map_or_else(|| req.name.clone(), |i| i.name.clone());
    let storage = if size_lookup {
        Storage::MetadataOnly
    } else {
        Storage::Sink(sink)
    };
    let t = Torrent::new(ctx.clone(), info_hash, name, storage);
    if let Some(i) = info {
        t.set_meta(i).map_err(NetworkError::Invalid)?;
    }
    {
        let mut st = t.state();
        for p in peers {
            st.add_known(p);
        }
    }
    lock(&ctx.torrents).insert(info_hash, t.clone());
    let (tx, rx) = mpsc::channel(64);
    let torrent_bytes = req.torrent.clone();
    tokio::spawn(
        run_torrent(
            t,
            tiers,
            Some(tx),
            index.clone(),
            torrent_bytes,
            cancel.child_token(),
        )
        .instrument(info_span!("torrent", %info_hash)),
    );
    Ok(ReceiverStream::new(rx).boxed())
}

/// Most info dicts kept by [`cache_meta`], and most bytes of them.
const META_CACHE_ENTRIES: usize = 64;
const META_CACHE_BYTES: usize = 16 << 20;

/// Keeps an info dict fetched over ut_metadata, and the peers that had it, so the next
/// fetch of that torrent starts with both: after a magnet's size lookup, or for a hit the
/// DHT index found.
fn cache_meta(ctx: &Ctx, info: &Info, peers: Vec<SocketAddr>) {
    if info.raw.len() > META_CACHE_BYTES {
        return;
    }
    let mut c = lock(&ctx.meta_cache);
    c.retain(|(i, _)| i.swarm_hash() != info.swarm_hash());
    c.push_back((info.clone(), peers));
    let mut bytes: usize = c.iter().map(|(i, _)| i.raw.len()).sum();
    while c.len() > META_CACHE_ENTRIES || bytes > META_CACHE_BYTES {
        match c.pop_front() {
            Some((old, _)) => bytes -= old.raw.len(),
            None => break,
        }
    }
}

fn cached_meta(ctx: &Ctx, ih: &InfoHash) -> Option<(Info, Vec<SocketAddr>)> {
    lock(&ctx.meta_cache)
        .iter()
        .find(|(i, _)| i.swarm_hash() == *ih)
        .cloned()
}

async fn share(
    ctx: Arc<Ctx>,
    index: Arc<Mutex<Vec<IndexEntry>>>,
    cancel: CancellationToken,
    item: SharedItem,
) -> Result<ContentId, NetworkError> {
    let path = item.path.clone();
    let fixed = ctx.config.share_piece_length;
    let known_sha1: Option<[u8; 20]> = item.id.get(HashKind::Sha1).and_then(|h| h.try_into().ok());
    let want_sha1 = known_sha1.is_none();
    let hashed = tokio::task::spawn_blocking(move || hash_file(&path, fixed, want_sha1))
        .await
        .map_err(|e| NetworkError::Other(Box::new(e)))??;
    let length = hashed.length;
    let name = if item.name.is_empty() {
        item.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into())
    } else {
        junction_core::sanitize_file_name(&item.name)
    };
    let mut b = TorrentBuilder::new(name, hashed.piece_length);
    b.sha1 = known_sha1.or(hashed.sha1);
    b.ed2k = item.id.get(HashKind::Ed2k).and_then(|h| h.try_into().ok());
    b.trackers = ctx
        .config
        .trackers
        .iter()
        .map(|u| vec![u.clone()])
        .collect();
    b.created_by = Some(ctx.config.client_name.clone());
    let bytes = b
        .build(&hashed.pieces, length)
        .map_err(|e| NetworkError::Invalid(e.to_string()))?;
    let m = Metainfo::parse(&bytes).map_err(|e| NetworkError::Invalid(e.to_string()))?;
    let ih = m.info.swarm_hash();
    let file = std::fs::File::open(&item.path)?;
    let storage = Storage::File {
        file: Arc::new(file),
        len: length,
    };
    let tiers = m.tracker_tiers();
    let entry_id = m.info.content_id();
    let t = Torrent::new(ctx.clone(), ih, m.info.name.clone(), storage);
    t.set_meta(m.info).map_err(NetworkError::Invalid)?;
    if let Some(old) = lock(&ctx.torrents).insert(ih, t.clone()) {
        old.cancel.cancel();
    }
    info!(info_hash = %ih, path = %item.path.display(), "sharing");
    if let Some(e) = entry_of(&t, &tiers, Some(Bytes::from(bytes))) {
        add_to_index(&index, e);
    }
    tokio::spawn(
        run_torrent(t, tiers, None, index, None, cancel.child_token())
            .instrument(info_span!("torrent", info_hash = %ih)),
    );
    let mut id = item.id.clone();
    id.size = Some(length);
    id.absorb(&entry_id);
    Ok(id)
}

/// What [`hash_file`] found.
struct Hashed {
    pieces: Vec<[u8; 20]>,
    length: u64,
    piece_length: u32,
    sha1: Option<[u8; 20]>,
}

/// Hashes a file in one read pass: its pieces on this thread and, when `whole_sha1`, the
/// SHA-1 of the whole file on a second one, so sharing costs one read and about the time
/// of one hash. The 1 MiB read buffers go round between the two threads.
fn hash_file(
    path: &PathBuf,
    piece_length: Option<u32>,
    whole_sha1: bool,
) -> Result<Hashed, NetworkError> {
    use sha1::{Digest, Sha1};
    use std::io::Read;
    use std::sync::mpsc::sync_channel;
    const BUF: usize = 1 << 20;
    const BUFS: usize = 4;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Err(NetworkError::Invalid("cannot share an empty file".into()));
    }
    let piece_length = piece_length.unwrap_or_else(|| piece_length_for(len));
    let mut h = PieceHasher::new(piece_length).map_err(|e| NetworkError::Invalid(e.to_string()))?;
    let (full_tx, full_rx) = sync_channel::<(Vec<u8>, usize)>(BUFS);
    let (empty_tx, empty_rx) = sync_channel::<Vec<u8>>(BUFS);
    for _ in 0..BUFS {
        let _ = empty_tx.send(vec![0u8; BUF]);
    }
    let (read, sha1) = std::thread::scope(|scope| {
        let whole = scope.spawn(move || {
            let mut sha1 = whole_sha1.then(Sha1::new);
            for (buf, n) in full_rx {
                if let Some(s) = &mut sha1 {
                    s.update(&buf[..n]);
                }
                if empty_tx.send(buf).is_err() {
                    break;
                }
            }
            sha1.map(|s| <[u8; 20]>::from(s.finalize()))
        });
        let read = (|| -> Result<(), NetworkError> {
            while let Ok(mut buf) = empty_rx.recv() {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                if full_tx.send((buf, n)).is_err() {
                    break;
                }
            }
            Ok(())
        })();
        drop(full_tx);
        (read, whole.join())
    });
    read?;
    let sha1 = sha1.map_err(|_| NetworkError::Other("the whole-file hasher panicked".into()))?;
    let (pieces, length) = h.finish();
    Ok(Hashed {
        pieces,
        length,
        piece_length,
        sha1,
    })
}

type AnnounceResult = (
    Tiers,
    Result<(String, crate::net::tracker_client::Announced), String>,
);

/// A torrent's own task: announces, dials peers, runs the choker and reports progress.
async fn run_torrent(
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
    let had_meta = t.meta().is_some();
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
        if !identified && let Some(meta) = t.meta() {
            identified = true;
            if !had_meta {
                let peers = t.state().peers.values().filter_map(|p| p.listen).collect();
                cache_meta(&ctx, &meta.info, peers);
            }
            let mut id = meta.info.content_id();
            id.set(HashKind::Btih, &t.info_hash.0);
            if let Some(tx) = &events {
                let _ = tx.try_send(FetchEvent::Identified(id));
                let _ = tx.try_send(FetchEvent::Named(meta.info.name.clone()));
            }
            // A size lookup (see start_fetch) ends here.
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
        if !indexed && let Some(e) = entry_of(&t, &trackers, torrent_bytes.clone()) {
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
        let private = t.meta().is_some_and(|m| m.info.private);
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
            // up, do not announce. A size lookup for a fetch announces, so that peers which
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

impl Network for Adapter {
    fn id(&self) -> NetworkId {
        NetworkId::BITTORRENT
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            keywords: true,
            ids: vec![HashKind::Btih],
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
            details: vec![
                ("torrents".into(), torrents.len().to_string()),
                ("seeding".into(), seeding.to_string()),
                ("indexed".into(), lock(&self.inner.index).len().to_string()),
            ],
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
        if let Ok(addr) = address.parse::<SocketAddr>() {
            match self.inner.ctx.dht.clone() {
                // A DHT node to bootstrap from.
                Some(dht) => {
                    tokio::spawn(async move { dht.bootstrap(&[addr]).await });
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

    async fn shutdown(&self) {
        self.inner.cancel.cancel();
        // Give torrents a moment to send `stopped` to their trackers.
        let deadline = Instant::now() + Duration::from_secs(3);
        while !lock(&self.inner.ctx.torrents).is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
