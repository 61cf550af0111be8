//! One peer connection: handshake, then a read loop that downloads (interest, request
//! pipeline, piece assembly via the torrent's picker, SHA-1 check) and uploads (choke
//! state from the choker, serving verified blocks), plus BEP 6, BEP 10, BEP 9 and BEP 11.
//! Writes go through a writer task so a slow socket never blocks reading.

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
use tracing::{debug, trace, warn};

use super::torrent::{ConnId, Event, OnBlock, PeerCounters, PeerEntry, Torrent, lock};
use crate::error::WireError;
use crate::metainfo::Info;
use crate::piece::{BLOCK_LEN, Bitfield};
use crate::wire::extension::{METADATA_PIECE_LEN, UT_METADATA, UT_PEX};
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
    session(t, s, addr, hs, true).await
}

/// Runs an accepted connection whose handshake (`hs`) was read by the listener.
pub async fn accepted(
    t: Arc<Torrent>,
    mut s: TcpStream,
    addr: SocketAddr,
    hs: Handshake,
) -> Result<(), PeerError> {
    s.set_nodelay(true)?;
    timeout(
        t.ctx.config.handshake_timeout,
        s.write_all(&our_handshake(&t).to_bytes()),
    )
    .await
    .map_err(|_| PeerError::Timeout("handshake write"))??;
    session(t, s, addr, hs, false).await
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
}

