//! Counters the process keeps as it goes: per network, the searches sent, hits received and
//! failures; and the HTTP fronts' calls. They are the process's, as Prometheus counters are
//! (a `junction serve` runs one gateway); the rest of `/metrics` is read at scrape time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use futures::StreamExt;
use futures::future::BoxFuture;
use junction_core::{
    Bridge, Capabilities, ContentId, DynNetwork, FetchEvents, FetchRequest, HitStream,
    NetworkError, NetworkId, NetworkStatus, Query, SharedItem, SourceStream, TransferSink,
};

/// One network's running counts.
#[derive(Debug, Default)]
pub struct NetCounts {
    pub searches: AtomicU64,
    pub hits: AtomicU64,
    /// Failures by operation: search, locate, fetch, share.
    pub failures: [AtomicU64; 4],
}

pub const OPERATIONS: [&str; 4] = ["search", "locate", "fetch", "share"];

static NETWORKS: LazyLock<Mutex<BTreeMap<&'static str, Arc<NetCounts>>>> =
    LazyLock::new(Default::default);

/// The counts of one network, made on first use.
pub fn network(id: NetworkId) -> Arc<NetCounts> {
    NETWORKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(id.as_str())
        .or_default()
        .clone()
}

/// Every network counted so far.
pub fn networks() -> Vec<(&'static str, Arc<NetCounts>)> {
    NETWORKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

/// (front, HTTP method, status); every label comes from a fixed set, so the map stays small.
type CallKey = (&'static str, &'static str, u16);

/// Calls to the HTTP fronts.
static CALLS: LazyLock<Mutex<BTreeMap<CallKey, u64>>> = LazyLock::new(Default::default);

pub fn call(front: &'static str, method: &'static str, status: u16) {
    *CALLS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry((front, method, status))
        .or_default() += 1;
}

pub fn calls() -> Vec<(CallKey, u64)> {
    CALLS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect()
}

/// (service, method, code): the service and method come from the served descriptors, the
/// code from tonic's fixed set, so the map stays small.
type GrpcKey = (&'static str, &'static str, &'static str);

/// gRPC calls answered.
static GRPC_CALLS: LazyLock<Mutex<BTreeMap<GrpcKey, u64>>> = LazyLock::new(Default::default);

pub fn grpc_call(service: &'static str, method: &'static str, code: &'static str) {
    *GRPC_CALLS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry((service, method, code))
        .or_default() += 1;
}

pub fn grpc_calls() -> Vec<(GrpcKey, u64)> {
    GRPC_CALLS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect()
}

/// Wraps each network so its searches, hits and failures are counted; everything else
/// passes straight through.
pub fn instrument(networks: Vec<Arc<dyn DynNetwork>>) -> Vec<Arc<dyn DynNetwork>> {
    networks
        .into_iter()
        .map(|inner| {
            let counts = network(inner.id());
            Arc::new(Counted { inner, counts }) as Arc<dyn DynNetwork>
        })
        .collect()
}

#[derive(Debug)]
struct Counted {
    inner: Arc<dyn DynNetwork>,
    counts: Arc<NetCounts>,
}

impl Counted {
    fn failed(&self, op: usize) {
        self.counts.failures[op].fetch_add(1, Ordering::Relaxed);
    }

    async fn counted<T>(
        &self,
        op: usize,
        f: impl Future<Output = Result<T, NetworkError>>,
    ) -> Result<T, NetworkError> {
        let r = f.await;
        if r.is_err() {
            self.failed(op);
        }
        r
    }
}

impl DynNetwork for Counted {
    fn id(&self) -> NetworkId {
        self.inner.id()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn status(&self) -> NetworkStatus {
        self.inner.status()
    }
    fn search(&self, q: Query) -> BoxFuture<'_, Result<HitStream, NetworkError>> {
        Box::pin(async move {
            self.counts.searches.fetch_add(1, Ordering::Relaxed);
            let stream = self.counted(0, self.inner.search(q)).await?;
            let counts = self.counts.clone();
            Ok(stream
                .inspect(move |hit| {
                    let c = match hit {
                        Ok(_) => &counts.hits,
                        Err(_) => &counts.failures[0],
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                })
                .boxed())
        })
    }
    fn locate(&self, id: ContentId) -> BoxFuture<'_, Result<SourceStream, NetworkError>> {
        Box::pin(self.counted(1, self.inner.locate(id)))
    }
    fn fetch(
        &self,
        req: FetchRequest,
        sink: Arc<dyn TransferSink>,
    ) -> BoxFuture<'_, Result<FetchEvents, NetworkError>> {
        Box::pin(self.counted(2, self.inner.fetch(req, sink)))
    }
    fn identify(&self, req: FetchRequest) -> BoxFuture<'_, Result<FetchEvents, NetworkError>> {
        Box::pin(self.counted(2, self.inner.identify(req)))
    }
    fn share(&self, item: SharedItem) -> BoxFuture<'_, Result<ContentId, NetworkError>> {
        Box::pin(self.counted(3, self.inner.share(item)))
    }
    fn add_endpoint(&self, address: String) -> BoxFuture<'_, Result<(), NetworkError>> {
        self.inner.add_endpoint(address)
    }
    fn remove_endpoint(&self, address: String) -> BoxFuture<'_, Result<(), NetworkError>> {
        self.inner.remove_endpoint(address)
    }
    fn unshare(&self, id: ContentId) -> BoxFuture<'_, Result<(), NetworkError>> {
        self.inner.unshare(id)
    }
    fn attach_bridge(&self, bridge: Arc<dyn Bridge>) {
        self.inner.attach_bridge(bridge)
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.inner.shutdown()
    }
}
