//! Downloads: one orchestrator per fetch that finds sources (request sources, callbacks for
//! LowIDs) and runs a driver per peer. Drivers pick blocks the transfer grants them (its
//! sink is shared with the other networks). The hashset a peer sends is checked against the
//! ed2k hash and given to the sink, which verifies every part whoever fetched it; a peer
//! whose bytes fail is dropped.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddrV4;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use junction_core::swarm::{UnitAlgo, UnitHashes};
use junction_core::{
    FetchEvent, FetchEvents, FetchRequest, HashKind, NetworkError, RangeSet, TransferSink,
};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::Shared;
use super::peer::{self, PeerCaps};
use super::recovery::{Asked, Recovery};
use super::session::Cmd;
use crate::hash::{BLOCK_SIZE, PART_SIZE, part_count, part_hash_count, root_of_parts};
use crate::net::{ConnError, send};
use crate::wire::peer::ByteRange;
use crate::wire::{ClientId, Frame, Hash16, PartStatus, PeerMessage};

/// Largest compressed block we buffer (a block plus zlib's worst-case overhead).
const MAX_PACKED_BLOCK: u64 = 3 * BLOCK_SIZE + 4096;

/// Why a driver stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DlError {
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("peer does not have the file")]
    NotFound,
    #[error("peer sent corrupt data and was dropped")]
    Banned,
    #[error("sink: {0}")]
    Sink(#[from] junction_core::SinkError),
    #[error("{0}")]
    Other(String),
}

#[derive(Default)]
struct Inner {
    hashset: Option<Vec<Hash16>>,
    in_flight: RangeSet,
    /// Peers fetching in each part: a peer keeps to the part it started.
    claims: HashMap<u64, HashSet<u64>>,
}

/// One running download.
pub(crate) struct Download {
    s: Arc<Shared>,
    hash: Hash16,
    size: u64,
    /// The transfer's sink: it hands out the blocks to fetch (shared with the other
    /// networks) and checks every part against the MD4s this download gives it.
    sink: Arc<dyn TransferSink>,
    /// AICH block hashes, asked of peers when the user gave an AICH root.
    aich: Recovery,
    st: Mutex<Inner>,
    changed: Notify,
    events: mpsc::Sender<FetchEvent>,
}

