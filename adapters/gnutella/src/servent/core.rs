//! The core task: owns the links, the routing tables, the host and pong
//! caches, live searches and dynamic queries. Everything reaches it as a
//! [`CoreMsg`] on one bounded channel.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, debug_span, info, trace};

use super::Shared;
use super::conn::{self, Admission, Link, Out, PeerInfo};
use super::error::ServentError;
use super::hosts::HostCache;
use super::router::{ConnId, HARD_TTL_LIMIT, Inbound, Route, Router, next_hop};
use crate::urn::{Sha1Hash, TigerHash, Urn};
use crate::wire::ext::{ExtArea, Item};
use crate::wire::ggep::{self, Block, Extension};
use crate::wire::handshake::HandshakeProfile;
use crate::wire::header::{Guid, Header, kind};
use crate::wire::http::Giv;
use crate::wire::message::{
    Bye, FW2FW_FILE_INDEX, HOPS_FLOW, HitRecord, Message, Ping, Pong, Push, QhdTrailer, Query,
    QueryFlags, QueryHit, SupportedMessage, TCP_CONNECT_BACK, VendorMessage, qhd,
};
use crate::wire::qrp::{QrpReceiver, QrpTable};

/// Keep-alive ping period per link.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// Pause between dynamic-query steps.
const DQ_STEP: Duration = Duration::from_millis(1500);
/// A dynamic query gives up after this long.
const DQ_LIFETIME: Duration = Duration::from_secs(90);
/// GUIDs remembered for routing.
const ROUTE_CAP: usize = 64 * 1024;
/// Pongs kept for answering pings.
const PONG_CACHE: usize = 32;
/// Hits per QueryHit message we send.
pub(crate) const HITS_PER_MESSAGE: usize = 10;
/// Our vendor code in QueryHit trailers.
pub const VENDOR: [u8; 4] = *b"JNCT";
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
pub const SUPPORTED_VENDOR_MESSAGES: [SupportedMessage; 2] = [HOPS_FLOW, TCP_CONNECT_BACK];
/// Time allowed for a TCP connect back (connect and write `\n\n`).
const CONNECT_BACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before redialling a host whose link ended.
const REDIAL_AFTER: Duration = Duration::from_secs(30);

/// A result from the network, for a search of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHit {
    /// Where the servent says it is.
    pub addr: SocketAddrV4,
    /// Its servent GUID (for pushes).
    pub servent: Guid,
    /// File index.
    pub index: u32,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-1, when the hit carries one.
    pub sha1: Option<Sha1Hash>,
    /// eD2k hash, when the hit carries one (`urn:ed2khash:`, as Shareaza sends).
    pub ed2k: Option<[u8; 16]>,
    /// Tiger tree root, when the hit carries one (GGEP `TT`, a bitprint, `urn:tree:tiger:`).
    pub tth: Option<TigerHash>,
    /// It is firewalled: reach it by push.
    pub push: bool,
    /// All its upload slots are taken.
    pub busy: bool,
}

/// Requests from the adapter handle and from transfers.
#[derive(Debug)]
pub enum Command {
    /// Start a search; hits go to `tx` until it is closed or times out.
    Search {
        /// The query to send.
        query: Query,
        /// Results.
        tx: mpsc::Sender<RemoteHit>,
    },
    /// The share index changed: send our QRP table again.
    SharesChanged,
    /// Remember and connect to a host.
    AddEndpoint(SocketAddr),
    /// Ask `servent` to connect back with `GIV`.
    Push {
        /// The firewalled servent.
        servent: Guid,
        /// File index to name in the Push.
        index: u32,
        /// Gets the socket once the `GIV` arrived.
        reply: oneshot::Sender<(TcpStream, BytesMut)>,
    },
    /// Say Bye to everyone and stop.
    Shutdown(oneshot::Sender<()>),
}

/// Everything the core reacts to.
#[derive(Debug)]
pub enum CoreMsg {
    /// An incoming handshake asks to be admitted.
    Admit {
        /// The peer says it is an ultrapeer.
        ultrapeer: bool,
        /// Its address.
        addr: SocketAddr,
        /// Where it says it listens (never suggested back to it).
        listen: Option<SocketAddrV4>,
        /// The decision.
        reply: oneshot::Sender<Admission>,
    },
    /// A handshake completed.
    Connected(Link),
    /// An outgoing connection failed.
    DialFailed {
        /// Where we dialled.
        addr: SocketAddr,
        /// Why.
        err: ServentError,
    },
    /// A descriptor arrived on a link.
    Message {
        /// The link.
        id: ConnId,
        /// The descriptor.
        desc: crate::wire::message::Descriptor,
    },
    /// A link ended.
    Down {
        /// The link.
        id: ConnId,
        /// Why.
        why: String,
    },
    /// A `GIV` arrived on our listening socket.
    Giv {
        /// The line.
        giv: Giv,
        /// The socket, for the HTTP request.
        stream: TcpStream,
        /// Bytes read past the line.
        buf: BytesMut,
    },
    /// From the handle.
    Cmd(Command),
}

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
}

