//! The adapter-wide context every torrent and peer shares: identity, counters, the upload
//! and download rate limits, and the ends of the channels to the command loop (which owns
//! the torrents map).

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::ConnId;
use crate::config::Config;
use crate::engine::requests::Report;
use crate::wire::id::PeerId;
use junction_core::rate::RateLimit;

/// Adapter-wide context shared by every torrent and peer.
#[derive(Debug)]
pub struct Ctx {
    pub config: Config,
    pub peer_id: PeerId,
    pub port: AtomicU16,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub next_conn: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    /// The DHT node, when enabled.
    pub dht: Option<crate::engine::dht::Dht>,
    /// Upload rate limit shared by every torrent, joined to the cap over all networks.
    pub upload_limit: RateLimit,
    /// Download rate limit shared by every torrent, joined to the cap over all networks.
    pub download_limit: RateLimit,
    /// Pieces hashed at once (off the reactor).
    pub hashers: Arc<tokio::sync::Semaphore>,
    /// Trackers added at run time (`AddEndpoint`), announced to by every torrent; the
    /// command loop keeps the list and publishes it here.
    pub extra_trackers: watch::Receiver<Vec<String>>,
    /// What torrent tasks tell the command loop.
    pub(crate) reports: mpsc::UnboundedSender<Report>,
}

/// The command loop's ends of the channels in [`Ctx`].
pub(crate) struct LoopEnds {
    pub reports: mpsc::UnboundedReceiver<Report>,
    pub extra_trackers: watch::Sender<Vec<String>>,
}

impl Ctx {
    /// A context with fresh counters, no torrents, and a new peer id, and the command
    /// loop's ends of its channels.
    pub(crate) fn new(
        config: Config,
        port: u16,
        dht: Option<crate::engine::dht::Dht>,
    ) -> (Ctx, LoopEnds) {
        let upload_limit = RateLimit::new(config.upload_rate_limit).and(&config.caps.upload);
        let download_limit = RateLimit::new(config.download_rate_limit).and(&config.caps.download);
        let (reports, reports_rx) = mpsc::unbounded_channel();
        let (trackers_tx, extra_trackers) = watch::channel(Vec::new());
        let ends = LoopEnds {
            reports: reports_rx,
            extra_trackers: trackers_tx,
        };
        let ctx = Ctx {
            config,
            peer_id: new_peer_id(),
            port: AtomicU16::new(port),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            next_conn: AtomicU64::new(1),
            last_error: Mutex::new(None),
            dht,
            upload_limit,
            download_limit,
            hashers: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            )),
            extra_trackers,
            reports,
        };
        (ctx, ends)
    }

    /// How long to hold `n` uploaded bytes to keep under the upload limit.
    pub fn upload_wait(&self, n: u64) -> Duration {
        self.upload_limit.reserve(n)
    }

    /// How long to stop reading from peers after `n` bytes came in, to keep under the
    /// download limit.
    pub fn download_wait(&self, n: u64) -> Duration {
        self.download_limit.reserve(n)
    }

    pub fn conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}

/// A peer id in Azureus style: our client tag, then random characters.
fn new_peer_id() -> PeerId {
    let mut id = *b"-JN0001-000000000000";
    for b in &mut id[8..] {
        *b = b"0123456789abcdefghijklmnopqrstuvwxyz"[rand::random::<u32>() as usize % 36];
    }
    PeerId(id)
}
