//! A network adapter for tests only: it serves files held in memory, and can be made
//! slow, broken, endless or throttled. It is never shipped as a network.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use junction_core::query::Candidate;
use junction_core::{
    Capabilities, ContentId, FetchEvent, FetchEvents, FetchRequest, HashKind, Hit, HitStream,
    Identity, Network, NetworkError, NetworkId, NetworkState, NetworkStatus, Query, SharedItem,
    SourceStream, TransferSink,
};

#[derive(Debug, Clone)]
pub enum Behavior {
    /// Answers after this delay.
    Normal(Duration),
    /// Never answers.
    Silent,
    /// Fails with this message.
    Fails(&'static str),
    /// Streams a matching hit every 20 ms, forever.
    Endless,
}

/// How a network's sources serve one file.
#[derive(Debug, Clone, Copy)]
pub enum Serving {
    /// Every chunk that is wanted.
    All,
    /// Chunks until the network has served this many bytes in all (every file and fetch);
    /// then no source is left, and the fetch reports 0 peers every 50 ms, forever.
    Vanish(u64),
    /// A peer that is there but never sends a byte: 1 peer every 50 ms, forever.
    Silent,
}

#[derive(Debug, Clone)]
pub struct TestFile {
    pub name: String,
    pub data: Arc<Vec<u8>>,
    pub id: ContentId,
    pub sources: u32,
    pub serving: Serving,
}

impl TestFile {
    pub fn new(name: &str, size: usize, seed: u8, id: ContentId) -> TestFile {
        let data: Vec<u8> = (0..size)
            .map(|i| (i as u64 * 31 + u64::from(seed)) as u8)
            .collect();
        let mut id = id;
        id.size = Some(size as u64);
        // A placeholder SHA-1 (one byte repeated) becomes the real SHA-1 of these bytes, so
        // the gateway's whole-file check passes; files that share a placeholder, size and
        // seed still share the hash.
        let placeholder = id
            .get(HashKind::Sha1)
            .is_some_and(|d| d.iter().all(|b| *b == d[0]));
        if placeholder {
            use sha1::Digest;
            id.set(HashKind::Sha1, &sha1::Sha1::digest(&data));
        }
        TestFile {
            name: name.into(),
            data: Arc::new(data),
            id,
            sources: 1,
            serving: Serving::All,
        }
    }
}

#[derive(Debug)]
pub struct TestNet {
    pub id: NetworkId,
    pub caps: Capabilities,
    pub behavior: Behavior,
    pub files: Vec<TestFile>,
    /// Delay between 64 KiB chunks of a fetch.
    pub chunk_delay: Duration,
    /// Bytes written into sinks, in total.
    pub served: Arc<AtomicU64>,
    /// Hit streams alive right now (to see cancellation).
    pub live_streams: Arc<AtomicUsize>,
    /// Fetch streams alive right now.
    pub live_fetches: Arc<AtomicUsize>,
    /// A note every fetch sends first.
    pub fetch_note: Option<&'static str>,
    pub endpoints: std::sync::Mutex<Vec<String>>,
    /// Return every file whatever the query, like a loose network.
    pub ignore_query: bool,
    /// The hash `share` computes: SHA-1, or for Ed2k a stand-in (the SHA-1's first 16 bytes).
    pub share_kind: junction_core::HashKind,
    /// Every fetch's request, in order.
    pub fetched: std::sync::Mutex<Vec<FetchRequest>>,
    /// How many times `identify` was asked.
    pub identified: AtomicUsize,
}

pub const CHUNK: usize = 64 * 1024;

impl TestNet {
    pub fn new(
        id: &'static str,
        caps: Capabilities,
        behavior: Behavior,
        files: Vec<TestFile>,
    ) -> TestNet {
        TestNet {
            id: NetworkId(id),
            caps,
            behavior,
            files,
            chunk_delay: Duration::ZERO,
            served: Arc::default(),
            live_streams: Arc::default(),
            live_fetches: Arc::default(),
            fetch_note: None,
            endpoints: Default::default(),
            ignore_query: false,
            share_kind: junction_core::HashKind::Sha1,
            fetched: Default::default(),
            identified: AtomicUsize::new(0),
        }
    }

    pub fn keywords_only() -> Capabilities {
        Capabilities {
            keywords: true,
            ids: vec![junction_core::HashKind::Sha1],
            ..Default::default()
        }
    }

    pub fn everything() -> Capabilities {
        Capabilities::all()
    }

    /// The file with these hashes (one strong hash in common, sizes not disagreeing).
    fn file(&self, id: &ContentId) -> Result<TestFile, NetworkError> {
        self.files
            .iter()
            .find(|f| f.id.relation(id) == Identity::Same)
            .cloned()
            .ok_or_else(|| NetworkError::Unsupported("no such file here".into()))
    }