struct Search {
    tx: mpsc::Sender<RemoteHit>,
    deadline: Instant,
    sha1: Option<Sha1Hash>,
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
    backoff: HashMap<SocketAddr, (Instant, u32)>,
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
            backoff: HashMap::new(),
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
                    Some(CoreMsg::Cmd(Command::Shutdown(done))) => {
                        self.bye_all();
                        let _ = done.send(());
                        break;
                    }
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

    fn profile(&self) -> HandshakeProfile {
        HandshakeProfile {
            user_agent: self.shared.cfg.user_agent.clone(),
            ultrapeer: self.shared.cfg.ultrapeer,
            listen: Some(self.shared.my_addr())
                .filter(|a| !a.ip().is_unspecified())
                .map(SocketAddr::V4),
            guid: Some(self.shared.guid),
            degree: 32,
            max_ttl: self.shared.cfg.max_ttl,
            deflate: true,
            live_since: None,
            features: vec!["browse/1.0".to_owned()],
            ultrapeer_needed: self.count(true) < self.shared.cfg.max_ultrapeers,
        }
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

    /// `X-Try-Ultrapeers` for `peer` (its connection and listening addresses):
    /// our ultrapeers, then known hosts, each once, never us nor the peer itself.
    fn try_list(&self, peer: &[SocketAddrV4]) -> Vec<SocketAddrV4> {
        let mut exclude = vec![self.shared.my_addr()];
        if let SocketAddr::V4(l) = self.shared.cfg.listen {
            exclude.push(l);
        }
        if let Some(a) = self.shared.cfg.advertised {
            exclude.push(a);
        }
        exclude.extend_from_slice(peer);
        let ups = self
            .peers
            .values()
            .filter(|p| p.info.ultrapeer)
            .filter_map(|p| p.info.listen);
        super::hosts::try_list(ups.chain(self.hosts.iter().copied()), &exclude, 10)
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
            CoreMsg::DialFailed { addr, err } => {
                debug!(%addr, %err, "dial failed");
                self.shared.set_error(format!("{addr}: {err}"));
                self.dialing.remove(&addr);
                if let ServentError::Refused { try_hosts, .. } = &err {
                    for h in try_hosts {
                        self.hosts.add(*h);
                    }
                }
                if let SocketAddr::V4(a) = addr
                    && !matches!(err, ServentError::Refused { code: 503, .. })
                {
                    self.hosts.remove(&a);
                }
                let e = self.backoff.entry(addr).or_insert((Instant::now(), 0));
                e.1 = e.1.saturating_add(1);
                // gtk-gnutella bans hosts that handshake too often: back off from 30 s.
                e.0 = Instant::now() + REDIAL_AFTER * (1u32 << e.1.saturating_sub(1).min(6));
            }
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

    fn admit(&self, ultrapeer: bool, addr: SocketAddr, listen: Option<SocketAddrV4>) -> Admission {
        let cfg = &self.shared.cfg;
        let mut peer: Vec<SocketAddrV4> = listen.into_iter().collect();
        if let SocketAddr::V4(a) = addr {
            peer.push(a);
        }
        let tries = self.try_list(&peer);
        if self.cancel.is_cancelled() {
            return Admission::Reject(503, "Servent shutdown".into(), tries);
        }
        if !cfg.ultrapeer {
            return Admission::Reject(503, "I am a shielded leaf node".into(), tries);
        }
        if ultrapeer && self.count(true) >= cfg.max_ultrapeers {
            return Admission::Reject(503, "Too many ultrapeer connections".into(), tries);
        }
        if !ultrapeer && self.count(false) >= cfg.max_leaves {
            return Admission::Reject(503, "Too many leaves".into(), tries);
        }
        debug!(%addr, ultrapeer, "admitting");
        Admission::Accept(Box::new(self.profile()), tries)
    }

    fn connected(&mut self, link: Link) {
        let info = link.info.clone();
        let dialed = (!info.incoming).then_some(info.addr);
        if let Some(a) = dialed {
            self.dialing.remove(&a);
            self.backoff.remove(&a);
        }
        let cfg = &self.shared.cfg;
        let full = if info.ultrapeer {
            self.count(true) >= cfg.max_ultrapeers
        } else {
            !cfg.ultrapeer || self.count(false) >= cfg.max_leaves
        };
        let id = self.next_id;
        self.next_id += 1;
        let tx = conn::spawn_link(id, link, self.tx.clone(), self.shared.clone());
        if full {
            let _ = tx.try_send(Out::Bye(Bye::new(503, "Too many connections")));
            return;
        }
        if info.incoming && self.shared.cfg.firewalled.is_none() {
            self.shared.stats.firewalled.store(false, Ordering::Relaxed);
        }
        if !self.advertised_known
            && let Some(IpAddr::V4(ip)) = info.our_ip
            && !ip.is_unspecified()
        {
            let mut a = self
                .shared
                .my_addr
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            a.set_ip(ip);
            self.advertised_known = true;
        }
        for h in &info.try_hosts {
            self.hosts.add(*h);
        }
        if info.ultrapeer
            && let Some(l) = info.listen
        {
            self.hosts.add(l);
        }
        info!(id, peer = %info.addr, ultrapeer = info.ultrapeer, agent = %info.user_agent, "link up");
        let to_ultrapeer = info.ultrapeer;
        self.peers.insert(
            id,
            Peer {
                info,
                tx,
                qrp: QrpReceiver::new(),
                sent_table: None,
                tokens: (LEAF_QUERY_BURST, Instant::now()),
                last_ping: Instant::now(),
                dialed,
                supported: Vec::new(),
                hops_flow: u8::MAX,
                connected_back: false,
            },
        );
        // What we read of vendor messages, to a peer that said it reads them
        // (gtk-gnutella sends its own list first thing, and expects ours).
        let vendor = self.peers.get(&id).is_some_and(|p| p.info.vendor_messages);
        if vendor {
            let m = VendorMessage::messages_supported(&SUPPORTED_VENDOR_MESSAGES);
            let h = Header::new(Guid::ZERO, kind::VENDOR, 1, 0, 0);
            self.send(id, h, &Message::Vendor(m));
        }
        // Say hello: a ping (TTL 2 to an ultrapeer, which answers from its pong
        // cache: that is how we learn more hosts), and as a leaf our QRP table.
        let ttl = if to_ultrapeer { 2 } else { 1 };
        let ping = Header::new(Guid::modern(rand::random()), kind::PING, ttl, 0, 0);
        self.router.originate(ping.guid, kind::PING);
        self.send(id, ping, &Message::Ping(Ping::default()));
        if to_ultrapeer && !self.shared.cfg.ultrapeer {
            self.send_qrp(id);
        }
        if to_ultrapeer && self.shared.cfg.ultrapeer {
            self.send_up_tables();
        }
        self.update_counts();
    }

    /// What we and our leaves may answer: our table plus every leaf's.
    fn up_table(&self) -> QrpTable {
        let mut t = self.shared.shares().table().clone();
        for p in self.peers.values() {
            if !p.info.ultrapeer
                && let Some(lt) = p.qrp.table()
            {
                t.merge(lt);
            }
        }
        t
    }

    /// Last-hop QRP: send ultrapeers that asked for it our combined table,
    /// as a patch from what they have when it changed.
    fn send_up_tables(&mut self) {
        if !self.shared.cfg.ultrapeer {
            return;
        }
        self.last_up_tables = Instant::now();
        let want: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.info.ultrapeer && p.info.up_qrp)
            .map(|(c, _)| *c)
            .collect();
        if want.is_empty() {
            return;
        }
        let table = self.up_table();
        for c in want {
            let Some(p) = self.peers.get(&c) else {
                continue;
            };
            let msgs = match &p.sent_table {
                Some(prev) if *prev == table => continue,
                Some(prev) => table.patch_from(Some(prev), 4096),
                None => table.to_messages(4096),
            };
            let Ok(msgs) = msgs else {
                continue;
            };
            for m in msgs {
                let h = Header::new(Guid::modern(rand::random()), kind::QRP, 1, 0, 0);
                self.send(c, h, &Message::RouteTable(m));
            }
            if let Some(p) = self.peers.get_mut(&c) {
                p.sent_table = Some(table.clone());
            }
        }
    }

    /// Whether a query may go to `peer` with `ttl`: an ultrapeer's table is
    /// only consulted for the last hop (TTL 1), a leaf's always.
    fn may_route(p: &Peer, ttl: u8, q: &Query) -> bool {
        if p.info.ultrapeer && ttl > 1 {
            return true;
        }
        match p.qrp.table() {
            None => p.info.ultrapeer,
            Some(_) if !q.urns().is_empty() => true,
            Some(t) => t.matches_keywords(&q.text()),
        }
    }

    fn send_qrp(&mut self, id: ConnId) {
        let msgs = match self.shared.shares().table().to_messages(4096) {
            Ok(m) => m,
            Err(e) => {
                debug!(%e, "cannot build QRP messages");
                return;
            }
        };
        for m in msgs {
            let h = Header::new(Guid::modern(rand::random()), kind::QRP, 1, 0, 0);
            self.send(id, h, &Message::RouteTable(m));
        }
    }

    /// Queue a message on a link; a full queue drops it (flow control).
    fn send(&self, id: ConnId, h: Header, m: &Message) -> bool {
        let Some(p) = self.peers.get(&id) else {
            return false;
        };
        let Some(b) = conn::encode(h, m) else {
            return false;
        };
        p.tx.try_send(Out::Msg(b)).is_ok()
    }

    fn send_bytes(&self, id: ConnId, b: &Bytes) -> bool {
        self.peers
            .get(&id)
            .is_some_and(|p| p.tx.try_send(Out::Msg(b.clone())).is_ok())
    }

    /// Forget a link; a host we dialled is not redialled at once.
    fn remove_peer(&mut self, id: ConnId) -> Option<Peer> {
        let p = self.peers.remove(&id)?;
        if let Some(a) = p.dialed {
            self.backoff.insert(a, (Instant::now() + REDIAL_AFTER, 0));
        }
        self.dqs.retain(|_, d| d.origin != Route::Peer(id));
        Some(p)
    }

    fn bye(&mut self, id: ConnId, code: u16, reason: &str) {
        if let Some(p) = self.remove_peer(id) {
            let _ = p.tx.try_send(Out::Bye(Bye::new(code, reason)));
        }
        self.update_counts();
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

    /// Vendor messages are hop-to-hop: anything but TTL 1 / hops 0 is dropped.
    fn on_vendor(&mut self, id: ConnId, h: Header, v: VendorMessage) {
        if h.ttl != 1 || h.hops != 0 {
            trace!(
                id,
                ttl = h.ttl,
                hops = h.hops,
                "vendor message not hop-to-hop dropped"
            );
            return;
        }
        if let Some(list) = v.supported_messages() {
            let list = match list {
                Ok(l) => l,
                Err(e) => {
                    debug!(id, %e, "bad Messages Supported ignored");
                    return;
                }
            };
            debug!(id, n = list.len(), "peer's vendor messages");
            let connect_back = list.contains(&TCP_CONNECT_BACK);
            if let Some(p) = self.peers.get_mut(&id) {
                p.supported = list;
            }
            // Still firewalled by our guess: ask the peer to try reaching us.
            let port = self.shared.my_addr().port();
            if connect_back
                && port != 0
                && self.shared.cfg.firewalled.is_none()
                && self.shared.stats.firewalled.load(Ordering::Relaxed)
            {
                let h = Header::new(Guid::ZERO, kind::VENDOR, 1, 0, 0);
                let m = VendorMessage::tcp_connect_back(port);
                self.send(id, h, &Message::Vendor(m));
            }
        } else if let Some(hops) = v.hops_flow_value() {
            if let (Ok(hops), Some(p)) = (hops, self.peers.get_mut(&id)) {
                debug!(id, hops, "hops flow");
                p.hops_flow = hops;
            }
        } else if let Some(Ok(port)) = v.connect_back_port() {
            self.connect_back(id, port);
        }
    }

    /// Answer a TCP Connect Back: connect to the peer's IP at `port` and write
    /// `\n\n` (once per link, a few at a time).
    fn connect_back(&mut self, id: ConnId, port: u16) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if p.connected_back || port == 0 {
            return;
        }
        p.connected_back = true;
        let target = SocketAddr::new(p.info.addr.ip(), port);
        let Ok(permit) = self.push_slots.clone().try_acquire_owned() else {
            return;
        };
        let listen = self.shared.cfg.listen;
        let span = debug_span!("gnutella_connect_back", %target);
        tokio::spawn(
            async move {
                let r = async {
                    let mut s = conn::connect_from(listen, target, CONNECT_BACK_TIMEOUT).await?;
                    tokio::time::timeout(CONNECT_BACK_TIMEOUT, async {
                        use tokio::io::AsyncWriteExt;
                        s.write_all(b"\n\n").await?;
                        s.shutdown().await
                    })
                    .await
                    .map_err(|_| ServentError::Timeout("connect back"))??;
                    Ok::<(), ServentError>(())
                }
                .await;
                if let Err(e) = r {
                    debug!(%e, "connect back failed");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }

    /// Our pong, with GGEP `VC` (vendor), `DU` (uptime) and as ultrapeer `UP`
    /// (free leaf and ultrapeer slots), as gtk-gnutella sends.
    fn our_pong(&self) -> Pong {
        let a = self.shared.my_addr();
        let (files, kbytes) = {
            let s = self.shared.shares();
            (u32::try_from(s.len()).unwrap_or(u32::MAX), s.kbytes())
        };
        let cfg = &self.shared.cfg;
        let mut vc = VENDOR.to_vec();
        vc.push(VERSION_BYTE);
        let mut exts = vec![Extension::new(ggep::ids::VC, vc)];
        if cfg.ultrapeer {
            let free =
                |max: usize, used: usize| u8::try_from(max.saturating_sub(used)).unwrap_or(u8::MAX);
            exts.push(Extension::new(
                ggep::ids::UP,
                vec![
                    2,
                    free(cfg.max_leaves, self.count(false)),
                    free(cfg.max_ultrapeers, self.count(true)),
                ],
            ));
        }
        let uptime = self.started.elapsed().as_secs().min(86_400);
        exts.push(Extension::new(ggep::ids::DU, ggep::encode_vlint(uptime)));
        let exts: Vec<Extension> = exts.into_iter().filter_map(Result::ok).collect();
        Pong {
            port: a.port(),
            ip: *a.ip(),
            files,
            kbytes,
            ext: ExtArea::from_items(vec![Item::Ggep(Block::new(exts))]),
        }
    }

    fn on_ping(&mut self, id: ConnId, h: Header) {
        let h = match self.router.inbound(&h, id) {
            Inbound::Accept(h) => h,
            Inbound::Duplicate => {
                self.shared.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Inbound::BadTtl => return,
        };
        let reply = Header::new(h.guid, kind::PONG, h.hops.saturating_add(1), 0, 0);
        self.send(id, reply, &Message::Pong(self.our_pong()));
        if h.ttl <= 1 {
            return;
        }
        // Pong caching: answer for the hosts we know instead of flooding the ping.
        // Only our own pong has hops 0 ("this is me"): another host's pong goes
        // out with the hops it arrived with, plus one (gtk-gnutella `pcache.c`
        // flags a link whose hops-0 pongs name other addresses).
        let cached: Vec<(u8, Pong)> = self
            .pongs
            .iter()
            .filter(|(from, _, _)| *from != id)
            .map(|(_, hops, p)| (*hops, p.clone()))
            .take(6)
            .collect();
        for (hops, p) in &cached {
            self.send(
                id,
                cached_pong_header(&reply, *hops),
                &Message::Pong(p.clone()),
            );
        }
        if cached.len() < 3
            && self.shared.cfg.ultrapeer
            && let Some(nh) = next_hop(&h)
            && let Some(b) = conn::encode(nh, &Message::Ping(Ping::default()))
        {
            for (&c, p) in &self.peers {
                if c != id && p.info.ultrapeer {
                    self.send_bytes(c, &b);
                }
            }
        }
    }

    fn on_pong(&mut self, id: ConnId, h: Header, pong: Pong) {
        let from_up = self.peers.get(&id).is_some_and(|p| p.info.ultrapeer);
        let addr = SocketAddrV4::new(pong.ip, pong.port);
        let says_up = pong
            .ext
            .ggep_blocks()
            .any(|b| b.ultrapeer_slots().is_some_and(|r| r.is_ok()));
        if from_up || h.hops > 0 || says_up {
            self.hosts.add(addr);
            self.pongs
                .retain(|(_, _, p)| SocketAddrV4::new(p.ip, p.port) != addr);
            self.pongs.push_front((id, h.hops, pong.clone()));
            self.pongs.truncate(PONG_CACHE);
        }
        if let Some(Route::Peer(c)) = self.router.reply_route(h.guid, kind::PONG)
            && c != id
        {
            self.send(c, reply_hop(&h), &Message::Pong(pong));
        }
    }

    fn on_query(&mut self, id: ConnId, h: Header, q: Query) {
        let h = match self.router.inbound(&h, id) {
            Inbound::Accept(h) => h,
            Inbound::Duplicate => {
                self.shared.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Inbound::BadTtl => return,
        };
        if !self.take_query_token(id) {
            self.shared
                .stats
                .flood_dropped
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.shared
            .stats
            .queries_seen
            .fetch_add(1, Ordering::Relaxed);
        self.answer(id, &h, &q);
        if !self.shared.cfg.ultrapeer {
            return;
        }
        let from_leaf = self.peers.get(&id).is_some_and(|p| !p.info.ultrapeer);
        if from_leaf && let Some(p) = self.peers.get(&id) {
            super::bridge::answer(&self.shared, p.tx.clone(), h, &q);
        }
        let leaf_h = Header {
            ttl: 1,
            hops: h.hops.saturating_add(1),
            ..h
        };
        self.to_leaves(Some(id), leaf_h, &q);
        if from_leaf {
            self.start_dq(h.guid, q, h.hops.saturating_add(1), Route::Peer(id));
        } else if let Some(nh) = next_hop(&h)
            && let Some(b) = conn::encode(nh, &Message::Query(q.clone()))
        {
            let ups: Vec<ConnId> = self
                .peers
                .iter()
                .filter(|(c, p)| **c != id && p.info.ultrapeer && nh.hops < p.hops_flow)
                .filter(|(_, p)| Self::may_route(p, nh.ttl, &q))
                .map(|(c, _)| *c)
                .collect();
            for c in ups {
                if self.send_bytes(c, &b) {
                    self.shared
                        .stats
                        .queries_forwarded
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Flood control: a leaf of ours may query [`LEAF_QUERY_RATE`] times a second
    /// on average (bursts of [`LEAF_QUERY_BURST`]); ultrapeers are not limited.
    fn take_query_token(&mut self, id: ConnId) -> bool {
        let ultrapeer = self.shared.cfg.ultrapeer;
        let Some(p) = self.peers.get_mut(&id) else {
            return false;
        };
        if p.info.ultrapeer || !ultrapeer {
            return true;
        }
        let now = Instant::now();
        let (tokens, last) = p.tokens;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * LEAF_QUERY_RATE)
            .min(LEAF_QUERY_BURST);
        if tokens < 1.0 {
            p.tokens = (tokens, now);
            return false;
        }
        p.tokens = (tokens - 1.0, now);
        true
    }

    /// Last hop: the query goes to each leaf whose QRP table says it may match.
    /// Tables rarely hold URNs (gtk-gnutella's do not): URN queries go to every
    /// leaf with a table, keyword queries only where every keyword is present.
    fn to_leaves(&self, except: Option<ConnId>, h: Header, q: &Query) {
        let Some(b) = conn::encode(h, &Message::Query(q.clone())) else {
            return;
        };
        for (&c, p) in &self.peers {
            if Some(c) == except
                || p.info.ultrapeer
                || h.hops >= p.hops_flow
                || !Self::may_route(p, 1, q)
            {
                continue;
            }
            if self.send_bytes(c, &b) {
                self.shared
                    .stats
                    .queries_forwarded
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn answer(&self, id: ConnId, h: &Header, q: &Query) {
        let firewalled = self.shared.stats.firewalled.load(Ordering::Relaxed);
        // Firewalled to firewalled cannot transfer, but without a connect-back test
        // "firewalled" is only a guess: skip the answer only when configured so.
        if self.shared.cfg.firewalled == Some(true) && q.flags.has(QueryFlags::FIREWALLED) {
            return;
        }
        let text = q.text();
        let urns = q.urns();
        let records: Vec<HitRecord> = {
            let shares = self.shared.shares();
            shares
                .matches(&text, &urns)
                .into_iter()
                .map(|f| {
                    hit_record(
                        f.index,
                        &f.name,
                        f.size,
                        &f.sha1,
                        f.ed2k.as_ref(),
                        f.tth.as_ref(),
                    )
                })
                .collect()
        };
        if records.is_empty() {
            return;
        }
        let busy = self.shared.slots.available_permits() == 0;
        let a = self.shared.my_addr();
        // Without a known address only a push can reach us.
        let firewalled = firewalled || a.ip().is_unspecified();
        // Like gtk-gnutella: enough TTL to come back even if the path grew a little.
        let ttl = h.hops.saturating_add(5).min(HARD_TTL_LIMIT as u8);
        let uploaded = self.shared.stats.uploads.load(Ordering::Relaxed) > 0;
        for chunk in records.chunks(HITS_PER_MESSAGE) {
            let hit = our_hit(&self.shared, chunk, trailer(firewalled, busy, uploaded));
            let rh = Header::new(h.guid, kind::QUERY_HIT, ttl.max(1), 0, 0);
            self.send(id, rh, &Message::QueryHit(hit));
        }
    }

    fn start_dq(&mut self, guid: Guid, query: Query, hops: u8, origin: Route) {
        if self.dqs.len() >= MAX_DQS {
            debug!(%guid, "too many dynamic queries; query not widened");
            return;
        }
        let now = Instant::now();
        self.dqs.insert(
            guid,
            DynQuery {
                query,
                hops,
                origin,
                sent: HashSet::new(),
                hits: 0,
                started: now,
                next: now,
                step: 0,
            },
        );
        self.dq_step(guid);
    }

    /// One widening step: the next two ultrapeers, with a TTL growing per step.
    fn dq_step(&mut self, guid: Guid) {
        let max_ttl = self.shared.cfg.max_ttl;
        let Some(hops) = self.dqs.get(&guid).map(|d| d.hops) else {
            return;
        };
        let mut ups: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.info.ultrapeer && hops < p.hops_flow)
            .map(|(c, _)| *c)
            .collect();
        ups.sort_unstable();
        let Some(dq) = self.dqs.get_mut(&guid) else {
            return;
        };
        let origin = dq.origin;
        let targets: Vec<ConnId> = ups
            .into_iter()
            .filter(|c| !dq.sent.contains(c) && Route::Peer(*c) != origin)
            .take(2)
            .collect();
        let ttl = (2 + dq.step / 2).min(max_ttl).max(1);
        dq.step = dq.step.saturating_add(1);
        dq.next = Instant::now() + DQ_STEP;
        dq.sent.extend(targets.iter().copied());
        let h = Header::new(guid, kind::QUERY, ttl, dq.hops, 0);
        let Some(b) = conn::encode(h, &Message::Query(dq.query.clone())) else {
            return;
        };
        for c in targets {
            if self.send_bytes(c, &b) {
                self.shared
                    .stats
                    .queries_forwarded
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn on_hit(&mut self, id: ConnId, h: Header, hit: QueryHit) {
        self.router.learn_push(hit.servent, id);
        if let Some(dq) = self.dqs.get_mut(&h.guid) {
            dq.hits = dq.hits.saturating_add(hit.results.len() as u32);
        }
        match self.router.reply_route(h.guid, kind::QUERY_HIT) {
            Some(Route::Local) => self.deliver(h.guid, &hit),
            Some(Route::Peer(c)) if c != id => {
                self.send(c, reply_hop(&h), &Message::QueryHit(hit));
            }
            _ => trace!(guid = %h.guid, "hit without route dropped"),
        }
    }

    fn deliver(&mut self, guid: Guid, hit: &QueryHit) {
        let Some(s) = self.searches.get(&guid) else {
            return;
        };
        let t = hit.trailer.as_ref();
        let push = t.and_then(QhdTrailer::push).unwrap_or(false);
        let busy = t.and_then(QhdTrailer::busy).unwrap_or(false);
        for r in &hit.results {
            let sha1 = r.sha1();
            if s.sha1.is_some() && sha1 != s.sha1 {
                continue;
            }
            let rh = RemoteHit {
                addr: SocketAddrV4::new(hit.ip, hit.port),
                servent: hit.servent,
                index: r.index,
                name: r.name_str().chars().take(1024).collect(),
                size: r.file_size(),
                sha1,
                ed2k: r.ext.urns().iter().find_map(Urn::ed2k),
                tth: r.ext.tiger(),
                push,
                busy,
            };
            if s.tx.try_send(rh).is_err() {
                break;
            }
        }
    }

    fn on_push(&mut self, id: ConnId, h: Header, p: Push) {
        match self.router.inbound(&h, id) {
            Inbound::Accept(_) => {}
            Inbound::Duplicate | Inbound::BadTtl => return,
        }
        if p.servent == self.shared.guid {
            let target = SocketAddrV4::new(p.ip, p.port);
            if target.port() == 0 || target.ip().is_unspecified() || p.index == FW2FW_FILE_INDEX {
                return;
            }
            // Pushes make us connect out: only a few at a time.
            let Ok(permit) = self.push_slots.clone().try_acquire_owned() else {
                debug!(%target, "too many pushes in progress");
                return;
            };
            let shared = self.shared.clone();
            let span = debug_span!("gnutella_push_upload", %target, index = p.index);
            tokio::spawn(
                async move {
                    if let Err(e) = super::upload::giv_out(target, p.index, shared).await {
                        debug!(%e, "push upload failed");
                    }
                    drop(permit);
                }
                .instrument(span),
            );
        } else if let Some(c) = self.router.push_route(p.servent)
            && c != id
        {
            self.send(c, reply_hop(&h), &Message::Push(p));
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Search { query, tx } => {
                if self.searches.len() >= MAX_SEARCHES {
                    return;
                }
                let guid = Guid::modern(rand::random());
                self.router.originate(guid, kind::QUERY);
                let sha1 = query.urns().iter().find_map(Urn::sha1);
                self.searches.insert(
                    guid,
                    Search {
                        tx,
                        deadline: Instant::now() + self.shared.cfg.search_timeout,
                        sha1,
                    },
                );
                if self.shared.cfg.ultrapeer {
                    self.to_leaves(None, Header::new(guid, kind::QUERY, 1, 0, 0), &query);
                    self.start_dq(guid, query, 0, Route::Local);
                } else {
                    let h = Header::new(guid, kind::QUERY, self.shared.cfg.max_ttl, 0, 0);
                    if let Some(b) = conn::encode(h, &Message::Query(query)) {
                        for (&c, p) in &self.peers {
                            if p.info.ultrapeer && p.hops_flow > 0 {
                                self.send_bytes(c, &b);
                            }
                        }
                    }
                }
            }
            Command::SharesChanged => {
                self.send_up_tables();
                if !self.shared.cfg.ultrapeer {
                    let ups: Vec<ConnId> = self
                        .peers
                        .iter()
                        .filter(|(_, p)| p.info.ultrapeer)
                        .map(|(c, _)| *c)
                        .collect();
                    for c in ups {
                        self.send_qrp(c);
                    }
                }
            }
            Command::AddEndpoint(a) => {
                if !self.endpoints.contains(&a) {
                    self.endpoints.push_front(a);
                    self.endpoints.truncate(64);
                }
                self.backoff.remove(&a);
                self.maintain();
            }
            Command::Push {
                servent,
                index,
                reply,
            } => {
                let waiting: usize = self.givs.values().map(Vec::len).sum();
                if waiting >= MAX_GIV_WAITERS {
                    return;
                }
                self.givs.entry(servent).or_default().push(reply);
                let a = self.shared.my_addr();
                let push = Push {
                    servent,
                    index,
                    ip: *a.ip(),
                    port: a.port(),
                    ext: ExtArea::default(),
                };
                let guid = Guid::modern(rand::random());
                self.router.originate(guid, kind::PUSH);
                let h = Header::new(guid, kind::PUSH, self.shared.cfg.max_ttl, 0, 0);
                let targets: Vec<ConnId> = match self.router.push_route(servent) {
                    Some(c) if self.peers.contains_key(&c) => vec![c],
                    _ => self
                        .peers
                        .iter()
                        .filter(|(_, p)| p.info.ultrapeer)
                        .map(|(c, _)| *c)
                        .collect(),
                };
                for c in targets {
                    self.send(c, h, &Message::Push(push.clone()));
                }
            }
            Command::Shutdown(done) => {
                self.bye_all();
                let _ = done.send(());
                self.cancel.cancel();
            }
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
        // Searches end when their stream is dropped or they time out.
        self.searches
            .retain(|_, s| !s.tx.is_closed() && s.deadline > now);
        let wanted = self.shared.cfg.wanted_hits;
        let searches = &self.searches;
        self.dqs.retain(|g, d| {
            d.hits < wanted
                && now.duration_since(d.started) < DQ_LIFETIME
                && (d.origin != Route::Local || searches.contains_key(g))
        });
        let steps: Vec<Guid> = self
            .dqs
            .iter()
            .filter(|(_, d)| d.next <= now)
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

    /// Dial ultrapeers until we have enough.
    fn maintain(&mut self) {
        if self.cancel.is_cancelled() {
            return;
        }
        let want = self.shared.cfg.max_ultrapeers;
        let have = self.count(true) + self.dialing.len();
        if have >= want || self.dialing.len() >= MAX_DIALING {
            return;
        }
        let now = Instant::now();
        if self.backoff.len() > 4096 {
            self.backoff.retain(|_, (t, _)| *t > now);
        }
        let connected: HashSet<SocketAddr> = self
            .peers
            .values()
            .flat_map(|p| {
                [
                    p.dialed,
                    p.info.listen.map(SocketAddr::V4),
                    (!p.info.incoming).then_some(p.info.addr),
                ]
            })
            .flatten()
            .collect();
        let me = SocketAddr::V4(self.shared.my_addr());
        let listen = self.shared.cfg.listen;
        let candidates: Vec<SocketAddr> = self
            .endpoints
            .iter()
            .copied()
            .chain(self.hosts.iter().map(|a| SocketAddr::V4(*a)))
            .filter(|a| *a != me && *a != listen)
            .filter(|a| !connected.contains(a) && !self.dialing.contains(a))
            .filter(|a| self.backoff.get(a).is_none_or(|(t, _)| *t <= now))
            .take((want - have).min(MAX_DIALING - self.dialing.len()))
            .collect();
        for addr in candidates {
            self.dialing.insert(addr);
            // Not retried before the dial ends (it reports success or failure).
            self.backoff.insert(
                addr,
                (
                    now + Duration::from_secs(3600),
                    self.backoff.get(&addr).map_or(0, |b| b.1),
                ),
            );
            let profile = self.profile();
            let shared = self.shared.clone();
            let tx = self.tx.clone();
            let span = debug_span!("gnutella_dial", %addr);
            tokio::spawn(
                async move {
                    let m = match conn::dial(addr, &profile, &shared).await {
                        Ok(link) => CoreMsg::Connected(link),
                        Err(err) => CoreMsg::DialFailed { addr, err },
                    };
                    let _ = tx.send(m).await;
                }
                .instrument(span),
            );
        }
    }
}

/// The header of a cached pong sent in answer to a ping: the reply header
/// (the ping's GUID and TTL) with the hops the pong arrived with plus one, since
/// we route it one hop further. Never 0: hops 0 means the pong's host is us.
pub fn cached_pong_header(reply: &Header, arrived_hops: u8) -> Header {
    Header {
        hops: arrived_hops.saturating_add(1),
        ..*reply
    }
}

/// A routed reply goes one hop further; it is never dropped for TTL on the way back.
fn reply_hop(h: &Header) -> Header {
    Header {
        ttl: h.ttl.saturating_sub(1).max(1),
        hops: h.hops.saturating_add(1),
        ..*h
    }
}

/// One result record: the HUGE `urn:sha1:` text (and `urn:ed2khash:` when known), and GGEP
/// `LF` for sizes ≥ 4 GiB.
/// A QueryHit from this servent, at the address it announces.
pub fn our_hit(shared: &Shared, records: &[HitRecord], trailer: QhdTrailer) -> QueryHit {
    let a = shared.my_addr();
    QueryHit {
        port: a.port(),
        ip: *a.ip(),
        speed: 10_000,
        results: records.to_vec(),
        trailer: Some(trailer),
        servent: shared.guid,
    }
}

pub fn hit_record(
    index: u32,
    name: &str,
    size: u64,
    sha1: &Sha1Hash,
    ed2k: Option<&[u8; 16]>,
    tth: Option<&TigerHash>,
) -> HitRecord {
    let mut items = vec![Item::Text(Bytes::from(Urn::Sha1(*sha1).to_string()))];
    if let Some(h) = ed2k {
        items.push(Item::Text(Bytes::from(Urn::Ed2k(*h).to_string())));
    }
    // As gtk-gnutella: the TTH as GGEP `TT` (binary, COBS-encoded when it holds a NUL),
    // in the record's GGEP block beside `LF`.
    let mut ggep = Vec::new();
    if let Some(t) = tth
        && let Ok(e) = Extension::new_nul_free(ggep::ids::TT, &t.0)
    {
        ggep.push(e);
    }
    let size32 = match u32::try_from(size) {
        Ok(s) if s != u32::MAX => s,
        _ => {
            if let Ok(e) = Extension::new_nul_free(ggep::ids::LF, &ggep::encode_vlint(size)) {
                ggep.push(e);
            }
            u32::MAX
        }
    };
    if !ggep.is_empty() {
        items.push(Item::Ggep(Block::new(ggep)));
    }
    let name: String = name.replace('\0', "_").chars().take(1024).collect();
    HitRecord {
        index,
        size: size32,
        name: Bytes::from(name.into_bytes()),
        ext: ExtArea::from_items(items),
    }
}

/// Our QueryHit trailer: vendor code and the open-data flag bytes
/// (push in byte 1 with its "valid" bit in byte 2, the others the other way round).
/// The private data holds a GGEP block with `BH` (browse host supported), as
/// gtk-gnutella's hits do.
pub fn trailer(firewalled: bool, busy: bool, uploaded: bool) -> QhdTrailer {
    let mut b1 = qhd::BUSY | qhd::UPLOADED | qhd::GGEP;
    let mut b2 = qhd::PUSH | qhd::GGEP;
    if firewalled {
        b1 |= qhd::PUSH;
    }
    if busy {
        b2 |= qhd::BUSY;
    }
    if uploaded {
        b2 |= qhd::UPLOADED;
    }
    QhdTrailer {
        vendor: VENDOR,
        open_data: Bytes::copy_from_slice(&[b1, b2]),
        private_data: {
            let mut v = Vec::new();
            if let Ok(bh) = Extension::new(ggep::ids::BH, Bytes::new()) {
                Block::new(vec![bh]).encode(&mut v);
            }
            Bytes::from(v)
        },
    }
}
