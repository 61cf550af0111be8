//! A Mainline DHT node (BEP 5) on IPv4: a routing table of K-buckets, ping, find_node,
//! get_peers and announce_peer with tokens, iterative lookups, and BEP 51
//! `sample_infohashes` answered from the peers announced to us. Bootstraps only from
//! configured nodes (no public routers).
//!
//! The table keeps one bucket per distance prefix length (160 buckets of K = 8), which is
//! the fully split form of the BEP 5 tree; nodes that stop answering are replaced.
//!
//! Queries (and malformed packets, which we answer with an error) count against a per-IP
//! rate ([`junction_core::limit::IpRates`], from the adapter's limits); beyond it, what an
//! IP sends is dropped unread, so a flooding address neither fills our table nor gets
//! answers, and the others are still served.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use junction_core::limit::IpRates;
use sha1::{Digest, Sha1};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, trace};

use super::sync::lock;
use crate::wire::id::InfoHash;
use crate::wire::krpc::{
    Body, ErrorBody, Message, Method, NodeId, NodeV4, Query, Response, code as error_code,
};

pub const K: usize = 8;
const ALPHA: usize = 4;
const QUERY_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_PENDING: usize = 1024;
const MAX_STORED_HASHES: usize = 5000;
const MAX_STORED_PEERS: usize = 200;
const PEER_TTL: Duration = Duration::from_secs(30 * 60);
const TOKEN_ROTATE: Duration = Duration::from_secs(5 * 60);
const CLIENT_VERSION: &[u8; 4] = b"JN01";
/// Nodes the user removed, kept out of the table until added again.
const MAX_REMOVED: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    #[error("DHT I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("DHT node {0} did not answer")]
    Timeout(SocketAddr),
    #[error("DHT node answered with error {0}: {1}")]
    Remote(i64, String),
    #[error("too many DHT queries in flight")]
    Busy,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    id: NodeId,
    addr: SocketAddrV4,
    seen: Instant,
    failures: u32,
}

#[derive(Debug)]
struct Table {
    own: NodeId,
    buckets: Vec<Vec<Node>>,
    /// Removed by the user (`endpoint remove`): other nodes' answers and queries do not
    /// bring them back; adding them again does.
    removed: HashSet<SocketAddr>,
}

impl Table {
    fn new(own: NodeId) -> Table {
        Table {
            own,
            buckets: vec![Vec::new(); 160],
            removed: HashSet::new(),
        }
    }

    fn insert(&mut self, id: NodeId, addr: SocketAddrV4) {
        let Some(b) = self.own.bucket_index(&id) else {
            return;
        };
        if self.removed.contains(&SocketAddr::V4(addr)) {
            return;
        }
        let bucket = &mut self.buckets[b];
        if let Some(n) = bucket.iter_mut().find(|n| n.id == id) {
            n.addr = addr;
            n.seen = Instant::now();
            n.failures = 0;
            return;
        }
        let node = Node {
            id,
            addr,
            seen: Instant::now(),
            failures: 0,
        };
        if bucket.len() < K {
            bucket.push(node);
        } else if let Some(worst) = bucket
            .iter_mut()
            .filter(|n| n.failures > 0 || n.seen.elapsed() > Duration::from_secs(15 * 60))
            .max_by_key(|n| n.failures)
        {
            *worst = node;
        }
    }

    fn failed(&mut self, addr: SocketAddr) {
        for b in &mut self.buckets {
            for n in b.iter_mut() {
                if SocketAddr::V4(n.addr) == addr {
                    n.failures += 1;
                }
            }
            b.retain(|n| n.failures < 3);
        }
    }

    /// Drops every entry at `addr` and keeps it out; false when there was none.
    fn remove(&mut self, addr: SocketAddr) -> bool {
        let before = self.len();
        for b in &mut self.buckets {
            b.retain(|n| SocketAddr::V4(n.addr) != addr);
        }
        let found = self.len() < before;
        if found && self.removed.len() < MAX_REMOVED {
            self.removed.insert(addr);
        }
        found
    }

    fn closest(&self, target: &NodeId, n: usize) -> Vec<NodeV4> {
        let mut all: Vec<&Node> = self.buckets.iter().flatten().collect();
        all.sort_by_key(|x| x.id.distance(target));
        all.into_iter()
            .take(n)
            .map(|x| NodeV4 {
                id: x.id,
                addr: x.addr,
            })
            .collect()
    }

    fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }
}

/// Where a query's answer goes.
type Waiter = oneshot::Sender<Result<Response, DhtError>>;
type Pending = HashMap<[u8; 2], (SocketAddr, Waiter)>;

#[derive(Debug)]
struct Inner {
    sock: UdpSocket,
    id: NodeId,
    table: Mutex<Table>,
    pending: Mutex<Pending>,
    store: Mutex<HashMap<InfoHash, Vec<(SocketAddrV4, Instant)>>>,
    secrets: Mutex<([u8; 16], [u8; 16], Instant)>,
    cancel: CancellationToken,
}

/// A running DHT node; clones share it.
#[derive(Debug, Clone)]
pub struct Dht {
    inner: Arc<Inner>,
}

/// What a `get_peers` lookup found.
#[derive(Debug, Default)]
pub struct Found {
    pub peers: Vec<SocketAddr>,
    /// Nodes closest to the info-hash that gave us a token, for `announce_peer`.
    pub tokens: Vec<(SocketAddrV4, Vec<u8>)>,
}

/// A query's entry in the pending table, removed when the query ends or is dropped.
struct Waiting<'a>(&'a Mutex<Pending>, [u8; 2]);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(self.0).remove(&self.1);
    }
}

impl Dht {
    /// Binds the node on `addr`; `rates` caps the queries each remote IP may send.
    pub async fn bind(
        addr: SocketAddr,
        rates: IpRates,
        cancel: CancellationToken,
    ) -> Result<Self, DhtError> {
        let sock = UdpSocket::bind(addr).await?;
        let local = sock.local_addr()?;
        let id = NodeId(rand::random());
        let inner = Arc::new(Inner {
            sock,
            id,
            table: Mutex::new(Table::new(id)),
            pending: Mutex::new(HashMap::new()),
            store: Mutex::new(HashMap::new()),
            secrets: Mutex::new((rand::random(), rand::random(), Instant::now())),
            cancel,
        });
        let dht = Self { inner };
        let cancel = dht.inner.cancel.clone();
        junction_core::task::spawn(
            info_span!("dht", %local),
            cancel,
            dht.clone().recv_loop(rates),
        );
        Ok(dht)
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.sock.local_addr().ok()
    }

    pub fn node_count(&self) -> usize {
        lock(&self.inner.table).len()
    }

    /// Takes the node at `addr` out of the routing table, and keeps it out (nor is it
    /// asked in lookups) when other nodes name it, until [`Dht::add`] is given it; false
    /// when it was not there.
    pub fn forget(&self, addr: SocketAddr) -> bool {
        lock(&self.inner.table).remove(addr)
    }

    fn token_for(&self, ip: IpAddr, secret: &[u8; 16]) -> Vec<u8> {
        let mut h = Sha1::new();
        h.update(secret);
        match ip {
            IpAddr::V4(v) => h.update(v.octets()),
            IpAddr::V6(v) => h.update(v.octets()),
        }
        h.finalize()[..8].to_vec()
    }

    fn token(&self, ip: IpAddr) -> Vec<u8> {
        let mut s = lock(&self.inner.secrets);
        if s.2.elapsed() > TOKEN_ROTATE {
            *s = (rand::random(), s.0, Instant::now());
        }
        let cur = s.0;
        drop(s);
        self.token_for(ip, &cur)
    }

    fn token_ok(&self, ip: IpAddr, token: &[u8]) -> bool {
        let (cur, prev, _) = *lock(&self.inner.secrets);
        token == self.token_for(ip, &cur) || token == self.token_for(ip, &prev)
    }

    async fn send(&self, to: SocketAddr, m: &Message) {
        let _ = self.inner.sock.send_to(&m.encode(), to).await;
    }

