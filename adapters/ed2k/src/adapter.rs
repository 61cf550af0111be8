//! `ed2k::Adapter`: the handle the gateway holds. It owns an optional index server, a peer
//! listener, the server-session task and the downloads, all stopped by one cancellation token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures::StreamExt;
use junction_core::{
    Capabilities, ContentId, FetchEvents, FetchRequest, HashKind, HitStream, Network, NetworkError,
    NetworkId, NetworkState, NetworkStatus, Query, SharedItem, Source, SourceStream, TransferSink,
};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, new_user_hash};
use crate::engine::bridge::OnDemand;
use crate::engine::client::{
    self, ServerInfo, Shared, SharedFile, download, peer, search, server_session,
};
use crate::engine::hash_cache::{HashCache, stat};
use crate::engine::index_server::IndexServer;
use crate::engine::net::Counters;
use crate::wire::hash::{AichHash, Ed2kHashset};
use crate::wire::link::Ed2kLink;

/// Hits buffered per search.
const SEARCH_BUFFER: usize = 256;

/// The eD2k network adapter. Cheap to clone.
#[derive(Clone)]
pub struct Adapter {
    s: Arc<Shared>,
    index: Option<IndexServer>,
    peer_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ed2k::Adapter")
            .field("peer_addr", &self.peer_addr)
            .field("index", &self.index)
            .finish()
    }
}

impl Adapter {
    /// Binds the listeners and starts the tasks.
    pub async fn start(mut cfg: Config) -> Result<Self, NetworkError> {
        let user_hash = cfg.user_hash.unwrap_or_else(new_user_hash);
        let on_demand = OnDemand::new(user_hash);
        let index = if cfg.server.enabled {
            Some(IndexServer::start_bridged(cfg.server.clone(), Some(on_demand.clone())).await?)
        } else {
            None
        };
        // With no other server named, the client logs into its own index server: there it
        // is the source of everything the server offers from the other networks.
        if let Some(ix) = &index
            && cfg.servers.is_empty()
        {
            let mut own = ix.local_addr();
            if own.ip().is_unspecified() {
                own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            cfg.servers.push(own.to_string());
        }
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
            session: stx,
            callbacks: Mutex::new(HashMap::new()),
            upload_slots: Arc::new(Semaphore::new(cfg.upload_slots.max(1))),
            upload_limit: junction_core::rate::RateLimit::new(cfg.upload_limit),
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
            tokio::spawn(peer::listen(s2, l).instrument(tracing::info_span!("ed2k_listen", ?addr)));
        }
        tokio::spawn(server_session::run(s.clone(), srx));
        Ok(Self {
            s,
            index,
            peer_addr,
        })
    }

    /// Files hashed since start (a share answered by the hash cache does not count).
    pub fn files_hashed(&self) -> u64 {
        self.s.files_hashed.load(Ordering::Relaxed)
    }

    /// A shared file's hashes, from the cache when its path, size and mtime match.
    async fn hashes(
        &self,
        path: &std::path::Path,
    ) -> Result<(Ed2kHashset, AichHash, u64), NetworkError> {
        let cache = self.s.hash_cache.clone();
        let p = path.to_path_buf();
        let lookup = tokio::task::spawn_blocking(move || {
            let key = std::fs::canonicalize(&p).unwrap_or(p);
            let st = stat(&key).ok();
            let hit = match (&cache, st) {
                (Some(c), Some((size, mtime))) => c
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key, size, mtime)
                    .map(|(h, a)| (h, a, size)),
                _ => None,
            };
            (key, st, hit)
        })
        .await
        .map_err(|e| NetworkError::Io(std::io::Error::other(e)))?;
        let (key, before, hit) = lookup;
        if let Some(hit) = hit {
            tracing::debug!(path = %key.display(), "hashes from the cache");
            return Ok(hit);
        }
        let (hashset, aich, size) = client::share::hash_file(path.to_path_buf()).await?;
        self.s.files_hashed.fetch_add(1, Ordering::Relaxed);
        if let (Some(c), Some((bsize, mtime))) = (self.s.hash_cache.clone(), before) {
            let (h, a) = (hashset.clone(), aich);
            // Cached only if the file did not change while it was hashed.
            let saved = tokio::task::spawn_blocking(move || {
                if bsize != size || stat(&key).ok() != before {
                    return Ok(());
                }
                let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
                c.insert(key, size, mtime, h, a);
                c.save()
            })
            .await;
            if let Ok(Err(e)) = saved {
                tracing::warn!(error = %e, "cannot save the ed2k hash cache");
            }
        }
        Ok((hashset, aich, size))
    }

    /// The peer listener's address, if any.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// The index server's address, if the role is on.
    pub fn index_server_addr(&self) -> Option<SocketAddr> {
        self.index.as_ref().map(IndexServer::local_addr)
    }

    /// The index server, if the role is on.
    pub fn index_server(&self) -> Option<&IndexServer> {
        self.index.as_ref()
    }

    /// What the session knows about the server it is logged into.
    pub fn server_info(&self) -> ServerInfo {
        self.s.server().clone()
    }

    /// Waits until logged into a server (or `limit` passes).
    pub async fn wait_logged_in(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.s.id().0 != 0 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    /// The user hash peers know us by.
    pub fn user_hash(&self) -> [u8; 16] {
        self.s.user_hash
    }
}

