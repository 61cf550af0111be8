//! The downloading side: HTTP/1.1 `Range` requests to several sources at
//! once, `X-Alt` sources learnt on the way, `503` retried later, push (`GIV`)
//! for firewalled sources. Ranges are claimed from the transfer (shared with the other
//! networks); the SHA-1 goes to the sink, which checks the bytes by it (and by any finer
//! hash another network learnt) and names sources to drop.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use junction_core::swarm::{UnitAlgo, UnitHashes};
use junction_core::{
    FetchEvent, FetchRequest, HashKind, NetworkId, RangeSet, Source, TransferSink,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tracing::{Instrument, debug, debug_span, info, warn};

use super::Shared;
use super::conn::{CONNECT_TIMEOUT, WRITE_TIMEOUT, read_head};
use super::core::{Command, CoreMsg, RemoteHit};
use super::error::ServentError;
use crate::urn::{Sha1Hash, TigerHash, Urn};
use crate::wire::header::Guid;
use crate::wire::http::{RequestHead, ResponseHead};
use crate::wire::message::Query;
use crate::wire::thex;

/// Wait for a response head.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Wait for body bytes.
const BODY_STALL: Duration = Duration::from_secs(30);
/// Wait for a pushed servent's `GIV`.
const GIV_TIMEOUT: Duration = Duration::from_secs(30);
/// Sources remembered per download.
const MAX_SOURCES: usize = 64;
/// A source failing this many times in a row is dropped.
const MAX_FAILS: u32 = 3;
/// Read size while receiving bodies.
const READ_BUF: usize = 256 * 1024;
/// Sources asked for the THEX tree per transfer before giving up on it.
const MAX_THEX_TRIES: usize = 3;
/// Longest `X-Thex-URI` path we follow.
const MAX_THEX_PATH: usize = 512;

/// A Gnutella source as a [`Source`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Where it listens.
    pub addr: SocketAddrV4,
    /// Its servent GUID (for pushes).
    pub servent: Option<Guid>,
    /// The file index it gave.
    pub index: Option<u32>,
    /// Firewalled: needs a push.
    pub push: bool,
    /// All its upload slots were taken when it answered.
    pub busy: bool,
}

impl SourceInfo {
    /// From a hit.
    pub fn from_hit(h: &RemoteHit) -> Self {
        SourceInfo {
            addr: h.addr,
            servent: Some(h.servent),
            index: Some(h.index),
            push: h.push,
            busy: h.busy,
        }
    }

    /// As a contract [`Source`]: `ip:port`, detail `guid=…;index=…;push=0|1;busy=0|1`.
    pub fn to_source(&self) -> Source {
        let mut d = Vec::new();
        if let Some(g) = self.servent {
            d.push(format!("guid={g}"));
        }
        if let Some(i) = self.index {
            d.push(format!("index={i}"));
        }
        d.push(format!("push={}", u8::from(self.push)));
        d.push(format!("busy={}", u8::from(self.busy)));
        Source {
            network: NetworkId::GNUTELLA,
            address: self.addr.to_string(),
            detail: Some(d.join(";")),
        }
    }

    /// Parse a [`Source`] of ours (unknown detail keys are ignored).
    pub fn parse(s: &Source) -> Option<Self> {
        if s.network != NetworkId::GNUTELLA {
            return None;
        }
        let addr = crate::wire::headers::parse_addr_v4(&s.address)?;
        let mut out = SourceInfo {
            addr,
            servent: None,
            index: None,
            push: false,
            busy: false,
        };
        for kv in s.detail.as_deref().unwrap_or("").split(';') {
            match kv.split_once('=') {
                Some(("guid", v)) => out.servent = Guid::from_hex(v).ok(),
                Some(("index", v)) => out.index = v.parse().ok(),
                Some(("push", v)) => out.push = v == "1",
                Some(("busy", v)) => out.busy = v == "1",
                _ => {}
            }
        }
        Some(out)
    }
}

/// Byte ranges still to fetch and those being fetched.
#[derive(Debug)]
struct Plan {
    need: RangeSet,
    inflight: RangeSet,
}

impl Plan {
    fn claim(&mut self, chunk: u64, from: u64) -> Option<Range<u64>> {
        let r = self.need.first_from(from)?;
        let end = r.end.min(r.start.saturating_add(chunk.max(1)));
        let r = r.start..end;
        self.need.remove(r.clone());
        self.inflight.insert(r.clone());
        Some(r)
    }

