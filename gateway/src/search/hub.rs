//! Fan-out: one task per network under a deadline, one driver merging what comes back.
//!
//! The driver owns the network tasks (a `JoinSet`), so when the client drops the stream
//! the driver ends, the tasks are aborted and every network's hit stream is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use junction_core::query::{self, Candidate};
use junction_core::{DynNetwork, Expr, Hit, NetworkError, NetworkId};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::timeout_at;
use tracing::Instrument;

use super::{Item, Merged, Merger, ResultCache, plan};
use crate::Networks;
use crate::error::{GatewayError, Result};
use crate::identity::IdentityIndex;

/// Events buffered per search before the slowest client applies back-pressure.
const EVENT_BUFFER: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub query: String,
    pub networks: Vec<String>,
    pub timeout: Option<Duration>,
    pub max_items: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SearchEvent {
    Item(Item),
    Update(Item),
    Progress(Progress),
    Finished { items: u32, elapsed: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    Started,
    Partial,
    Done,
    TimedOut,
    Failed,
    Unsupported,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub network: NetworkId,
    pub state: ProgressState,
    pub hits: u32,
    pub error: Option<String>,
    pub elapsed: Duration,
    pub ignored: Vec<String>,
}

#[derive(Debug)]
pub struct SearchHub {
    networks: Networks,
    identities: Arc<IdentityIndex>,
    cache: Arc<ResultCache>,
    default_timeout: Duration,
    default_max: u32,
    counter: AtomicU64,
}

/// What a network task tells the driver.
enum NetEvent {
    Progress(Progress),
    Hit(Hit, bool),
}

impl SearchHub {
    pub fn new(
        networks: Networks,
        identities: Arc<IdentityIndex>,
        cache: Arc<ResultCache>,
        default_timeout: Duration,
        default_max: u32,
    ) -> Self {
        SearchHub {
            networks,
            identities,
            cache,
            default_timeout,
            default_max,
            counter: AtomicU64::new(0),
        }
    }

    pub fn cache(&self) -> &Arc<ResultCache> {
        &self.cache
    }

    /// Starts a search; events arrive on the returned channel until `Finished`.
    /// Dropping the receiver cancels every network's part of the search.
    pub fn start(&self, params: SearchParams) -> Result<mpsc::Receiver<SearchEvent>> {
        let q = query::parse(&params.query)?;
        let selected = self.select(&q.networks, &params.networks)?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
        let prefix = format!("{:x}{n:x}", rand::random::<u16>());
        let deadline = params.timeout.unwrap_or(self.default_timeout);
        let max_items = params
            .max_items
            .filter(|&m| m > 0)
            .unwrap_or(self.default_max) as usize;
        let terms = q
            .expr
            .positive_terms()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let driver = Driver {
            expr: q.expr,
            merger: Merger::new(prefix.clone(), terms),
            identities: self.identities.clone(),
            cache: self.cache.clone(),
            max_items,
            tx,
        };
        let span = tracing::info_span!("search", id = %prefix, query = %params.query);
        tokio::spawn(driver.run(selected, deadline).instrument(span));
        Ok(rx)
    }

    /// The networks a search goes to: all, narrowed by `net:` and by the request.
    fn select(
        &self,
        from_query: &[String],
        from_request: &[String],
    ) -> Result<Vec<Arc<dyn DynNetwork>>> {
        let known: Vec<&str> = self.networks.iter().map(|n| n.id().as_str()).collect();
        if known.is_empty() {
            return Err(GatewayError::Invalid(
                "this gateway runs no networks to search".into(),
            ));
        }
        for name in from_request {
            if !known.contains(&name.as_str()) {
                return Err(GatewayError::Invalid(format!(
                    "unknown network {name:?}; this gateway runs: {}",
                    known.join(", ")
                )));
            }
        }
        let wanted = |id: &str| {
            (from_query.is_empty() || from_query.iter().any(|n| n == id))
                && (from_request.is_empty() || from_request.iter().any(|n| n == id))
        };
        let selected: Vec<_> = self
            .networks
            .iter()
            .filter(|n| wanted(n.id().as_str()))
            .cloned()
            .collect();
        if selected.is_empty() {
            return Err(GatewayError::Invalid(format!(
                "no network left to search: the query and the request select none of {}",
                known.join(", ")
            )));
        }
        Ok(selected)
    }
}

struct Driver {
    expr: Expr,
    identities: Arc<IdentityIndex>,
    merger: Merger,
    cache: Arc<ResultCache>,
    max_items: usize,
    tx: mpsc::Sender<SearchEvent>,
}

impl Driver {
    async fn run(mut self, networks: Vec<Arc<dyn DynNetwork>>, deadline: Duration) {
        let started = Instant::now();
        let (net_tx, mut net_rx) = mpsc::channel::<NetEvent>(EVENT_BUFFER);
        let mut tasks = JoinSet::new();
        for net in networks {
            let expr = self.expr.clone();
            let tx = net_tx.clone();
            let span = tracing::info_span!("network", id = %net.id());
            tasks.spawn(search_one(net, expr, started, started + deadline, tx).instrument(span));
        }
        drop(net_tx);
        loop {
            tokio::select! {
                ev = net_rx.recv() => match ev {
                    Some(ev) => if !self.handle(ev).await { return },
                    None => break,
                },
                // The client went away: returning drops `tasks`, which aborts them all.
                () = self.tx.closed() => {
                    tracing::debug!("client left; cancelling the search");
                    return;
                }
            }
        }
        let finished = SearchEvent::Finished {
            items: self.merger.len() as u32,
            elapsed: started.elapsed(),
        };
        let _ = self.tx.send(finished).await;
    }

    /// Handles one event; false when the client is gone.
    async fn handle(&mut self, ev: NetEvent) -> bool {
        let out = match ev {
            NetEvent::Progress(p) => SearchEvent::Progress(p),
            NetEvent::Hit(mut hit, filter) => {
                if filter && !self.expr.matches(&candidate(&hit)) {
                    return true;
                }
                hit.id = self.identities.complete(&hit.id);
                match self.merger.add(hit, self.max_items) {
                    Some(Merged::New(i)) => {
                        let item = self.merger.item(i);
                        self.cache.put(item.clone());
                        SearchEvent::Item(item)
                    }
                    Some(Merged::Updated(i)) => {
                        let item = self.merger.item(i);
                        self.cache.put(item.clone());
                        SearchEvent::Update(item)
                    }
                    None => return true,
                }
            }
        };
        self.tx.send(out).await.is_ok()
    }
}

fn candidate(hit: &Hit) -> Candidate<'_> {
    Candidate {
        name: &hit.name,
        size: hit.size,
        sources: hit.sources.max(hit.locations.len() as u32),
        id: &hit.id,
    }
}

