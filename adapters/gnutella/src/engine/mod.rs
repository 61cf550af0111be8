//! The engine: the servent's tasks (links, routing, searches, uploads and downloads) on
//! top of [`crate::wire`].
//!
//! One core task owns the links and routing tables ([`core`]); every link has a
//! reader and a writer task ([`conn`]); an acceptor task classifies incoming
//! connections (Gnutella handshake, HTTP request, `GIV`); uploads and downloads
//! run in their own tasks and share the file index and counters through [`Shared`].

mod accept;
pub mod bridge;
pub mod browse;
pub mod conn;
pub mod core;
pub mod download;
pub mod error;
pub mod hits;
pub mod hosts;
pub mod inbox;
pub mod link;
pub mod net;
pub mod push_proxy;
pub mod router;
pub mod shares;
pub mod upload;

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use junction_core::NetworkId;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, info};

use self::core::Core;
use crate::config::Config;
use crate::wire::guid::Guid;
use accept::acceptor;
use inbox::CoreMsg;
use shares::ShareIndex;

/// Commands queued towards the core.
const CORE_QUEUE: usize = 1024;

/// Start the servent on a bound `listener`: the shared state, the core task (its sender and
/// handle) and the acceptor. `my_addr` is the address we announce; `bootstrap` the peers
/// to dial first.
pub fn start(
    cfg: Config,
    listener: TcpListener,
    local: SocketAddr,
    my_addr: SocketAddrV4,
    bootstrap: Vec<SocketAddr>,
) -> (Arc<Shared>, mpsc::Sender<CoreMsg>, JoinHandle<Option<()>>) {
    let shared = Arc::new(Shared {
        guid: Guid::modern(rand::random()),
        stats: Stats::default(),
        shares: RwLock::new(ShareIndex::new()),
        my_addr: Mutex::new(my_addr),
        slots: Arc::new(Semaphore::new(cfg.upload_slots)),
        upload_limit: junction_core::rate::RateLimit::new(cfg.upload_limit).and(&cfg.caps.upload),
        download_limit: cfg.caps.download.clone(),
        cancel: CancellationToken::new(),
        on_demand: junction_core::BridgeOffers::new(NetworkId::GNUTELLA),
        last_error: Mutex::new(None),
        push_proxies: Default::default(),
        cfg,
    });
    shared
        .stats
        .firewalled
        .store(shared.cfg.firewalled.unwrap_or(true), Ordering::Relaxed);
    let cancel = shared.cancel.clone();
    let (tx, rx) = mpsc::channel(CORE_QUEUE);
    let core = Core::new(shared.clone(), rx, tx.clone(), cancel.clone(), bootstrap);
    let span = debug_span!("gnutella", listen = %local, ultrapeer = shared.cfg.ultrapeer);
    // The core is polled before the token: cancelled, it still says Bye to every link
    // (Core::run), which the shutdown waits for.
    let task = junction_core::task::spawn(span.clone(), cancel.clone(), core.run());
    let accept = acceptor(listener, tx.clone(), shared.clone(), cancel.clone());
    junction_core::task::spawn(span, cancel, accept);
    info!(listen = %local, guid = %shared.guid, "gnutella servent started");
    (shared, tx, task)
}

/// Counters shown by `status()`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes read from peers (links and transfers).
    pub bytes_in: AtomicU64,
    /// Bytes written to peers.
    pub bytes_out: AtomicU64,
    /// Ultrapeer links.
    pub ultrapeers: AtomicU64,
    /// Leaf links.
    pub leaves: AtomicU64,
    /// Hosts in the host cache.
    pub hosts: AtomicU64,
    /// Leaves whose QRP table we hold.
    pub leaf_tables: AtomicU64,
    /// Queries received (after de-duplication).
    pub queries_seen: AtomicU64,
    /// Queries sent on to other peers.
    pub queries_forwarded: AtomicU64,
    /// Duplicate broadcasts dropped.
    pub duplicates: AtomicU64,
    /// Queries from leaves dropped by flood control.
    pub flood_dropped: AtomicU64,
    /// Nobody connected to us yet.
    pub firewalled: AtomicBool,
    /// Uploads served (requests answered with content).
    pub uploads: AtomicU64,
}

impl Stats {
    /// Count bytes received.
    pub fn add_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }
    /// Count bytes sent.
    pub fn add_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }
    /// Read a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// State shared by the core, the acceptor, uploads and downloads.
#[derive(Debug)]
pub struct Shared {
    /// The configuration.
    pub cfg: Config,
    /// Our servent GUID.
    pub guid: Guid,
    /// Counters.
    pub stats: Stats,
    /// What we share.
    pub shares: RwLock<ShareIndex>,
    /// The address we announce.
    pub my_addr: Mutex<SocketAddrV4>,
    /// Upload slots.
    pub slots: Arc<Semaphore>,
    /// `cfg.upload_limit`, shared by every upload, joined to the cap over all networks.
    pub upload_limit: junction_core::rate::RateLimit,
    /// The download cap over all networks (Gnutella has no limit of its own).
    pub download_limit: junction_core::rate::RateLimit,
    /// Cancelled on shutdown; every task watches it.
    pub cancel: tokio_util::sync::CancellationToken,
    /// What the leaves were offered from the other networks (bridging on demand).
    pub on_demand: junction_core::BridgeOffers<crate::wire::urn::Sha1Hash>,
    /// The last thing that went wrong with a peer, for `status()`.
    pub last_error: Mutex<Option<String>>,
    /// Push proxies: ours (as a firewalled leaf) and the leaves we proxy for.
    pub push_proxies: push_proxy::PushProxies,
}

impl Shared {
    /// The address we announce in hits, pongs and pushes.
    pub fn my_addr(&self) -> SocketAddrV4 {
        *self.my_addr.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read access to the share index (a poisoned lock is still usable: the index stays consistent).
    pub fn shares(&self) -> std::sync::RwLockReadGuard<'_, ShareIndex> {
        self.shares.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember a problem for `status()`.
    pub fn set_error(&self, e: impl Into<String>) {
        let mut s: String = e.into();
        s.truncate(200);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }

    /// Write access to the share index.
    pub fn shares_mut(&self) -> std::sync::RwLockWriteGuard<'_, ShareIndex> {
        self.shares.write().unwrap_or_else(|e| e.into_inner())
    }
}
