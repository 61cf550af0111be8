//! The core task: owns the links, the routing tables, the host and pong
//! caches, live searches and dynamic queries. Everything reaches it as a
//! [`CoreMsg`] (see [`super::inbox`]) on one bounded channel.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, debug_span, info, trace};

use super::Shared;
use super::conn;
use super::error::ServentError;
use super::hits::{HITS_PER_MESSAGE, VENDOR, hit_record, our_hit, trailer};
use super::hosts::HostCache;
use super::inbox::{Command, CoreMsg, RemoteHit};
use super::link::{self, Admission, Link, Out, PeerInfo};
use super::net;
use super::router::{ConnId, HARD_TTL_LIMIT, Inbound, Route, Router, next_hop};
use crate::wire::descriptor_header::{Header, kind};
use crate::wire::ext::{ExtArea, Item};
use crate::wire::ggep::{self, Block, Extension};
use crate::wire::guid::Guid;
use crate::wire::handshake::HandshakeProfile;
use crate::wire::message::{
    Bye, FW2FW_FILE_INDEX, HOPS_FLOW, HitRecord, Message, PUSH_PROXY_ACK, PUSH_PROXY_REQUEST, Ping,
    Pong, Push, QUERY_DONE, QhdTrailer, Query, QueryFlags, QueryHit, SupportedMessage,
    TCP_CONNECT_BACK, VendorMessage,
};
use crate::wire::push_proxy::trailer_proxies;
use crate::wire::qrp::{QrpReceiver, QrpTable};
use crate::wire::urn::{Sha1Hash, Urn};

mod command;
mod done;
mod links;
mod pong;
mod push_proxy;
mod query;
mod vendor;

pub use pong::cached_pong_header;
use pong::reply_hop;

/// Keep-alive ping period per link.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// Pause between dynamic-query steps.
const DQ_STEP: Duration = Duration::from_millis(1500);
/// A dynamic query gives up after this long.
const DQ_LIFETIME: Duration = Duration::from_secs(90);
/// A probe's results are awaited this long per hop of its TTL (out and back): 0.75 s
/// for our leaves, 1.5 s for a TTL 2 probe (one widening step), 3 s at TTL 4.
const PROBE_WAIT_PER_HOP: Duration = Duration::from_millis(750);
/// After a hit, more are awaited at least this long: a query still finding goes on.
const HIT_QUIET: Duration = Duration::from_secs(1);
/// A leaf's search, when an ultrapeer it asked cannot say that its dynamic query is
/// done (it does not read Query Done), ends once no hit came for this long: two
/// widening steps and a margin.
const SEARCH_SETTLE: Duration = Duration::from_secs(4);
/// GUIDs remembered for routing.
const ROUTE_CAP: usize = 64 * 1024;
/// Pongs kept for answering pings.
const PONG_CACHE: usize = 32;
/// Concurrent outgoing dials.
const MAX_DIALING: usize = 4;
/// Pushes answered (GIV connections) at once.
const MAX_PUSH_UPLOADS: usize = 8;
/// Push waiters kept.
const MAX_GIV_WAITERS: usize = 256;
/// Live searches kept.
const MAX_SEARCHES: usize = 256;
/// Dynamic queries run at once (ours and our leaves').
const MAX_DQS: usize = 1024;
/// Queries per second a leaf may send us on average, and in a burst.
const LEAF_QUERY_RATE: f64 = 5.0;
const LEAF_QUERY_BURST: f64 = 20.0;
/// Our version byte in GGEP `VC`.
const VERSION_BYTE: u8 = 0x01;
/// How often ultrapeers get our last-hop QRP table again (when it changed).
const UP_TABLE_EVERY: Duration = Duration::from_secs(10);
/// The vendor messages Junction reads and acts on, announced in "Messages Supported".
pub const SUPPORTED_VENDOR_MESSAGES: [SupportedMessage; 5] = [
    HOPS_FLOW,
    TCP_CONNECT_BACK,
    PUSH_PROXY_REQUEST,
    PUSH_PROXY_ACK,
    QUERY_DONE,
];
/// Time allowed for a TCP connect back (connect and write `\n\n`).
const CONNECT_BACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before redialling a host whose link ended.
const REDIAL_AFTER: Duration = Duration::from_secs(30);

struct Peer {
    info: PeerInfo,
    tx: mpsc::Sender<Out>,
    qrp: QrpReceiver,
    /// The last-hop table we last sent this ultrapeer.
    sent_table: Option<QrpTable>,
    /// Query tokens (flood control for leaves) and when they were last refilled.
    tokens: (f64, Instant),
    last_ping: Instant,
    dialed: Option<SocketAddr>,
    /// The vendor messages it said it reads ("Messages Supported").
    supported: Vec<SupportedMessage>,
    /// Queries with this many hops or more are not sent to it (Hops Flow).
    hops_flow: u8,
    /// We already answered one TCP Connect Back request of this link.
    connected_back: bool,
    /// As a leaf: the push proxy this ultrapeer acknowledged being.
    push_proxy: Option<SocketAddrV4>,
}

