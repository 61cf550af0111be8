//! The downloading side: HTTP/1.1 `Range` requests to several sources at
//! once, `X-Alt` sources learnt on the way, `503` retried later, push (`GIV`)
//! for firewalled sources. Ranges are claimed from the transfer (shared with the other
//! networks); the SHA-1 goes to the sink, which checks the bytes by it (and by any finer
//! hash another network learnt) and names sources to drop.

mod connect;
mod plan;
mod session;
mod source;
mod tiger_tree;

use std::collections::HashMap;
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
use plan::{Ctx, Plan, ThexState};
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
            Some(a) = alt_rx.recv() => add(&mut sources, &banned, SourceInfo { addr: a, servent: None, index: None, push: false, busy: false, proxies: Vec::new() }),
            h = hit_rx.recv(), if hits_open => match h {
                Some(h) => add(&mut sources, &banned, SourceInfo::from_hit(&h)),
                None => hits_open = false,
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