/// Runs one network's part of a search and reports its progress.
async fn search_one(
    net: Arc<dyn DynNetwork>,
    expr: Expr,
    started: Instant,
    deadline: Instant,
    tx: mpsc::Sender<NetEvent>,
) {
    let id = net.id();
    let progress = |state, hits, error: Option<String>, ignored: &[String]| {
        NetEvent::Progress(Progress {
            network: id,
            state,
            hits,
            error,
            elapsed: started.elapsed(),
            ignored: ignored.to_vec(),
        })
    };
    let plan = match plan(&expr, &net.capabilities()) {
        Ok(p) => p,
        Err(why) => {
            let _ = tx
                .send(progress(ProgressState::Unsupported, 0, Some(why), &[]))
                .await;
            return;
        }
    };
    let _ = tx
        .send(progress(ProgressState::Started, 0, None, &plan.ignored))
        .await;
    let deadline = tokio::time::Instant::from_std(deadline);
    let mut streams = Vec::new();
    for q in plan.queries.clone() {
        match timeout_at(deadline, net.search(q)).await {
            Ok(Ok(s)) => streams.push(s),
            Ok(Err(e)) => {
                let state = failure_state(&e);
                let _ = tx
                    .send(progress(state, 0, Some(e.to_string()), &plan.ignored))
                    .await;
                return;
            }
            Err(_) => {
                let why = "no answer before the deadline".to_owned();
                let _ = tx
                    .send(progress(
                        ProgressState::TimedOut,
                        0,
                        Some(why),
                        &plan.ignored,
                    ))
                    .await;
                return;
            }
        }
    }
    let mut hits = futures::stream::select_all(streams);
    let mut count = 0u32;
    let (state, error) = loop {
        match timeout_at(deadline, hits.next()).await {
            Ok(Some(Ok(hit))) => {
                count += 1;
                if count == 1 {
                    let _ = tx
                        .send(progress(ProgressState::Partial, 1, None, &plan.ignored))
                        .await;
                }
                if tx
                    .send(NetEvent::Hit(hit, plan.filter_locally))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok(Some(Err(e))) => break (failure_state(&e), Some(e.to_string())),
            Ok(None) => break (ProgressState::Done, None),
            // A network still finding at the deadline: with hits in hand that is a
            // finished search, without any it timed out.
            Err(_) if count > 0 => break (ProgressState::Done, None),
            Err(_) => {
                break (
                    ProgressState::TimedOut,
                    Some("no hits before the deadline".into()),
                );
            }
        }
    };
    let _ = tx.send(progress(state, count, error, &plan.ignored)).await;
}

fn failure_state(e: &NetworkError) -> ProgressState {
    match e {
        NetworkError::Unsupported(_) => ProgressState::Unsupported,
        NetworkError::Timeout(_) => ProgressState::TimedOut,
        _ => ProgressState::Failed,
    }
}
