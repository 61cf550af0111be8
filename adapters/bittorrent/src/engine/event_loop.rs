//! Starting the engine (the peer listener, the DHT node and its tasks) and the command loop
//! the [`Adapter`](crate::Adapter) handle sends fetches and shares to.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use junction_core::{ContentId, FetchEvents, FetchRequest, NetworkError, SharedItem, TransferSink};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use super::accept::accept_loop;
use super::dht::Dht;
use super::dht_tasks::{dht_indexer, dht_maintenance};
use super::fetch::start_fetch;
use super::index::IndexEntry;
use super::share::share;
use super::sync::lock;
use super::torrent::Ctx;
use crate::config::Config;

/// What the handle asks of the command loop; each carries the channel its answer goes to.
pub(crate) enum Command {
    /// A fetch into `sink`; `None`: only the metadata
    /// ([`Network::identify`](junction_core::Network::identify)).
    Fetch {
        req: FetchRequest,
        sink: Option<Arc<dyn TransferSink>>,
        reply: oneshot::Sender<Result<FetchEvents, NetworkError>>,
    },
    Share {
        item: SharedItem,
        reply: oneshot::Sender<Result<ContentId, NetworkError>>,
    },
}

/// What [`start`] set running, for the handle to hold.
pub(crate) struct Started {
    pub ctx: Arc<Ctx>,
    pub cmd: mpsc::Sender<Command>,
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
    Ok(Started {
        ctx,
        cmd,
        cancel,
        listen,
        index,
    })
}

/// Takes the handle's commands until the adapter is cancelled, then stops every torrent.
async fn event_loop(
    mut rx: mpsc::Receiver<Command>,
    ctx: Arc<Ctx>,
    index: Arc<Mutex<Vec<IndexEntry>>>,
    cancel: CancellationToken,
) {
    loop {
        let cmd = tokio::select! {
            _ = cancel.cancelled() => break,
            c = rx.recv() => match c { Some(c) => c, None => break },
        };
        match cmd {
            Command::Fetch { req, sink, reply } => {
                let _ = reply.send(start_fetch(&ctx, &index, &cancel, req, sink));
            }
            Command::Share { item, reply } => {
                let (ctx, index, cancel) = (ctx.clone(), index.clone(), cancel.clone());
                tokio::spawn(async move {
                    let _ = reply.send(share(ctx, index, cancel, item).await);
                });
            }
        }
    }
    let torrents: Vec<_> = lock(&ctx.torrents).values().cloned().collect();
    for t in torrents {
        t.cancel.cancel();
    }
}
