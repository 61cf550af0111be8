//! Starting the engine (the peer listener, the DHT node and its tasks) and the command loop
//! the [`Adapter`](crate::Adapter) handle sends its requests to: every `Network` method
//! but `status` is a [`Command`], numbered for tracing, answered on a oneshot channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use junction_core::NetworkError;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, debug_span, info, info_span};

use super::accept::accept_loop;
use super::dht::Dht;
use super::dht_tasks::{dht_indexer, dht_maintenance};
use super::fetch::start_fetch;
use super::index::{Index, IndexView};
use super::metadata_cache::MetadataCache;
use super::requests::{Command, Report, Request, Requests};
use super::share::{seed, unshare};
use super::storage::Storage;
use super::torrent::{Ctx, Torrent};
use super::torrent_task::run_torrent;
use super::torrents::{Torrents, TorrentsView};
use crate::config::Config;
use crate::wire::id::InfoHash;

/// Most trackers added as endpoints.
const MAX_EXTRA_TRACKERS: usize = 100;
/// How long the loop stays after the adapter is cancelled, for the torrents' last reports:
/// over the 3 s each goodbye announce may take.
const STOP_LINGER: Duration = Duration::from_secs(5);

/// What [`start`] set running, for the handle to hold.
pub(crate) struct Started {
    pub ctx: Arc<Ctx>,
    pub requests: Requests,
    pub cancel: CancellationToken,
    pub listen: SocketAddr,
    pub index: IndexView,
    pub torrents: TorrentsView,
}

/// Binds the peer listener (and the DHT's socket), then starts the accept loop, the DHT's
/// tasks and the command loop.
pub(crate) async fn start(config: Config) -> Result<Started, NetworkError> {
    let listener = TcpListener::bind(config.listen).await?;
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
    let (ctx, ends) = Ctx::new(config, listen.port(), dht.clone());
    let ctx = Arc::new(ctx);
    let (requests, rx) = Requests::channel();
    if let Some(d) = dht {
        let boot = ctx.config.dht_bootstrap.clone();
        let boot = dht_maintenance(d.clone(), boot, cancel.clone());
        junction_core::task::spawn(info_span!("dht_boot"), cancel.clone(), boot);
        if ctx.config.dht_index {
            let (config, requests) = (ctx.config.clone(), requests.clone());
            let indexer = dht_indexer(d, config, requests, cancel.clone());
            junction_core::task::spawn(info_span!("dht_index"), cancel.clone(), indexer);
        }
    }
    let (index, index_view) = Index::new();
    let (torrents, torrents_view) = Torrents::new();
    let engine = Engine {
        ctx: ctx.clone(),
        cancel: cancel.clone(),
        torrents,
        index,
        metadata_cache: MetadataCache::default(),
        extra_trackers: ends.extra_trackers,
    };
    let span = info_span!("bittorrent", %listen);
    let accept = accept_loop(listener, ctx.clone(), torrents_view.clone(), cancel.clone());
    junction_core::task::spawn(span.clone(), cancel.clone(), accept);
    // Not junction_core::task::spawn: cancelled, the command loop stays (STOP_LINGER) to
    // take the torrents' last reports, which `shutdown` waits for.
    tokio::spawn(engine.run(rx, ends.reports).instrument(span));
    info!(%listen, "bittorrent adapter listening");
    Ok(Started {
        ctx,
        requests,
        cancel,
        listen,
        index: index_view,
        torrents: torrents_view,
    })
}

/// The command loop's task and what it alone owns.
struct Engine {
    ctx: Arc<Ctx>,
    cancel: CancellationToken,
    torrents: Torrents,
    index: Index,
    metadata_cache: MetadataCache,
    /// Published to every torrent task through [`Ctx::extra_trackers`].
    extra_trackers: watch::Sender<Vec<String>>,
}