    /// A claim ended; `got` are the bytes received in it (or beside it).
    fn settle(&mut self, claimed: Range<u64>, got: Option<Range<u64>>) {
        self.inflight.remove(claimed.clone());
        self.need.insert(claimed);
        if let Some(g) = got {
            self.need.remove(g);
        }
    }
}

#[derive(Debug)]
enum End {
    /// Nothing left to claim.
    Finished,
    /// Busy or queued: come back later.
    Retry(Duration, Option<String>),
    /// Did not work.
    Failed(String),
}

struct SourceState {
    info: SourceInfo,
    next_try: Instant,
    fails: u32,
    active: bool,
}

/// The THEX tree of a transfer: fetched once, from one source at a time.
#[derive(Default)]
struct ThexState {
    /// A tree was learnt.
    done: bool,
    /// A source is fetching it.
    busy: bool,
    /// Sources asked already.
    tried: std::collections::HashSet<SocketAddrV4>,
}

struct Ctx {
    sha1: Option<Sha1Hash>,
    /// The TTH known before any source was contacted (never one a source announced):
    /// the only root a THEX tree is checked against.
    tth: Option<TigerHash>,
    thex: Mutex<ThexState>,
    /// The sink checks the SHA-1 (and any finer hash another network learnt) itself, and
    /// hands out claims shared with the other networks.
    verifies: std::sync::atomic::AtomicBool,
    /// The SHA-1 a source announced (`X-Gnutella-Content-URN`) when we knew none.
    learned: Mutex<Option<Sha1Hash>>,
    name: String,
    size: u64,
    plan: Mutex<Plan>,
    sink: Arc<dyn TransferSink>,
    shared: Arc<Shared>,
    core: mpsc::Sender<CoreMsg>,
    alts: mpsc::Sender<SocketAddrV4>,
}