async fn session(
    t: Arc<Torrent>,
    stream: TcpStream,
    addr: SocketAddr,
    hs: Handshake,
    outgoing: bool,
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
    let writer_task = tokio::spawn(writer(wr, rx, queued.clone()));
    let mut p = Peer {
        t: t.clone(),
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
        // The first PEX message goes out about ten seconds after connecting.
        last_pex: Instant::now()
            .checked_sub(
                t.ctx
                    .config
                    .pex_interval
                    .saturating_sub(Duration::from_secs(10)),
            )
            .unwrap_or_else(Instant::now),
    };
    let events = t.events.subscribe();
    let result = p.run(rd, events, &mut choke_rx, &kill).await;
    {
        let mut st = t.state();
        let bf = if p.counted { p.bitfield.as_ref() } else { None };
        st.drop_peer(conn, bf);
    }
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

impl Peer {
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
            .config
            .download_rate_limit
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

    async fn start(&mut self) -> Result<(), PeerError> {
        let first = match self.t.meta() {
            Some(_) => {
                let have = self.t.state().pieces.have().clone();
                let n = have.count_ones();
                if self.fast && have.is_complete() {
                    Some(Message::HaveAll)
                } else if self.fast && n == 0 {
                    Some(Message::HaveNone)
                } else if n > 0 {
                    Some(Message::Bitfield(Bytes::copy_from_slice(have.as_bytes())))
                } else {
                    None
                }
            }
            None => self.fast.then_some(Message::HaveNone),
        };
        if let Some(m) = first {
            self.send(m).await?;
        }
        self.send_allowed_fast().await?;
        if self.dht
            && let Some(port) = self
                .t
                .ctx
                .dht
                .as_ref()
                .and_then(|d| d.local_addr())
                .map(|a| a.port())
        {
            self.send(Message::Port(port)).await?;
        }
        if self.ext {
            let mut hs = ExtendedHandshake::default();
            hs.m.insert(UT_METADATA.to_owned(), OUR_UT_METADATA);
            hs.m.insert(UT_PEX.to_owned(), OUR_UT_PEX);
            let port = self.t.ctx.port.load(Ordering::Relaxed);
            hs.p = (port != 0).then_some(port);
            hs.v = Some(self.t.ctx.config.client_name.clone());
            hs.reqq = Some(MAX_QUEUED as u32);
            hs.yourip = Some(self.addr.ip());
            hs.metadata_size = self.t.meta().map(|m| m.info.raw.len() as u32);
            self.send(Message::Extended {
                id: 0,
                payload: Bytes::from(hs.encode()),
            })
            .await?;
        }
        Ok(())
    }

    /// BEP 6: a peer with (almost) nothing gets the allowed-fast set of pieces we have, so
    /// it can start before it is unchoked.
    async fn send_allowed_fast(&mut self) -> Result<(), PeerError> {
        let (Some(meta), std::net::IpAddr::V4(ip)) = (self.t.meta().cloned(), self.addr.ip())
        else {
            return Ok(());
        };
        if !self.fast || self.bitfield.as_ref().is_some_and(|b| b.count_ones() >= 10) {
            return Ok(());
        }
        let set = crate::fast::allowed_fast_set(
            ip,
            &self.t.info_hash,
            meta.geometry.piece_count(),
            crate::fast::DEFAULT_K,
        );
        let have = self.t.state().pieces.have().clone();
        for i in set {
            if meta.geometry.index(i).is_ok_and(|vi| have.get(vi)) && self.allowed_out.insert(i) {
                self.send(Message::AllowedFast(i)).await?;
            }
        }
        Ok(())
    }

    /// Builds the peer's bitfield once the metadata is known.
    fn materialize(&mut self) -> Result<(), PeerError> {
        let Some(meta) = self.t.meta().cloned() else {
            return Ok(());
        };
        if self.bitfield.is_some() {
            return Ok(());
        }
        let count = meta.geometry.piece_count();
        let mut bf = if self.have_all {
            Bitfield::full(count)
        } else if let Some(raw) = self.raw_bitfield.take() {
            Bitfield::from_payload(&raw, count)?
        } else {
            Bitfield::empty(count)
        };
        for i in std::mem::take(&mut self.early_haves) {
            bf.set(meta.geometry.index(i)?, true);
        }
        self.set_bitfield(bf);
        Ok(())
    }

    fn set_bitfield(&mut self, bf: Bitfield) {
        let mut st = self.t.state();
        if self.counted
            && let Some(old) = &self.bitfield
        {
            st.pieces.sub_avail(old);
        }
        st.pieces.add_avail(&bf);
        if let Some(e) = st.peers.get_mut(&self.conn) {
            e.seed = bf.is_complete();
        }
        self.counted = true;
        self.bitfield = Some(bf);
    }

    async fn handle(&mut self, m: Message) -> Result<(), PeerError> {
        trace!(addr = %self.addr, msg = ?std::mem::discriminant(&m), "recv");
        match m {
            Message::KeepAlive | Message::Suggest(_) => {}
            Message::Port(port) => {
                // BEP 5: the peer's DHT node; ping it so it may join our table.
                if let Some(dht) = self.t.ctx.dht.clone()
                    && port != 0
                    && !std::mem::replace(&mut self.dht_pinged, true)
                {
                    let node = SocketAddr::new(self.addr.ip(), port);
                    tokio::spawn(async move {
                        let _ = dht.query(node, crate::krpc::Method::Ping).await;
                    });
                }
            }
            Message::Unknown { .. } => {}
            // BEP 3: a request not yet answered is forgotten.
            Message::Cancel(r) => {
                self.uploads.retain(|q| *q != r);
                if self.upload_next.is_some_and(|(q, _)| q == r) {
                    self.upload_next = None;
                }
            }
            Message::AllowedFast(i) => {
                if !self.fast {
                    return Err(PeerError::Protocol(
                        "allowed-fast without the Fast extension",
                    ));
                }
                if self.allowed_in.len() < 64 {
                    self.allowed_in.insert(i);
                }
            }
            Message::Choke => {
                self.peer_choking = true;
                if !self.fast {
                    let keys: Vec<_> = self.outstanding.drain().map(|(k, _)| k).collect();
                    self.t.state().pieces.release(self.conn, keys);
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.last_block = Instant::now();
            }
            Message::Interested | Message::NotInterested => {
                let i = matches!(m, Message::Interested);
                let slots = self.t.ctx.config.upload_slots;
                self.t.state().on_interest(self.conn, i, slots);
            }
            Message::Have(i) => match self.t.meta().cloned() {
                Some(meta) => {
                    let vi = meta.geometry.index(i)?;
                    if let Some(bf) = &mut self.bitfield {
                        if !bf.get(vi) {
                            bf.set(vi, true);
                            let seed = bf.is_complete();
                            let mut st = self.t.state();
                            st.pieces.inc_avail(vi);
                            if let Some(e) = st.peers.get_mut(&self.conn) {
                                e.seed = seed;
                            }
                        }
                    } else {
                        let mut bf = Bitfield::empty(meta.geometry.piece_count());
                        bf.set(vi, true);
                        self.set_bitfield(bf);
                    }
                }
                None if self.early_haves.len() < MAX_EARLY_HAVES => self.early_haves.push(i),
                None => return Err(PeerError::Protocol("too many haves")),
            },
            Message::Bitfield(raw) => match self.t.meta().cloned() {
                Some(meta) => {
                    let bf = Bitfield::from_payload(&raw, meta.geometry.piece_count())?;
                    self.set_bitfield(bf);
                }
                None => self.raw_bitfield = Some(raw),
            },
            Message::HaveAll | Message::HaveNone => {
                if !self.fast {
                    return Err(PeerError::Protocol(
                        "have-all/none without the Fast extension",
                    ));
                }
                let all = matches!(m, Message::HaveAll);
                match self.t.meta().cloned() {
                    Some(meta) => {
                        let n = meta.geometry.piece_count();
                        self.set_bitfield(if all {
                            Bitfield::full(n)
                        } else {
                            Bitfield::empty(n)
                        });
                    }
                    None => self.have_all = all,
                }
            }
            Message::Request(r) => self.serve(r).await?,
            Message::Piece(p) => self.on_piece(p).await?,
            Message::Reject(r) => {
                if !self.fast {
                    return Err(PeerError::Protocol("reject without the Fast extension"));
                }
                if self.outstanding.remove(&(r.index, r.begin)).is_some() {
                    self.t
                        .state()
                        .pieces
                        .release(self.conn, [(r.index, r.begin)]);
                }
            }
            Message::Extended { id, payload } => self.on_extended(id, payload).await?,
        }
        Ok(())
    }

    async fn serve(&mut self, r: BlockRequest) -> Result<(), PeerError> {
        let Some(meta) = self.t.meta().cloned() else {
            return self.reject(r).await;
        };
        let vb = r.validate(&meta.geometry)?;
        let have = self.t.state().pieces.have().get(vb.index());
        let choked = self.am_choking && !self.allowed_out.contains(&r.index);
        if choked || !have || self.queued.load(Ordering::Relaxed) >= MAX_QUEUED {
            return self.reject(r).await;
        }
        if self.t.ctx.upload_bucket.is_some() {
            // Rate limited: queue it, so reading goes on and a cancel can still drop it.
            if self.uploads.len() >= MAX_QUEUED {
                return self.reject(r).await;
            }
            self.uploads.push_back(r);
            return Ok(());
        }
        self.send_block(r).await
    }

    /// When the next queued upload may go.
    fn upload_deadline(&self) -> Instant {
        self.upload_next.map_or_else(Instant::now, |(_, at)| at)
    }

    /// Sends the block whose time has come, then queued ones while the rate limit allows.
    async fn send_uploads(&mut self) -> Result<(), PeerError> {
        if let Some((r, at)) = self.upload_next {
            if at > Instant::now() {
                return Ok(());
            }
            self.upload_next = None;
            self.send_block(r).await?;
        }
        while let Some(r) = self.uploads.pop_front() {
            let wait = self.t.ctx.upload_wait(u64::from(r.length));
            if !wait.is_zero() {
                self.upload_next = Some((r, Instant::now() + wait.min(MAX_RATE_PAUSE)));
                return Ok(());
            }
            self.send_block(r).await?;
        }
        Ok(())
    }

    /// Choking the peer drops what it asked for (with the Fast extension, each is rejected).
    async fn drop_uploads(&mut self) -> Result<(), PeerError> {
        let dropped: Vec<BlockRequest> = self
            .upload_next
            .take()
            .map(|(r, _)| r)
            .into_iter()
            .chain(self.uploads.drain(..))
            .collect();
        for r in dropped {
            if !self.allowed_out.contains(&r.index) {
                self.reject(r).await?;
            } else {
                self.uploads.push_back(r);
            }
        }
        Ok(())
    }

    async fn send_block(&mut self, r: BlockRequest) -> Result<(), PeerError> {
        let Some(meta) = self.t.meta().cloned() else {
            return self.reject(r).await;
        };
        let vb = r.validate(&meta.geometry)?;
        let off = meta.geometry.piece_offset(vb.index()) + u64::from(vb.begin());
        match self.t.storage.read(off, vb.length() as usize) {
            Ok(data) => {
                let n = data.len() as u64;
                let msg = Message::Piece(PieceBlock {
                    index: r.index,
                    begin: r.begin,
                    data,
                });
                self.queued.fetch_add(1, Ordering::Relaxed);
                self.tx
                    .send((msg.to_bytes(), true))
                    .await
                    .map_err(|_| PeerError::Closed("writer gone"))?;
                self.counters.up.fetch_add(n, Ordering::Relaxed);
                self.t.uploaded.fetch_add(n, Ordering::Relaxed);
                self.t.ctx.bytes_out.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "cannot read a block to serve");
                self.reject(r).await
            }
        }
    }

    async fn reject(&self, r: BlockRequest) -> Result<(), PeerError> {
        if self.fast {
            self.send(Message::Reject(r)).await?;
        }
        Ok(())
    }

    async fn on_piece(&mut self, p: PieceBlock) -> Result<(), PeerError> {
        let Some(meta) = self.t.meta().cloned() else {
            return Err(PeerError::Protocol("piece before metadata"));
        };
        let vb = p.validate(&meta.geometry)?;
        if self.outstanding.remove(&(p.index, p.begin)).is_none() {
            // Not asked of this peer, or cancelled since: neither stored nor counted, so
            // nobody can fill a piece others are sending with junk and get them banned.
            return Ok(());
        }
        let n = p.data.len() as u64;
        self.counters.down.fetch_add(n, Ordering::Relaxed);
        self.t.downloaded.fetch_add(n, Ordering::Relaxed);
        self.window += n;
        self.last_block = Instant::now();
        let res = self.t.state().pieces.on_block(self.conn, vb, &p.data);
        match res {
            OnBlock::Ignored => {}
            OnBlock::Stored { cancel } => {
                if cancel {
                    let _ = self.t.events.send(Event::Cancel {
                        block: vb,
                        except: self.conn,
                    });
                }
            }
            OnBlock::Complete {
                index,
                data,
                contributors,
                cancel,
            } => {
                if cancel {
                    let _ = self.t.events.send(Event::Cancel {
                        block: vb,
                        except: self.conn,
                    });
                }
                // Hash and store off the reactor, bounded by the hasher permits, so this
                // connection keeps reading while the piece is checked.
                let permit = self
                    .t
                    .ctx
                    .hashers
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| PeerError::Closed("shutting down"))?;
                let t = self.t.clone();
                let addr = self.addr;
                tokio::task::spawn_blocking(move || {
                    complete_piece(&t, &meta, index, data, &contributors, addr);
                    drop(permit);
                });
            }
        }
        Ok(())
    }

    async fn on_extended(&mut self, id: u8, payload: Bytes) -> Result<(), PeerError> {
        match id {
            0 => {
                let hs = ExtendedHandshake::decode(&payload)?;
                self.their_meta_id = hs.id_of(UT_METADATA);
                self.their_pex_id = hs.id_of(UT_PEX);
                if let Some(p) = hs.p {
                    let mut st = self.t.state();
                    if let Some(e) = st.peers.get_mut(&self.conn)
                        && e.listen.is_none()
                    {
                        e.listen = Some(SocketAddr::new(self.addr.ip(), p));
                    }
                }
                self.their_meta_size = hs.metadata_size;
                if let Some(q) = hs.reqq {
                    self.their_reqq = (q as usize).clamp(1, MAX_DEPTH);
                }
                if self.t.meta().is_none()
                    && self.their_meta_id.is_some()
                    && let Some(size) = hs.metadata_size
                {
                    self.t.state().metadata.begin(self.conn, size);
                }
            }
            OUR_UT_METADATA => {
                let msg = match MetadataMessage::decode(payload) {
                    Ok(m) => m,
                    Err(WireError::UnknownMetadataType(_)) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                self.on_metadata(msg).await?;
            }
            OUR_UT_PEX => {
                if let Ok(pex) = PexMessage::decode(&payload) {
                    let mut st = self.t.state();
                    for (a, _) in pex.added.into_iter().take(50) {
                        if self.pex_added < 500 {
                            self.pex_added += 1;
                            st.add_known(a);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn on_metadata(&mut self, msg: MetadataMessage) -> Result<(), PeerError> {
        match msg {
            MetadataMessage::Request { piece } => {
                let Some(their) = self.their_meta_id else {
                    return Ok(());
                };
                let reply = match self.t.meta() {
                    Some(meta) => {
                        let raw = &meta.info.raw;
                        let start = piece as usize * METADATA_PIECE_LEN as usize;
                        if start < raw.len() {
                            let end = (start + METADATA_PIECE_LEN as usize).min(raw.len());
                            MetadataMessage::Data {
                                piece,
                                total_size: raw.len() as u32,
                                data: raw.slice(start..end),
                            }
                        } else {
                            MetadataMessage::Reject { piece }
                        }
                    }
                    None => MetadataMessage::Reject { piece },
                };
                self.send(Message::Extended {
                    id: their,
                    payload: Bytes::from(reply.encode()),
                })
                .await?;
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                self.meta_pending = None;
                if self.t.meta().is_some() {
                    return Ok(());
                }
                let raw = self
                    .t
                    .state()
                    .metadata
                    .data(self.conn, piece, total_size, data);
                if let Some(raw) = raw {
                    match Info::parse_verified(&raw, &self.t.info_hash) {
                        Ok(info) => {
                            debug!(info_hash = %self.t.info_hash, name = %info.name, "metadata received and verified");
                            if let Err(e) = self.t.set_meta(info) {
                                warn!(error = %e, "cannot use the torrent");
                                *lock(&self.t.ctx.last_error) = Some(e.clone());
                                *lock(&self.t.error) = Some(e);
                                self.t.cancel.cancel();
                            }
                        }
                        Err(e) => {
                            warn!(error = %e, "metadata from peers does not match the info-hash");
                            self.t.state().metadata.failed();
                        }
                    }
                }
            }
            MetadataMessage::Reject { piece } => {
                self.meta_pending = None;
                self.t.state().metadata.rejected(self.conn, piece);
            }
        }
        Ok(())
    }

    async fn on_event(&mut self, e: Event) -> Result<(), PeerError> {
        match e {
            Event::Have(i) => {
                // A request still out for a piece we now have (another peer or network
                // delivered it) is cancelled.
                let stale: Vec<(u32, u32)> = self
                    .outstanding
                    .keys()
                    .filter(|k| k.0 == i)
                    .copied()
                    .collect();
                for key in stale {
                    self.outstanding.remove(&key);
                    let block = self.t.meta().and_then(|m| {
                        let len = m.geometry.piece_len(m.geometry.index(key.0).ok()?);
                        let n = len.checked_sub(key.1)?.min(BLOCK_LEN);
                        m.geometry.block(key.0, key.1, n).ok()
                    });
                    if let Some(block) = block {
                        self.send(Message::Cancel(block.into())).await?;
                    }
                }
                let theirs = self
                    .t
                    .meta()
                    .and_then(|m| m.geometry.index(i).ok())
                    .is_some_and(|vi| self.bitfield.as_ref().is_some_and(|b| b.get(vi)));
                if !theirs {
                    self.send(Message::Have(i)).await?;
                }
            }
            // Pieces a resumed transfer already holds are announced with haves.
            Event::MetadataReady => self.resync().await?,
            Event::Cancel { block, except } => {
                let key = (block.index().get(), block.begin());
                if except != self.conn && self.outstanding.remove(&key).is_some() {
                    self.t.state().pieces.release(self.conn, [key]);
                    self.send(Message::Cancel(block.into())).await?;
                }
            }
        }
        Ok(())
    }

    /// After missed events: pick up metadata, and re-send our bitfield as haves.
    async fn resync(&mut self) -> Result<(), PeerError> {
        self.materialize()?;
        if let Some(meta) = self.t.meta().cloned() {
            let have = self.t.state().pieces.have().clone();
            for i in meta.geometry.indices() {
                if have.get(i) && !self.bitfield.as_ref().is_some_and(|b| b.get(i)) {
                    self.send(Message::Have(i.get())).await?;
                }
            }
        }
        Ok(())
    }

    /// BEP 11: tells the peer which other peers we are connected to (and which left).
    async fn send_pex(&mut self) -> Result<(), PeerError> {
        let Some(their) = self.their_pex_id else {
            return Ok(());
        };
        if self.t.meta().is_some_and(|m| m.info.private) {
            return Ok(());
        }
        let current: std::collections::HashSet<SocketAddr> = {
            let st = self.t.state();
            st.peers
                .iter()
                .filter(|(c, _)| **c != self.conn)
                .filter_map(|(_, p)| p.listen)
                .filter(|a| *a != self.addr)
                .take(500)
                .collect()
        };
        let added: Vec<SocketAddr> = current
            .difference(&self.pex_sent)
            .take(PEX_MAX)
            .copied()
            .collect();
        let dropped: Vec<SocketAddr> = self
            .pex_sent
            .difference(&current)
            .take(PEX_MAX)
            .copied()
            .collect();
        if added.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        for a in &added {
            self.pex_sent.insert(*a);
        }
        for d in &dropped {
            self.pex_sent.remove(d);
        }
        let msg = PexMessage {
            added: added
                .into_iter()
                .map(|a| (a, crate::wire::PexFlags(crate::wire::PexFlags::REACHABLE)))
                .collect(),
            dropped,
        };
        self.send(Message::Extended {
            id: their,
            payload: Bytes::from(msg.encode()),
        })
        .await
    }

    /// Keeps interest accurate and the request pipeline full.
    async fn fill(&mut self) -> Result<(), PeerError> {
        let Some(meta) = self.t.meta().cloned() else {
            return self.fill_metadata().await;
        };
        if matches!(self.t.storage, super::storage::Storage::MetadataOnly) {
            return Ok(()); // only the metadata was wanted
        }
        if self.bitfield.is_none() {
            self.materialize()?;
        }
        let Some(bf) = self.bitfield.as_ref() else {
            return Ok(());
        };
        let (want, blocks) = {
            let mut st = self.t.state();
            let want = st.pieces.wants_from(bf);
            let depth = self.depth.min(self.their_reqq);
            let need = depth.saturating_sub(self.outstanding.len());
            let ready = want && self.am_interested && need >= depth / 4;
            let storage = &self.t.storage;
            let geometry = &meta.geometry;
            let mut claim = |i: crate::piece::ValidPieceIndex| {
                storage.claim_piece(geometry.piece_offset(i), u64::from(geometry.piece_len(i)))
            };
            // Where a reader waits, as a piece index.
            let reader = storage
                .priority()
                .map(|o| (o / u64::from(meta.info.piece_length.max(1))) as u32);
            let blocks = if ready && !self.peer_choking {
                st.pieces
                    .pick(self.conn, bf, need, &meta.geometry, reader, &mut claim)
            } else if ready && !self.allowed_in.is_empty() {
                // Choked: only the allowed-fast pieces it has (BEP 6).
                let mut only = Bitfield::empty(bf.piece_count());
                for i in &self.allowed_in {
                    if let Ok(vi) = meta.geometry.index(*i)
                        && bf.get(vi)
                    {
                        only.set(vi, true);
                    }
                }
                st.pieces
                    .pick(self.conn, &only, need, &meta.geometry, reader, &mut claim)
            } else {
                Vec::new()
            };
            (want, blocks)
        };
        if want != self.am_interested {
            self.am_interested = want;
            self.send(if want {
                Message::Interested
            } else {
                Message::NotInterested
            })
            .await?;
        }
        if !blocks.is_empty() {
            let mut out = BytesMut::with_capacity(blocks.len() * 17);
            let now = Instant::now();
            for b in blocks {
                self.outstanding.insert((b.index().get(), b.begin()), now);
                Message::Request(b.into()).encode(&mut out);
            }
            if self.outstanding.len() == out.len() / 17 {
                self.last_block = now; // a fresh pipeline: time from now
            }
            self.tx
                .send((out.freeze(), false))
                .await
                .map_err(|_| PeerError::Closed("writer gone"))?;
        }
        Ok(())
    }

    async fn fill_metadata(&mut self) -> Result<(), PeerError> {
        let (Some(their), Some(size)) = (self.their_meta_id, self.their_meta_size) else {
            return Ok(());
        };
        if self.meta_pending.is_some() {
            return Ok(());
        }
        let next = {
            let mut st = self.t.state();
            st.metadata.begin(self.conn, size);
            st.metadata.next(self.conn, size)
        };
        if let Some(piece) = next {
            self.meta_pending = Some(Instant::now());
            self.send(Message::Extended {
                id: their,
                payload: Bytes::from(MetadataMessage::Request { piece }.encode()),
            })
            .await?;
        }
        Ok(())
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
            self.t.state().pieces.release(self.conn, keys);
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

/// Checks an assembled piece, stores it if good, and bans whoever sent a bad one.
fn complete_piece(
    t: &Torrent,
    meta: &super::torrent::Meta,
    index: crate::piece::ValidPieceIndex,
    data: Vec<u8>,
    contributors: &[ConnId],
    addr: SocketAddr,
) {
    let hash_ok = meta.info.verify_piece(index, &data);
    let stored = hash_ok
        && match t
            .storage
            .store_verified(meta.geometry.piece_offset(index), &data)
        {
            Ok(()) => true,
            Err(junction_core::SinkError::Closed) => {
                t.cancel.cancel();
                false
            }
            Err(e) => {
                warn!(error = %e, piece = index.get(), "cannot store a verified piece");
                false
            }
        };
    if !hash_ok {
        warn!(%addr, piece = index.get(), "piece failed its SHA-1 check");
    }
    let blame: &[ConnId] = if hash_ok { &[] } else { contributors };
    let kill = t.finish_piece(index, stored, blame);
    let mut st = t.state();
    st.pieces.recycle(data);
    for k in kill {
        if let Some(e) = st.peers.get(&k) {
            e.kill.cancel();
        }
    }
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
