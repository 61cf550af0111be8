//! The fetches of one transfer: each network's fetch of the whole content and of files of
//! it by their own hashes, and when each that ended is asked again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, FuturesUnordered};
use junction_core::{FetchEvent, NetworkId};

/// One fetch of a transfer: a network's fetch of the whole content, or of one file of it
/// by the file's own hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Stream {
    pub net: NetworkId,
    pub file: Option<usize>,
}

/// A fetch's events, ending with a `None`.
pub(super) type Tagged = BoxStream<'static, (Stream, Option<FetchEvent>)>;

/// First wait before a fetch that ended is asked again, doubling to `RETRY_MAX`: a Gnutella
/// fetch ends when its search found no source, and sources come and go.
const RETRY_FIRST: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(600);

/// The fetches running for a transfer, and those to ask again.
#[derive(Default)]
pub(super) struct Streams {
    pub all: futures::stream::SelectAll<Tagged>,
    pub live: HashSet<Stream>,
    pub retries: FuturesUnordered<BoxFuture<'static, Stream>>,
    /// Fetches waiting for their retry.
    pub pending: HashSet<Stream>,
    waits: HashMap<Stream, Duration>,
}

impl Streams {
    pub fn add(&mut self, key: Stream, s: Option<Tagged>) {
        if let Some(s) = s {
            self.live.insert(key);
            self.all.push(s);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// A fetch ended; true when it was its network's last one here.
    pub fn end(&mut self, key: Stream) -> bool {
        self.live.remove(&key);
        !self.live.iter().any(|k| k.net == key.net)
    }

    pub fn retry_later(&mut self, key: Stream) {
        self.pending.insert(key);
        let wait = self.waits.entry(key).or_insert(RETRY_FIRST);
        let now = *wait;
        *wait = (now * 2).min(RETRY_MAX);
        self.retries.push(Box::pin(async move {
            tokio::time::sleep(now).await;
            key
        }));
    }
}
