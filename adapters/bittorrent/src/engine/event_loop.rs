//! Starting the engine (the peer listener, the DHT node and its tasks) and the command loop
//! the [`Adapter`](crate::Adapter) handle sends its requests to: every `Network` method
//! but `status` is a [`Command`], numbered for tracing, answered on a oneshot channel.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use junction_core::{ContentId, FetchEvents, FetchRequest, Hit, NetworkError, Query, TransferSink};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug_span, info, info_span};

use super::accept::accept_loop;
use super::dht::Dht;
use super::dht_tasks::{dht_indexer, dht_maintenance};
use super::fetch::start_fetch;
use super::index::IndexEntry;
use super::share::{Prepared, seed, unshare};
use super::sync::lock;
use super::torrent::Ctx;
use crate::config::Config;
use crate::wire::id::InfoHash;

/// How long the handle waits for the command loop to take a request and to answer it. The
/// loop answers at once (it never waits on the network); this only bounds a stuck engine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the handle asks of the command loop; each carries the channel its answer goes to.
pub(crate) enum Command {
    /// A fetch into `sink`; `None`: only the metadata
    /// ([`Network::identify`](junction_core::Network::identify)).
    Fetch {
        req: FetchRequest,
        sink: Option<Arc<dyn TransferSink>>,
        reply: oneshot::Sender<Result<FetchEvents, NetworkError>>,
    },
    /// Seed a file the handle hashed into a torrent ([`super::share::prepare`]).
    Seed {
        prepared: Box<Prepared>,
        reply: oneshot::Sender<Result<ContentId, NetworkError>>,
    },
    Unshare {
        id: ContentId,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    /// The local index's hits for a query.
    Search {
        query: Query,
        reply: oneshot::Sender<Vec<Result<Hit, NetworkError>>>,
    },
    /// The peers the running torrent of `ih` has (none when it is not running).
    Peers {
        ih: InfoHash,
        reply: oneshot::Sender<Vec<SocketAddr>>,
    },
    /// A tracker every torrent announces to from now on.
    AddTracker {
        url: String,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    RemoveTracker {
        url: String,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    /// A peer offered to every running torrent (without a DHT to bootstrap from).
    AddPeer {
        addr: SocketAddr,
        reply: oneshot::Sender<()>,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Fetch { sink: Some(_), .. } => "fetch",
            Command::Fetch { sink: None, .. } => "identify",
            Command::Seed { .. } => "share",
            Command::Unshare { .. } => "unshare",
            Command::Search { .. } => "search",
            Command::Peers { .. } => "locate",
            Command::AddTracker { .. } | Command::AddPeer { .. } => "add_endpoint",
            Command::RemoveTracker { .. } => "remove_endpoint",
        }
    }
}

/// A command and the id that names it in the traces of both ends.
pub(crate) struct Request {
    id: u64,
    command: Command,
}

/// The sending end of the command loop, with the request ids: what the handle holds.
#[derive(Clone)]
pub(crate) struct Requests {
    tx: mpsc::Sender<Request>,
    next_id: Arc<AtomicU64>,
}

impl Requests {
    /// Sends the command `make` builds around a reply channel and waits for the answer, each
    /// under [`REQUEST_TIMEOUT`].
    pub(crate) async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let command = make(reply);
        let what = command.name();
        let late = || NetworkError::Timeout(format!("BitTorrent request {id} ({what})"));
        tracing::trace!(request = id, what, "asking the command loop");
        tokio::time::timeout(REQUEST_TIMEOUT, self.tx.send(Request { id, command }))
            .await
            .map_err(|_| late())?
            .map_err(|_| NetworkError::Shutdown)?;
        tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .map_err(|_| late())?
            .map_err(|_| NetworkError::Shutdown)
    }
}

/// What [`start`] set running, for the handle to hold.
pub(crate) struct Started {
    pub ctx: Arc<Ctx>,
    pub requests: Requests,
    pub cancel: CancellationToken,
    pub listen: SocketAddr,
    pub index: Arc<Mutex<Vec<IndexEntry>>>,
}

/// Binds the peer listener (and the DHT's socket), then starts the accept loop, the DHT's
/// tasks and the command loop.
pub(crate) async fn start(config: Config) -> Result<Started, NetworkError> {
    let listener = TcpListener::bind(config.listen).await?;
    let upload_limit = config.upload_rate_limit;
    let download_limit = config.download_rate_limit;
    let listen = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let dht = match config.dht_listen {
        Some(addr) => Some(
            Dht::bind(addr, config.limits.ip_rates(), cancel.child_token())
                .await
                .map_err(|e| NetworkError::Other(Box::new(e)))?,
        ),
        None => None,
    };
    let ctx = Arc::new(Ctx::new(
        config,
        listen.port(),
        dht.clone(),
        upload_limit,
        download_limit,
    ));
    let index = Arc::new(Mutex::new(Vec::new()));
    if let Some(d) = dht {
        let boot = ctx.config.dht_bootstrap.clone();
        tokio::spawn(
            dht_maintenance(d.clone(), boot, cancel.clone()).instrument(info_span!("dht_boot")),
        );
        if ctx.config.dht_index {
            tokio::spawn(
                dht_indexer(d, ctx.clone(), index.clone(), cancel.clone())
                    .instrument(info_span!("dht_index")),
            );
        }
    }
    let (cmd, rx) = mpsc::channel(64);
    let span = info_span!("bittorrent", %listen);
    tokio::spawn(accept_loop(listener, ctx.clone(), cancel.clone()).instrument(span.clone()));
    tokio::spawn(event_loop(rx, ctx.clone(), index.clone(), cancel.clone()).instrument(span));
    info!(%listen, "bittorrent adapter listening");
    let requests = Requests {
        tx: cmd,
        next_id: Arc::new(AtomicU64::new(1)),
    };
    Ok(Started {
        ctx,
        requests,
        cancel,
        listen,
        index,
    })
}

/// Takes the handle's commands until the adapter is cancelled, then stops every torrent.
async fn event_loop(
    mut rx: mpsc::Receiver<Request>,
    ctx: Arc<Ctx>,
    index: Arc<Mutex<Vec<IndexEntry>>>,
    cancel: CancellationToken,
) {
    loop {
        let Request { id, command } = tokio::select! {
            _ = cancel.cancelled() => break,
            c = rx.recv() => match c { Some(c) => c, None => break },
        };
        let _span = debug_span!("request", id, what = command.name()).entered();
        match command {
            Command::Fetch { req, sink, reply } => {
                let _ = reply.send(start_fetch(&ctx, &index, &cancel, req, sink));
            }
            Command::Seed { prepared, reply } => {
                let _ = reply.send(seed(&ctx, &index, &cancel, *prepared));
            }
            Command::Unshare { id, reply } => {
                let _ = reply.send(unshare(&ctx, &index, &id));
            }
            Command::Search { query, reply } => {
                let _ = reply.send(super::index::search(&index, &ctx, &query));
            }
            Command::Peers { ih, reply } => {
                let _ = reply.send(super::fetch::running_peers(&ctx, ih));
            }
            Command::AddTracker { url, reply } => {
                let mut extra = lock(&ctx.extra_trackers);
                let _ = reply.send(if extra.len() >= 100 {
                    Err(NetworkError::Invalid("too many trackers".into()))
                } else {
                    if !extra.contains(&url) {
                        extra.push(url);
                    }
                    Ok(())
                });
            }
            Command::RemoveTracker { url, reply } => {
                // Announces from now on leave it out.
                let mut extra = lock(&ctx.extra_trackers);
                let before = extra.len();
                extra.retain(|t| t != &url);
                let _ = reply.send(if extra.len() == before {
                    Err(NetworkError::NotFound(format!(
                        "no tracker {url:?} was added"
                    )))
                } else {
                    Ok(())
                });
            }
            Command::AddPeer { addr, reply } => {
                for t in lock(&ctx.torrents).values() {
                    t.state().add_known(addr);
                }
                let _ = reply.send(());
            }
        }
    }
    let torrents: Vec<_> = lock(&ctx.torrents).values().cloned().collect();
    for t in torrents {
        t.cancel.cancel();
    }
}
