//! One torrent's shared state: what we have, who has what, the piece picker (rarest first,
//! end-game), pieces being assembled, the metadata being fetched, the peers and their choke
//! state. Peer tasks lock [`State`] for short, non-async sections only.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use junction_core::RangeSet;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::storage::Storage;
use crate::config::Config;
use crate::id::{InfoHash, PeerId};
use crate::metainfo::Info;
use crate::piece::{BLOCK_LEN, Bitfield, Geometry, ValidBlock, ValidPieceIndex};
use crate::wire::extension::{METADATA_PIECE_LEN, metadata_piece_count, metadata_piece_len};

pub type ConnId = u64;

/// Most peer addresses remembered per torrent.
const MAX_KNOWN: usize = 2000;
/// A peer whose pieces failed this often is banned, even when others also contributed.
const MAX_STRIKES: u32 = 3;
/// At most this many peers are asked for the same block in end-game.
const ENDGAME_DUP: usize = 2;
/// An address whose connection ended is dialled again after this, doubling each time up
/// to `REDIAL_MAX` (a seed we leave once complete is not dialled every second).
const REDIAL_FIRST: Duration = Duration::from_secs(2);
const REDIAL_MAX: Duration = Duration::from_secs(600);
/// A metadata fetch that received nothing for this long may be replaced or taken over.
const META_STALL: Duration = Duration::from_secs(20);
/// While a reader waits: this many pieces from its position come first…
const STREAM_HEAD: u32 = 4;
/// …then this many at the end of the file, which players read early.
const STREAM_TAIL: u32 = 2;

/// Adapter-wide context shared by every torrent and peer.
#[derive(Debug)]
pub struct Ctx {
    pub config: Config,
    pub peer_id: PeerId,
    pub port: AtomicU16,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub next_conn: AtomicU64,
    pub torrents: Mutex<HashMap<InfoHash, Arc<Torrent>>>,
    pub last_error: Mutex<Option<String>>,
    /// The DHT node, when enabled.
    pub dht: Option<super::dht::Dht>,
    /// Upload rate limit shared by every torrent (`None`: unlimited).
    pub upload_bucket: Option<Mutex<Bucket>>,
    /// Download rate limit shared by every torrent (`None`: unlimited).
    pub download_bucket: Option<Mutex<Bucket>>,
    /// Pieces hashed at once (off the reactor).
    pub hashers: Arc<tokio::sync::Semaphore>,
    /// Trackers added at run time (`AddEndpoint`), announced to by every torrent.
    pub extra_trackers: Mutex<Vec<String>>,
    /// Info dicts fetched over ut_metadata, with the peers that were connected then,
    /// oldest first (see `adapter::cache_meta`).
    pub meta_cache: Mutex<VecDeque<(Info, Vec<SocketAddr>)>>,
}

/// A token bucket: `rate` bytes per second, bursts of one second.
#[derive(Debug)]
pub struct Bucket {
    pub rate: f64,
    pub tokens: f64,
    pub last: Instant,
}

impl Bucket {
    pub fn new(rate: u64) -> Self {
        Self {
            rate: rate.max(1) as f64,
            tokens: rate.max(1) as f64,
            last: Instant::now(),
        }
    }

    /// Takes `n` bytes from a limit, if there is one; returns how long to wait.
    fn wait(bucket: &Option<Mutex<Bucket>>, n: u64) -> Duration {
        bucket.as_ref().map_or(Duration::ZERO, |b| lock(b).take(n))
    }

