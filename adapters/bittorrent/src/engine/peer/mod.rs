//! One peer connection: handshake, then a read loop that downloads (interest, request
//! pipeline, piece assembly via the torrent's picker, SHA-1 check) and uploads (choke
//! state from the choker, serving verified blocks), plus BEP 6, BEP 10, BEP 9 and BEP 11.
//! Writes go through a writer task so a slow socket never blocks reading.

mod announce;
mod download;
mod messages;
mod upload;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{broadcast, mpsc};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, trace, warn};

use super::sync::lock;
use super::torrent::{ConnId, Event, OnBlock, PeerCounters, PeerEntry, Torrent};
use crate::error::WireError;
use crate::wire::extension::{METADATA_PIECE_LEN, UT_METADATA, UT_PEX};
use crate::wire::metainfo::Info;
use crate::wire::piece::{BLOCK_LEN, Bitfield};
use crate::wire::{
    BlockRequest, ExtendedHandshake, Handshake, Message, MessageDecoder, MetadataMessage,
    PexMessage, PieceBlock, Reserved,
};

/// Extended message ids we ask peers to use (our handshake's `m`).
const OUR_UT_METADATA: u8 = 1;
const OUR_UT_PEX: u8 = 2;
/// Requests we accept queued per peer (advertised as `reqq`).
const MAX_QUEUED: usize = 500;
/// Most requests we keep in flight to one peer.
const MAX_DEPTH: usize = 500;
const MIN_DEPTH: usize = 16;
/// Longest pause under a rate limit. Waits repay the shared bucket's whole debt, so many
/// peers together stay under the limit too; the cap keeps a delayed upload under the
/// request timeouts of other clients (libtorrent: 60 s).
const MAX_RATE_PAUSE: Duration = Duration::from_secs(20);
/// Silence after which a peer is dropped (keep-alives come every ~2 minutes).
const IDLE_LIMIT: Duration = Duration::from_secs(240);
const KEEPALIVE_EVERY: Duration = Duration::from_secs(90);
/// BEP 11: at most one PEX message a minute (tests go faster), at most 50 added and 50
/// dropped.
const PEX_MIN_EVERY: Duration = Duration::from_secs(1);
const PEX_MAX: usize = 50;
/// Haves remembered before the metadata is known.
const MAX_EARLY_HAVES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    #[error("peer I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("peer broke the protocol: {0}")]
    Wire(#[from] WireError),
    #[error("peer broke the protocol: {0}")]
    Protocol(&'static str),
    #[error("peer is banned")]
    Banned,
    #[error("connection closed: {0}")]
    Closed(&'static str),
}

pub fn our_reserved(dht: bool) -> Reserved {
    let r = Reserved::default()
        .with(Reserved::EXTENSION_PROTOCOL)
        .with(Reserved::FAST);
    if dht { r.with(Reserved::DHT) } else { r }
}

fn our_handshake(t: &Torrent) -> Handshake {
    Handshake {
        reserved: our_reserved(t.ctx.dht.is_some()),
        info_hash: t.info_hash,
        peer_id: t.ctx.peer_id,
    }
}

/// BEP 52: a peer offering v2 (reserved bit) on a hybrid whose piece layers we hold is
/// answered with the v2 info-hash, which upgrades the connection: it then checks pieces by
/// SHA-256 and may ask us for hashes. The pieces and their numbers are the same either way.
fn v2_upgrade(t: &Torrent, hs: &Handshake) -> Option<crate::wire::id::InfoHash> {
    let m = t.metadata()?;
    let hybrid = !m.info.is_v2_only() && m.v2.get().is_some();
    let v2 = m.info.info_hash_v2?.truncated();
    (hs.reserved.has(Reserved::V2_UPGRADE) && hybrid).then_some(v2)
}

/// Dials a peer for `t` and runs the connection until it ends.
pub async fn connect(t: Arc<Torrent>, addr: SocketAddr) -> Result<(), PeerError> {
    let limit = t.ctx.config.handshake_timeout;
    let local = Some(t.ctx.config.listen.ip());
    let mut s = timeout(limit, super::tcp_connect(addr, local))
        .await
        .map_err(|_| PeerError::Timeout("connect"))??;
    s.set_nodelay(true)?;
    timeout(limit, s.write_all(&our_handshake(&t).to_bytes()))
        .await
        .map_err(|_| PeerError::Timeout("handshake write"))??;
    let mut hb = [0u8; 68];
    timeout(limit, s.read_exact(&mut hb))
        .await
        .map_err(|_| PeerError::Timeout("handshake"))??;
    let hs = Handshake::parse(&hb)?;
    if hs.info_hash != t.info_hash {
        return Err(PeerError::Protocol("handshake for another torrent"));
    }
    let requests = t.ctx.config.limits.request_rate();
    session(t, s, addr, hs, true, requests).await
}

/// Runs an accepted connection whose handshake (`hs`) was read by the listener, with the
/// request rate it may refuse requests at (`requests`, from its connection permit).
pub async fn accepted(
    t: Arc<Torrent>,
    mut s: TcpStream,
    addr: SocketAddr,
    hs: Handshake,
    requests: junction_core::limit::RequestRate,
) -> Result<(), PeerError> {
    s.set_nodelay(true)?;
    let mut ours = our_handshake(&t);
    if let Some(v2) = v2_upgrade(&t, &hs) {
        ours.info_hash = v2;
        ours.reserved = ours.reserved.with(Reserved::V2_UPGRADE);
    }
    timeout(
        t.ctx.config.handshake_timeout,
        s.write_all(&ours.to_bytes()),
    )
    .await
    .map_err(|_| PeerError::Timeout("handshake write"))??;
    session(t, s, addr, hs, false, requests).await
}

struct Peer {
    t: Arc<Torrent>,
    conn: ConnId,
    addr: SocketAddr,
    fast: bool,
    /// The peer runs a DHT node (it sends, and gets, a `port` message).
    dht: bool,
    ext: bool,
    tx: mpsc::Sender<(Bytes, bool)>,
    queued: Arc<AtomicUsize>,
    counters: Arc<PeerCounters>,
    /// BEP 5 `port`: only the first one per connection pings the peer's DHT node.
    dht_pinged: bool,
    /// Under the download limit, reading stops until then (TCP slows the peer meanwhile).
    read_paused: Option<Instant>,
    their_meta_id: Option<u8>,
    their_meta_size: Option<u32>,
    their_reqq: usize,
    /// The peer's pieces, once the metadata is known.
    bitfield: Option<Bitfield>,
    /// The pieces no peer is asked for, kept between reads.
    left_out: crate::engine::storage::LeftOut,
    counted: bool,
    raw_bitfield: Option<Bytes>,
    have_all: bool,
    early_haves: Vec<u32>,
    peer_choking: bool,
    am_interested: bool,
    am_choking: bool,
    outstanding: HashMap<(u32, u32), Instant>,
    last_block: Instant,
    last_recv: Instant,
    last_keepalive: Instant,
    depth: usize,
    rate: f64,
    window: u64,
    meta_pending: Option<Instant>,
    pex_added: usize,
    their_pex_id: Option<u8>,
    pex_sent: std::collections::HashSet<SocketAddr>,
    /// BEP 6: pieces we let this peer request while choked, and pieces it lets us request.
    allowed_out: std::collections::HashSet<u32>,
    allowed_in: std::collections::HashSet<u32>,
    /// Requests waiting for the upload rate limit, so a `cancel` can still take them back.
    uploads: std::collections::VecDeque<BlockRequest>,
    /// The block whose tokens are taken, and when it may go.
    upload_next: Option<(BlockRequest, Instant)>,
    last_pex: Instant,
    /// Requests we refused, against the limits' request rate.
    refused: junction_core::limit::RequestRate,
}

impl Peer {
    /// A peer that just completed the handshake `hs`: choked both ways, nothing known of
    /// its pieces yet, a modest pipeline until its rate shows.
    fn new(
        t: Arc<Torrent>,
        conn: ConnId,
        addr: SocketAddr,
        hs: &Handshake,
        tx: mpsc::Sender<(Bytes, bool)>,
        queued: Arc<AtomicUsize>,
        counters: Arc<PeerCounters>,
    ) -> Self {
        // The first PEX message goes out about ten seconds after connecting.
        let pex_wait = t
            .ctx
            .config
            .pex_interval
            .saturating_sub(Duration::from_secs(10));
        let last_pex = Instant::now()
            .checked_sub(pex_wait)
            .unwrap_or_else(Instant::now);
        let refused = t.ctx.config.limits.request_rate();
        Self {
            t,
            conn,
            addr,
            fast: hs.reserved.fast(),
            dht: hs.reserved.dht(),
            ext: hs.reserved.extension_protocol(),
            tx,
            queued,
            counters,
            dht_pinged: false,
            read_paused: None,
            their_meta_id: None,
            their_meta_size: None,
            their_reqq: 250,
            bitfield: None,
            left_out: Default::default(),
            counted: false,
            raw_bitfield: None,
            have_all: false,
            early_haves: Vec::new(),
            peer_choking: true,
            am_interested: false,
            am_choking: true,
            outstanding: HashMap::new(),
            last_block: Instant::now(),
            last_recv: Instant::now(),
            last_keepalive: Instant::now(),
            depth: 32,
            rate: 0.0,
            window: 0,
            meta_pending: None,
            pex_added: 0,
            their_pex_id: None,
            pex_sent: std::collections::HashSet::new(),
            allowed_out: std::collections::HashSet::new(),
            allowed_in: std::collections::HashSet::new(),
            uploads: std::collections::VecDeque::new(),
            upload_next: None,
            last_pex,
            refused,
        }
    }

    async fn send(&self, m: Message) -> Result<(), PeerError> {
        self.tx
            .send((m.to_bytes(), false))
            .await
            .map_err(|_| PeerError::Closed("writer gone"))
    }

    async fn run(
        &mut self,
        mut rd: tokio::net::tcp::OwnedReadHalf,
        mut events: broadcast::Receiver<Event>,
        choke_rx: &mut tokio::sync::watch::Receiver<bool>,
        kill: &CancellationToken,
    ) -> Result<(), PeerError> {
        self.start().await?;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut dec = MessageDecoder::default();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let cancel = self.t.cancel.clone();
        // Under a download limit each read takes at most 1/32 s worth (or one block), so
        // hundreds of peers sharing the limit still stay under it within the longest pause.
        let read_max = self
            .t
            .ctx
            .download_limit
            .rate()
            .map_or(u64::MAX, |r| (r / 32).max(u64::from(BLOCK_LEN) + 13));
        loop {
            if buf.capacity() - buf.len() < 64 * 1024 {
                buf.reserve(256 * 1024);
            }
            let mut limited = (&mut rd).take(read_max);
            tokio::select! {
                r = limited.read_buf(&mut buf), if self.read_paused.is_none() => {
                    let n = r?;
                    if n == 0 {
                        return Err(PeerError::Closed("peer closed the connection"));
                    }
                    self.last_recv = Instant::now();
                    self.t.ctx.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    // The wait repays the whole debt of the shared bucket, so many peers
                    // together stay under the limit too.
                    let wait = self.t.ctx.download_wait(n as u64);
                    if !wait.is_zero() {
                        self.read_paused = Some(Instant::now() + wait.min(MAX_RATE_PAUSE));
                    }
                    while let Some(m) = dec.decode(&mut buf)? {
                        self.handle(m).await?;
                    }
                    self.fill().await?;
                }
                r = choke_rx.changed() => {
                    if r.is_err() { return Err(PeerError::Closed("torrent dropped the peer")); }
                    let choke = *choke_rx.borrow_and_update();
                    if choke != self.am_choking {
                        self.am_choking = choke;
                        self.send(if choke { Message::Choke } else { Message::Unchoke }).await?;
                        if choke {
                            self.drop_uploads().await?;
                        }
                    }
                }
                ev = events.recv() => match ev {
                    Ok(e) => self.on_event(e).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => self.resync().await?,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = tokio::time::sleep_until(self.upload_deadline().into()),
                    if self.upload_next.is_some() || !self.uploads.is_empty() =>
                {
                    self.send_uploads().await?;
                }
                _ = tokio::time::sleep_until(self.read_paused.unwrap_or_else(Instant::now).into()),
                    if self.read_paused.is_some() =>
                {
                    self.read_paused = None;
                    // Blocks waited in our socket, not at the peer: no snub for that.
                    self.last_block = Instant::now();
                }
                _ = tick.tick() => self.on_tick().await?,
                _ = cancel.cancelled() => return Ok(()),
                _ = kill.cancelled() => return Err(PeerError::Banned),
            }
        }
    }

    async fn on_tick(&mut self) -> Result<(), PeerError> {
        // Pipeline depth follows the rate: about two seconds of blocks in flight.
        self.rate = 0.6 * self.rate + 0.4 * self.window as f64;
        self.window = 0;
        let blocks_per_2s = (self.rate * 2.0 / f64::from(BLOCK_LEN)) as usize;
        self.depth = blocks_per_2s.clamp(MIN_DEPTH, MAX_DEPTH);
        if !self.outstanding.is_empty()
            && self.read_paused.is_none()
            && self.last_block.elapsed() > self.t.ctx.config.request_timeout
        {
            let keys: Vec<_> = self.outstanding.drain().map(|(k, _)| k).collect();
            self.t.release_requests(self.conn, keys);
            return Err(PeerError::Timeout("requested blocks (snubbed)"));
        }
        if self.last_recv.elapsed() > IDLE_LIMIT {
            return Err(PeerError::Timeout("any message (idle)"));
        }
        if self
            .meta_pending
            .is_some_and(|at| at.elapsed() > Duration::from_secs(20))
        {
            self.meta_pending = None;
        }
        if self.last_pex.elapsed() >= self.t.ctx.config.pex_interval.max(PEX_MIN_EVERY) {
            self.last_pex = Instant::now();
            self.send_pex().await?;
        }
        if self.last_keepalive.elapsed() > KEEPALIVE_EVERY {
            self.last_keepalive = Instant::now();
            self.send(Message::KeepAlive).await?;
        }
        if self.t.is_complete() && self.bitfield.as_ref().is_some_and(Bitfield::is_complete) {
            return Err(PeerError::Closed("both sides are seeds"));
        }
        self.fill().await
    }
}

async fn session(
    t: Arc<Torrent>,
    stream: TcpStream,
    addr: SocketAddr,
    hs: Handshake,
    outgoing: bool,
    requests: junction_core::limit::RequestRate,
) -> Result<(), PeerError> {
    let pid = hs.peer_id;
    if pid == t.ctx.peer_id {
        return Err(PeerError::Closed("connected to ourselves"));
    }
    let conn = t.ctx.conn_id();
    let counters = Arc::new(PeerCounters::default());
    let kill = CancellationToken::new();
    let (choke_tx, mut choke_rx) = tokio::sync::watch::channel(true);
    {
        let mut st = t.state();
        if st.is_banned(&addr, Some(&pid)) {
            return Err(PeerError::Banned);
        }
        if st.peers.values().any(|p| p.peer_id == pid) {
            return Err(PeerError::Closed("already connected to this peer"));
        }
        if st.peers.len() >= t.ctx.config.max_peers_per_torrent {
            return Err(PeerError::Closed("too many peers"));
        }
        let listen = outgoing.then_some(addr);
        let entry = PeerEntry::new(addr, pid, choke_tx, counters.clone(), kill.clone(), listen);
        st.peers.insert(conn, entry);
    }
    debug!(%addr, peer = ?pid, fast = hs.reserved.fast(), ext = hs.reserved.extension_protocol(), "peer connected");
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(1024);
    let queued = Arc::new(AtomicUsize::new(0));
    // Not junction_core::task::spawn: the writer ends when the session drops its sender,
    // after flushing what it queued; the session waits for it (5 s at most).
    let writer_task = tokio::spawn(writer(wr, rx, queued.clone()).in_current_span());
    let mut p = Peer::new(t.clone(), conn, addr, &hs, tx, queued, counters);
    p.refused = requests;
    let events = t.events.subscribe();
    let result = p.run(rd, events, &mut choke_rx, &kill).await;
    let orphans = {
        let mut st = t.state();
        let bf = if p.counted { p.bitfield.as_ref() } else { None };
        st.drop_peer(conn, bf)
    };
    t.release_pieces(&orphans);
    drop(p);
    let _ = timeout(Duration::from_secs(5), writer_task).await;
    match &result {
        Ok(()) => debug!(%addr, "peer closed"),
        Err(e) => debug!(%addr, error = %e, "peer dropped"),
    }
    result
}

async fn writer(
    wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<(Bytes, bool)>,
    queued: Arc<AtomicUsize>,
) {
    let mut w = BufWriter::with_capacity(128 * 1024, wr);
    let limit = Duration::from_secs(60);
    while let Some((b, piece)) = rx.recv().await {
        let ok = timeout(limit, w.write_all(&b))
            .await
            .is_ok_and(|r| r.is_ok());
        if piece {
            queued.fetch_sub(1, Ordering::Relaxed);
        }
        if !ok {
            return;
        }
        if rx.is_empty() && !matches!(timeout(limit, w.flush()).await, Ok(Ok(()))) {
            return;
        }
    }
    let _ = timeout(Duration::from_secs(2), w.shutdown()).await;
}

/// Reads the handshake of an incoming connection, under a deadline.
pub async fn read_handshake(s: &mut TcpStream, limit: Duration) -> Result<Handshake, PeerError> {
    let mut hb = [0u8; 68];
    let mut got = 0;
    let read = async {
        while got < hb.len() {
            let n = s.read(&mut hb[got..]).await?;
            if n == 0 {
                return Err(PeerError::Closed("closed during handshake"));
            }
            got += n;
            Handshake::check_prefix(&hb[..got])?;
        }
        Ok(())
    };
    timeout(limit, read)
        .await
        .map_err(|_| PeerError::Timeout("handshake"))??;
    Ok(Handshake::parse(&hb)?)
}
