//! [`Adapter`]: the cheap, clonable handle implementing [`junction_core::Network`],
//! in front of the engine's core task, acceptor and transfer tasks (started by
//! [`engine::start`]).

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use junction_core::{
    Capabilities, ContentId, FetchEvents, FetchRequest, HashKind, HitStream, Network, NetworkError,
    NetworkId, NetworkState, NetworkStatus, Query, Reachability, SharedItem, SourceStream,
    TransferSink,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::debug_span;

use crate::config::Config;
use crate::engine::download::{self, SourceInfo};
use crate::engine::inbox::{Command, CoreMsg, RemoteHit};
use crate::engine::{self, Shared, Stats};
use crate::wire::guid::Guid;
use crate::wire::search::SearchTerms;
use crate::wire::urn::Sha1Hash;

/// Hits buffered per search stream.
const HIT_QUEUE: usize = 256;

/// The Gnutella network adapter.
#[derive(Clone)]
pub struct Adapter {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    core: mpsc::Sender<CoreMsg>,
    cancel: CancellationToken,
    local: SocketAddr,
    task: Mutex<Option<JoinHandle<Option<()>>>>,
}

impl Drop for Inner {
    /// The last handle gone: stop every task (links close without a Bye; call
    /// [`Network::shutdown`] for an orderly stop).
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl fmt::Debug for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("gnutella::Adapter")
            .field("listen", &self.inner.local)
            .field("ultrapeer", &self.inner.shared.cfg.ultrapeer)
            .finish()
    }
}