impl Network for Adapter {
    fn id(&self) -> NetworkId {
        NetworkId::ED2K
    }

    fn capabilities(&self) -> Capabilities {
        search::capabilities()
    }

    fn status(&self) -> NetworkStatus {
        let info = self.s.server().clone();
        let logged_in = info.id.0 != 0;
        let mut details = Vec::new();
        if let Some(a) = info.addr {
            details.push(("server".into(), a.to_string()));
        }
        if !info.name.is_empty() {
            details.push(("server_name".into(), info.name.clone()));
        }
        details.push(("server_users".into(), info.users.to_string()));
        details.push(("server_files".into(), info.files.to_string()));
        details.push((
            "shared_files".into(),
            self.s.files.read().map_or(0, |f| f.len()).to_string(),
        ));
        details.push((
            "upload_queue".into(),
            self.s.queued.load(Ordering::Relaxed).to_string(),
        ));
        if let Some(a) = self.peer_addr {
            details.push(("listen".into(), a.to_string()));
        }
        if let Some(ix) = &self.index {
            let st = ix.stats();
            details.push(("index_server".into(), ix.local_addr().to_string()));
            details.push(("index_users".into(), st.users.to_string()));
            details.push(("index_files".into(), st.files.to_string()));
        }
        let reachability = if !logged_in {
            "offline".to_string()
        } else if info.id.is_low_id() {
            format!("LowID {}", info.id.0)
        } else {
            format!("HighID {}", info.id.to_ipv4())
        };
        NetworkStatus {
            state: if logged_in {
                NetworkState::Online
            } else if self.index.is_some() {
                NetworkState::Degraded
            } else {
                NetworkState::Offline
            },
            reachability,
            peers: self.s.peers.load(Ordering::Relaxed),
            servers: u32::from(logged_in),
            dht_nodes: 0,
            bytes_in: self.s.counters.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.s.counters.bytes_out.load(Ordering::Relaxed),
            last_error: info.last_error,
            details,
        }
    }

