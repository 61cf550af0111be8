//! Seeding finished torrents. BitTorrent keeps a torrent after its fetch stream is
//! dropped only when it holds every piece, and the pieces of files left out count as
//! missing, so such a torrent stopped as soon as its transfer finished. The gateway holds
//! that fetch's stream instead ([`Seedable`]). A file fetched through the torrent
//! (`container.rs`) takes BitTorrent's one fetch of it, so once that fetch ends the
//! torrent's own finished transfer is offered again and held the same way ([`Again`]).
//! BitTorrent forgets every torrent when the gateway stops, so at start-up each finished
//! torrent is offered again ([`restart`]); a cancelled one is stopped ([`stop`]).

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use junction_core::{DynNetwork, FetchEvent, FetchEvents, FetchRequest, HashKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::container::Using;
use super::{FileSink, Inner, State, Transfer};

/// Between two finished torrents offered at start-up, so that many of them do not all
/// announce to their trackers and the DHT at once.
const RESTART_GAP: Duration = Duration::from_millis(25);

/// Whether `net` fetches whole torrents (BitTorrent), whose fetch is what seeds them.
pub(super) fn fetches_torrents(net: &dyn DynNetwork) -> bool {
    let caps = net.capabilities();
    caps.fetches(HashKind::Btih) || caps.fetches(HashKind::Btmh)
}

/// Reads a fetch's stream to its end, until the gateway stops, or until the transfer is
/// cancelled (its sink retired): for BitTorrent, the torrent seeds while it lives.
async fn hold(events: FetchEvents, shutdown: CancellationToken, sink: Arc<FileSink>) {
    let mut changed = sink.subscribe();
    let cancelled = async move {
        while !sink.is_retired() {
            if changed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = events.for_each(|_| std::future::ready(())) => {}
        () = shutdown.cancelled() => {}
        () = cancelled => {}
    }
}

/// Spawns `task` on the manager's tasks when a runtime is there: from a `drop` or a
/// synchronous call. Outside one (the runtime's own teardown) there is nothing left to
/// seed for.
fn spawn_if_running(tasks: &TaskTracker, task: impl Future<Output = ()> + Send + 'static) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        tasks.spawn_on(task, &rt);
    }
}

/// A transfer's own fetch by a network that fetches torrents: when it is dropped with the
/// transfer finished and files left out, its stream is held rather than dropped.
pub(super) struct Seedable {
    events: Option<FetchEvents>,
    transfer: Weak<Transfer>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Seedable {
    /// Wraps a transfer's own fetch by `net`; `events` as they are when `net` does not
    /// fetch torrents.
    pub(super) fn wrap(
        inner: &Inner,
        t: &Arc<Transfer>,
        net: &dyn DynNetwork,
        events: FetchEvents,
    ) -> FetchEvents {
        if !fetches_torrents(net) {
            return events;
        }
        Seedable {
            events: Some(events),
            transfer: Arc::downgrade(t),
            tasks: inner.tasks.clone(),
            shutdown: inner.shutdown.clone(),
        }
        .boxed()
    }
}

impl Stream for Seedable {
    type Item = FetchEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FetchEvent>> {
        let Some(events) = self.events.as_mut() else {
            return Poll::Ready(None);
        };
        let next = events.poll_next_unpin(cx);
        if let Poll::Ready(None) = next {
            self.events = None;
        }
        next
    }
}

impl Drop for Seedable {
    fn drop(&mut self) {
        let (Some(events), Some(t)) = (self.events.take(), self.transfer.upgrade()) else {
            return;
        };
        // Without files left out BitTorrent seeds on by itself. Bytes still in one file
        // (files learnt on the way) move into a folder at the end, away from this fetch.
        let left_out = {
            let m = t.run_state();
            m.record.files.iter().any(|f| f.skip) && !m.record.needs_split()
        };
        if left_out && t.sink().is_complete() {
            let task = hold(events, self.shutdown.clone(), t.sink());
            spawn_if_running(&self.tasks, task);
        }
    }
}

/// Held by a fetch through a torrent (`container.rs`) while it lives: once it ends (the
/// file done, failed or cancelled), the torrent's own transfer, if finished, is offered
/// to the network again. The torrent stays taken until then, so another file's fetch
/// through it cannot start in between and be replaced.
pub(super) struct Again {
    using: Option<Using>,
    torrent: Arc<Transfer>,
    /// The manager's handle on the network (None: not one of its networks).
    net: Option<Arc<dyn DynNetwork>>,
    req: FetchRequest,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Again {
    pub(super) fn new(
        inner: &Inner,
        using: Using,
        torrent: Arc<Transfer>,
        net: &dyn DynNetwork,
        req: FetchRequest,
    ) -> Again {
        Again {
            using: Some(using),
            torrent,
            net: inner.networks.iter().find(|n| n.id() == net.id()).cloned(),
            req,
            tasks: inner.tasks.clone(),
            shutdown: inner.shutdown.clone(),
        }
    }
}

impl Drop for Again {
    fn drop(&mut self) {
        let (Some(using), Some(net)) = (self.using.take(), self.net.clone()) else {
            return;
        };
        let (torrent, req) = (self.torrent.clone(), self.req.clone());
        let (tasks, shutdown) = (self.tasks.clone(), self.shutdown.clone());
        let task = async move {
            if offer(using, &torrent, net, req, &tasks, &shutdown).await {
                tracing::info!("seeding the torrent a file was fetched through again");
            }
        };
        spawn_if_running(&self.tasks, task);
    }
}

/// Offers a torrent's own transfer to `net` again, if it is finished (one running, paused,
/// failed or cancelled is left as it is), and holds the fetch on `tasks`. `using` keeps
/// the torrent from a file's fetch through it until the offer is made.
async fn offer(
    using: Using,
    torrent: &Arc<Transfer>,
    net: Arc<dyn DynNetwork>,
    req: FetchRequest,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> bool {
    let finished = torrent.run_state().record.state == State::Complete;
    if !finished || torrent.is_cancelled() || shutdown.is_cancelled() {
        return false;
    }
    let sink = torrent.sink();
    match net.fetch(req, sink.for_network(net.id())).await {
        Ok(events) => {
            drop(using);
            tasks.spawn(hold(events, shutdown.clone(), sink));
            true
        }
        Err(e) => {
            tracing::debug!(network = %net.id(), error = %e, "the torrent is not seeded again");
            false
        }
    }
}

/// The finished transfers BitTorrent seeded before the gateway stopped, oldest first:
/// torrents of their own ([`super::Record::is_torrent`]) with every wanted byte verified
/// on disk (`restore` found the files there at their length).
pub(super) fn finished(inner: &Inner) -> Vec<Arc<Transfer>> {
    // Taken out of the map first: no transfer's lock is taken while the map is.
    let all: Vec<Arc<Transfer>> = inner.transfers.iter().map(|e| e.value().clone()).collect();
    let mut finished: Vec<(u64, Arc<Transfer>)> = all
        .into_iter()
        .filter(|t| t.sink().is_complete())
        .filter_map(|t| {
            let m = t.run_state();
            let seeded = m.record.state == State::Complete && m.record.is_torrent();
            let at = m.record.created_ms;
            drop(m);
            seeded.then_some((at, t))
        })
        .collect();
    finished.sort_by_key(|(at, _)| *at);
    finished.into_iter().map(|(_, t)| t).collect()
}

/// Offers each of `finished` to the networks that fetch torrents, as when it finished, so
/// they seed it again after a restart: BitTorrent turns away peers asking for a torrent it
/// is not running. Not gated on `[gateway] share_downloads`: that names the networks a
/// finished download is offered on as a file of its own; BitTorrent seeds a finished
/// torrent whatever it says, by keeping the fetch it finished with. BitTorrent takes
/// the pieces it holds from the transfer's verified ranges, so nothing is hashed or
/// fetched again. One at a time, a little apart: each starts announcing at once.
pub(super) async fn restart(inner: Arc<Inner>, finished: Vec<Arc<Transfer>>) {
    let (mut offered, began) = (0, std::time::Instant::now());
    for t in finished {
        if offered > 0 {
            tokio::select! {
                () = tokio::time::sleep(RESTART_GAP) => {}
                () = inner.shutdown.cancelled() => return,
            }
        }
        let (id, limit, req) = {
            let m = t.run_state();
            let known: Vec<_> = inner.networks.iter().map(|n| n.id()).collect();
            (
                m.record.id.clone(),
                m.record.networks.clone(),
                m.record.request(&known),
            )
        };
        let nets = inner.networks.iter().filter(|n| {
            fetches_torrents(&***n)
                && (limit.is_empty() || limit.iter().any(|l| l == n.id().as_str()))
        });
        for net in nets {
            // A file is being fetched through it: `Again` offers it once that ends.
            let Some(using) = inner.containers.take(&id) else {
                continue;
            };
            let (tasks, shutdown) = (&inner.tasks, &inner.shutdown);
            if offer(using, &t, net.clone(), req.clone(), tasks, shutdown).await {
                offered += 1;
                tracing::debug!(%id, network = %net.id(), "seeding a finished torrent again");
            }
        }
    }
    if offered > 0 {
        let took = began.elapsed();
        tracing::info!(torrents = offered, ?took, "finished torrents seed again");
    }
}

/// A cancelled finished torrent is seeded no more. BitTorrent keeps one that holds every
/// piece after its fetch ends, so it is told to stop it; one with files left out stops
/// as its held fetch is dropped ([`hold`] ends with the sink retired).
pub(super) fn stop(inner: &Inner, t: &Transfer) {
    let (content, seeded) = {
        let m = t.run_state();
        let r = &m.record;
        (r.content(), r.state == State::Complete && r.is_torrent())
    };
    if !seeded {
        return;
    }
    for net in inner.networks.iter().filter(|n| fetches_torrents(&***n)) {
        let (net, content) = (net.clone(), content.clone());
        spawn_if_running(&inner.tasks, async move {
            if let Err(e) = net.unshare(content).await {
                tracing::debug!(network = %net.id(), error = %e, "the torrent was not running");
            }
        });
    }
}
