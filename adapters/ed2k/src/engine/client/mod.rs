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
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
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
    pub session: mpsc::Sender<server_session::Cmd>,
    /// Downloads waiting for a LowID source to call back, by its LowID.
    pub callbacks: Mutex<HashMap<u32, oneshot::Sender<peer::PeerConn>>>,
    pub upload_slots: Arc<Semaphore>,
    /// `cfg.upload_limit`, shared by every upload.
    pub upload_limit: junction_core::rate::RateLimit,
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