impl Adapter {
    /// Bind the listening socket and start the servent (inside a Tokio runtime).
    pub async fn start(cfg: Config) -> Result<Self, NetworkError> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let local = listener.local_addr()?;
        let my_addr = cfg.advertised.unwrap_or_else(|| match local {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(a) => SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, a.port()),
        });
        let mut bootstrap = Vec::new();
        for p in cfg.peers.iter().take(64) {
            match resolve(p).await {
                Ok(a) => bootstrap.push(a),
                Err(e) => tracing::warn!(peer = %p, error = %e, "[gnutella] peers: not dialled"),
            }
        }
        let (shared, tx, task) = engine::start(cfg, listener, local, my_addr, bootstrap);
        let cancel = shared.cancel.clone();
        Ok(Adapter {
            inner: Arc::new(Inner {
                shared,
                core: tx,
                cancel,
                local,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// The address we listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// Our servent GUID.
    pub fn servent_guid(&self) -> Guid {
        self.inner.shared.guid
    }

    async fn cmd(&self, c: Command) -> Result<(), NetworkError> {
        if self.inner.cancel.is_cancelled() {
            return Err(NetworkError::Shutdown);
        }
        timeout(
            Duration::from_secs(10),
            self.inner.core.send(CoreMsg::Cmd(c)),
        )
        .await
        .map_err(|_| NetworkError::Timeout("gnutella core is busy".into()))?
        .map_err(|_| NetworkError::Shutdown)
    }

    async fn start_search(
        &self,
        plan: &SearchTerms,
    ) -> Result<mpsc::Receiver<RemoteHit>, NetworkError> {
        let (tx, rx) = mpsc::channel(HIT_QUEUE);
        let firewalled = self.inner.shared.stats.firewalled.load(Ordering::Relaxed);
        self.cmd(Command::Search {
            query: plan.to_wire(firewalled),
            tx,
        })
        .await?;
        Ok(rx)
    }
}

/// Our push proxies, `ip:port` comma-separated.
fn push_proxies(sh: &Shared) -> String {
    let list: Vec<String> = sh
        .push_proxies
        .ours()
        .iter()
        .map(ToString::to_string)
        .collect();
    list.join(",")
}

/// `ip:port` or `host:port`, resolved within [`junction_core::addr::RESOLVE_TIMEOUT`].
async fn resolve(p: &str) -> Result<SocketAddr, NetworkError> {
    if let Some(a) = crate::wire::addr_list::parse_addr_v4(p) {
        return Ok(SocketAddr::V4(a));
    }
    let a = junction_core::addr::resolve(p, junction_core::addr::RESOLVE_TIMEOUT).await?;
    if !a.is_ipv4() {
        return Err(NetworkError::Invalid(format!(
            "{p:?} has no IPv4 address; Gnutella hosts are IPv4"
        )));
    }
    Ok(a)
}

impl Network for Adapter {
    fn id(&self) -> NetworkId {
        NetworkId::GNUTELLA
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            keywords: true,
            ids: vec![HashKind::Sha1],
            ..Capabilities::default()
        }
    }

    fn status(&self) -> NetworkStatus {
        let sh = &self.inner.shared;
        let s = &sh.stats;
        let ups = Stats::get(&s.ultrapeers);
        let leaves = Stats::get(&s.leaves);
        let peers = u32::try_from(ups + leaves).unwrap_or(u32::MAX);
        let firewalled = s.firewalled.load(Ordering::Relaxed);
        let state = if self.inner.cancel.is_cancelled() {
            NetworkState::Offline
        } else if peers > 0 {
            NetworkState::Online
        } else {
            NetworkState::Degraded
        };
        let mode = if sh.cfg.ultrapeer {
            "ultrapeer"
        } else {
            "leaf"
        };
        let d = |k: &str, v: String| (k.to_owned(), v);
        NetworkStatus {
            state,
            reachability: Reachability {
                listening: Some(SocketAddr::V4(sh.my_addr())),
                reachable: Some(!firewalled),
                external: None,
                detail: if firewalled {
                    "firewalled"
                } else {
                    "reachable"
                }
                .to_owned(),
            },
            peers,
            servers: 0,
            dht_nodes: 0,
            bytes_in: Stats::get(&s.bytes_in),
            bytes_out: Stats::get(&s.bytes_out),
            last_error: sh
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            details: vec![
                d("mode", mode.to_owned()),
                d("ultrapeers", ups.to_string()),
                d("leaves", leaves.to_string()),
                d("hosts_cached", Stats::get(&s.hosts).to_string()),
                d("leaf_qrp_tables", Stats::get(&s.leaf_tables).to_string()),
                d("firewalled", firewalled.to_string()),
                d("listen", self.inner.local.to_string()),
                d("address", sh.my_addr().to_string()),
                d("guid", sh.guid.to_hex()),
                d("shared_files", sh.shares().len().to_string()),
                d("queries_seen", Stats::get(&s.queries_seen).to_string()),
                d(
                    "queries_forwarded",
                    Stats::get(&s.queries_forwarded).to_string(),
                ),
                d("duplicates_dropped", Stats::get(&s.duplicates).to_string()),
                d("flood_dropped", Stats::get(&s.flood_dropped).to_string()),
                d("uploads", Stats::get(&s.uploads).to_string()),
                d("push_proxies", push_proxies(sh)),
                d("push_proxied_leaves", sh.push_proxies.leaves().to_string()),
            ],
        }
    }

    async fn search(&self, q: Query) -> Result<HitStream, NetworkError> {
        let plan = SearchTerms::from_query(&q);
        if plan.is_empty() {
            return Err(NetworkError::Unsupported(
                "Gnutella searches need keywords or a urn:sha1".into(),
            ));
        }
        let s = &self.inner.shared.stats;
        if Stats::get(&s.ultrapeers) + Stats::get(&s.leaves) == 0 {
            return Err(NetworkError::Unreachable(
                "no Gnutella peer connected yet: nobody to ask".into(),
            ));
        }
        // The core ends the stream when the search is done (see `engine::core::done`),
        // or at its deadline; dropping it closes the search in the core.
        let rx = self.start_search(&plan).await?;
        Ok(ReceiverStream::new(rx).map(|h| Ok(h.to_hit())).boxed())
    }

    async fn locate(&self, id: ContentId) -> Result<SourceStream, NetworkError> {
        let Some(d) = id.get(HashKind::Sha1) else {
            return Err(NetworkError::Unsupported(
                "Gnutella locates content by SHA-1 only".into(),
            ));
        };
        let sha1 = <[u8; 20]>::try_from(d)
            .map(Sha1Hash)
            .map_err(|_| NetworkError::Invalid("bad SHA-1".into()))?;
        let plan = SearchTerms {
            keywords: Vec::new(),
            sha1: Some(sha1),
        };
        let rx = self.start_search(&plan).await?;
        let mut seen = std::collections::HashSet::new();
        Ok(ReceiverStream::new(rx)
            .filter_map(move |h| {
                let fresh = seen.insert(h.addr);
                async move { fresh.then(|| SourceInfo::from_hit(&h).to_source()) }
            })
            .boxed())
    }

    async fn fetch(
        &self,
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
    ) -> Result<FetchEvents, NetworkError> {
        if self.inner.cancel.is_cancelled() {
            return Err(NetworkError::Shutdown);
        }
        let has_sha1 = req.id.get(HashKind::Sha1).is_some();
        let has_index = req
            .sources
            .iter()
            .filter_map(SourceInfo::parse)
            .any(|s| s.index.is_some());
        if !has_sha1 && !has_index {
            return Err(NetworkError::Unsupported(
                "Gnutella needs a SHA-1 or a source with a file index".into(),
            ));
        }
        let (tx, rx) = mpsc::channel(64);
        let shared = self.inner.shared.clone();
        let core = self.inner.core.clone();
        let span = debug_span!("gnutella_fetch", name = %req.name, size = req.size);
        let cancel = shared.cancel.clone();
        junction_core::task::spawn(span, cancel, download::run(req, sink, shared, core, tx));
        Ok(ReceiverStream::new(rx).boxed())
    }

    async fn share(&self, item: SharedItem) -> Result<ContentId, NetworkError> {
        let id = crate::engine::shares::add_item(&self.inner.shared, &item).await?;
        self.cmd(Command::SharesChanged).await?;
        Ok(id)
    }

    async fn unshare(&self, id: ContentId) -> Result<(), NetworkError> {
        let sha1 = id
            .get(HashKind::Sha1)
            .and_then(|d| <[u8; 20]>::try_from(d).ok())
            .map(Sha1Hash)
            .ok_or_else(|| NetworkError::Invalid("no SHA-1: not a Gnutella share".into()))?;
        // Gone from the index and the QRP table our ultrapeers get next; a host that
        // asks for it by URN or index from now on gets a 404.
        if !self.inner.shared.shares_mut().remove(&sha1) {
            return Err(NetworkError::NotFound("not shared on Gnutella".into()));
        }
        self.cmd(Command::SharesChanged).await
    }

    fn attach_bridge(&self, bridge: Arc<dyn junction_core::Bridge>) {
        self.inner.shared.on_demand.attach(bridge);
    }

    async fn add_endpoint(&self, address: String) -> Result<(), NetworkError> {
        let a = resolve(address.trim()).await?;
        self.cmd(Command::AddEndpoint(a)).await
    }

    /// Forgets the host wherever `add_endpoint`, the config or the network put it (so it
    /// is not dialled, nor learnt again until added again) and closes a link to it with
    /// Bye 201 (as gtk-gnutella does when its user drops a node).
    async fn remove_endpoint(&self, address: String) -> Result<(), NetworkError> {
        let given = address.trim();
        let addr = resolve(given).await?;
        let (reply, known) = oneshot::channel();
        self.cmd(Command::RemoveEndpoint { addr, reply }).await?;
        let known = timeout(Duration::from_secs(10), known)
            .await
            .map_err(|_| NetworkError::Timeout("gnutella core is busy".into()))?
            .map_err(|_| NetworkError::Shutdown)?;
        if known {
            return Ok(());
        }
        let name = if given == addr.to_string() {
            given.to_owned()
        } else {
            format!("{given} ({addr})")
        };
        Err(NetworkError::NotFound(format!(
            "Gnutella host {name} was never added nor learnt"
        )))
    }

    async fn shutdown(&self) {
        // The order every adapter follows: cancel, then wait, bounded, for the goodbyes.
        // Cancelled, the core queues a Bye on every link before it ends.
        self.inner.cancel.cancel();
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = task {
            let _ = timeout(Duration::from_secs(3), t).await;
        }
        // Let the link writers flush their Byes.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