    /// Sends one query and waits (bounded) for its answer.
    pub async fn query(&self, to: SocketAddr, method: Method) -> Result<Response, DhtError> {
        let (tx, rx) = oneshot::channel();
        let tid = {
            let mut p = lock(&self.inner.pending);
            if p.len() >= MAX_PENDING {
                return Err(DhtError::Busy);
            }
            let mut tid: [u8; 2] = rand::random();
            while p.contains_key(&tid) {
                tid = rand::random();
            }
            p.insert(tid, (to, tx));
            tid
        };
        // Dropped with the query (a lookup whose torrent stopped is cancelled mid-way), the
        // waiter leaves the table as it does after an answer or the timeout: unanswered
        // ones would fill it up to MAX_PENDING.
        let waiting = Waiting(&self.inner.pending, tid);
        let m = Message {
            transaction_id: tid.to_vec(),
            version: Some(CLIENT_VERSION.to_vec()),
            ip: None,
            read_only: false,
            body: Body::Query(Query {
                id: self.inner.id,
                method,
            }),
        };
        self.send(to, &m).await;
        let r = tokio::time::timeout(QUERY_TIMEOUT, rx).await;
        drop(waiting);
        match r {
            Ok(Ok(res)) => res,
            _ => {
                lock(&self.inner.table).failed(to);
                Err(DhtError::Timeout(to))
            }
        }
    }

    /// A node the user adds: no longer kept out if it was removed, and bootstrapped from.
    pub async fn add(&self, addr: SocketAddr) {
        lock(&self.inner.table).removed.remove(&addr);
        self.bootstrap(&[addr]).await;
    }

    /// Contacts configured nodes (whose ids we do not know yet; removed ones are skipped),
    /// then looks up our own id to fill the table.
    pub async fn bootstrap(&self, nodes: &[SocketAddr]) {
        let nodes: Vec<SocketAddr> = {
            let t = lock(&self.inner.table);
            nodes
                .iter()
                .copied()
                .filter(|a| !t.removed.contains(a))
                .collect()
        };
        let target = self.inner.id;
        let asks = nodes.iter().map(|a| {
            self.query(
                *a,
                Method::FindNode {
                    target,
                    want: Default::default(),
                },
            )
        });
        let answered = join_all(asks).await.iter().filter(|r| r.is_ok()).count();
        debug!(answered, asked = nodes.len(), "DHT bootstrap");
        self.lookup(target, None).await;
    }

    /// Up to `n` nodes from the table, most recently seen first.
    pub fn some_nodes(&self, n: usize) -> Vec<SocketAddr> {
        let t = lock(&self.inner.table);
        let mut all: Vec<&Node> = t.buckets.iter().flatten().collect();
        all.sort_by_key(|x| std::cmp::Reverse(x.seen));
        all.into_iter()
            .take(n)
            .map(|x| SocketAddr::V4(x.addr))
            .collect()
    }

    /// Info-hashes peers announced to this node (what BEP 51 samples of us).
    pub fn stored(&self) -> Vec<InfoHash> {
        lock(&self.inner.store).keys().copied().collect()
    }

    /// BEP 51: a sample of the info-hashes `node` stores.
    pub async fn sample(&self, node: SocketAddr) -> Result<Vec<InfoHash>, DhtError> {
        let r = self
            .query(
                node,
                Method::SampleInfohashes {
                    target: NodeId(rand::random()),
                    want: Default::default(),
                },
            )
            .await?;
        Ok(r.samples.unwrap_or_default())
    }

    /// Refreshes the table with a lookup of a random id (BEP 5 bucket refresh).
    pub async fn refresh(&self) {
        self.lookup(NodeId(rand::random()), None).await;
    }