impl Download {
    fn st(&self) -> MutexGuard<'_, Inner> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn part_range(&self, p: u64) -> Range<u64> {
        let a = p * PART_SIZE;
        a..(a + PART_SIZE).min(self.size)
    }

    fn note(&self, text: String) {
        let _ = self.events.try_send(FetchEvent::Note(text));
    }

    /// Every part verified (by the sink, whoever fetched it).
    pub fn is_done(&self) -> bool {
        self.sink.wanted().is_empty()
    }

    /// A peer whose bytes failed a part check.
    fn banned(&self, peer: u64) -> bool {
        self.sink.is_banned(peer)
    }

    /// Gives the part MD4s to the sink, which then checks every part, whoever wrote it.
    /// False for a sink that does not check (nothing could be verified).
    fn learn(&self, parts: &[Hash16]) -> bool {
        let n = usize::try_from(part_count(self.size)).unwrap_or(usize::MAX);
        let units = UnitHashes::uniform(
            UnitAlgo::Md4,
            PART_SIZE,
            parts.iter().take(n).map(|h| h.to_vec()).collect(),
        );
        self.sink.learn(units)
    }

    fn needs_hashset(&self) -> bool {
        self.size >= PART_SIZE && self.st().hashset.is_none()
    }

    /// Accepts a hashset if it fits the file.
    fn set_hashset(&self, parts: Vec<Hash16>) -> bool {
        if parts.len() as u64 != part_hash_count(self.size) || root_of_parts(&parts) != self.hash {
            return false;
        }
        let mut st = self.st();
        if st.hashset.is_none() {
            st.hashset = Some(parts.clone());
            drop(st);
            if !self.learn(&parts) {
                self.note(
                    "this transfer's sink does not check parts; eD2k cannot fetch into it".into(),
                );
            }
        }
        true
    }

    /// The bytes of the parts a peer has (all of them when it sent no part status: a
    /// complete source).
    fn has_bytes(&self, status: &PartStatus) -> RangeSet {
        let mut out = RangeSet::new();
        for p in 0..part_count(self.size) {
            if status.is_empty() || status.get(usize::try_from(p).unwrap_or(usize::MAX)) {
                out.insert(self.part_range(p));
            }
        }
        out
    }

    /// Picks up to `max` blocks the peer has, which the transfer grants (no network has
    /// or fetches them): first in a part this peer already works on (eMule keeps a peer on
    /// its part, so parts complete and are checked early); else the transfer picks a new
    /// part among the peer's, one no other peer works on if it can: where a reader waits,
    /// then the end of the file, then the part fewest sources have.
    fn pick(&self, peer: u64, status: &PartStatus, max: usize) -> Vec<Range<u64>> {
        // The peer's parts count toward the rarity the transfer's claims follow.
        self.sink.availability(peer, Some(self.has_bytes(status)));
        let mut wanted = self.sink.wanted();
        // Bytes any network wrote wait for their part's check, not for us.
        for w in self.sink.written().iter() {
            wanted.remove(w);
        }
        let mut st = self.st();
        let n = part_count(self.size);
        let has =
            |p: u64| status.is_empty() || status.get(usize::try_from(p).unwrap_or(usize::MAX));
        let avail = |st: &Inner, p: u64| -> RangeSet {
            let pr = self.part_range(p);
            let mut r = RangeSet::new();
            for w in wanted.iter() {
                let a = w.start.max(pr.start);
                let b = w.end.min(pr.end);
                r.insert(a..b);
            }
            for x in st.in_flight.iter() {
                r.remove(x);
            }
            r
        };
        let mut out = Vec::new();
        let mine: Vec<u64> = (0..n)
            .filter(|p| has(*p) && st.claims.get(p).is_some_and(|c| c.contains(&peer)))
            .collect();
        for p in mine {
            let a = avail(&st, p);
            self.fill(&mut st, peer, p, a, max, &mut out);
            if !out.is_empty() {
                return out;
            }
        }
        for lonely in [true, false] {
            let mut within = RangeSet::new();
            for p in (0..n).filter(|p| has(*p)) {
                if lonely && st.claims.get(&p).is_some_and(|c| !c.is_empty()) {
                    continue;
                }
                for r in avail(&st, p).iter() {
                    within.insert(r);
                }
            }
            if within.is_empty() {
                continue;
            }
            let Some(b) = self.sink.claim_in(peer, &within, BLOCK_SIZE) else {
                continue;
            };
            // A block ends at a block boundary counted from its part's start.
            let p = b.start / PART_SIZE;
            let pr = self.part_range(p);
            let boundary = pr.start + ((b.start - pr.start) / BLOCK_SIZE + 1) * BLOCK_SIZE;
            let end = b.end.min(boundary).min(pr.end);
            if end < b.end {
                self.sink.release(peer, end..b.end);
            }
            st.in_flight.insert(b.start..end);
            out.push(b.start..end);
            let a = avail(&st, p);
            self.fill(&mut st, peer, p, a, max, &mut out);
            st.claims.entry(p).or_default().insert(peer);
            break;
        }
        out
    }

    /// Claims blocks of part `p` from its free bytes `a` until `out` holds `max`.
    fn fill(
        &self,
        st: &mut Inner,
        peer: u64,
        p: u64,
        mut a: RangeSet,
        max: usize,
        out: &mut Vec<Range<u64>>,
    ) {
        let pr = self.part_range(p);
        while out.len() < max {
            let Some(r) = a.iter().next() else { break };
            // Cut at block boundaries counted from the part start.
            let rel = r.start - pr.start;
            let boundary = pr.start + (rel / BLOCK_SIZE + 1) * BLOCK_SIZE;
            let end = r.end.min(boundary).min(pr.end);
            a.remove(r.start..end);
            // Only what the transfer hands us.
            let Some(b) = self.sink.claim(peer, r.start..end, BLOCK_SIZE) else {
                continue;
            };
            st.in_flight.insert(b.clone());
            out.push(b);
        }
    }

    fn release(&self, peer: u64, ranges: &[Range<u64>]) {
        for r in ranges {
            self.sink.release(peer, r.clone());
        }
        let mut st = self.st();
        for r in ranges {
            st.in_flight.remove(r.clone());
        }
        for c in st.claims.values_mut() {
            c.remove(&peer);
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// A block arrived whole and is written: the sink checked its part if it completed it.
    fn block_done(&self, peer: u64, r: Range<u64>) {
        self.sink.release(peer, r.clone());
        self.st().in_flight.remove(r);
        self.changed.notify_waiters();
    }
}

/// Where a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Src {
    High(SocketAddrV4),
    Low(u32),
}

