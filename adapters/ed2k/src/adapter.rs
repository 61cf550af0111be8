//! `ed2k::Adapter`: the handle the gateway holds. It owns an optional index server, a peer
//! listener, the server-session task and the downloads, all stopped by one cancellation token.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use junction_core::{
    Capabilities, ContentId, FetchEvents, FetchRequest, HashKind, HitStream, Network, NetworkError,
    NetworkId, NetworkState, NetworkStatus, Query, Reachability, SharedItem, Source, SourceStream,
    TransferSink,
};

use crate::config::{Config, new_user_hash};
use crate::engine::bridge::OnDemand;
use crate::engine::client::{self, ServerInfo, Shared, download, search, server_session, share};
use crate::engine::index_server::IndexServer;
use crate::wire::link::Ed2kLink;

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
        let (s, peer_addr) = client::start(cfg, user_hash, on_demand).await?;
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
        let low = info.id.is_low_id();
        let reachability = Reachability {
            listening: self.peer_addr,
            // The server tells: a HighID is the address it reached us at.
            reachable: logged_in.then_some(!low),
            external: (logged_in && !low).then(|| IpAddr::V4(info.id.to_ipv4())),
            detail: if !logged_in {
                "offline".to_string()
            } else if low {
                format!("LowID {}", info.id.0)
            } else {
                format!("HighID {}", info.id.to_ipv4())
            },
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
        search::start(&self.s, q).await
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
        share::share(&self.s, item).await
    }

    async fn unshare(&self, id: ContentId) -> Result<(), NetworkError> {
        share::unshare(&self.s, &id)
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
            .server_session
            .send(server_session::Cmd::AddServer(host))
            .await
            .map_err(|_| NetworkError::Shutdown)
    }

    async fn remove_endpoint(&self, address: String) -> Result<(), NetworkError> {
        let host = server_of(&address)?;
        let (reply, known) = tokio::sync::oneshot::channel();
        self.s
            .server_session
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
        // The order every adapter follows: cancel, then wait for the goodbyes. eD2k has
        // none to wait for (no message says goodbye to a server or a peer).
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
