//! The messages of the BitTorrent command loop ([`super::event_loop`]): the numbered
//! requests the handle sends, and what torrent tasks report. Kept apart from the loop, so
//! the tasks that send them do not import the loop that owns them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use junction_core::{ContentId, FetchEvents, FetchRequest, Hit, NetworkError, Query, TransferSink};
use tokio::sync::{mpsc, oneshot};

use super::index::IndexEntry;
use super::share::Prepared;
use super::torrent::Torrent;
use crate::wire::id::InfoHash;
use crate::wire::metainfo::Info;

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
    /// A metadata-only torrent for the DHT indexer (`None`: known already).
    IndexMetadata {
        ih: InfoHash,
        reply: oneshot::Sender<Option<Arc<Torrent>>>,
    },
    /// A peer offered to every running torrent (without a DHT to bootstrap from).
    AddPeer {
        addr: SocketAddr,
        reply: oneshot::Sender<()>,
    },
}

impl Command {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Fetch { sink: Some(_), .. } => "fetch",
            Command::Fetch { sink: None, .. } => "identify",
            Command::Seed { .. } => "share",
            Command::Unshare { .. } => "unshare",
            Command::Search { .. } => "search",
            Command::Peers { .. } => "locate",
            Command::AddTracker { .. } | Command::AddPeer { .. } => "add_endpoint",
            Command::RemoveTracker { .. } => "remove_endpoint",
            Command::IndexMetadata { .. } => "index_metadata",
        }
    }
}

/// A command and the id that names it in the traces of both ends.
pub(crate) struct Request {
    pub id: u64,
    pub command: Command,
}

/// The sending end of the command loop, with the request ids: what the handle holds.
#[derive(Clone)]
pub(crate) struct Requests {
    tx: mpsc::Sender<Request>,
    next_id: Arc<AtomicU64>,
}

impl Requests {
    /// The handle's end, and the command loop's.
    pub(crate) fn channel() -> (Requests, mpsc::Receiver<Request>) {
        let (tx, rx) = mpsc::channel(64);
        let next_id = Arc::new(AtomicU64::new(1));
        (Requests { tx, next_id }, rx)
    }

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

/// What torrent tasks tell the command loop; the loop takes these before the handle's
/// commands, so a command sees every report sent before it.
pub(crate) enum Report {
    /// A torrent's metadata is known: its entry for the search index.
    Indexed(IndexEntry),
    /// An info dict fetched over ut_metadata and the peers that had it, for the cache.
    MetadataFetched(Info, Vec<SocketAddr>),
    /// A torrent's task ended (after its goodbye to the trackers).
    Stopped(Arc<Torrent>),
}