    fn hit(&self, f: &TestFile) -> Hit {
        let mut h = Hit::new(self.id, f.id.clone(), f.name.clone(), f.data.len() as u64);
        h.sources = f.sources;
        h
    }
}

/// Counts itself in `live` while it exists.
struct LiveGuard(Arc<AtomicUsize>);

impl LiveGuard {
    fn new(live: &Arc<AtomicUsize>) -> LiveGuard {
        live.fetch_add(1, Ordering::SeqCst);
        LiveGuard(live.clone())
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Network for TestNet {
    fn id(&self) -> NetworkId {
        self.id
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    fn status(&self) -> NetworkStatus {
        NetworkStatus {
            state: NetworkState::Online,
            reachability: junction_core::Reachability {
                listening: Some(([127, 0, 0, 1], 4662).into()),
                reachable: Some(false),
                external: None,
                detail: "LowID 7".into(),
            },
            peers: 1,
            ..Default::default()
        }
    }

    async fn search(&self, q: Query) -> Result<HitStream, NetworkError> {
        let matching: Vec<Hit> = self
            .files
            .iter()
            .filter(|f| {
                self.ignore_query
                    || q.expr.matches(&Candidate {
                        name: &f.name,
                        size: f.data.len() as u64,
                        sources: f.sources,
                        id: &f.id,
                    })
            })
            .map(|f| self.hit(f))
            .collect();
        match self.behavior.clone() {
            Behavior::Normal(delay) => {
                tokio::time::sleep(delay).await;
                Ok(futures::stream::iter(matching.into_iter().map(Ok)).boxed())
            }
            Behavior::Silent => futures::future::pending().await,
            Behavior::Fails(why) => Err(NetworkError::Unreachable(why.into())),
            Behavior::Endless => {
                let guard = LiveGuard::new(&self.live_streams);
                let first = matching.first().cloned();
                let stream = futures::stream::unfold((guard, first), |(guard, hit)| async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let item = hit.clone().ok_or(NetworkError::NotFound("nothing".into()));
                    Some((item, (guard, hit)))
                });
                Ok(stream.boxed())
            }
        }
    }

    async fn locate(&self, _id: ContentId) -> Result<SourceStream, NetworkError> {
        Ok(futures::stream::empty().boxed())
    }

    async fn fetch(
        &self,
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
    ) -> Result<FetchEvents, NetworkError> {
        self.fetched.lock().unwrap().push(req.clone());
        let file = self.file(&req.id)?;
        let delay = self.chunk_delay;
        let served = self.served.clone();
        let live = LiveGuard::new(&self.live_fetches);
        let note = self.fetch_note.map(|n| FetchEvent::Note(n.into()));
        // One chunk per poll: dropping the stream stops the fetch.
        let stream = futures::stream::unfold(live, move |live| {
            let (file, sink, served) = (file.clone(), sink.clone(), served.clone());
            async move {
                let budget = match file.serving {
                    Serving::All => u64::MAX,
                    Serving::Vanish(bytes) => bytes,
                    Serving::Silent => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        return Some((FetchEvent::Peers(1), live));
                    }
                };
                if served.load(Ordering::SeqCst) >= budget {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Some((FetchEvent::Peers(0), live));
                }
                let wanted = sink.wanted();
                let next = wanted.first_from(sink.priority().unwrap_or(0))?;
                let end = next.end.min(next.start + CHUNK as u64);
                tokio::time::sleep(delay).await;
                let bytes = &file.data[next.start as usize..end as usize];
                sink.write(next.start, bytes).ok()?;
                served.fetch_add(bytes.len() as u64, Ordering::SeqCst);
                sink.verified(next.start..end, true);
                Some((FetchEvent::Peers(1), live))
            }
        });
        Ok(futures::stream::iter(note).chain(stream).boxed())
    }

    /// What a file's "metadata" says (its hashes with the size, its name), for the hash
    /// kinds its capabilities name; the contract's default (`Unsupported`) otherwise.
    async fn identify(&self, req: FetchRequest) -> Result<FetchEvents, NetworkError> {
        self.identified.fetch_add(1, Ordering::SeqCst);
        if !self.caps.identifies(&req.id) {
            return Err(NetworkError::Unsupported(format!(
                "{} learns nothing from these hashes",
                self.id
            )));
        }
        let file = self.file(&req.id)?;
        let events = [
            FetchEvent::Identified(file.id.clone()),
            FetchEvent::Named(file.name.clone()),
        ];
        Ok(futures::stream::iter(events).boxed())
    }

    async fn share(&self, item: SharedItem) -> Result<ContentId, NetworkError> {
        let data = tokio::fs::read(&item.path).await?;
        // The real hash of its kind, as a real network would compute it.
        let want = junction_core::hashing::Want {
            sha1: true,
            ed2k: true,
            ..Default::default()
        };
        let h = junction_core::hashing::hash_bytes(&data, want);
        let digest = match self.share_kind {
            junction_core::HashKind::Ed2k => h.ed2k.map(|e| e.root.to_vec()),
            _ => h.sha1.map(|s| s.to_vec()),
        };
        Ok(ContentId::new(Some(item.size)).with(self.share_kind, &digest.unwrap_or_default()))
    }

    async fn add_endpoint(&self, address: String) -> Result<(), NetworkError> {
        if !address.contains(':') {
            return Err(NetworkError::Invalid(format!(
                "{address:?} is not host:port"
            )));
        }
        self.endpoints.lock().unwrap().push(address);
        Ok(())
    }

    async fn shutdown(&self) {}
}