impl Src {
    fn parse(addr: &str) -> Option<Src> {
        if let Some(id) = addr.strip_prefix("lowid:") {
            return id
                .parse()
                .ok()
                .filter(|&v| ClientId(v).is_low_id() && v != 0)
                .map(Src::Low);
        }
        addr.parse::<SocketAddrV4>()
            .ok()
            .filter(|a| a.port() != 0)
            .map(Src::High)
    }
    fn from_id(id: ClientId, port: u16) -> Option<Src> {
        if id.is_low_id() {
            (id.0 != 0).then_some(Src::Low(id.0))
        } else {
            (port != 0).then(|| Src::High(SocketAddrV4::new(id.to_ipv4(), port)))
        }
    }
}

struct SrcState {
    key: u64,
    tries: u32,
    next_try: Instant,
    active: bool,
}

/// Starts a fetch; events end when it has nothing more to do.
pub(crate) async fn start(
    s: Arc<Shared>,
    req: FetchRequest,
    sink: Arc<dyn TransferSink>,
) -> Result<FetchEvents, NetworkError> {
    let hash: Hash16 = req
        .id
        .get(HashKind::Ed2k)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| NetworkError::Invalid("an eD2k fetch needs an ed2k hash".into()))?;
    let size = if req.size > 0 {
        req.size
    } else {
        req.id.size.unwrap_or(0)
    };
    if size == 0 || size > crate::hash::MAX_FILE_SIZE {
        return Err(NetworkError::Invalid(format!("bad eD2k file size {size}")));
    }
    if sink.size() != size {
        return Err(NetworkError::Invalid(format!(
            "sink holds {} bytes, the file has {size}",
            sink.size()
        )));
    }
    let (etx, erx) = mpsc::channel(64);
    let dl = Arc::new(Download {
        s: s.clone(),
        hash,
        size,
        sink,
        aich: Recovery::new(req.id.get(HashKind::Aich).and_then(|h| h.try_into().ok())),
        st: Mutex::new(Inner::default()),
        changed: Notify::new(),
        events: etx,
    });
    // One part: its MD4 is the ed2k hash. Larger files give the sink their part MD4s
    // once a peer sent the hashset.
    if size < PART_SIZE && !dl.learn(&[hash]) {
        return Err(NetworkError::Invalid(
            "eD2k fetches only into a sink that checks parts".into(),
        ));
    }
    let initial: Vec<Src> = req
        .sources
        .iter()
        .filter_map(|x| Src::parse(&x.address))
        .collect();
    let span = tracing::info_span!("ed2k_fetch", hash = %crate::hash::to_hex(&hash), size);
    tokio::spawn(orchestrate(dl, initial).instrument(span));
    Ok(tokio_stream::wrappers::ReceiverStream::new(erx).boxed())
}