    async fn search(&self, q: Query) -> Result<HitStream, NetworkError> {
        let expr = search::to_search_expr(&q.expr)
            .map_err(|e| NetworkError::Unsupported(e.to_string()))?;
        if self.s.id().0 == 0 {
            return Err(NetworkError::Unreachable(
                "not logged into an eD2k server".into(),
            ));
        }
        let (tx, rx) = mpsc::channel(16);
        self.s
            .session
            .send(server_session::Cmd::Search { expr, results: tx })
            .await
            .map_err(|_| NetworkError::Shutdown)?;
        let (htx, hrx) = mpsc::channel(SEARCH_BUFFER);
        tokio::spawn(async move {
            let mut rx = rx;
            while let Some(batch) = rx.recv().await {
                for f in &batch {
                    if let Some(h) = search::hit_from_entry(f)
                        && htx.send(Ok(h)).await.is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(hrx).boxed())
    }

    async fn locate(&self, id: ContentId) -> Result<SourceStream, NetworkError> {
        let hash: [u8; 16] = id
            .get(HashKind::Ed2k)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| NetworkError::Unsupported("eD2k locates by ed2k hash only".into()))?;
        let size = id
            .size
            .ok_or_else(|| NetworkError::Invalid("eD2k needs the file size".into()))?;
        if self.s.id().0 == 0 {
            return Err(NetworkError::Unreachable(
                "not logged into an eD2k server".into(),
            ));
        }
        let rx = download::locate(&self.s, hash, size).await?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
            .flat_map(|batch| {
                futures::stream::iter(batch.into_iter().map(|(id, port)| Source {
                    network: NetworkId::ED2K,
                    address: search::source_address(id, port),
                    detail: None,
                }))
            })
            .boxed();
        Ok(stream)
    }

    async fn fetch(
        &self,
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
    ) -> Result<FetchEvents, NetworkError> {
        download::start(self.s.clone(), req, sink).await
    }

    async fn share(&self, item: SharedItem) -> Result<ContentId, NetworkError> {
        let given = item
            .hashes
            .as_deref()
            .and_then(|h| match (&h.ed2k, h.aich) {
                (Some(e), Some(a)) => Some((e.clone(), a, h.size)),
                _ => None,
            });
        let (hashset, aich, size) = match given {
            // The gateway read the file once for every network.
            Some(h) => h,
            None => self.hashes(&item.path).await?,
        };
        if size == 0 {
            return Err(NetworkError::Invalid(
                "eD2k cannot share an empty file".into(),
            ));
        }
        if item.size != 0 && item.size != size {
            return Err(NetworkError::Invalid(format!(
                "{} has {size} bytes, {} expected",
                item.path.display(),
                item.size
            )));
        }
        let name = if item.name.trim().is_empty() {
            item.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "file".into())
        } else {
            item.name.clone()
        };
        let f = Arc::new(SharedFile {
            hash: hashset.root,
            name,
            size,
            path: item.path.clone(),
            parts: hashset.parts,
            aich,
            handle: Default::default(),
            compressible: Default::default(),
            aich_blocks: Default::default(),
        });
        tracing::info!(name = %f.name, size, hash = %crate::wire::hash::to_hex(&f.hash), "sharing");
        self.s
            .files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(f.hash, f.clone());
        let _ = self.s.session.try_send(server_session::Cmd::Offer);
        let mut id = item.id.clone();
        id.size = Some(size);
        id.set(HashKind::Ed2k, &f.hash);
        id.set(HashKind::Aich, &f.aich);
        Ok(id)
    }

    async fn unshare(&self, id: ContentId) -> Result<(), NetworkError> {
        let hash: [u8; 16] = id
            .get(HashKind::Ed2k)
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| NetworkError::Invalid("no ed2k hash: not an eD2k share".into()))?;
        let gone = self
            .s
            .files
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&hash);
        if gone.is_none() {
            return Err(NetworkError::NotFound("not shared on eD2k".into()));
        }
        // The server gets the list again without it; peers asking for it are refused.
        let _ = self.s.session.try_send(server_session::Cmd::Offer);
        Ok(())
    }

    fn attach_bridge(&self, bridge: Arc<dyn junction_core::Bridge>) {
        self.s.on_demand.offers.attach(bridge);
    }

    async fn add_endpoint(&self, address: String) -> Result<(), NetworkError> {
        let host = server_of(&address)?;
        let (_, port) = junction_core::addr::split_host_port(&host)?;
        if port == 0 {
            return Err(NetworkError::Invalid(format!(
                "{address:?}: port 0 is not a server's port"
            )));
        }
        // A name is resolved now, so one that does not resolve is refused with its value;
        // the session resolves it again at each connection (its address may change).
        junction_core::addr::resolve(&host, junction_core::addr::RESOLVE_TIMEOUT).await?;
        self.s
            .session
            .send(server_session::Cmd::AddServer(host))
            .await
            .map_err(|_| NetworkError::Shutdown)
    }

    async fn remove_endpoint(&self, address: String) -> Result<(), NetworkError> {
        let host = server_of(&address)?;
        let (reply, known) = tokio::sync::oneshot::channel();
        self.s
            .session
            .send(server_session::Cmd::RemoveServer(host.clone(), reply))
            .await
            .map_err(|_| NetworkError::Shutdown)?;
        match known.await.map_err(|_| NetworkError::Shutdown)? {
            true => Ok(()),
            false => Err(NetworkError::NotFound(format!(
                "eD2k server {host} is not in the list"
            ))),
        }
    }

    async fn shutdown(&self) {
        self.s.cancel.cancel();
        if let Some(ix) = &self.index {
            ix.shutdown();
        }
    }
}

/// The `host:port` of a server endpoint: as given, or from an `ed2k://|server|` link.
fn server_of(address: &str) -> Result<String, NetworkError> {
    let a = address.trim();
    if !a.to_ascii_lowercase().starts_with("ed2k://") {
        return Ok(a.to_string());
    }
    match Ed2kLink::parse(a).map_err(|e| NetworkError::Invalid(e.to_string()))? {
        Ed2kLink::Server(s) => Ok(format!("{}:{}", s.host, s.port)),
        _ => Err(NetworkError::Unsupported(
            "only ed2k://|server| links name an endpoint".into(),
        )),
    }
}
