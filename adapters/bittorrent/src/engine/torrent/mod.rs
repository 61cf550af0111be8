//! One torrent's shared state: the metadata, the peers and their choke state, the
//! addresses to dial, and what BitTorrent keeps of its own beside the transfer's shared
//! ledger (the sink): the piece picker ([`Picker`]), the metadata fetch ([`MetadataFetch`])
//! and the choker ([`Choker`]). Peer tasks lock [`State`] for short, non-async sections only.

mod choker;
mod ctx;
mod layer_fetch;
mod metadata_fetch;
mod picker;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use self::choker::Choker;
pub use self::ctx::Ctx;
pub use self::layer_fetch::LayerFetch;
pub use self::metadata_fetch::MetadataFetch;
pub use self::picker::{OnBlock, Picker};
use super::storage::Storage;
use super::sync::lock;
use crate::error::MetainfoError;
use crate::wire::id::{InfoHash, PeerId};
use crate::wire::metainfo::{Info, V2Pieces};
use crate::wire::piece::{Bitfield, Geometry, ValidBlock, ValidPieceIndex};

pub type ConnId = u64;

/// Most peer addresses remembered per torrent.
const MAX_KNOWN: usize = 2000;
/// Peers remembered after they leave, for the blame of pieces they sent part of.
const MAX_DEPARTED: usize = 256;
/// An address whose connection ended is dialled again after this, doubling each time up
/// to `REDIAL_MAX` (a seed we leave once complete is not dialled every second).
const REDIAL_FIRST: Duration = Duration::from_secs(2);
const REDIAL_MAX: Duration = Duration::from_secs(600);

/// The torrent's metadata once known: its info dict (what BEP 9 calls the metadata; the
/// `.torrent` file around it is the metainfo, [`crate::wire::metainfo`]) and the piece
/// geometry it gives. Set once, from a `.torrent`, the metadata cache or a
/// [`MetadataFetch`].
#[derive(Debug)]
pub struct Metadata {
    pub info: Info,
    pub geometry: Geometry,
    /// The v2 hashes: how a v2-only torrent's pieces are checked, and what answers peers'
    /// hash requests. From the `.torrent`'s piece layers, or for a magnet once
    /// [`Metadata::layer_fetch`] has them all.
    pub v2: OnceLock<V2Pieces>,
    /// A v2-only magnet's piece layers being asked of peers; `None` once all are in (or
    /// when the torrent needs none).
    pub layer_fetch: Mutex<Option<LayerFetch>>,
}