    /// Iterative lookup towards `target`; with `info_hash`, a `get_peers` lookup.
    async fn lookup(&self, target: NodeId, info_hash: Option<InfoHash>) -> Found {
        #[derive(PartialEq)]
        enum S {
            New,
            Asked,
            Answered,
            Failed,
        }
        let mut short: BTreeMap<crate::wire::krpc::Distance, (NodeV4, S)> = BTreeMap::new();
        for n in lock(&self.inner.table).closest(&target, K * 2) {
            short.insert(n.id.distance(&target), (n, S::New));
        }
        let mut found = Found::default();
        let mut tokens: BTreeMap<crate::wire::krpc::Distance, (SocketAddrV4, Vec<u8>)> =
            BTreeMap::new();
        for _round in 0..16 {
            // The closest K that have not failed: ask those not asked yet.
            let batch: Vec<NodeV4> = short
                .values()
                .filter(|(_, s)| *s != S::Failed)
                .take(K)
                .filter(|(_, s)| *s == S::New)
                .take(ALPHA)
                .map(|(n, _)| *n)
                .collect();
            if batch.is_empty() {
                break;
            }
            for n in &batch {
                if let Some(e) = short.get_mut(&n.id.distance(&target)) {
                    e.1 = S::Asked;
                }
            }
            let asks = batch.iter().map(|n| {
                let method = match info_hash {
                    Some(ih) => Method::GetPeers {
                        info_hash: ih,
                        want: Default::default(),
                    },
                    None => Method::FindNode {
                        target,
                        want: Default::default(),
                    },
                };
                self.query(SocketAddr::V4(n.addr), method)
            });
            let results = join_all(asks).await;
            for (n, r) in batch.iter().zip(results) {
                let d = n.id.distance(&target);
                match r {
                    Ok(resp) => {
                        if let Some(e) = short.get_mut(&d) {
                            e.1 = S::Answered;
                        }
                        found.peers.extend(resp.values.iter().copied());
                        if let Some(t) = resp.token {
                            tokens.insert(d, (n.addr, t));
                        }
                        // Checked under the table's lock, not against a copy of the set.
                        let table = lock(&self.inner.table);
                        for m in resp.nodes {
                            if m.id != self.inner.id
                                && !table.removed.contains(&SocketAddr::V4(m.addr))
                            {
                                short.entry(m.id.distance(&target)).or_insert((m, S::New));
                            }
                        }
                    }
                    Err(_) => {
                        if let Some(e) = short.get_mut(&d) {
                            e.1 = S::Failed;
                        }
                    }
                }
            }
        }
        found.peers.sort();
        found.peers.dedup();
        found.tokens = tokens.into_values().take(K).collect();
        found
    }

    /// Peers for an info-hash; with `announce_port`, also announces us to the closest nodes.
    pub async fn get_peers(&self, ih: InfoHash, announce_port: Option<u16>) -> Vec<SocketAddr> {
        let mut found = self.lookup(NodeId::from(ih), Some(ih)).await;
        // Peers announced to this node count too.
        if let Some(v) = lock(&self.inner.store).get(&ih) {
            found.peers.extend(
                v.iter()
                    .filter(|(_, at)| at.elapsed() < PEER_TTL)
                    .map(|(a, _)| SocketAddr::V4(*a)),
            );
            found.peers.sort();
            found.peers.dedup();
        }
        if let Some(port) = announce_port {
            // We are a peer too: nodes that ask us for this info-hash learn about us (on a
            // two-node network nobody else would tell them).
            if let Some(SocketAddr::V4(local)) = self.local_addr()
                && !local.ip().is_unspecified()
            {
                self.store_peer(ih, SocketAddrV4::new(*local.ip(), port));
            }
            let asks = found.tokens.iter().map(|(addr, token)| {
                self.query(
                    SocketAddr::V4(*addr),
                    Method::AnnouncePeer {
                        info_hash: ih,
                        port,
                        token: token.clone(),
                        implied_port: false,
                    },
                )
            });
            let ok = join_all(asks).await.iter().filter(|r| r.is_ok()).count();
            debug!(info_hash = %ih, announced_to = ok, peers = found.peers.len(), "DHT announce");
        }
        found.peers
    }

    fn store_peer(&self, info_hash: InfoHash, peer: SocketAddrV4) {
        let mut store = lock(&self.inner.store);
        if store.len() < MAX_STORED_HASHES || store.contains_key(&info_hash) {
            let v = store.entry(info_hash).or_default();
            v.retain(|(a, at)| *a != peer && at.elapsed() < PEER_TTL);
            if v.len() < MAX_STORED_PEERS {
                v.push((peer, Instant::now()));
            }
        }
    }