    /// Takes `n` bytes; returns how long to wait before sending them.
    pub fn take(&mut self, n: u64) -> Duration {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

impl Ctx {
    /// How long to hold `n` uploaded bytes to keep under the upload limit.
    pub fn upload_wait(&self, n: u64) -> Duration {
        Bucket::wait(&self.upload_bucket, n)
    }

    /// How long to stop reading from peers after `n` bytes came in, to keep under the
    /// download limit.
    pub fn download_wait(&self, n: u64) -> Duration {
        Bucket::wait(&self.download_bucket, n)
    }

    pub fn conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub fn torrent(&self, ih: &InfoHash) -> Option<Arc<Torrent>> {
        lock(&self.torrents).get(ih).cloned()
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The torrent's metadata, once known.
#[derive(Debug)]
pub struct Meta {
    pub info: Info,
    pub geometry: Geometry,
}

/// Broadcast to every peer task of a torrent.
#[derive(Debug, Clone)]
pub enum Event {
    /// We verified a piece.
    Have(u32),
    /// The metadata arrived (magnet).
    MetadataReady,
    /// A block arrived from another peer; cancel it if still requested (end-game).
    Cancel { block: ValidBlock, except: ConnId },
}

#[derive(Debug)]
pub struct Torrent {
    pub info_hash: InfoHash,
    pub ctx: Arc<Ctx>,
    pub meta: OnceLock<Arc<Meta>>,
    pub storage: Storage,
    pub state: Mutex<State>,
    pub events: broadcast::Sender<Event>,
    pub cancel: CancellationToken,
    pub complete: watch::Sender<bool>,
    pub uploaded: AtomicU64,
    pub downloaded: AtomicU64,
    /// Data verified and stored this session.
    pub verified_bytes: AtomicU64,
    pub failed_pieces: AtomicU64,
    /// Why the torrent stopped, if it failed.
    pub error: Mutex<Option<String>>,
}

/// Counters a peer task updates and the choker reads.
#[derive(Debug, Default)]
pub struct PeerCounters {
    pub down: AtomicU64,
    pub up: AtomicU64,
}

#[derive(Debug)]
pub struct PeerEntry {
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    /// The peer is interested in our pieces.
    pub interested: bool,
    /// We are choking the peer.
    pub choked: bool,
    pub choke_tx: watch::Sender<bool>,
    pub counters: Arc<PeerCounters>,
    pub last_down: u64,
    pub last_up: u64,
    pub connected: Instant,
    pub seed: bool,
    pub kill: CancellationToken,
    /// Where the peer accepts connections: the address we dialled, or the IP with the
    /// BEP 10 `p` port it told us (for PEX).
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Default)]
struct Blk {
    got: bool,
    requested: Vec<ConnId>,
}

#[derive(Debug)]
pub struct Partial {
    buf: Vec<u8>,
    blocks: Vec<Blk>,
    received: usize,
    owner: Option<ConnId>,
    contributors: Vec<ConnId>,
    /// Retried after a hash failure: one peer only, no end-game duplicates.
    exclusive: bool,
}

#[derive(Debug)]
struct MetaFetch {
    size: u32,
    pieces: Vec<Option<Bytes>>,
    pending: HashMap<u32, (ConnId, Instant)>,
    sources: HashSet<ConnId>,
    /// When the fetch started or last received a piece.
    progress: Instant,
    /// After a failure with several sources, one peer gives every piece, so the next
    /// failure names the culprit.
    owner: Option<ConnId>,
}

#[derive(Debug)]
pub struct State {
    pub name: String,
    pub have: Bitfield,
    avail: Vec<u32>,
    partials: HashMap<u32, Partial>,
    verifying: HashSet<u32>,
    exclusive: HashSet<u32>,
    pub peers: HashMap<ConnId, PeerEntry>,
    known: VecDeque<SocketAddr>,
    known_set: HashSet<SocketAddr>,
    /// When each known address may be dialled again, and how many dials to it ended.
    redial: HashMap<SocketAddr, (Instant, u32)>,
    pub connecting: HashSet<SocketAddr>,
    banned_addrs: HashSet<SocketAddr>,
    banned_ids: HashSet<PeerId>,
    strikes: HashMap<PeerId, u32>,
    metadata: Option<MetaFetch>,
    /// Peers that failed to deliver good metadata.
    bad_meta_sources: HashSet<ConnId>,
    /// Metadata from several peers failed its hash: fetch it from one peer at a time.
    meta_one_source: bool,
    /// Round counter of the choker, for the optimistic unchoke.
    choke_round: u32,
    optimistic: Option<ConnId>,
    pub banned_count: u32,
    /// Piece buffers whose pieces were stored, reused for the next pieces: fresh memory
    /// costs a page fault and zeroing per page, as much as the hash of the piece.
    spare: Vec<Vec<u8>>,
}

/// Bytes of spare piece buffers kept per torrent.
const SPARE_BYTES: usize = 32 << 20;

/// What happened to a received block.
#[derive(Debug)]
pub enum OnBlock {
    /// Not a block of a piece being assembled, or already received.
    Ignored,
    Stored {
        cancel: bool,
    },
    /// The piece is whole: hash it, then call [`Torrent::finish_piece`].
    Complete {
        index: ValidPieceIndex,
        data: Vec<u8>,
        contributors: Vec<ConnId>,
        cancel: bool,
    },
}

impl Torrent {
    pub fn new(ctx: Arc<Ctx>, info_hash: InfoHash, name: String, storage: Storage) -> Arc<Self> {
        let (events, _) = broadcast::channel(4096);
        Arc::new(Self {
            info_hash,
            ctx,
            meta: OnceLock::new(),
            storage,
            state: Mutex::new(State::new(name)),
            events,
            cancel: CancellationToken::new(),
            complete: watch::channel(false).0,
            uploaded: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
            verified_bytes: AtomicU64::new(0),
            failed_pieces: AtomicU64::new(0),
            error: Mutex::new(None),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn meta(&self) -> Option<&Arc<Meta>> {
        self.meta.get()
    }

    pub fn is_complete(&self) -> bool {
        *self.complete.borrow()
    }

    /// Installs the metadata and works out which pieces the storage already holds
    /// verified (everything for a shared file; the ranges the sink no longer wants).
    pub fn set_meta(&self, info: Info) -> Result<(), String> {
        let geometry = info
            .geometry()
            .ok_or("v2-only torrents are not supported for transfer yet")?;
        let metadata_only = matches!(self.storage, Storage::MetadataOnly);
        if !metadata_only && self.storage.size() != geometry.total_length() {
            return Err(format!(
                "the torrent holds {} bytes but the transfer has room for {}",
                geometry.total_length(),
                self.storage.size()
            ));
        }
        let wanted = match &self.storage {
            Storage::File { .. } => RangeSet::new(),
            Storage::Sink(s) => s.wanted(),
            Storage::MetadataOnly => RangeSet::full(geometry.total_length()),
        };
        let count = geometry.piece_count();
        let mut have = Bitfield::empty(count);
        for i in geometry.indices() {
            let start = geometry.piece_offset(i);
            let end = start + u64::from(geometry.piece_len(i));
            if wanted.covered_in(start..end) == 0 {
                have.set(i, true);
            }
        }
        let complete = have.is_complete();
        if !info.pieces.is_empty() {
            self.storage
                .learn_pieces(u64::from(info.piece_length), &info.pieces);
        }
        {
            let mut st = self.state();
            if self.meta.get().is_some() {
                return Ok(());
            }
            st.name.clone_from(&info.name);
            st.have = have;
            st.avail = vec![0; count as usize];
            st.metadata = None;
            let _ = self.meta.set(Arc::new(Meta { info, geometry }));
        }
        self.complete.send_replace(complete);
        let _ = self.events.send(Event::MetadataReady);
        Ok(())
    }

    /// Takes as ours the pieces another network verified in the shared sink: they are
    /// announced (HAVE) and any request still out for them is cancelled, so BitTorrent
    /// neither fetches them again nor waits on them.
    pub fn adopt_verified(&self) {
        // A complete torrent (seeding) has nothing to adopt.
        if self.is_complete() {
            return;
        }
        let (Storage::Sink(sink), Some(meta)) = (&self.storage, self.meta()) else {
            return;
        };
        let wanted = sink.wanted();
        let mut adopted = Vec::new();
        let complete = {
            let mut st = self.state();
            for i in meta.geometry.indices() {
                let start = meta.geometry.piece_offset(i);
                let end = start + u64::from(meta.geometry.piece_len(i));
                if st.have.get(i)
                    || st.verifying.contains(&i.get())
                    || wanted.covered_in(start..end) > 0
                {
                    continue;
                }
                st.have.set(i, true);
                st.partials.remove(&i.get());
                adopted.push(i.get());
            }
            st.have.is_complete()
        };
        if adopted.is_empty() {
            return;
        }
        for i in adopted {
            let _ = self.events.send(Event::Have(i));
        }
        if complete {
            info!(info_hash = %self.info_hash, "torrent complete (with other networks' pieces)");
            self.complete.send_replace(true);
        }
    }

    pub fn left(&self) -> u64 {
        match self.meta() {
            None => self.storage.size().max(1),
            Some(m) => {
                let st = self.state();
                m.geometry
                    .indices()
                    .filter(|i| !st.have.get(*i))
                    .map(|i| u64::from(m.geometry.piece_len(i)))
                    .sum()
            }
        }
    }

    /// Records the hash check of a piece assembled from `contributors`. Returns the peers
    /// to disconnect (banned).
    pub fn finish_piece(
        &self,
        index: ValidPieceIndex,
        ok: bool,
        contributors: &[ConnId],
    ) -> Vec<ConnId> {
        let Some(meta) = self.meta() else {
            return Vec::new();
        };
        let mut kill = Vec::new();
        let mut dropped = Vec::new();
        let now_complete;
        {
            let mut st = self.state();
            st.verifying.remove(&index.get());
            if ok {
                st.have.set(index, true);
                now_complete = st.have.is_complete();
            } else {
                now_complete = false;
                st.exclusive.insert(index.get());
                let sole = contributors.len() == 1;
                for c in contributors {
                    let Some((addr, pid)) = st.peers.get(c).map(|p| (p.addr, p.peer_id)) else {
                        continue;
                    };
                    let strikes = st.strikes.entry(pid).or_insert(0);
                    *strikes += 1;
                    if sole || *strikes >= MAX_STRIKES {
                        warn!(info_hash = %self.info_hash, %addr, piece = index.get(), "banning peer for a bad piece");
                        st.banned_addrs.insert(addr);
                        st.banned_ids.insert(pid);
                        st.banned_count += 1;
                        kill.push(*c);
                        dropped.push(addr);
                    }
                }
            }
        }
        if ok {
            self.verified_bytes
                .fetch_add(u64::from(meta.geometry.piece_len(index)), Ordering::Relaxed);
            let _ = self.events.send(Event::Have(index.get()));
            if now_complete {
                info!(info_hash = %self.info_hash, "torrent complete");
                self.complete.send_replace(true);
            }
        } else {
            self.failed_pieces.fetch_add(1, Ordering::Relaxed);
            let off = meta.geometry.piece_offset(index);
            self.storage
                .rejected(off, u64::from(meta.geometry.piece_len(index)));
            for addr in dropped {
                self.storage.dropped(addr);
            }
        }
        kill
    }
}

impl State {
    pub fn new(name: String) -> Self {
        Self {
            name,
            have: Bitfield::empty(0),
            avail: Vec::new(),
            partials: HashMap::new(),
            verifying: HashSet::new(),
            exclusive: HashSet::new(),
            peers: HashMap::new(),
            known: VecDeque::new(),
            known_set: HashSet::new(),
            redial: HashMap::new(),
            connecting: HashSet::new(),
            banned_addrs: HashSet::new(),
            banned_ids: HashSet::new(),
            strikes: HashMap::new(),
            metadata: None,
            bad_meta_sources: HashSet::new(),
            meta_one_source: false,
            choke_round: 0,
            optimistic: None,
            banned_count: 0,
            spare: Vec::new(),
        }
    }

    /// Takes back the buffer of a piece that was hashed (and stored or rejected).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        let kept: usize = self.spare.iter().map(Vec::capacity).sum();
        if kept + buf.capacity() <= SPARE_BYTES {
            self.spare.push(buf);
        }
    }

    /// A buffer of `len` bytes for a new piece: a spare one when there is one. Its old
    /// contents stay until the blocks overwrite them; a piece is only used once every
    /// block has arrived.
    fn piece_buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    /// Sets up an empty piece map for `count` pieces (tests; [`Torrent::set_meta`] does it
    /// for real torrents).
    pub fn init_pieces(&mut self, count: u32) {
        self.have = Bitfield::empty(count);
        self.avail = vec![0; count as usize];
    }

    pub fn is_banned(&self, addr: &SocketAddr, pid: Option<&PeerId>) -> bool {
        self.banned_addrs.contains(addr) || pid.is_some_and(|p| self.banned_ids.contains(p))
    }

    pub fn add_known(&mut self, addr: SocketAddr) {
        if self.known_set.len() >= MAX_KNOWN
            || self.banned_addrs.contains(&addr)
            || addr.port() == 0
        {
            return;
        }
        if self.known_set.insert(addr) {
            self.known.push_back(addr);
        }
    }

    /// An outgoing connection to `addr` ended after `lasted` (or never came up): back off
    /// before the next. A session of a minute or more starts the back-off afresh.
    pub fn dial_ended(&mut self, addr: SocketAddr, lasted: Duration) {
        self.connecting.remove(&addr);
        if !self.known_set.contains(&addr) {
            return;
        }
        let before = match lasted >= Duration::from_secs(60) {
            true => 0,
            false => self.redial.get(&addr).map_or(0, |e| e.1),
        };
        let ended = before.saturating_add(1);
        let wait = REDIAL_FIRST
            .saturating_mul(1 << (ended - 1).min(16))
            .min(REDIAL_MAX);
        self.redial.insert(addr, (Instant::now() + wait, ended));
    }

    /// Next known peer to dial that is neither connected, being dialled, banned, nor
    /// backed off.
    pub fn next_to_dial(&mut self) -> Option<SocketAddr> {
        let connected: HashSet<SocketAddr> = self.peers.values().map(|p| p.addr).collect();
        let now = Instant::now();
        for _ in 0..self.known.len() {
            let a = self.known.pop_front()?;
            self.known.push_back(a);
            if !connected.contains(&a)
                && !self.connecting.contains(&a)
                && !self.banned_addrs.contains(&a)
                && self.redial.get(&a).is_none_or(|(at, _)| *at <= now)
            {
                return Some(a);
            }
        }
        None
    }

    /// Counts a peer's pieces into availability.
    pub fn add_avail(&mut self, bf: &Bitfield) {
        if bf.piece_count() as usize != self.avail.len() {
            return;
        }
        for (i, a) in self.avail.iter_mut().enumerate() {
            if bf.as_bytes()[i / 8] & (0x80 >> (i % 8)) != 0 {
                *a = a.saturating_add(1);
            }
        }
    }

    pub fn sub_avail(&mut self, bf: &Bitfield) {
        if bf.piece_count() as usize != self.avail.len() {
            return;
        }
        for (i, a) in self.avail.iter_mut().enumerate() {
            if bf.as_bytes()[i / 8] & (0x80 >> (i % 8)) != 0 {
                *a = a.saturating_sub(1);
            }
        }
    }

    pub fn inc_avail(&mut self, index: ValidPieceIndex) {
        if let Some(a) = self.avail.get_mut(index.get() as usize) {
            *a = a.saturating_add(1);
        }
    }

    /// Whether the peer has a piece we lack.
    pub fn wants_from(&self, peer: &Bitfield) -> bool {
        if peer.piece_count() != self.have.piece_count() {
            return false;
        }
        peer.as_bytes()
            .iter()
            .zip(self.have.as_bytes())
            .any(|(p, h)| p & !h != 0)
    }

    /// Picks up to `n` blocks to request from `conn`, which has `peer`: first blocks of
    /// pieces it is already working on (or orphaned ones), then a new piece that `claim`
    /// grants (no other network is fetching it): with a reader waiting at piece `reader`,
    /// the pieces from there on in order, with the last pieces (players probe the end)
    /// right after the first few; otherwise the rarest. Then, when nothing is left
    /// unrequested, end-game duplicates.
    pub fn pick(
        &mut self,
        conn: ConnId,
        peer: &Bitfield,
        n: usize,
        geometry: &Geometry,
        reader: Option<u32>,
        claim: &mut dyn FnMut(ValidPieceIndex) -> bool,
    ) -> Vec<ValidBlock> {
        let mut out = Vec::new();
        if n == 0 || peer.piece_count() != geometry.piece_count() {
            return out;
        }
        let has = |i: u32| geometry.index(i).is_ok_and(|v| peer.get(v));
        let mut keys: Vec<u32> = self.partials.keys().copied().collect();
        keys.sort_unstable();
        for idx in &keys {
            if !has(*idx) {
                continue;
            }
            let Some(p) = self.partials.get_mut(idx) else {
                continue;
            };
            match p.owner {
                Some(o) if o != conn => continue,
                _ => p.owner = Some(conn),
            }
            take_blocks(p, *idx, conn, n, &mut out, geometry, false);
            if out.len() >= n {
                return out;
            }
        }
        // New pieces, rarest first; ties broken from a random start.
        let count = geometry.piece_count();
        let mut refused: Vec<u32> = Vec::new();
        while out.len() < n {
            let start = if count > 0 {
                rand::random::<u32>() % count
            } else {
                0
            };
            let eligible = |st: &State, i: u32| {
                geometry.index(i).is_ok_and(|vi| {
                    !st.have.get(vi)
                        && peer.get(vi)
                        && !st.partials.contains_key(&i)
                        && !st.verifying.contains(&i)
                        && !refused.contains(&i)
                })
            };
            let mut best: Option<(u32, u32)> = reader.and_then(|r| {
                let head = r..count.min(r.saturating_add(STREAM_HEAD));
                let tail = count.saturating_sub(STREAM_TAIL).max(r)..count;
                let rest = head.end..count;
                head.chain(tail)
                    .chain(rest)
                    .find(|&i| eligible(self, i))
                    .map(|i| (i, 0))
            });
            let scan = if best.is_some() { 0 } else { count };
            for k in 0..scan {
                let i = (start + k) % count;
                if !eligible(self, i) {
                    continue;
                }
                let a = self.avail.get(i as usize).copied().unwrap_or(0);
                if best.is_none_or(|(_, ba)| a < ba) {
                    best = Some((i, a));
                    if a <= 1 {
                        break;
                    }
                }
            }
            let Some((i, _)) = best else { break };
            let Ok(vi) = geometry.index(i) else { break };
            if !claim(vi) {
                refused.push(i);
                continue;
            }
            let len = geometry.piece_len(vi) as usize;
            let nblocks = len.div_ceil(BLOCK_LEN as usize);
            let mut p = Partial {
                buf: self.piece_buffer(len),
                blocks: (0..nblocks).map(|_| Blk::default()).collect(),
                received: 0,
                owner: Some(conn),
                contributors: Vec::new(),
                exclusive: self.exclusive.remove(&i),
            };
            take_blocks(&mut p, i, conn, n, &mut out, geometry, false);
            self.partials.insert(i, p);
        }
        if out.len() < n {
            // End-game: every missing block this peer could give is requested already.
            for idx in keys {
                if !has(idx) {
                    continue;
                }
                if let Some(p) = self.partials.get_mut(&idx)
                    && !p.exclusive
                {
                    take_blocks(p, idx, conn, n, &mut out, geometry, true);
                    if out.len() >= n {
                        break;
                    }
                }
            }
        }
        out
    }

    /// Forgets `conn`'s requests for these blocks, so others may ask for them.
    pub fn release(&mut self, conn: ConnId, blocks: impl IntoIterator<Item = (u32, u32)>) {
        for (index, begin) in blocks {
            if let Some(p) = self.partials.get_mut(&index)
                && let Some(b) = p.blocks.get_mut((begin / BLOCK_LEN) as usize)
            {
                b.requested.retain(|c| *c != conn);
            }
        }
        for p in self.partials.values_mut() {
            if p.owner == Some(conn)
                && !p
                    .blocks
                    .iter()
                    .any(|b| !b.got && b.requested.contains(&conn))
            {
                p.owner = None;
            }
        }
    }

    /// A peer connection ended.
    pub fn drop_peer(&mut self, conn: ConnId, bitfield: Option<&Bitfield>) {
        self.peers.remove(&conn);
        if let Some(bf) = bitfield {
            self.sub_avail(bf);
        }
        for p in self.partials.values_mut() {
            if p.owner == Some(conn) {
                p.owner = None;
            }
            for b in &mut p.blocks {
                b.requested.retain(|c| *c != conn);
            }
        }
        if let Some(m) = &mut self.metadata {
            m.pending.retain(|_, (c, _)| *c != conn);
        }
        if self.optimistic == Some(conn) {
            self.optimistic = None;
        }
    }

    /// Stores a received block (already validated against the geometry).
    pub fn on_block(&mut self, conn: ConnId, block: ValidBlock, data: &[u8]) -> OnBlock {
        let idx = block.index().get();
        let Some(p) = self.partials.get_mut(&idx) else {
            return OnBlock::Ignored;
        };
        let bi = (block.begin() / BLOCK_LEN) as usize;
        let begin = block.begin() as usize;
        let Some(b) = p.blocks.get_mut(bi) else {
            return OnBlock::Ignored;
        };
        // Only a whole block this peer was asked for counts.
        let whole = (p.buf.len().saturating_sub(begin)).min(BLOCK_LEN as usize);
        let asked = b.requested.contains(&conn);
        if b.got || !asked || data.len() != whole || !block.begin().is_multiple_of(BLOCK_LEN) {
            b.requested.retain(|c| *c != conn);
            return OnBlock::Ignored;
        }
        let Some(dst) = p.buf.get_mut(begin..begin + data.len()) else {
            return OnBlock::Ignored;
        };
        dst.copy_from_slice(data);
        b.got = true;
        let cancel = b.requested.iter().any(|c| *c != conn);
        b.requested.clear();
        p.received += 1;
        if !p.contributors.contains(&conn) {
            p.contributors.push(conn);
        }
        if p.received < p.blocks.len() {
            return OnBlock::Stored { cancel };
        }
        let Some(p) = self.partials.remove(&idx) else {
            return OnBlock::Ignored;
        };
        self.verifying.insert(idx);
        OnBlock::Complete {
            index: block.index(),
            data: p.buf,
            contributors: p.contributors,
            cancel,
        }
    }

    // ---- metadata (BEP 9) ----

    /// Starts (or keeps) assembling metadata of `size` bytes announced by `conn`. A fetch
    /// of another size is replaced when it made no progress for 20 s (so a peer lying
    /// about the size cannot hold it up), and peers that gave bad metadata are ignored.
    pub fn meta_begin(&mut self, conn: ConnId, size: u32) {
        if self.bad_meta_sources.contains(&conn) {
            return;
        }
        if let Some(m) = &self.metadata
            && (m.size == size || m.progress.elapsed() < META_STALL)
        {
            return;
        }
        let n = metadata_piece_count(size) as usize;
        self.metadata = Some(MetaFetch {
            size,
            pieces: vec![None; n],
            pending: HashMap::new(),
            sources: HashSet::new(),
            progress: Instant::now(),
            owner: None,
        });
    }

    /// A metadata piece to ask `conn` for, if any is missing and not pending elsewhere.
    pub fn meta_next(&mut self, conn: ConnId, size: u32) -> Option<u32> {
        if self.bad_meta_sources.contains(&conn) {
            return None;
        }
        let m = self.metadata.as_mut().filter(|m| m.size == size)?;
        if self.meta_one_source && m.owner != Some(conn) {
            // Another peer takes over a stalled owner, starting afresh.
            if m.owner.is_some() && m.progress.elapsed() < META_STALL {
                return None;
            }
            m.owner = Some(conn);
            m.pieces.iter_mut().for_each(|p| *p = None);
            m.pending.clear();
            m.sources.clear();
            m.progress = Instant::now();
        }
        let stale = Duration::from_secs(15);
        let piece = (0..m.pieces.len() as u32).find(|i| {
            m.pieces[*i as usize].is_none()
                && m.pending.get(i).is_none_or(|(_, at)| at.elapsed() > stale)
        })?;
        m.pending.insert(piece, (conn, Instant::now()));
        Some(piece)
    }

    /// Stores a metadata piece; returns the whole `info` bytes once all are in.
    pub fn meta_data(
        &mut self,
        conn: ConnId,
        piece: u32,
        total: u32,
        data: Bytes,
    ) -> Option<Bytes> {
        let m = self.metadata.as_mut().filter(|m| m.size == total)?;
        let expected = metadata_piece_len(total, piece)? as usize;
        // Only a piece asked of this peer is taken.
        if m.pending.get(&piece).is_none_or(|(c, _)| *c != conn) {
            return None;
        }
        let slot = m.pieces.get_mut(piece as usize)?;
        if data.len() != expected {
            return None;
        }
        *slot = Some(data);
        m.pending.remove(&piece);
        m.sources.insert(conn);
        m.progress = Instant::now();
        if m.pieces.iter().any(Option::is_none) {
            return None;
        }
        let mut raw = Vec::with_capacity(total as usize);
        for p in m.pieces.iter().flatten() {
            raw.extend_from_slice(p);
        }
        debug_assert!(raw.len() as u64 <= u64::from(total) + u64::from(METADATA_PIECE_LEN));
        Some(Bytes::from(raw))
    }

    /// The assembled metadata did not hash to the info-hash: start over. A single source
    /// is not asked again; with several, the next fetches take one peer at a time, so an
    /// honest peer is never blamed for another's bad piece.
    pub fn meta_failed(&mut self) {
        if let Some(m) = self.metadata.take() {
            if m.sources.len() == 1 {
                self.bad_meta_sources.extend(m.sources);
            } else {
                self.meta_one_source = true;
            }
        }
    }

    pub fn meta_rejected(&mut self, conn: ConnId, piece: u32) {
        if let Some(m) = &mut self.metadata {
            m.pending.remove(&piece);
        }
        self.bad_meta_sources.insert(conn);
    }

    // ---- choking ----

    /// Unchokes an interested peer at once if a slot is free (so a new leecher need not
    /// wait for the next choker round).
    pub fn on_interest(&mut self, conn: ConnId, interested: bool, slots: usize) {
        let unchoked = self
            .peers
            .values()
            .filter(|p| !p.choked && p.interested)
            .count();
        if let Some(p) = self.peers.get_mut(&conn) {
            p.interested = interested;
            if interested && p.choked && unchoked < slots + 1 {
                p.choked = false;
                p.choke_tx.send_replace(false);
            }
        }
    }

    /// One choker round (every 10 s): the `slots` interested peers with the best rate
    /// (download from them while leeching, upload to them while seeding) are unchoked,
    /// plus one optimistic unchoke rotated every third round; everyone else is choked.
    pub fn choke_round(&mut self, slots: usize, seeding: bool) {
        self.choke_round = self.choke_round.wrapping_add(1);
        let mut rates: Vec<(ConnId, u64)> = Vec::new();
        for (c, p) in &mut self.peers {
            let down = p.counters.down.load(Ordering::Relaxed);
            let up = p.counters.up.load(Ordering::Relaxed);
            let rate = if seeding {
                up - p.last_up.min(up)
            } else {
                down - p.last_down.min(down)
            };
            p.last_down = down;
            p.last_up = up;
            if p.interested {
                rates.push((*c, rate));
            }
        }
        rates.sort_by_key(|r| std::cmp::Reverse(r.1));
        let mut unchoke: HashSet<ConnId> = rates.iter().take(slots).map(|r| r.0).collect();
        let rotate = self.choke_round % 3 == 1
            || self
                .optimistic
                .is_none_or(|o| !self.peers.get(&o).is_some_and(|p| p.interested));
        if rotate {
            // New connections (under a minute) count three times.
            let mut pool: Vec<ConnId> = Vec::new();
            for (c, _) in rates.iter().skip(slots) {
                let w = if self
                    .peers
                    .get(c)
                    .is_some_and(|p| p.connected.elapsed() < Duration::from_secs(60))
                {
                    3
                } else {
                    1
                };
                pool.extend(std::iter::repeat_n(*c, w));
            }
            self.optimistic =
                (!pool.is_empty()).then(|| pool[rand::random::<u32>() as usize % pool.len()]);
        }
        if let Some(o) = self.optimistic {
            unchoke.insert(o);
        }
        for (c, p) in &mut self.peers {
            let choke = !unchoke.contains(c);
            if p.choked != choke {
                p.choked = choke;
                p.choke_tx.send_replace(choke);
            }
        }
    }
}

fn take_blocks(
    p: &mut Partial,
    idx: u32,
    conn: ConnId,
    n: usize,
    out: &mut Vec<ValidBlock>,
    geometry: &Geometry,
    endgame: bool,
) {
    for (bi, b) in p.blocks.iter_mut().enumerate() {
        if out.len() >= n {
            return;
        }
        if b.got || b.requested.contains(&conn) {
            continue;
        }
        if endgame {
            if b.requested.len() >= ENDGAME_DUP {
                continue;
            }
        } else if !b.requested.is_empty() {
            continue;
        }
        let begin = bi as u32 * BLOCK_LEN;
        let Ok(vi) = geometry.index(idx) else { return };
        let len = (geometry.piece_len(vi) - begin).min(BLOCK_LEN);
        if let Ok(vb) = geometry.block(idx, begin, len) {
            b.requested.push(conn);
            out.push(vb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PL: u32 = 4 * BLOCK_LEN;

    fn setup(pieces: u32) -> (State, Geometry) {
        let g = Geometry::new(PL, u64::from(PL) * u64::from(pieces) - 100).unwrap();
        let mut st = State::new("t".into());
        st.init_pieces(g.piece_count());
        (st, g)
    }

    fn bf(count: u32, pieces: &[u32]) -> Bitfield {
        let g = Geometry::new(1, u64::from(count)).unwrap();
        let mut b = Bitfield::empty(count);
        for p in pieces {
            b.set(g.index(*p).unwrap(), true);
        }
        b
    }

    fn add_peer(st: &mut State, conn: ConnId, interested: bool) {
        st.peers.insert(
            conn,
            PeerEntry {
                addr: SocketAddr::from(([127, 0, 0, 1], 1000 + conn as u16)),
                peer_id: PeerId([conn as u8; 20]),
                interested,
                choked: true,
                choke_tx: watch::channel(true).0,
                counters: Arc::default(),
                last_down: 0,
                last_up: 0,
                connected: Instant::now(),
                seed: false,
                kill: CancellationToken::new(),
                listen: None,
            },
        );
    }

    #[test]
    fn rarest_piece_first_and_whole_pieces_per_peer() {
        let (mut st, g) = setup(8);
        let all = Bitfield::full(8);
        st.add_avail(&all);
        st.add_avail(&all);
        st.add_avail(&bf(8, &[0, 1, 2, 3, 4, 6, 7])); // piece 5 is rarest
        let got = st.pick(1, &all, 4, &g, None, &mut |_| true);
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|b| b.index().get() == 5), "{got:?}");
        // A second peer gets another piece, not blocks of piece 5.
        let other = st.pick(2, &all, 4, &g, None, &mut |_| true);
        assert!(other.iter().all(|b| b.index().get() != 5));
        // A peer without the piece never gets it.
        let few = st.pick(3, &bf(8, &[7]), 16, &g, None, &mut |_| true);
        assert!(few.iter().all(|b| b.index().get() == 7));
    }

    #[test]
    fn a_waiting_reader_gets_its_pieces_in_order_then_the_end_of_the_file() {
        let (mut st, g) = setup(16);
        let all = bf(16, &(0..16).collect::<Vec<_>>());
        add_peer(&mut st, 1, true);
        let mut order = Vec::new();
        // Enough blocks for seven pieces, in the order they were started.
        let per_piece = PL.div_ceil(BLOCK_LEN) as usize;
        for b in st.pick(1, &all, 7 * per_piece, &g, Some(5), &mut |_| true) {
            if order.last() != Some(&b.index().get()) {
                order.push(b.index().get());
            }
        }
        assert_eq!(order, vec![5, 6, 7, 8, 14, 15, 9]);
        // A piece the transfer will not grant (another network has it) is skipped.
        let (mut st, g) = setup(16);
        add_peer(&mut st, 1, true);
        let got = st.pick(1, &all, 1, &g, Some(0), &mut |i| i.get() != 0);
        assert_eq!(got[0].index().get(), 1);
    }

    #[test]
    fn piece_completes_then_endgame_duplicates_and_cancel() {
        let (mut st, g) = setup(1);
        let all = Bitfield::full(1);
        let a = st.pick(1, &all, 16, &g, None, &mut |_| true);
        assert_eq!(a.len(), 4);
        // Nothing new is left: peer 2 enters end-game and asks for the same blocks.
        let b = st.pick(2, &all, 16, &g, None, &mut |_| true);
        assert_eq!(b.len(), 4);
        // A third peer gets nothing (two requesters per block at most).
        assert!(st.pick(3, &all, 16, &g, None, &mut |_| true).is_empty());
        let data = vec![7u8; BLOCK_LEN as usize];
        for (i, blk) in a.iter().enumerate() {
            let len = blk.length() as usize;
            match st.on_block(1, *blk, &data[..len]) {
                OnBlock::Stored { cancel } => assert!(cancel && i < 3),
                OnBlock::Complete {
                    index,
                    data,
                    contributors,
                    cancel,
                } => {
                    assert_eq!(i, 3);
                    assert!(cancel);
                    assert_eq!(index.get(), 0);
                    assert_eq!(data.len(), g.total_length() as usize);
                    assert_eq!(contributors, vec![1]);
                }
                OnBlock::Ignored => panic!("block ignored"),
            }
        }
        // The duplicate arrives late: ignored; the piece is being verified, not re-picked.
        assert!(matches!(st.on_block(2, b[0], &data), OnBlock::Ignored));
        assert!(st.pick(2, &all, 16, &g, None, &mut |_| true).is_empty());
    }

    #[test]
    fn only_whole_blocks_the_sender_was_asked_for_are_stored() {
        let (mut st, g) = setup(1);
        let all = Bitfield::full(1);
        let a = st.pick(1, &all, 16, &g, None, &mut |_| true);
        let data = vec![7u8; BLOCK_LEN as usize];
        // Peer 9 was asked for nothing: its block does not fill the piece.
        assert!(matches!(st.on_block(9, a[0], &data), OnBlock::Ignored));
        // The block peer 1 was asked for counts.
        let ok = st.on_block(1, a[0], &data[..a[0].length() as usize]);
        assert!(matches!(ok, OnBlock::Stored { .. }));
        // A short block is refused, and that block is wanted again.
        let short = g.block(0, BLOCK_LEN, 1).unwrap();
        assert!(matches!(
            st.on_block(1, short, &data[..1]),
            OnBlock::Ignored
        ));
        let again = st.pick(2, &all, 16, &g, None, &mut |_| true);
        assert!(again.iter().any(|b| b.begin() == BLOCK_LEN), "{again:?}");
    }

    #[test]
    fn an_ended_dial_backs_off_and_port_zero_is_never_known() {
        let (mut st, _) = setup(1);
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        st.add_known("127.0.0.1:0".parse().unwrap());
        st.add_known(a);
        st.add_known(b);
        assert_eq!(st.next_to_dial(), Some(a));
        st.connecting.insert(a);
        st.dial_ended(a, Duration::ZERO);
        assert!(!st.connecting.contains(&a));
        // `a` waits out its back-off; `b` is dialled, then nothing is left.
        assert_eq!(st.next_to_dial(), Some(b));
        st.connecting.insert(b);
        assert_eq!(st.next_to_dial(), None);
        st.dial_ended(a, Duration::ZERO);
        assert!(st.redial[&a].0 > Instant::now() + REDIAL_FIRST, "doubles");
        // A long session starts the back-off afresh.
        st.dial_ended(a, Duration::from_secs(3600));
        assert_eq!(st.redial[&a].1, 1);
    }

    #[test]
    fn dropped_peer_releases_its_piece() {
        let (mut st, g) = setup(2);
        let one = bf(2, &[0]);
        st.add_avail(&one);
        assert_eq!(st.pick(1, &one, 2, &g, None, &mut |_| true).len(), 2);
        st.drop_peer(1, Some(&one));
        let again = st.pick(2, &one, 16, &g, None, &mut |_| true);
        assert_eq!(
            again.len(),
            4,
            "all blocks of the orphaned piece: {again:?}"
        );
    }

    #[test]
    fn choker_unchokes_best_plus_optimistic() {
        let (mut st, _) = setup(1);
        for c in 0..7 {
            add_peer(&mut st, c, c != 6);
            st.peers[&c]
                .counters
                .down
                .store(c * 1000, Ordering::Relaxed);
        }
        st.choke_round(4, false);
        let unchoked: Vec<ConnId> = {
            let mut v: Vec<_> = st
                .peers
                .iter()
                .filter(|p| !p.1.choked)
                .map(|p| *p.0)
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(unchoked.len(), 5, "{unchoked:?}");
        for best in [2, 3, 4, 5] {
            assert!(unchoked.contains(&best));
        }
        assert!(!unchoked.contains(&6), "not interested");
        // A newly interested peer is unchoked at once only while a slot is free.
        add_peer(&mut st, 9, false);
        st.on_interest(9, true, 4);
        assert!(st.peers[&9].choked);
    }

    #[test]
    fn metadata_pieces_assemble() {
        let mut st = State::new("m".into());
        let total = METADATA_PIECE_LEN + 10;
        st.meta_begin(1, total);
        assert_eq!(st.meta_next(1, total), Some(0));
        assert_eq!(st.meta_next(2, total), Some(1));
        assert_eq!(st.meta_next(3, total), None);
        assert!(
            st.meta_data(1, 0, total, Bytes::from(vec![1; 5])).is_none(),
            "wrong length"
        );
        assert!(
            st.meta_data(
                1,
                0,
                total,
                Bytes::from(vec![1; METADATA_PIECE_LEN as usize])
            )
            .is_none()
        );
        assert!(
            st.meta_data(3, 1, total, Bytes::from(vec![3; 10]))
                .is_none(),
            "piece 1 was asked of peer 2, not 3"
        );
        let raw = st.meta_data(2, 1, total, Bytes::from(vec![2; 10])).unwrap();
        assert_eq!(raw.len(), total as usize);
        // Two sources and a bad hash: nobody is blamed, one peer at a time from now on.
        st.meta_failed();
        st.meta_begin(1, total);
        assert_eq!(st.meta_next(1, total), Some(0));
        assert_eq!(st.meta_next(2, total), None, "peer 1 gives every piece");
        assert_eq!(st.meta_next(1, total), Some(1));
        let one = Bytes::from(vec![1; METADATA_PIECE_LEN as usize]);
        assert!(st.meta_data(1, 0, total, one).is_none());
        assert!(
            st.meta_data(1, 1, total, Bytes::from(vec![1; 10]))
                .is_some()
        );
        // A single source that fails is not asked again; another peer is.
        st.meta_failed();
        st.meta_begin(1, total);
        assert_eq!(
            st.meta_next(1, total),
            None,
            "bad source is not asked again"
        );
        st.meta_begin(2, total);
        assert_eq!(st.meta_next(2, total), Some(0));
    }
}