impl Metadata {
    /// Checks a downloaded piece: SHA-1 when the torrent has v1 hashes, else SHA-256
    /// Merkle against the piece layer (BEP 52).
    pub fn verify_piece(&self, index: ValidPieceIndex, data: &[u8]) -> bool {
        match (self.v2.get(), self.info.is_v2_only()) {
            (Some(v2), true) => v2.verify(index, data),
            (None, true) => false,
            (_, false) => self.info.verify_piece(index, data),
        }
    }
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
    pub metadata: OnceLock<Arc<Metadata>>,
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

impl PeerEntry {
    /// A peer just connected: choked, not interested, its counters at zero.
    pub fn new(
        addr: SocketAddr,
        peer_id: PeerId,
        choke_tx: watch::Sender<bool>,
        counters: Arc<PeerCounters>,
        kill: CancellationToken,
        listen: Option<SocketAddr>,
    ) -> Self {
        Self {
            addr,
            peer_id,
            interested: false,
            choked: true,
            choke_tx,
            counters,
            last_down: 0,
            last_up: 0,
            connected: Instant::now(),
            seed: false,
            kill,
            listen,
        }
    }
}

#[derive(Debug)]
pub struct State {
    pub name: String,
    pub pieces: Picker,
    pub peers: HashMap<ConnId, PeerEntry>,
    known: VecDeque<SocketAddr>,
    known_set: HashSet<SocketAddr>,
    /// When each known address may be dialled again, and how many dials to it ended.
    redial: junction_core::Redials<SocketAddr>,
    pub connecting: HashSet<SocketAddr>,
    banned_addrs: HashSet<SocketAddr>,
    banned_ids: HashSet<PeerId>,
    /// Who the last peers to leave were, so that a bad piece they sent part of still
    /// names them: without it the honest co-sender would look like the sole sender.
    departed: VecDeque<(ConnId, SocketAddr, PeerId)>,
    pub metadata_fetch: MetadataFetch,
    choker: Choker,
    pub banned_count: u32,
}

impl Torrent {
    pub fn new(ctx: Arc<Ctx>, info_hash: InfoHash, name: String, storage: Storage) -> Arc<Self> {
        let (events, _) = broadcast::channel(4096);
        Arc::new(Self {
            info_hash,
            ctx,
            metadata: OnceLock::new(),
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

    pub fn metadata(&self) -> Option<&Arc<Metadata>> {
        self.metadata.get()
    }

    pub fn is_complete(&self) -> bool {
        *self.complete.borrow()
    }

    /// Installs the metadata; which pieces are ours already comes from the storage
    /// (everything for a shared file; the pieces the sink holds verified).
    pub fn set_metadata(&self, info: Info) -> Result<(), String> {
        self.set_metadata_with(info, &BTreeMap::new())
    }

    /// [`set_metadata`](Self::set_metadata) with the metainfo's `piece layers`, which a
    /// v2-only torrent needs to check its pieces.
    pub fn set_metadata_with(
        &self,
        info: Info,
        layers: &BTreeMap<[u8; 32], Vec<[u8; 32]>>,
    ) -> Result<(), String> {
        let geometry = info.geometry().ok_or("the torrent has over 2^32 pieces")?;
        let v2 = OnceLock::new();
        let mut layer_fetch = None;
        match V2Pieces::new(&info, layers) {
            _ if info.info_hash_v2.is_none() => {}
            Ok(pieces) => {
                let _ = v2.set(pieces);
            }
            // A hybrid's pieces are checked by SHA-1; without layers it answers no hash
            // requests, which peers then make of others.
            Err(_) if !info.is_v2_only() => {}
            // A magnet's info dict has no layers: they are asked of peers.
            Err(MetainfoError::Missing(_)) => layer_fetch = LayerFetch::new(&info),
            Err(e) => return Err(e.to_string()),
        }
        let metadata_only = matches!(self.storage, Storage::MetadataOnly);
        if !metadata_only && self.storage.size() != geometry.total_length() {
            return Err(format!(
                "the torrent holds {} bytes but the transfer has room for {}",
                geometry.total_length(),
                self.storage.size()
            ));
        }
        let have = self.storage.verified_pieces(&geometry);
        let complete = have.is_complete();
        if !info.pieces.is_empty() {
            self.storage
                .learn_pieces(u64::from(info.piece_length), &info.pieces);
        }
        {
            let mut st = self.state();
            if self.metadata.get().is_some() {
                return Ok(());
            }
            st.name.clone_from(&info.name);
            st.pieces.init(have);
            st.metadata_fetch.done();
            let _ = self.metadata.set(Arc::new(Metadata {
                info,
                geometry,
                v2,
                layer_fetch: Mutex::new(layer_fetch),
            }));
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
        let (Storage::Sink(_), Some(meta)) = (&self.storage, self.metadata()) else {
            return;
        };
        let verified = self.storage.verified_pieces(&meta.geometry);
        let mut adopted = Vec::new();
        let complete = {
            let mut st = self.state();
            for i in meta.geometry.indices() {
                if verified.get(i) && st.pieces.adopt(i) {
                    adopted.push(i.get());
                }
            }
            st.pieces.have().is_complete()
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

    /// `conn` gave up these requests (it choked us, rejected them, or they were
    /// cancelled): the pieces no peer works on any longer go back to the transfer at once,
    /// for another network or peer, rather than after the claim's stall timeout.
    pub fn release_requests(&self, conn: ConnId, keys: impl IntoIterator<Item = (u32, u32)>) {
        let orphans = self.state().pieces.release(conn, keys);
        self.release_pieces(&orphans);
    }

    /// Gives the transfer's claims on these pieces back (the picker claims them again
    /// before a peer goes on with one).
    pub fn release_pieces(&self, pieces: &[u32]) {
        let Some(meta) = self.metadata() else { return };
        for &i in pieces {
            if let Ok(vi) = meta.geometry.index(i) {
                let len = u64::from(meta.geometry.piece_len(vi));
                self.storage
                    .release_piece(meta.geometry.piece_offset(vi), len);
            }
        }
    }

    /// Bytes still to fetch, for trackers: what the transfer does not hold verified.
    pub fn left(&self) -> u64 {
        match (&self.storage, self.metadata()) {
            (_, None) => self.storage.size().max(1),
            (Storage::Sink(sink), Some(_)) => sink.wanted().covered(),
            (_, Some(m)) => {
                let st = self.state();
                m.geometry
                    .indices()
                    .filter(|i| !st.pieces.have().get(*i))
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
        let Some(meta) = self.metadata() else {
            return Vec::new();
        };
        let mut kill = Vec::new();
        // The transfer's ledger keeps the strikes, as for every network's sources: a
        // sole sender of a bad piece is dropped at once, each of several after repeats.
        let blamed: Vec<(ConnId, SocketAddr, PeerId)> = match ok {
            true => Vec::new(),
            false => {
                let st = self.state();
                contributors
                    .iter()
                    .filter_map(|c| st.identity(*c).map(|(addr, pid)| (*c, addr, pid)))
                    .collect()
            }
        };
        let sources: Vec<u64> = blamed.iter().map(|b| source_of(&b.2)).collect();
        let drop_now = match sources.is_empty() {
            true => Vec::new(),
            false => self.storage.strike(&sources),
        };
        let now_complete;
        {
            let mut st = self.state();
            st.pieces.checked(index, ok);
            now_complete = ok && st.pieces.have().is_complete();
            for (c, addr, pid) in blamed {
                if drop_now.contains(&source_of(&pid)) && st.banned_ids.insert(pid) {
                    warn!(info_hash = %self.info_hash, %addr, piece = index.get(), "banning peer for a bad piece");
                    st.banned_addrs.insert(addr);
                    st.banned_count += 1;
                    kill.push(c);
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
        }
        kill
    }
}

/// A peer's number in the transfer's ledger: from its peer id, so that strikes outlive a
/// reconnection.
fn source_of(pid: &PeerId) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pid.0.hash(&mut h);
    h.finish()
}

impl State {
    pub fn new(name: String) -> Self {
        Self {
            name,
            pieces: Picker::default(),
            peers: HashMap::new(),
            known: VecDeque::new(),
            known_set: HashSet::new(),
            redial: junction_core::Redials::new(REDIAL_FIRST, REDIAL_MAX),
            connecting: HashSet::new(),
            banned_addrs: HashSet::new(),
            banned_ids: HashSet::new(),
            departed: VecDeque::new(),
            metadata_fetch: MetadataFetch::default(),
            choker: Choker::default(),
            banned_count: 0,
        }
    }

    /// The address and peer id of a connection, live or among the last to leave.
    fn identity(&self, conn: ConnId) -> Option<(SocketAddr, PeerId)> {
        match self.peers.get(&conn) {
            Some(p) => Some((p.addr, p.peer_id)),
            None => self
                .departed
                .iter()
                .find(|d| d.0 == conn)
                .map(|d| (d.1, d.2)),
        }
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
        if lasted >= Duration::from_secs(60) {
            self.redial.succeeded(&addr);
        }
        self.redial.failed(addr, Instant::now());
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
                && self.redial.ready(&a, now)
            {
                return Some(a);
            }
        }
        None
    }

    /// A peer connection ended. Returns the pieces no peer works on any longer, for
    /// [`Torrent::release_pieces`].
    #[must_use = "the pieces returned are to be released in the transfer"]
    pub fn drop_peer(&mut self, conn: ConnId, bitfield: Option<&Bitfield>) -> Vec<u32> {
        if let Some(p) = self.peers.remove(&conn) {
            if self.departed.len() >= MAX_DEPARTED {
                self.departed.pop_front();
            }
            self.departed.push_back((conn, p.addr, p.peer_id));
        }
        self.metadata_fetch.drop_conn(conn);
        self.choker.drop_conn(conn);
        self.pieces.drop_conn(conn, bitfield)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::metainfo::{Metainfo, TorrentBuilder};
    use junction_core::swarm::{MemStore, Swarm, SwarmSink, Writer};
    use junction_core::{NetworkId, RangeSet};

    /// A torrent of four 16 KiB pieces fetched into a shared swarm, and the swarm.
    fn swarm_torrent() -> (Arc<Torrent>, Arc<Swarm<MemStore>>) {
        let data: Vec<u8> = (0..4 * 16384u32).map(|i| (i % 251) as u8).collect();
        let bytes = TorrentBuilder::new("f.bin", 16384)
            .build_from_bytes(&data)
            .unwrap();
        let info = Metainfo::parse(&bytes).unwrap().info;
        let size = data.len() as u64;
        let swarm = Arc::new(Swarm::new(MemStore::new(size), size, RangeSet::new()));
        let sink = SwarmSink::new(swarm.clone(), NetworkId::BITTORRENT);
        let (ctx, _loop_ends) = Ctx::new(crate::config::Config::default(), 0, None);
        let ctx = Arc::new(ctx);
        let t = Torrent::new(ctx, info.swarm_hash(), "f.bin".into(), Storage::Sink(sink));
        t.set_metadata(info).unwrap();
        (t, swarm)
    }

    /// Peer `conn` asks for the blocks of one piece (the reader at `at` makes it certain
    /// which), claiming it in the transfer as a peer task does.
    fn ask(t: &Torrent, conn: ConnId, at: u32) -> Vec<(u32, u32)> {
        let meta = t.metadata().unwrap().clone();
        let g = &meta.geometry;
        let mut claim = |i: ValidPieceIndex| {
            t.storage
                .claim_piece(g.piece_offset(i), u64::from(g.piece_len(i)))
        };
        let all = Bitfield::full(g.piece_count());
        t.state()
            .pieces
            .pick(conn, &all, 1, g, Some(at), &mut claim)
            .iter()
            .map(|b| (b.index().get(), b.begin()))
            .collect()
    }

    /// Peers 1..=n connected as connections 1..=n, from 10.0.0.n with peer id [n; 20].
    fn connect_peers(t: &Torrent, n: u8) {
        for n in 1..=n {
            let addr: SocketAddr = format!("10.0.0.{n}:6881").parse().unwrap();
            let e = PeerEntry::new(
                addr,
                PeerId([n; 20]),
                watch::channel(false).0,
                Arc::default(),
                CancellationToken::new(),
                None,
            );
            t.state().peers.insert(ConnId::from(n), e);
        }
    }

    #[test]
    fn the_ledger_strikes_peers_whose_pieces_fail() {
        let (t, swarm) = swarm_torrent();
        connect_peers(&t, 3);
        let piece = |i| t.metadata().unwrap().geometry.index(i).unwrap();
        // Two senders share the blame: struck, not dropped, until the third failure.
        for round in 0..3 {
            let kill = t.finish_piece(piece(round), false, &[1, 2]);
            assert_eq!(kill.len(), if round == 2 { 2 } else { 0 }, "round {round}");
        }
        // A sole sender is dropped at once; the ledger knows, and counts it.
        assert_eq!(t.finish_piece(piece(3), false, &[3]), vec![3]);
        let st = t.state();
        assert!(st.is_banned(&"10.0.0.3:1".parse().unwrap(), Some(&PeerId([3; 20]))));
        assert_eq!(st.banned_count, 3);
        drop(st);
        let figures = swarm.ledger().figures()[&junction_core::NetworkId::BITTORRENT].clone();
        assert_eq!(figures.dropped, 3);
    }

    #[test]
    fn a_bad_piece_from_a_banned_peer_and_an_honest_one_does_not_ban_the_honest_one() {
        let (t, _swarm) = swarm_torrent();
        connect_peers(&t, 2);
        let piece = |i| t.metadata().unwrap().geometry.index(i).unwrap();
        // The liar alone sends a bad piece: banned, and its connection goes.
        assert_eq!(t.finish_piece(piece(0), false, &[1]), vec![1]);
        let _ = t.state().drop_peer(1, None);
        // A piece it had sent blocks of fails after it left: the honest co-sender is
        // struck, not taken for the sole sender.
        assert_eq!(
            t.finish_piece(piece(1), false, &[1, 2]),
            Vec::<ConnId>::new()
        );
        let st = t.state();
        assert!(!st.is_banned(&"10.0.0.2:6881".parse().unwrap(), Some(&PeerId([2; 20]))));
        assert_eq!(st.banned_count, 1);
    }

    #[test]
    fn a_choke_or_a_disconnect_gives_the_claim_back_at_once() {
        let (t, swarm) = swarm_torrent();
        let ed2k = Writer {
            network: NetworkId::ED2K,
            source: 1,
        };
        let eclaim =
            |r: std::ops::Range<u64>| swarm.ledger().claim(ed2k, r, 16384, None, Instant::now());
        // Peer 1 works on piece 0: no other network may fetch it.
        let keys = ask(&t, 1, 0);
        assert_eq!(keys, vec![(0, 0)]);
        assert_eq!(eclaim(0..16384), None);
        // It chokes us (no Fast extension): its requests are dropped, and the piece goes
        // back to the transfer at once, not after the claim's stall timeout.
        t.release_requests(1, keys);
        assert_eq!(eclaim(0..16384), Some(0..16384));
        // Peer 2 works on piece 1, then disconnects with it requested.
        assert_eq!(ask(&t, 2, 1), vec![(1, 0)]);
        assert_eq!(eclaim(16384..32768), None);
        let orphans = t.state().drop_peer(2, None);
        t.release_pieces(&orphans);
        assert_eq!(eclaim(16384..32768), Some(16384..32768));
        // BitTorrent does not take the pieces back: peer 3 gets piece 2.
        assert_eq!(ask(&t, 3, 0), vec![(2, 0)]);
    }

    #[test]
    fn an_ended_dial_backs_off_and_port_zero_is_never_known() {
        let mut st = State::new("t".into());
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
        assert!(
            st.redial.until(&a).unwrap() > Instant::now() + REDIAL_FIRST,
            "doubles"
        );
        // A long session starts the back-off afresh.
        st.dial_ended(a, Duration::from_secs(3600));
        assert_eq!(st.redial.failures(&a), 1);
    }
}