    async fn recv_loop(self, mut rates: IpRates) {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, from) = tokio::select! {
                _ = self.inner.cancel.cancelled() => return,
                r = self.inner.sock.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(_) => continue,
                },
            };
            let m = match Message::decode(&buf[..n]) {
                Ok(m) => m,
                Err(_) if !rates.allow(from.ip()) => continue,
                Err(e) => {
                    trace!(%from, error = %e, "bad KRPC packet");
                    if let Some(t) = crate::wire::krpc::peek_transaction_id(&buf[..n]) {
                        self.error(from, t, error_code::PROTOCOL, "malformed message")
                            .await;
                    }
                    continue;
                }
            };
            match m.body {
                Body::Query(_) if !rates.allow(from.ip()) => {
                    trace!(%from, "DHT query over the per-IP rate: dropped");
                }
                Body::Query(q) => {
                    if let (SocketAddr::V4(a), false) = (from, m.read_only) {
                        lock(&self.inner.table).insert(q.id, a);
                    }
                    self.answer(from, m.transaction_id, q).await;
                }
                Body::Response(r) => {
                    if let Some(tx) = self.take_waiter(&m.transaction_id, from) {
                        if let SocketAddr::V4(a) = from {
                            lock(&self.inner.table).insert(r.id, a);
                        }
                        let _ = tx.send(Ok(r));
                    }
                }
                Body::Error(e) => {
                    if let Some(tx) = self.take_waiter(&m.transaction_id, from) {
                        let _ = tx.send(Err(DhtError::Remote(e.code, e.message)));
                    }
                }
            }
        }
    }

    /// The query waiting for this transaction id, if `from` is the node it was sent to:
    /// nobody else may answer or end it.
    fn take_waiter(&self, tid: &[u8], from: SocketAddr) -> Option<Waiter> {
        let tid = <[u8; 2]>::try_from(tid).ok()?;
        let mut p = lock(&self.inner.pending);
        match p.get(&tid) {
            Some((addr, _)) if *addr == from => p.remove(&tid).map(|(_, tx)| tx),
            _ => None,
        }
    }

    async fn error(&self, to: SocketAddr, tid: Vec<u8>, code: i64, msg: &str) {
        let m = Message {
            transaction_id: tid,
            version: Some(CLIENT_VERSION.to_vec()),
            ip: None,
            read_only: false,
            body: Body::Error(ErrorBody {
                code,
                message: msg.to_owned(),
            }),
        };
        self.send(to, &m).await;
    }

    async fn answer(&self, from: SocketAddr, tid: Vec<u8>, q: Query) {
        let mut r = Response {
            id: self.inner.id,
            ..Response::default()
        };
        match q.method {
            Method::Ping => {}
            Method::FindNode { target, .. } => {
                r.nodes = lock(&self.inner.table).closest(&target, K);
            }
            Method::GetPeers { info_hash, .. } => {
                r.token = Some(self.token(from.ip()));
                let peers: Vec<SocketAddr> = lock(&self.inner.store)
                    .get(&info_hash)
                    .map(|v| {
                        v.iter()
                            .filter(|(_, at)| at.elapsed() < PEER_TTL)
                            .take(50)
                            .map(|(a, _)| SocketAddr::V4(*a))
                            .collect()
                    })
                    .unwrap_or_default();
                if peers.is_empty() {
                    r.nodes = lock(&self.inner.table).closest(&NodeId::from(info_hash), K);
                } else {
                    r.values = peers;
                }
            }
            Method::AnnouncePeer {
                info_hash,
                port,
                token,
                implied_port,
            } => {
                let SocketAddr::V4(src) = from else {
                    return;
                };
                if !self.token_ok(from.ip(), &token) {
                    self.error(from, tid, error_code::PROTOCOL, "bad token")
                        .await;
                    return;
                }
                let port = if implied_port { src.port() } else { port };
                self.store_peer(info_hash, SocketAddrV4::new(*src.ip(), port));
            }
            Method::SampleInfohashes { target, .. } => {
                let store = lock(&self.inner.store);
                r.num = Some(store.len() as u64);
                r.samples = Some(store.keys().take(20).copied().collect());
                r.interval = Some(60);
                drop(store);
                r.nodes = lock(&self.inner.table).closest(&target, K);
            }
            Method::Unknown(_) => {
                self.error(from, tid, error_code::METHOD_UNKNOWN, "method unknown")
                    .await;
                return;
            }
        }
        let m = Message {
            transaction_id: tid,
            version: Some(CLIENT_VERSION.to_vec()),
            ip: Some(from),
            read_only: false,
            body: Body::Response(r),
        };
        self.send(from, &m).await;
    }
}

#[cfg(test)]
mod tests;