struct Search {
    tx: mpsc::Sender<RemoteHit>,
    deadline: Instant,
    sha1: Option<Sha1Hash>,
    /// Results delivered.
    hits: u32,
    /// When the last hit was delivered (at first: when it started).
    last_hit: Instant,
    until: Until,
}

/// What, besides its result goal and its deadline, ends a search of ours.
enum Until {
    /// Our dynamic query ending (as an ultrapeer).
    Dq,
    /// As a leaf: every ultrapeer asked saying its dynamic query is done (Query Done);
    /// when some cannot say so (`unsignalled`), also [`SEARCH_SETTLE`] without a hit.
    Ultrapeers {
        waiting: HashSet<ConnId>,
        unsignalled: bool,
    },
}

struct DynQuery {
    query: Query,
    hops: u8,
    origin: Route,
    sent: HashSet<ConnId>,
    hits: u32,
    started: Instant,
    next: Instant,
    step: u8,
    /// Every ultrapeer it could ask was asked: no more widening.
    exhausted: bool,
    /// Results are awaited until then (the last probe's wait, or a while after a hit).
    wait_until: Instant,
    /// The answer from the gateway's other networks, for a leaf's query (bridging on
    /// demand): done once the task is finished, its hits queued on the leaf's link.
    bridging: Option<tokio::task::JoinHandle<Option<()>>>,
}

/// The core task's state.
pub struct Core {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<CoreMsg>,
    tx: mpsc::Sender<CoreMsg>,
    cancel: CancellationToken,
    peers: HashMap<ConnId, Peer>,
    next_id: ConnId,
    router: Router,
    hosts: HostCache,
    endpoints: VecDeque<SocketAddr>,
    /// Cached pongs: the link it came on, its hops when it arrived, the pong.
    pongs: VecDeque<(ConnId, u8, Pong)>,
    searches: HashMap<Guid, Search>,
    dqs: HashMap<Guid, DynQuery>,
    givs: HashMap<Guid, Vec<oneshot::Sender<(TcpStream, BytesMut)>>>,
    dialing: HashSet<SocketAddr>,
    backoff: junction_core::Redials<SocketAddr>,
    advertised_known: bool,
    last_up_tables: Instant,
    started: Instant,
    push_slots: Arc<tokio::sync::Semaphore>,
}

impl Core {
    /// A core reading `rx`; `tx` is its own sender (for spawned dials).
    pub fn new(
        shared: Arc<Shared>,
        rx: mpsc::Receiver<CoreMsg>,
        tx: mpsc::Sender<CoreMsg>,
        cancel: CancellationToken,
        bootstrap: Vec<SocketAddr>,
    ) -> Self {
        let advertised_known = {
            let a = shared.my_addr();
            !a.ip().is_unspecified()
        };
        Core {
            router: Router::new(ROUTE_CAP, shared.cfg.max_ttl),
            shared,
            rx,
            tx,
            cancel,
            peers: HashMap::new(),
            next_id: 1,
            hosts: HostCache::new(1024),
            endpoints: bootstrap.into_iter().take(64).collect(),
            pongs: VecDeque::new(),
            searches: HashMap::new(),
            dqs: HashMap::new(),
            givs: HashMap::new(),
            dialing: HashSet::new(),
            // gtk-gnutella bans hosts that handshake too often: back off from 30 s.
            backoff: junction_core::Redials::new(REDIAL_AFTER, REDIAL_AFTER * 64),
            advertised_known,
            last_up_tables: Instant::now(),
            started: Instant::now(),
            push_slots: Arc::new(tokio::sync::Semaphore::new(MAX_PUSH_UPLOADS)),
        }
    }