impl Ctx {
    /// The SHA-1 to ask for and verify against: the one we were given, or the
    /// one the first source announced.
    fn sha1(&self) -> Option<Sha1Hash> {
        self.sha1
            .or(*self.learned.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether to ask `addr` for the tree now; if so it is marked busy and tried.
    fn take_thex_turn(&self, addr: SocketAddrV4) -> bool {
        if self.tth.is_none() {
            return false;
        }
        let mut t = self.thex.lock().unwrap_or_else(|e| e.into_inner());
        if t.done || t.busy || t.tried.len() >= MAX_THEX_TRIES || !t.tried.insert(addr) {
            return false;
        }
        t.busy = true;
        true
    }

    /// A THEX fetch ended; `learnt` if its tree was taken.
    fn thex_ended(&self, learnt: bool) {
        let mut t = self.thex.lock().unwrap_or_else(|e| e.into_inner());
        t.busy = false;
        t.done |= learnt;
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn verifies(&self) -> bool {
        self.verifies.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Tells the sink the whole-file SHA-1, so it checks the file whoever wrote it.
    fn learn(&self, h: Sha1Hash) {
        let units = UnitHashes::whole(UnitAlgo::Sha1, self.size, &h.0);
        if self.sink.learn(units) {
            self.verifies
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// What is left to fetch, as the sink sees it: neither verified nor written by anyone.
    fn refresh(&self) {
        let mut need = self.sink.wanted();
        for w in self.sink.written().iter() {
            need.remove(w);
        }
        let mut p = self.plan();
        for r in p.inflight.clone().iter() {
            need.remove(r);
        }
        p.need = need;
    }

    /// The next range for `source`: from where a reader waits, bytes no other source or
    /// network is fetching.
    fn claim(&self, source: u64, chunk: u64) -> Option<Range<u64>> {
        let from = self.sink.priority().unwrap_or(0);
        loop {
            let r = self.plan().claim(chunk, from)?;
            match self.sink.claim(source, r.clone(), chunk) {
                Some(c) => {
                    // Keep only what the sink gave; the rest stays needed.
                    let mut p = self.plan();
                    p.settle(r.clone(), None);
                    p.need.remove(c.clone());
                    p.inflight.insert(c.clone());
                    return Some(c);
                }
                // Another network or source has it: not ours to fetch now.
                None => self.plan().inflight.remove(r),
            }
        }
    }
}

/// A source's number for the sink: its address.
fn source_tag(a: SocketAddrV4) -> u64 {
    (u64::from(u32::from(*a.ip())) << 16) | u64::from(a.port())
}

/// Fetch `req` into `sink`, reporting on `events`, until done, hopeless or `events` is dropped.
pub async fn run(
    req: FetchRequest,
    sink: Arc<dyn TransferSink>,
    shared: Arc<Shared>,
    core: mpsc::Sender<CoreMsg>,
    events: mpsc::Sender<FetchEvent>,
) {
    let size = sink.size();
    let sha1 = req
        .id
        .get(HashKind::Sha1)
        .and_then(|d| <[u8; 20]>::try_from(d).ok())
        .map(Sha1Hash);
    let wanted = sink.wanted();
    if wanted.is_empty() {
        return;
    }
    // Bytes written by an earlier run are checked with the rest by the final SHA-1; a
    // mismatch makes the whole file wanted again.
    let mut need = wanted;
    for w in sink.written().iter() {
        need.remove(w);
    }
    let tth = req
        .id
        .get(HashKind::Tth)
        .and_then(|d| <[u8; 24]>::try_from(d).ok())
        .map(TigerHash);
    let (alt_tx, mut alt_rx) = mpsc::channel(64);
    let ctx = Arc::new(Ctx {
        sha1,
        tth,
        thex: Mutex::new(ThexState::default()),
        verifies: std::sync::atomic::AtomicBool::new(false),
        learned: Mutex::new(None),
        name: req.name.clone(),
        size,
        plan: Mutex::new(Plan {
            need,
            inflight: RangeSet::new(),
        }),
        sink,
        shared: shared.clone(),
        core: core.clone(),
        alts: alt_tx,
    });
    if let Some(h) = sha1 {
        ctx.learn(h);
    }
    let mut sources: HashMap<SocketAddrV4, SourceState> = HashMap::new();
    let mut banned: std::collections::HashSet<SocketAddrV4> = Default::default();
    let now = Instant::now();
    let add = |sources: &mut HashMap<SocketAddrV4, SourceState>,
               banned: &std::collections::HashSet<SocketAddrV4>,
               info: SourceInfo| {
        if sources.len() >= MAX_SOURCES
            || info.addr == shared.my_addr()
            || banned.contains(&info.addr)
        {
            return;
        }
        sources.entry(info.addr).or_insert(SourceState {
            info,
            next_try: now,
            fails: 0,
            active: false,
        });
    };
    for s in req.sources.iter().filter_map(SourceInfo::parse) {
        add(&mut sources, &banned, s);
    }
    // Look for more sources by URN while we download.
    let (hit_tx, mut hit_rx) = mpsc::channel::<RemoteHit>(64);
    if let Some(h) = sha1 {
        let _ = core
            .send(CoreMsg::Cmd(Command::Search {
                query: Query::by_urn(&Urn::Sha1(h)),
                tx: hit_tx,
            }))
            .await;
    } else {
        drop(hit_tx);
    }
    let mut hits_open = sha1.is_some();
    let mut workers: JoinSet<(SocketAddrV4, End)> = JoinSet::new();
    let mut last_peers = u32::MAX;
    let mut identified = sha1.is_some();
    loop {
        if !identified && let Some(h) = ctx.sha1() {
            identified = true;
            let mut id = req.id.clone();
            id.size = Some(size);
            id.set(HashKind::Sha1, &h.0);
            let _ = events.try_send(FetchEvent::Identified(id));
            ctx.learn(h);
        }
        // The sink checks the bytes (by the SHA-1, and any finer hash another network
        // learnt): done once it has verified them all.
        if ctx.sink.wanted().is_empty() {
            info!(size, "download verified");
            let _ = events.try_send(FetchEvent::Note("complete: SHA-1 verified".into()));
            return;
        }
        ctx.refresh();
        let all_written = {
            let p = ctx.plan();
            p.need.is_empty() && p.inflight.is_empty()
        };
        if all_written && workers.is_empty() && !ctx.verifies() {
            let _ = events.try_send(FetchEvent::Note(
                "no SHA-1 known: the download cannot be verified".into(),
            ));
            return;
        }
        let now = Instant::now();
        let active = sources.values().filter(|s| s.active).count();
        let mut room = ctx
            .shared
            .cfg
            .download_sources
            .max(1)
            .saturating_sub(active);
        let more_work = !ctx.plan().need.is_empty();
        if more_work {
            for s in sources.values_mut() {
                if room == 0 {
                    break;
                }
                if s.active || s.next_try > now {
                    continue;
                }
                s.active = true;
                room -= 1;
                let info = s.info.clone();
                let c = ctx.clone();
                let span = debug_span!("gnutella_download", source = %info.addr);
                workers.spawn(
                    async move {
                        let a = info.addr;
                        (a, worker(info, c).await)
                    }
                    .instrument(span),
                );
            }
        }
        let peers = sources.values().filter(|s| s.active).count() as u32;
        if peers != last_peers {
            last_peers = peers;
            let _ = events.try_send(FetchEvent::Peers(peers));
        }
        if sources.is_empty() && workers.is_empty() && !hits_open {
            let _ = events.try_send(FetchEvent::Note("no Gnutella sources left".into()));
            return;
        }
        tokio::select! {
            () = events.closed() => {
                workers.abort_all();
                return;
            }
            () = ctx.shared.cancel.cancelled() => {
                workers.abort_all();
                let _ = events.try_send(FetchEvent::Note("Gnutella is shutting down".into()));
                return;
            }
            Some(r) = workers.join_next(), if !workers.is_empty() => {
                let Ok((addr, end)) = r else { continue };
                debug!(%addr, ?end, "source worker ended");
                let remove = match sources.get_mut(&addr) {
                    Some(s) => {
                        s.active = false;
                        match end {
                            End::Finished => { s.fails = 0; false }
                            End::Retry(d, note) => {
                                s.next_try = Instant::now() + d;
                                if let Some(n) = note {
                                    let _ = events.try_send(FetchEvent::Note(n));
                                }
                                false
                            }
                            End::Failed(why) => {
                                debug!(%addr, %why, "source failed");
                                s.fails += 1;
                                s.next_try = Instant::now() + Duration::from_secs(10 * u64::from(s.fails));
                                s.fails >= MAX_FAILS
                            }
                        }
                    }
                    None => false,
                };
                if ctx.sink.is_banned(source_tag(addr)) {
                    debug!(%addr, "source sent bytes that failed a hash check; dropped");
                    let _ = events.try_send(FetchEvent::Note(format!("dropped {addr}: its bytes failed a hash check")));
                    banned.insert(addr);
                    sources.remove(&addr);
                } else if remove {
                    sources.remove(&addr);
                }
            }
            Some(a) = alt_rx.recv() => add(&mut sources, &banned, SourceInfo { addr: a, servent: None, index: None, push: false, busy: false }),
            h = hit_rx.recv(), if hits_open => match h {
                Some(h) => add(&mut sources, &banned, SourceInfo::from_hit(&h)),
                None => hits_open = false,
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn open(info: &SourceInfo, ctx: &Ctx) -> Result<(TcpStream, BytesMut), ServentError> {
    let wait = if info.push {
        Duration::from_secs(5)
    } else {
        CONNECT_TIMEOUT
    };
    let direct =
        super::conn::connect_from(ctx.shared.cfg.listen, SocketAddr::V4(info.addr), wait).await;
    let err = match direct {
        Ok(s) => {
            s.set_nodelay(true)?;
            return Ok((s, BytesMut::new()));
        }
        Err(e) => e,
    };
    let Some(servent) = info.servent else {
        return Err(err);
    };
    debug!(%err, "direct connect failed; asking for a push");
    let (tx, rx) = oneshot::channel();
    ctx.core
        .send(CoreMsg::Cmd(Command::Push {
            servent,
            index: info.index.unwrap_or(0),
            reply: tx,
        }))
        .await
        .map_err(|_| ServentError::Shutdown)?;
    timeout(GIV_TIMEOUT, rx)
        .await
        .map_err(|_| ServentError::Timeout("GIV"))?
        .map_err(|_| ServentError::Timeout("GIV"))
}

async fn worker(info: SourceInfo, ctx: Arc<Ctx>) -> End {
    let tag = source_tag(info.addr);
    loop {
        // Claim before connecting, so a source with nothing to do costs no connection.
        let Some(first) = ctx.claim(tag, ctx.shared.cfg.chunk_size) else {
            return End::Finished;
        };
        let (mut s, mut buf) = match open(&info, &ctx).await {
            Ok(x) => x,
            Err(e) => {
                ctx.plan().settle(first.clone(), None);
                ctx.sink.release(tag, first);
                return End::Failed(e.to_string());
            }
        };
        match session(&info, &ctx, &mut s, &mut buf, first).await {
            Ok(Some(end)) => return end,
            Ok(None) => continue, // server closed a kept-alive connection: reconnect
            Err(e) => return End::Failed(e.to_string()),
        }
    }
}

/// Requests on one connection, starting with `first`; `Ok(None)` when the server asked
/// to close.
async fn session(
    info: &SourceInfo,
    ctx: &Ctx,
    s: &mut TcpStream,
    buf: &mut BytesMut,
    first: Range<u64>,
) -> Result<Option<End>, ServentError> {
    let host = info.addr.to_string();
    let ua = ctx.shared.cfg.user_agent.clone();
    let tag = source_tag(info.addr);
    let mut next = Some(first);
    loop {
        let Some(claimed) = next
            .take()
            .or_else(|| ctx.claim(tag, ctx.shared.cfg.chunk_size))
        else {
            return Ok(Some(End::Finished));
        };
        let mut got: Option<Range<u64>> = None;
        let r = request(info, ctx, s, buf, &host, &ua, claimed.clone(), &mut got).await;
        ctx.plan().settle(claimed.clone(), got);
        ctx.sink.release(tag, claimed);
        if ctx.sink.is_banned(tag) {
            return Ok(Some(End::Failed("its bytes failed a hash check".into())));
        }
        match r {
            Ok(Step::More) => {}
            Ok(Step::Close) => return Ok(None),
            Ok(Step::End(e)) => return Ok(Some(e)),
            Err(e) => return Err(e),
        }
    }
}

enum Step {
    More,
    Close,
    End(End),
}

#[allow(clippy::too_many_arguments)]
async fn request(
    info: &SourceInfo,
    ctx: &Ctx,
    s: &mut TcpStream,
    buf: &mut BytesMut,
    host: &str,
    ua: &str,
    claimed: Range<u64>,
    got: &mut Option<Range<u64>>,
) -> Result<Step, ServentError> {
    let range = Some((claimed.start, claimed.end - 1));
    let mut req = match (ctx.sha1(), info.index) {
        (Some(h), _) => RequestHead::get_n2r(&Urn::Sha1(h), host, ua, range),
        (None, Some(i)) => RequestHead::get_by_index(i, &ctx.name, host, ua, range),
        (None, None) => return Ok(Step::End(End::Failed("no URN nor index to ask for".into()))),
    };
    let me = ctx.shared.my_addr();
    if !ctx
        .shared
        .stats
        .firewalled
        .load(std::sync::atomic::Ordering::Relaxed)
        && !me.ip().is_unspecified()
    {
        req.headers.push("X-Node", me.to_string());
    }
    let bytes = req.to_bytes();
    timeout(WRITE_TIMEOUT, s.write_all(&bytes))
        .await
        .map_err(|_| ServentError::Timeout("HTTP request"))??;
    ctx.shared.stats.add_out(bytes.len() as u64);
    let resp = read_head(
        s,
        buf,
        "HTTP response",
        RESPONSE_TIMEOUT,
        ResponseHead::parse,
    )
    .await?;
    ctx.shared.stats.add_in(resp.to_bytes().len() as u64);
    for a in resp.alt_locs().into_iter().take(16) {
        let _ = ctx.alts.try_send(a);
    }
    let close = resp
        .headers
        .get("Connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let body_len = resp.content_length().unwrap_or(0);
    match resp.code {
        200 | 206 => {}
        503 => {
            skip_body(s, buf, body_len).await?;
            let secs = resp.retry_after().unwrap_or(30).clamp(5, 600);
            let note = resp.queued().map(|q| {
                format!(
                    "queued at {} by {}",
                    q.position.map_or("?".to_owned(), |p| p.to_string()),
                    info.addr
                )
            });
            return Ok(Step::End(End::Retry(Duration::from_secs(secs), note)));
        }
        // A partial source (PFSP) without the bytes asked for: it has others, and more
        // later, so it is asked again soon rather than dropped.
        416 if resp.available_ranges().is_some_and(|a| !a.is_empty()) => {
            skip_body(s, buf, body_len).await?;
            let secs = resp.retry_after().unwrap_or(5).clamp(1, 600);
            let note = Some(format!("{} has other parts only", info.addr));
            return Ok(Step::End(End::Retry(Duration::from_secs(secs), note)));
        }
        c => {
            let _ = skip_body(s, buf, body_len).await;
            return Ok(Step::End(End::Failed(format!("HTTP {c} {}", resp.reason))));
        }
    }
    if let Some(announced) = resp.content_urn().and_then(|u| u.sha1()) {
        let mut learned = ctx.learned.lock().unwrap_or_else(|e| e.into_inner());
        match ctx.sha1.or(*learned) {
            Some(want) if want != announced => {
                return Ok(Step::End(End::Failed("source serves another file".into())));
            }
            Some(_) => {}
            None => *learned = Some(announced),
        }
    }
    let (start, end) = match resp.content_range() {
        Some(Ok(cr)) => {
            if cr.total.is_some_and(|t| t != ctx.size) {
                return Ok(Step::End(End::Failed("source has another size".into())));
            }
            (cr.start, cr.end.saturating_add(1))
        }
        Some(Err(e)) => return Err(e.into()),
        None if resp.code == 200 => (0, ctx.size),
        None => return Err(ServentError::Protocol("206 without Content-Range".into())),
    };
    if start >= end || end > ctx.size || resp.content_length().is_some_and(|l| l != end - start) {
        return Err(ServentError::Protocol(format!(
            "bad range {start}..{end} (Content-Length {:?}) for {} bytes",
            resp.content_length(),
            ctx.size
        )));
    }
    // Where this source serves the Tiger tree, if we know a TTH to check it against and
    // have no tree yet.
    let thex_path = resp.headers.get("X-Thex-URI").and_then(thex_path);
    let mut off = start;
    let mut chunk = vec![0u8; READ_BUF];
    while off < end {
        let data: &[u8] = if !buf.is_empty() {
            let n = usize::try_from((end - off).min(buf.len().min(READ_BUF) as u64)).unwrap_or(0);
            let b = buf.split_to(n);
            chunk[..n].copy_from_slice(&b);
            ctx.shared.stats.add_in(n as u64);
            &chunk[..n]
        } else {
            let want = usize::try_from((end - off).min(READ_BUF as u64)).unwrap_or(READ_BUF);
            let n = timeout(BODY_STALL, s.read(&mut chunk[..want]))
                .await
                .map_err(|_| ServentError::Timeout("body"))??;
            if n == 0 {
                return Err(ServentError::Closed("body"));
            }
            ctx.shared.stats.add_in(n as u64);
            &chunk[..n]
        };
        ctx.sink
            .write_from(source_tag(info.addr), off, data)
            .map_err(|e| ServentError::Protocol(format!("sink: {e}")))?;
        off += data.len() as u64;
        *got = Some(start..off);
    }
    if let Some(path) = thex_path.filter(|_| !close && ctx.take_thex_turn(info.addr)) {
        let r = fetch_thex(info, ctx, s, buf, host, ua, &path).await;
        let learnt = matches!(r, Ok(true));
        ctx.thex_ended(learnt);
        match r {
            Ok(_) => {}
            // The connection is in an unknown state: start a fresh one.
            Err(e) => {
                info!(source = %info.addr, %e, "THEX tree not fetched");
                return Ok(Step::Close);
            }
        }
    }
    Ok(if close { Step::Close } else { Step::More })
}

/// The request path of an `X-Thex-URI` value (`<path>[;<root>]`); the root a source
/// announces there is never trusted.
fn thex_path(v: &str) -> Option<String> {
    let p = v.split(';').next()?.trim();
    (p.starts_with('/') && p.len() <= MAX_THEX_PATH && p.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| p.to_owned())
}

/// Fetch the THEX tree at `path` on the open connection, check it against the TTH we
/// knew before asking, and give its deepest level to the sink as a unit grid.
/// `Ok(false)`: the source had no usable tree (ignored; the connection is fine).
#[allow(clippy::too_many_arguments)]
async fn fetch_thex(
    info: &SourceInfo,
    ctx: &Ctx,
    s: &mut TcpStream,
    buf: &mut BytesMut,
    host: &str,
    ua: &str,
    path: &str,
) -> Result<bool, ServentError> {
    let Some(root) = ctx.tth else {
        return Ok(false);
    };
    let req = RequestHead::new(
        "GET",
        path,
        crate::wire::headers::Headers::new()
            .with("Host", host)
            .with("User-Agent", ua),
    );
    let bytes = req.to_bytes();
    timeout(WRITE_TIMEOUT, s.write_all(&bytes))
        .await
        .map_err(|_| ServentError::Timeout("THEX request"))??;
    ctx.shared.stats.add_out(bytes.len() as u64);
    let resp = read_head(
        s,
        buf,
        "THEX response",
        RESPONSE_TIMEOUT,
        ResponseHead::parse,
    )
    .await?;
    ctx.shared.stats.add_in(resp.to_bytes().len() as u64);
    if resp.headers.get("Transfer-Encoding").is_some()
        || resp
            .headers
            .get("Content-Encoding")
            .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(ServentError::Protocol("encoded THEX answer".into()));
    }
    let len = resp
        .content_length()
        .ok_or_else(|| ServentError::Protocol("THEX answer without Content-Length".into()))?;
    if resp.code != 200 {
        skip_body(s, buf, len).await?;
        info!(source = %info.addr, code = resp.code, "no THEX tree from this source");
        return Ok(false);
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= thex::MAX_ANSWER)
        .ok_or_else(|| ServentError::Protocol(format!("THEX answer of {len} bytes")))?;
    let mut body = BytesMut::with_capacity(len);
    let from_buf = buf.len().min(len);
    body.extend_from_slice(&buf.split_to(from_buf));
    let mut tmp = [0u8; 16 * 1024];
    while body.len() < len {
        let want = (len - body.len()).min(tmp.len());
        let n = timeout(BODY_STALL, s.read(&mut tmp[..want]))
            .await
            .map_err(|_| ServentError::Timeout("THEX body"))??;
        if n == 0 {
            return Err(ServentError::Closed("THEX body"));
        }
        body.extend_from_slice(&tmp[..n]);
    }
    ctx.shared.stats.add_in(len as u64);
    let level = match thex::decode_answer(&body.freeze(), ctx.size, &root) {
        Ok(l) => l,
        Err(e) => {
            // Ignored: the source earns nothing for it.
            warn!(source = %info.addr, %e, "bad THEX tree ignored");
            return Ok(false);
        }
    };
    if level.nodes.len() < 2 {
        debug!(source = %info.addr, "THEX tree holds only the root");
        return Ok(false);
    }
    let units = UnitHashes::uniform(
        UnitAlgo::TigerTree,
        level.unit_len,
        level.nodes.iter().map(|n| n.0.to_vec()).collect(),
    );
    let learnt = ctx.sink.learn(units);
    info!(
        source = %info.addr,
        depth = level.depth,
        unit_len = level.unit_len,
        units = level.nodes.len(),
        learnt,
        "THEX tree checked against the known TTH"
    );
    Ok(learnt)
}

async fn skip_body(s: &mut TcpStream, buf: &mut BytesMut, len: u64) -> Result<(), ServentError> {
    if len > 1 << 20 {
        return Err(ServentError::Protocol("large error body".into()));
    }
    let mut left = len;
    let take = left.min(buf.len() as u64);
    let _ = buf.split_to(usize::try_from(take).unwrap_or(0));
    left -= take;
    let mut tmp = [0u8; 4096];
    while left > 0 {
        let n = timeout(BODY_STALL, s.read(&mut tmp))
            .await
            .map_err(|_| ServentError::Timeout("body"))??;
        if n == 0 {
            return Err(ServentError::Closed("body"));
        }
        left = left.saturating_sub(n as u64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_detail_round_trip() {
        let s = SourceInfo {
            addr: "127.0.0.1:6346".parse().unwrap(),
            servent: Some(Guid([3; 16])),
            index: Some(7),
            push: true,
            busy: false,
        };
        assert_eq!(SourceInfo::parse(&s.to_source()), Some(s));
    }

    #[test]
    fn plan_claims_and_settles() {
        let mut p = Plan {
            need: RangeSet::full(10),
            inflight: RangeSet::new(),
        };
        let a = p.claim(4, 0).unwrap();
        assert_eq!(a, 0..4);
        let b = p.claim(4, 0).unwrap();
        assert_eq!(b, 4..8);
        p.settle(a, Some(0..2));
        p.settle(b, Some(4..8));
        assert_eq!(p.need.iter().collect::<Vec<_>>(), vec![2..4, 8..10]);
        assert!(p.inflight.is_empty());
    }
}
