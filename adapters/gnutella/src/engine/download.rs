//! The downloading side: HTTP/1.1 `Range` requests to several sources at
//! once, `X-Alt` sources learnt on the way, `503` retried later, push (`GIV`)
//! for firewalled sources. Ranges are claimed from the transfer (shared with the other
//! networks); the SHA-1 goes to the sink, which checks the bytes by it (and by any finer
//! hash another network learnt) and names sources to drop.

mod connect;
mod exchange;
mod plan;
mod session;
mod source;
mod tiger_tree;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use junction_core::{FetchEvent, FetchRequest, HashKind, RangeSet, TransferSink};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, debug_span, info};

use super::Shared;
use super::inbox::{Command, CoreMsg, RemoteHit};
use crate::wire::message::Query;
use crate::wire::urn::{Sha1Hash, TigerHash, Urn};
use plan::{Ctx, FetchPlan, ThexState};
use session::worker;
pub use source::SourceInfo;
use source::source_tag;

/// Wait for a response head.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Wait for body bytes.
const BODY_STALL: Duration = Duration::from_secs(30);
/// Sources remembered per download.
const MAX_SOURCES: usize = 64;
/// A source failing this many times in a row is dropped.
const MAX_FAILS: u32 = 3;

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

/// Fetch `req` into `sink`, reporting on `events`, until done, hopeless or `events` is dropped.
pub async fn run(
    req: FetchRequest,
    sink: Arc<dyn TransferSink>,
    shared: Arc<Shared>,
    core: mpsc::Sender<CoreMsg>,
    events: mpsc::Sender<FetchEvent>,
) {
    let size = sink.size();
    let (alt_tx, mut alt_rx) = mpsc::channel(64);
    let Some(ctx) = context(&req, sink, size, &shared, &core, alt_tx) else {
        return;
    };
    // The SHA-1 the request names (one learnt from a source comes later).
    let sha1 = ctx.sha1;
    if let Some(h) = sha1 {
        ctx.learn(h);
    }
    let mut sources = Sources::new();
    for s in req.sources.iter().filter_map(SourceInfo::parse) {
        sources.add(&shared, s);
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
        if let Some(note) = over(&ctx, workers.is_empty(), size) {
            let _ = events.try_send(FetchEvent::Note(note.into()));
            return;
        }
        sources.start_workers(&ctx, &mut workers);
        let peers = sources.active() as u32;
        if peers != last_peers {
            last_peers = peers;
            let _ = events.try_send(FetchEvent::Peers(peers));
        }
        if sources.map.is_empty() && workers.is_empty() && !hits_open {
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
                sources.worker_ended(addr, end, &ctx, &events);
            }
            Some(a) = alt_rx.recv() => sources.add(&shared, SourceInfo { addr: a, servent: None, index: None, push: false, busy: false, proxies: Vec::new() }),
            h = hit_rx.recv(), if hits_open => match h {
                Some(h) => sources.add(&shared, SourceInfo::from_hit(&h)),
                None => hits_open = false,
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The context a transfer's workers share: the hashes `req` names, the ranges still
/// needed (what the sink wants and has not written yet: bytes written by an earlier run
/// are checked with the rest by the final SHA-1; a mismatch makes the whole file wanted
/// again). `None` when the sink wants nothing.
fn context(
    req: &FetchRequest,
    sink: Arc<dyn TransferSink>,
    size: u64,
    shared: &Arc<Shared>,
    core: &mpsc::Sender<CoreMsg>,
    alts: mpsc::Sender<SocketAddrV4>,
) -> Option<Arc<Ctx>> {
    let sha1 = req
        .id
        .get(HashKind::Sha1)
        .and_then(|d| <[u8; 20]>::try_from(d).ok())
        .map(Sha1Hash);
    let wanted = sink.wanted();
    if wanted.is_empty() {
        return None;
    }
    let mut need = wanted;
    for w in sink.written().iter() {
        need.remove(w);
    }
    let tth = req
        .id
        .get(HashKind::Tth)
        .and_then(|d| <[u8; 24]>::try_from(d).ok())
        .map(TigerHash);
    Some(Arc::new(Ctx {
        sha1,
        tth,
        thex: Mutex::new(ThexState::default()),
        verifies: std::sync::atomic::AtomicBool::new(false),
        learned: Mutex::new(None),
        name: req.name.clone(),
        size,
        plan: Mutex::new(FetchPlan {
            need,
            inflight: RangeSet::new(),
        }),
        sink,
        shared: shared.clone(),
        core: core.clone(),
        alts,
    }))
}

/// Whether the download is over, and the note that says so: the sink checks the bytes (by
/// the SHA-1, and any finer hash another network learnt) and is done once it verified
/// them all; or everything was written, no worker runs and nothing can verify it.
fn over(ctx: &Ctx, idle: bool, size: u64) -> Option<&'static str> {
    if ctx.sink.wanted().is_empty() {
        info!(size, "download verified");
        return Some("complete: SHA-1 verified");
    }
    ctx.refresh();
    let all_written = {
        let p = ctx.plan();
        p.need.is_empty() && p.inflight.is_empty()
    };
    (all_written && idle && !ctx.verifies())
        .then_some("no SHA-1 known: the download cannot be verified")
}

/// A download's sources: those known (at most [`MAX_SOURCES`]) and those dropped for bytes
/// that failed a hash check.
struct Sources {
    map: HashMap<SocketAddrV4, SourceState>,
    banned: HashSet<SocketAddrV4>,
    /// When the download started: a new source may be tried from then on.
    started: Instant,
}

impl Sources {
    fn new() -> Self {
        Sources {
            map: HashMap::new(),
            banned: HashSet::new(),
            started: Instant::now(),
        }
    }

    /// Remember a source, unless there are enough, it is us, or it was banned.
    fn add(&mut self, shared: &Shared, info: SourceInfo) {
        if self.map.len() >= MAX_SOURCES
            || info.addr == shared.my_addr()
            || self.banned.contains(&info.addr)
        {
            return;
        }
        self.map.entry(info.addr).or_insert(SourceState {
            info,
            next_try: self.started,
            fails: 0,
            active: false,
        });
    }

    /// Sources with a worker running.
    fn active(&self) -> usize {
        self.map.values().filter(|s| s.active).count()
    }

    /// While ranges are still needed, start a worker for each source due, up to
    /// `download_sources` at once.
    fn start_workers(&mut self, ctx: &Arc<Ctx>, workers: &mut JoinSet<(SocketAddrV4, End)>) {
        let now = Instant::now();
        let mut room = ctx
            .shared
            .cfg
            .download_sources
            .max(1)
            .saturating_sub(self.active());
        if ctx.plan().need.is_empty() {
            return;
        }
        for s in self.map.values_mut() {
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

    /// A source's worker ended: when to try it again, or drop it (failed too often, or
    /// its bytes failed a hash check: then it is banned).
    fn worker_ended(
        &mut self,
        addr: SocketAddrV4,
        end: End,
        ctx: &Ctx,
        events: &mpsc::Sender<FetchEvent>,
    ) {
        debug!(%addr, ?end, "source worker ended");
        let remove = match self.map.get_mut(&addr) {
            Some(s) => {
                s.active = false;
                match end {
                    End::Finished => {
                        s.fails = 0;
                        false
                    }
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
            let _ = events.try_send(FetchEvent::Note(format!(
                "dropped {addr}: its bytes failed a hash check"
            )));
            self.banned.insert(addr);
            self.map.remove(&addr);
        } else if remove {
            self.map.remove(&addr);
        }
    }
}