    /// Run until shutdown.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => break,
                m = self.rx.recv() => match m {
                    None => break,
                    Some(m) => self.handle(m),
                },
                _ = tick.tick() => self.tick(),
            }
        }
        self.bye_all();
        self.cancel.cancel();
    }

    fn bye_all(&mut self) {
        for (_, p) in self.peers.drain() {
            let _ = p.tx.try_send(Out::Bye(Bye::new(200, "Servent shutdown")));
        }
        self.update_counts();
    }

    fn count(&self, ultrapeers: bool) -> usize {
        self.peers
            .values()
            .filter(|p| p.info.ultrapeer == ultrapeers)
            .count()
    }

    fn update_counts(&self) {
        let s = &self.shared.stats;
        s.ultrapeers
            .store(self.count(true) as u64, Ordering::Relaxed);
        s.leaves.store(self.count(false) as u64, Ordering::Relaxed);
        s.hosts.store(self.hosts.len() as u64, Ordering::Relaxed);
        let tables = self
            .peers
            .values()
            .filter(|p| !p.info.ultrapeer && p.qrp.table().is_some())
            .count();
        s.leaf_tables.store(tables as u64, Ordering::Relaxed);
    }

    fn handle(&mut self, m: CoreMsg) {
        match m {
            CoreMsg::Admit {
                ultrapeer,
                addr,
                listen,
                reply,
            } => {
                let _ = reply.send(self.admit(ultrapeer, addr, listen));
            }
            CoreMsg::Connected(link) => self.connected(link),
            CoreMsg::DialFailed { addr, err } => self.dial_failed(addr, &err),
            CoreMsg::Message { id, desc } => self.on_message(id, desc),
            CoreMsg::Down { id, why } => {
                if let Some(p) = self.remove_peer(id) {
                    debug!(id, peer = %p.info.addr, %why, "link down");
                }
                self.update_counts();
            }
            CoreMsg::Giv { giv, stream, buf } => {
                if let Some(list) = self.givs.get_mut(&giv.servent)
                    && let Some(w) = list.pop()
                {
                    let _ = w.send((stream, buf));
                    if list.is_empty() {
                        self.givs.remove(&giv.servent);
                    }
                } else {
                    debug!(servent = %giv.servent, "unexpected GIV");
                }
            }
            CoreMsg::Cmd(c) => self.command(c),
        }
    }

    /// Queue a message on a link; a full queue drops it (flow control).
    fn send(&self, id: ConnId, h: Header, m: &Message) -> bool {
        let Some(p) = self.peers.get(&id) else {
            return false;
        };
        let Some(b) = link::encode(h, m) else {
            return false;
        };
        p.tx.try_send(Out::Msg(b)).is_ok()
    }

    fn send_bytes(&self, id: ConnId, b: &Bytes) -> bool {
        self.peers
            .get(&id)
            .is_some_and(|p| p.tx.try_send(Out::Msg(b.clone())).is_ok())
    }

    fn on_message(&mut self, id: ConnId, desc: crate::wire::message::Descriptor) {
        if !self.peers.contains_key(&id) {
            return;
        }
        let h = desc.header;
        trace!(id, kind = h.kind, ttl = h.ttl, hops = h.hops, "descriptor");
        match desc.message {
            Message::Ping(_) => self.on_ping(id, h),
            Message::Pong(p) => self.on_pong(id, h, p),
            Message::Query(q) => self.on_query(id, h, q),
            Message::QueryHit(hit) => self.on_hit(id, h, hit),
            Message::Push(p) => self.on_push(id, h, p),
            Message::Bye(b) => {
                debug!(id, code = b.code, reason = %b.reason_line(), "peer said bye");
                if b.code >= 300
                    && let Some(p) = self.peers.get(&id)
                {
                    self.shared.set_error(format!(
                        "{} said Bye {} {}",
                        p.info.addr,
                        b.code,
                        b.reason_line()
                    ));
                }
                self.remove_peer(id);
                self.update_counts();
            }
            Message::RouteTable(u) => {
                let r = self
                    .peers
                    .get_mut(&id)
                    .map(|p| p.qrp.apply(&u))
                    .unwrap_or(Ok(false));
                match r {
                    Err(e) => self.bye(id, 400, &format!("Bad QRP message: {e}")),
                    Ok(true) => self.update_counts(),
                    Ok(false) => {}
                }
            }
            Message::Vendor(v) => self.on_vendor(id, h, v),
            Message::Unknown { .. } => {}
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        // Keep-alive pings.
        let due: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| now.duration_since(p.last_ping) >= PING_EVERY)
            .map(|(c, _)| *c)
            .collect();
        for c in due {
            let h = Header::new(Guid::modern(rand::random()), kind::PING, 1, 0, 0);
            self.router.originate(h.guid, kind::PING);
            self.send(c, h, &Message::Ping(Ping::default()));
            if let Some(p) = self.peers.get_mut(&c) {
                p.last_ping = now;
            }
        }
        self.finish(now);
        let steps: Vec<Guid> = self
            .dqs
            .iter()
            .filter(|(_, d)| !d.exhausted && d.next <= now)
            .map(|(g, _)| *g)
            .collect();
        for g in steps {
            self.dq_step(g);
        }
        self.givs.retain(|_, v| {
            v.retain(|w| !w.is_closed());
            !v.is_empty()
        });
        if now.duration_since(self.last_up_tables) >= UP_TABLE_EVERY {
            self.send_up_tables();
        }
        self.maintain();
        self.update_counts();
    }
}