impl Engine {
    /// Takes the torrents' reports and the handle's commands until the adapter is
    /// cancelled, then stops every torrent.
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Request>,
        mut reports: mpsc::UnboundedReceiver<Report>,
    ) {
        loop {
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                Some(r) = reports.recv() => self.on_report(r),
                c = rx.recv() => match c {
                    Some(req) => self.on_request(req),
                    None => break,
                },
            }
        }
        // Stopping: every torrent is told to stop. The loop stays to take their last
        // reports (each leaves the map once it said `stopped` to its trackers, which
        // `shutdown` waits for) and to answer what still comes, for at most STOP_LINGER.
        for t in self.torrents.values() {
            t.cancel.cancel();
        }
        let linger = tokio::time::sleep(STOP_LINGER);
        tokio::pin!(linger);
        while !self.torrents.is_empty() {
            tokio::select! {
                biased;
                () = &mut linger => break,
                Some(r) = reports.recv() => self.on_report(r),
                Some(req) = rx.recv() => self.on_request(req),
            }
        }
    }

    fn on_request(&mut self, Request { id, command }: Request) {
        let _span = debug_span!("request", id, what = command.name()).entered();
        self.on_command(command);
    }

    fn on_report(&mut self, r: Report) {
        match r {
            Report::Indexed(e) => self.index.add(e),
            Report::MetadataFetched(info, peers) => self.metadata_cache.put(info, peers),
            Report::Stopped(t) => self.torrents.remove_stopped(&t),
        }
    }

    fn on_command(&mut self, command: Command) {
        let (ctx, torrents) = (&self.ctx, &mut self.torrents);
        // Stopping: nothing new starts.
        let stopping = self.cancel.is_cancelled();
        match command {
            Command::Fetch { reply, .. } if stopping => {
                let _ = reply.send(Err(NetworkError::Shutdown));
            }
            Command::Seed { reply, .. } if stopping => {
                let _ = reply.send(Err(NetworkError::Shutdown));
            }
            Command::Fetch { req, sink, reply } => {
                let cache = &self.metadata_cache;
                let _ = reply.send(start_fetch(ctx, torrents, cache, &self.cancel, req, sink));
            }
            Command::Seed { prepared, reply } => {
                let index = &mut self.index;
                let _ = reply.send(seed(ctx, torrents, index, &self.cancel, *prepared));
            }
            Command::Unshare { id, reply } => {
                let _ = reply.send(unshare(torrents, &mut self.index, &id));
            }
            Command::Search { query, reply } => {
                let peers =
                    |ih: &InfoHash| torrents.get(ih).map_or(0, |t| t.state().peers.len() as u32);
                let _ = reply.send(self.index.search(&query, peers));
            }
            Command::Peers { ih, reply } => {
                let _ = reply.send(super::fetch::running_peers(torrents, ih));
            }
            Command::IndexMetadata { ih, reply } => {
                let _ = reply.send(if stopping {
                    None
                } else {
                    self.index_metadata(ih)
                });
            }
            Command::AddTracker { url, reply } => {
                let _ = reply.send(self.add_tracker(url));
            }
            Command::RemoveTracker { url, reply } => {
                let _ = reply.send(self.remove_tracker(&url));
            }
            Command::AddPeer { addr, reply } => {
                for t in torrents.values() {
                    t.state().add_known(addr);
                }
                let _ = reply.send(());
            }
        }
    }

    fn add_tracker(&mut self, url: String) -> Result<(), NetworkError> {
        if self.extra_trackers.borrow().len() >= MAX_EXTRA_TRACKERS {
            return Err(NetworkError::Invalid("too many trackers".into()));
        }
        self.extra_trackers.send_if_modified(|extra| {
            let new = !extra.contains(&url);
            if new {
                extra.push(url);
            }
            new
        });
        Ok(())
    }

    /// Announces from now on leave `url` out.
    fn remove_tracker(&mut self, url: &str) -> Result<(), NetworkError> {
        let removed = self.extra_trackers.send_if_modified(|extra| {
            let before = extra.len();
            extra.retain(|t| t != url);
            extra.len() < before
        });
        if removed {
            Ok(())
        } else {
            Err(NetworkError::NotFound(format!(
                "no tracker {url:?} was added"
            )))
        }
    }

    /// Starts a metadata-only torrent for the DHT indexer, unless the index or a running
    /// torrent has `ih` already.
    fn index_metadata(&mut self, ih: InfoHash) -> Option<Arc<Torrent>> {
        if self.index.contains(&ih) || self.torrents.get(&ih).is_some() {
            return None;
        }
        debug!(info_hash = %ih, "fetching metadata for the index");
        let t = Torrent::new(self.ctx.clone(), ih, String::new(), Storage::MetadataOnly);
        self.torrents.insert(t.clone());
        // Not junction_core::task::spawn, as every torrent task: it watches the adapter's
        // token itself, and cancelled it still reports that it stopped.
        tokio::spawn(
            run_torrent(t.clone(), Vec::new(), None, None, self.cancel.child_token())
                .instrument(info_span!(parent: None, "index_meta", info_hash = %ih)),
        );
        Some(t)
    }
}
