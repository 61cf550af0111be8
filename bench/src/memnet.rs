//! An in-memory network for the benchmarks: its searches answer after a set delay and
//! note when they hand out their first hit; its fetches write synthetic bytes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use junction_core::{
    Capabilities, ContentId, FetchEvent, FetchEvents, FetchRequest, Hit, HitStream, Identity,
    Network, NetworkError, NetworkId, NetworkState, NetworkStatus, Query, SharedItem, SourceStream,
    TransferSink,
};

/// The earliest moment any network of a search handed out a hit.
#[derive(Debug, Default)]
pub struct FirstHit(Mutex<Option<Instant>>);

impl FirstHit {
    fn mark(&self) {
        let now = Instant::now();
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none_or(|t| now < t) {
            *slot = Some(now);
        }
    }

    /// The instant noted since the last take, clearing it for the next search.
    pub fn take(&self) -> Option<Instant> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Bytes written per sink write by a synthetic fetch.
const FILL_CHUNK: usize = 1024 * 1024;
/// The synthetic byte pattern repeats every this many bytes (a prime, so it does not line
/// up with chunk boundaries).
const PERIOD: u64 = 251;

/// The synthetic byte at `offset` of every content this network serves.
pub fn synthetic_byte(offset: u64) -> u8 {
    (offset % PERIOD) as u8
}

#[derive(Debug)]
pub struct MemNet {
    id: NetworkId,
    hits: Vec<Hit>,
    first_delay: Duration,
    first: Arc<FirstHit>,
    /// Contents `fetch` serves.
    serves: Vec<ContentId>,
}

impl MemNet {
    /// A network whose every search yields `hits`, the first after `first_delay`.
    pub fn searching(
        id: &'static str,
        hits: Vec<Hit>,
        first_delay: Duration,
        first: Arc<FirstHit>,
    ) -> MemNet {
        let id = NetworkId(id);
        let hits = hits
            .into_iter()
            .map(|mut h| {
                h.network = id;
                h
            })
            .collect();
        MemNet {
            id,
            hits,
            first_delay,
            first,
            serves: Vec::new(),
        }
    }

    /// A network that fetches any of `contents` at memory speed.
    pub fn serving(id: &'static str, contents: Vec<ContentId>) -> MemNet {
        MemNet {
            id: NetworkId(id),
            hits: Vec::new(),
            first_delay: Duration::ZERO,
            first: Arc::default(),
            serves: contents,
        }
    }
}

impl Network for MemNet {
    fn id(&self) -> NetworkId {
        self.id
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }

    fn status(&self) -> NetworkStatus {
        NetworkStatus {
            state: NetworkState::Online,
            reachability: junction_core::Reachability {
                detail: "in memory".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    async fn search(&self, _q: Query) -> Result<HitStream, NetworkError> {
        let mut rest = self.hits.clone().into_iter();
        let head = rest.next();
        let (delay, first) = (self.first_delay, self.first.clone());
        let head = futures::stream::once(async move {
            tokio::time::sleep(delay).await;
            if head.is_some() {
                first.mark();
            }
            head
        })
        .filter_map(futures::future::ready);
        Ok(head.chain(futures::stream::iter(rest)).map(Ok).boxed())
    }

    async fn locate(&self, _id: ContentId) -> Result<SourceStream, NetworkError> {
        Ok(futures::stream::empty().boxed())
    }

    async fn fetch(
        &self,
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
    ) -> Result<FetchEvents, NetworkError> {
        if !self
            .serves
            .iter()
            .any(|c| c.relation(&req.id) == Identity::Same)
        {
            return Err(NetworkError::NotFound(format!("{:?}", req.id)));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<FetchEvent>(1);
        let _ = tx.try_send(FetchEvent::Peers(1));
        // The pattern from every phase on, so a chunk at any offset is one slice of it.
        let pattern: Vec<u8> = (0..FILL_CHUNK as u64 + PERIOD)
            .map(synthetic_byte)
            .collect();
        tokio::task::spawn_blocking(move || {
            for range in sink.wanted().iter() {
                let mut pos = range.start;
                while pos < range.end {
                    // Dropping the event stream stops the fetch.
                    if tx.is_closed() {
                        return;
                    }
                    let n = (FILL_CHUNK as u64).min(range.end - pos);
                    let phase = (pos % PERIOD) as usize;
                    if sink
                        .write(pos, &pattern[phase..phase + n as usize])
                        .is_err()
                    {
                        return;
                    }
                    sink.verified(pos..pos + n, true);
                    pos += n;
                }
            }
        });
        let events =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|ev| (ev, rx)) },
            );
        Ok(events.boxed())
    }

    async fn share(&self, _item: SharedItem) -> Result<ContentId, NetworkError> {
        Err(NetworkError::Unsupported(
            "the bench network shares nothing".into(),
        ))
    }

    async fn add_endpoint(&self, _address: String) -> Result<(), NetworkError> {
        Ok(())
    }

    async fn shutdown(&self) {}
}
