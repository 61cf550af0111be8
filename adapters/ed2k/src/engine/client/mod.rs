//! Junction's eD2k client: the session with the eD2k server it logs into
//! (`server_session`), search, sources, and the peer connections for download and upload.

pub(crate) mod download;
mod identity;
pub(crate) mod peer;
pub(crate) mod recovery;
pub mod search;
pub(crate) mod server_session;
pub(crate) mod share;
mod upload;

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use junction_core::NetworkError;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::bridge::OnDemand;
use crate::engine::hash_cache::HashCache;
use crate::engine::net::Counters;
use crate::wire::{ClientId, Hash16};

pub(crate) use share::SharedFile;

/// What the server session knows about the server it is logged into.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// The server we are logged into.
    pub addr: Option<SocketAddrV4>,
    pub name: String,
    /// Our ID on it (0 = not logged in).
    pub id: ClientId,
    /// `SRV_TCPFLG_*`.
    pub flags: u32,
    pub users: u32,
    pub files: u32,
    pub last_error: Option<String>,
    pub last_message: Option<String>,
}

/// State shared by the adapter handle and all of its tasks.
pub(crate) struct Shared {
    pub cfg: Config,
    pub user_hash: Hash16,
    /// Files the other networks have that this client serves once the gateway has them.
    pub on_demand: Arc<crate::engine::bridge::OnDemand>,
    /// Our peer listening port (0 = none, firewalled).
    pub port: u16,
    pub counters: Arc<Counters>,
    pub files: RwLock<HashMap<Hash16, Arc<SharedFile>>>,
    pub server: Mutex<ServerInfo>,
    pub server_session: mpsc::Sender<server_session::Cmd>,
    /// Downloads waiting for a LowID source to call back, by its LowID.
    pub callbacks: Mutex<HashMap<u32, oneshot::Sender<peer::PeerConn>>>,
    pub upload_slots: Arc<Semaphore>,
    /// `cfg.upload_limit`, shared by every upload, joined to the cap over all networks.
    pub upload_limit: junction_core::rate::RateLimit,
    /// The download cap over all networks (eD2k has no limit of its own).
    pub download_limit: junction_core::rate::RateLimit,
    pub queued: AtomicU32,
    /// The shared files' hash cache, if configured.
    pub hash_cache: Option<Arc<Mutex<crate::engine::hash_cache::HashCache>>>,
    /// Files hashed (not answered by the cache) since start.
    pub files_hashed: std::sync::atomic::AtomicU64,
    pub peers: AtomicU32,
    pub cancel: CancellationToken,
}

impl Shared {
    pub fn server(&self) -> MutexGuard<'_, ServerInfo> {
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn callbacks(&self) -> MutexGuard<'_, HashMap<u32, oneshot::Sender<peer::PeerConn>>> {
        self.callbacks.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn file(&self, hash: &Hash16) -> Option<Arc<SharedFile>> {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash)
            .cloned()
    }
    pub fn shared_files(&self) -> Vec<Arc<SharedFile>> {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
    /// Our current client ID (0 when not logged in).
    pub fn id(&self) -> ClientId {
        self.server().id
    }
}

/// Counts a live peer connection for as long as it is held.
pub(crate) struct PeerGuard(Arc<Shared>);

impl PeerGuard {
    pub fn new(s: &Arc<Shared>) -> Self {
        s.peers.fetch_add(1, Ordering::Relaxed);
        Self(s.clone())
    }
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        self.0.peers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Builds the client's shared state (loading the hash cache, if configured) and starts its
/// tasks: the peer listener, when `cfg.listen` is set, and the session with the eD2k
/// servers. Returns the state and the peer listener's address.
pub(crate) async fn start(
    cfg: Config,
    user_hash: Hash16,
    on_demand: Arc<OnDemand>,
) -> Result<(Arc<Shared>, Option<SocketAddr>), NetworkError> {
    let listener = match cfg.listen {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
        None => None,
    };
    let peer_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
    let (stx, srx) = mpsc::channel(64);
    let s = Arc::new(Shared {
        user_hash,
        on_demand,
        port: peer_addr.map_or(0, |a| a.port()),
        counters: Arc::new(Counters::default()),
        files: RwLock::new(HashMap::new()),
        server: Mutex::new(ServerInfo::default()),
        server_session: stx,
        callbacks: Mutex::new(HashMap::new()),
        upload_slots: Arc::new(Semaphore::new(cfg.upload_slots.max(1))),
        upload_limit: junction_core::rate::RateLimit::new(cfg.upload_limit).and(&cfg.caps.upload),
        download_limit: cfg.caps.download.clone(),
        queued: AtomicU32::new(0),
        hash_cache: match &cfg.hash_cache {
            Some(p) => {
                let p = p.clone();
                let c = tokio::task::spawn_blocking(move || HashCache::load(p))
                    .await
                    .map_err(|e| NetworkError::Io(std::io::Error::other(e)))?;
                Some(Arc::new(Mutex::new(c)))
            }
            None => None,
        },
        files_hashed: AtomicU64::new(0),
        peers: AtomicU32::new(0),
        cancel: CancellationToken::new(),
        cfg,
    });
    if let Some(l) = listener {
        let s2 = s.clone();
        let addr = peer_addr;
        let span = tracing::info_span!("ed2k_listen", ?addr);
        junction_core::task::spawn(span, s.cancel.clone(), peer::listen(s2, l));
    }
    let span = tracing::info_span!("ed2k_server_session");
    junction_core::task::spawn(span, s.cancel.clone(), server_session::run(s.clone(), srx));
    Ok((s, peer_addr))
}