async fn orchestrate(dl: Arc<Download>, initial: Vec<Src>) {
    let s = dl.s.clone();
    let cancel = s.cancel.child_token();
    let _drop_guard = cancel.clone().drop_guard();
    let (src_tx, mut src_rx) = mpsc::channel::<Vec<(ClientId, u16)>>(16);
    let mut sources: HashMap<Src, SrcState> = HashMap::new();
    let mut next_key = 1u64;
    let mut add = |sources: &mut HashMap<Src, SrcState>, src: Src| {
        let me = s.id();
        let mine = match src {
            Src::Low(id) => me.is_low_id() && id == me.0,
            Src::High(a) => {
                !me.is_low_id() && ClientId::from_ipv4(*a.ip()) == me && a.port() == s.port
            }
        };
        if !mine && !sources.contains_key(&src) && sources.len() < 1000 {
            sources.insert(
                src,
                SrcState {
                    key: next_key,
                    tries: 0,
                    next_try: Instant::now(),
                    active: false,
                },
            );
            next_key += 1;
        }
    };
    for src in initial {
        add(&mut sources, src);
    }
    let mut tasks: JoinSet<(Src, Result<(), DlError>)> = JoinSet::new();
    let mut next_query = Instant::now();
    let mut idle_since = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_peers = u32::MAX;
    loop {
        if dl.is_done() {
            dl.note("complete: every part verified".into());
            break;
        }
        let active = tasks.len() as u32;
        if active != last_peers {
            last_peers = active;
            let _ = dl.events.try_send(FetchEvent::Peers(active));
        }
        if active > 0 {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= s.cfg.fetch_idle_timeout {
            dl.note("no usable eD2k source left".into());
            break;
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = dl.events.closed() => break,
            Some(list) = src_rx.recv() => {
                for (id, port) in list {
                    if let Some(src) = Src::from_id(id, port) {
                        add(&mut sources, src);
                    }
                }
                continue;
            }
            Some(j) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((src, res)) = j
                    && let Some(st) = sources.get_mut(&src)
                {
                    st.active = false;
                    match res {
                        Ok(()) => st.next_try = Instant::now() + Duration::from_secs(2),
                        Err(e) => {
                            tracing::debug!(?src, error = %e, "source failed");
                            st.tries += 1;
                            st.next_try = Instant::now() + Duration::from_secs(5) * st.tries;
                        }
                    }
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        if now >= next_query {
            next_query = now + s.cfg.source_requery;
            let _ = s.session.try_send(Cmd::GetSources {
                hash: dl.hash,
                size: dl.size,
                sources: src_tx.clone(),
            });
        }
        let max = s.cfg.max_peers_per_download.max(1);
        for (src, st) in sources.iter_mut() {
            if tasks.len() >= max {
                break;
            }
            if st.active || st.next_try > now || st.tries >= 5 || dl.banned(st.key) {
                continue;
            }
            st.active = true;
            let (dl2, src2, key) = (dl.clone(), *src, st.key);
            let span = tracing::debug_span!("ed2k_source", src = ?src2);
            tasks.spawn(async move { (src2, source_task(dl2, src2, key).await) }.instrument(span));
        }
    }
    let _ = dl.events.try_send(FetchEvent::Peers(0));
    tasks.shutdown().await;
}

async fn source_task(dl: Arc<Download>, src: Src, key: u64) -> Result<(), DlError> {
    let s = dl.s.clone();
    let conn = match src {
        Src::High(a) => peer::connect(&s, a).await?,
        Src::Low(id) => {
            if s.id().is_low_id() || s.port == 0 {
                return Err(DlError::Other(
                    "a LowID source cannot reach us: we are LowID too".into(),
                ));
            }
            let (tx, rx) = oneshot::channel();
            s.callbacks().insert(id, tx);
            if s.session.try_send(Cmd::Callback(ClientId(id))).is_err() {
                s.callbacks().remove(&id);
                return Err(DlError::Other("server session busy".into()));
            }
            match tokio::time::timeout(s.cfg.callback_timeout, rx).await {
                Ok(Ok(c)) => c,
                _ => {
                    s.callbacks().remove(&id);
                    return Err(DlError::Conn(ConnError::Timeout("LowID callback")));
                }
            }
        }
    };
    let (dtx, drx) = mpsc::channel(64);
    let caps = conn.caps;
    let ctx = conn.tx.clone();
    let s2 = s.clone();
    tokio::spawn(
        async move {
            if let Err(e) = peer::run(s2, conn, Some(dtx)).await {
                tracing::debug!(error = %e, "download connection ended");
            }
        }
        .in_current_span(),
    );
    let r = drive(&dl, &ctx, caps, drx, key).await;
    // Its parts no longer count toward rarity.
    dl.sink.availability(key, None);
    r
}

async fn recv(
    rx: &mut mpsc::Receiver<PeerMessage>,
    limit: Duration,
    what: &'static str,
) -> Result<PeerMessage, DlError> {
    match tokio::time::timeout(limit, rx.recv()).await {
        Err(_) => Err(ConnError::Timeout(what).into()),
        Ok(None) => Err(ConnError::Closed.into()),
        Ok(Some(m)) => Ok(m),
    }
}

async fn out(
    tx: &mpsc::Sender<Frame>,
    caps: PeerCaps,
    m: &PeerMessage,
    limit: Duration,
) -> Result<(), DlError> {
    Ok(send(tx, m.to_frame(caps.enc()).map_err(ConnError::from)?, limit).await?)
}

/// Waits for an upload slot at the peer.
async fn wait_accept(
    dl: &Download,
    rx: &mut mpsc::Receiver<PeerMessage>,
    status: &mut PartStatus,
) -> Result<(), DlError> {
    let deadline = Instant::now() + dl.s.cfg.queue_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match recv(rx, left, "an upload slot").await? {
            PeerMessage::AcceptUploadRequest => return Ok(()),
            PeerMessage::QueueRank(r) => dl.note(format!("queued at rank {r}")),
            PeerMessage::QueueRanking(r) => dl.note(format!("queued at rank {r}")),
            PeerMessage::FileNotFound(_) => return Err(DlError::NotFound),
            PeerMessage::FileStatus { parts, .. } if parts.check_for_size(dl.size).is_ok() => {
                *status = parts;
            }
            _ => {}
        }
    }
}

/// The download protocol with one peer over an established connection.
async fn drive(
    dl: &Arc<Download>,
    tx: &mpsc::Sender<Frame>,
    caps: PeerCaps,
    mut rx: mpsc::Receiver<PeerMessage>,
    peer: u64,
) -> Result<(), DlError> {
    let t = dl.s.cfg.peer_timeout;
    let hash = dl.hash;
    if dl.size > u64::from(u32::MAX) && !caps.large_files {
        return Err(DlError::Other(
            "peer does not support files over 4 GiB".into(),
        ));
    }
    out(
        tx,
        caps,
        &PeerMessage::RequestFilename { hash, ext: None },
        t,
    )
    .await?;
    out(tx, caps, &PeerMessage::SetReqFileId(hash), t).await?;
    let mut name = false;
    let mut status: Option<PartStatus> = None;
    while !name || (status.is_none() && dl.size >= PART_SIZE) {
        match recv(&mut rx, t, "file request answers").await? {
            PeerMessage::FilenameAnswer { .. } => name = true,
            PeerMessage::FileNotFound(_) => return Err(DlError::NotFound),
            PeerMessage::FileStatus { parts, .. } => {
                parts
                    .check_for_size(dl.size)
                    .map_err(|e| DlError::Other(e.to_string()))?;
                status = Some(parts);
            }
            _ => {}
        }
    }
    let mut status = status.unwrap_or_else(|| PartStatus::new(0));
    if dl.needs_hashset() {
        out(tx, caps, &PeerMessage::HashsetRequest(hash), t).await?;
        loop {
            match recv(&mut rx, t, "hashset").await? {
                PeerMessage::HashsetAnswer { hash: h, parts } if h == hash => {
                    if !dl.set_hashset(parts) {
                        return Err(DlError::Other(
                            "peer sent a hashset that does not match the file hash".into(),
                        ));
                    }
                    break;
                }
                PeerMessage::FileNotFound(_) => return Err(DlError::NotFound),
                PeerMessage::FileStatus { parts, .. } if parts.check_for_size(dl.size).is_ok() => {
                    status = parts;
                }
                _ => {}
            }
        }
    }
    out(tx, caps, &PeerMessage::StartUploadRequest(Some(hash)), t).await?;
    wait_accept(dl, &mut rx, &mut status).await?;
    let mut requeues = 0;
    let mut pending: Vec<Pending> = Vec::new();
    let res = transfer(
        dl,
        tx,
        caps,
        &mut rx,
        peer,
        &mut status,
        &mut pending,
        &mut requeues,
    )
    .await;
    let left: Vec<Range<u64>> = pending.iter().map(|p| p.range.clone()).collect();
    if !left.is_empty() {
        dl.release(peer, &left);
    }
    res
}

struct Pending {
    range: Range<u64>,
    got: RangeSet,
    packed: Vec<u8>,
    /// The block's packets as they came, written in one piece once the block is whole.
    chunks: Vec<(u64, Bytes)>,
}

/// Requests blocks and receives them, keeping up to two `OP_REQUESTPARTS` (six blocks) in
/// flight so the uploader never waits for our next request.
#[allow(clippy::too_many_arguments)]
async fn transfer(
    dl: &Arc<Download>,
    tx: &mpsc::Sender<Frame>,
    caps: PeerCaps,
    rx: &mut mpsc::Receiver<PeerMessage>,
    peer: u64,
    status: &mut PartStatus,
    pending: &mut Vec<Pending>,
    requeues: &mut u32,
) -> Result<(), DlError> {
    let t = dl.s.cfg.peer_timeout;
    let hash = dl.hash;
    // One AICH request at a time per peer, as eMule keeps it; none once it could not answer.
    let mut aich_asked = Asked {
        recovery: &dl.aich,
        part: None,
    };
    let mut aich_ok = caps.aich;
    loop {
        if pending.is_empty() {
            if dl.is_done() {
                let _ = out(tx, caps, &PeerMessage::EndOfDownload(hash), t).await;
                return Ok(());
            }
            if dl.banned(peer) {
                let _ = out(tx, caps, &PeerMessage::CancelTransfer, t).await;
                return Err(DlError::Banned);
            }
        }
        if pending.len() <= 3 && !dl.banned(peer) {
            let blocks = dl.pick(peer, status, 3);
            if !blocks.is_empty() {
                let mut ranges = [ByteRange::default(); 3];
                for (i, b) in blocks.iter().enumerate() {
                    ranges[i] = ByteRange::new(b.start, b.end)
                        .map_err(|e| DlError::Other(e.to_string()))?;
                }
                let starts = blocks.iter().map(|b| b.start);
                let ask = aich_ok && aich_asked.part.is_none();
                if let Some((part, master)) =
                    ask.then(|| dl.aich.next_request(dl.size, starts)).flatten()
                {
                    aich_asked.part = Some(part);
                    out(
                        tx,
                        caps,
                        &PeerMessage::AichRequest { hash, part, master },
                        t,
                    )
                    .await?;
                }
                pending.extend(blocks.into_iter().map(|range| Pending {
                    range,
                    got: RangeSet::new(),
                    packed: Vec::new(),
                    chunks: Vec::new(),
                }));
                out(tx, caps, &PeerMessage::RequestParts { hash, ranges }, t).await?;
            }
        }
        if pending.is_empty() {
            // Everything left is in flight elsewhere or being verified.
            let notified = dl.changed.notified();
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                m = rx.recv() => match m {
                    None => return Err(ConnError::Closed.into()),
                    Some(PeerMessage::FileStatus { parts, .. }) if parts.check_for_size(dl.size).is_ok() => *status = parts,
                    Some(_) => {}
                },
            }
            continue;
        }
        match recv(rx, t, "part data").await? {
            PeerMessage::SendingPart {
                hash: h,
                range,
                data,
            } if h == hash => {
                let i = pending
                    .iter()
                    .position(|p| range.start >= p.range.start && range.end <= p.range.end)
                    .ok_or_else(|| {
                        DlError::Other(format!("unrequested data {}..{}", range.start, range.end))
                    })?;
                pending[i].got.insert(range.start..range.end);
                pending[i].chunks.push((range.start, data));
                if pending[i].got.contains(pending[i].range.clone()) {
                    // The block goes to disk in one write of whole pages (blocks start on
                    // page boundaries), which the sink can keep out of the page cache.
                    let mut p = pending.remove(i);
                    let block = assemble(&p.range, &mut p.chunks);
                    dl.sink.write_from(peer, p.range.start, &block)?;
                    dl.block_done(peer, p.range);
                }
            }
            PeerMessage::CompressedPart {
                hash: h,
                start,
                packed_total,
                data,
            } if h == hash => {
                let i = pending
                    .iter()
                    .position(|p| p.range.start == start)
                    .ok_or_else(|| {
                        DlError::Other(format!("unrequested compressed block at {start}"))
                    })?;
                let p = &mut pending[i];
                let total = u64::from(packed_total);
                if total > MAX_PACKED_BLOCK || (p.packed.len() + data.len()) as u64 > total {
                    return Err(DlError::Other(
                        "compressed block larger than announced".into(),
                    ));
                }
                p.packed.extend_from_slice(&data);
                if p.packed.len() as u64 == total {
                    let want = usize::try_from(p.range.end - p.range.start).unwrap_or(0);
                    let plain = crate::wire::frame::inflate(&p.packed, want)
                        .map_err(|e| DlError::Other(e.to_string()))?;
                    if plain.len() != want {
                        return Err(DlError::Other(format!(
                            "compressed block inflates to {} bytes, {want} expected",
                            plain.len()
                        )));
                    }
                    dl.sink.write_from(peer, start, &plain)?;
                    let p = pending.remove(i);
                    dl.block_done(peer, p.range);
                }
            }
            PeerMessage::FileStatus { parts, .. } if parts.check_for_size(dl.size).is_ok() => {
                *status = parts;
            }
            PeerMessage::AichAnswer {
                hash: h,
                part,
                master,
                recovery,
            } if h == hash && aich_asked.part == Some(part) => {
                aich_asked.part = None;
                match dl
                    .aich
                    .answered(dl.size, &*dl.sink, part, &master, &recovery)
                {
                    Ok(()) => tracing::debug!(part, "AICH block hashes verified"),
                    Err(why) => {
                        tracing::info!(part, %why, "AICH recovery data refused");
                        aich_ok = false;
                    }
                }
            }
            PeerMessage::AichAnswerFailed(h) if h == hash => {
                if let Some(part) = aich_asked.part.take() {
                    dl.aich.unanswered(part);
                }
                aich_ok = false;
            }
            PeerMessage::OutOfPartRequests
            | PeerMessage::CancelTransfer
            | PeerMessage::QueueRank(_)
            | PeerMessage::QueueRanking(_) => {
                // The peer ended our slot: give the blocks back and ask again.
                let left: Vec<Range<u64>> = pending.drain(..).map(|p| p.range).collect();
                dl.release(peer, &left);
                *requeues += 1;
                if *requeues > 3 {
                    return Ok(());
                }
                out(tx, caps, &PeerMessage::StartUploadRequest(Some(hash)), t).await?;
                wait_accept(dl, rx, status).await?;
            }
            PeerMessage::FileNotFound(_) => return Err(DlError::NotFound),
            _ => {}
        }
    }
}

/// One block's bytes from the packets that brought it (each inside `range`, together
/// covering it; overlaps carry the same bytes).
fn assemble(range: &Range<u64>, chunks: &mut [(u64, Bytes)]) -> Vec<u8> {
    chunks.sort_by_key(|c| c.0);
    let len = usize::try_from(range.end - range.start).unwrap_or(0);
    let mut block = Vec::with_capacity(len);
    for (start, data) in chunks.iter() {
        let at = usize::try_from(start - range.start).unwrap_or(usize::MAX);
        if at > block.len() {
            block.resize(at.min(len), 0);
        }
        if let Some(rest) = data.get(block.len().saturating_sub(at)..) {
            block.extend_from_slice(rest);
        }
    }
    block.resize(len, 0);
    block
}

/// Finds sources for a hash through the server session.
pub(crate) async fn locate(
    s: &Arc<Shared>,
    hash: Hash16,
    size: u64,
) -> Result<mpsc::Receiver<Vec<(ClientId, u16)>>, NetworkError> {
    let (tx, rx) = mpsc::channel(8);
    s.session
        .send(Cmd::GetSources {
            hash,
            size,
            sources: tx,
        })
        .await
        .map_err(|_| NetworkError::Shutdown)?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_assembled_from_packets_in_any_order() {
        let mut chunks = vec![
            (107, Bytes::from_static(b"world")),
            (100, Bytes::from_static(b"hello, ")),
            (105, Bytes::from_static(b", w")), // overlaps, same bytes
        ];
        assert_eq!(assemble(&(100..112), &mut chunks), b"hello, world");
    }

    #[test]
    fn sources_parse() {
        assert_eq!(Src::parse("lowid:5"), Some(Src::Low(5)));
        assert_eq!(Src::parse("lowid:0"), None);
        assert_eq!(Src::parse("lowid:99999999"), None);
        assert_eq!(
            Src::parse("127.0.0.1:4662"),
            Some(Src::High("127.0.0.1:4662".parse().unwrap()))
        );
        assert_eq!(Src::parse("127.0.0.1:0"), None);
        assert_eq!(Src::parse("junk"), None);
        assert_eq!(Src::from_id(ClientId(7), 0), Some(Src::Low(7)));
        assert_eq!(Src::from_id(ClientId(0), 0), None);
    }
}
