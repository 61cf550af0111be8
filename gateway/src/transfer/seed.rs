//! Seeding a finished torrent with files left out. BitTorrent keeps a torrent after its
//! fetch stream is dropped only when it holds every piece, and the pieces of files left
//! out count as missing, so such a torrent stopped as soon as its transfer finished. The
//! gateway holds that fetch's stream instead ([`Seedable`]). A file fetched through the
//! torrent (`container.rs`) takes BitTorrent's one fetch of it, so once that fetch ends
//! the torrent's own finished transfer is offered again and held the same way ([`Again`]).

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use junction_core::{DynNetwork, FetchEvent, FetchEvents, FetchRequest, HashKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::container::Using;
use super::{Inner, State, Transfer};

/// Whether `net` fetches whole torrents (BitTorrent), whose fetch is what seeds them.
pub(super) fn fetches_torrents(net: &dyn DynNetwork) -> bool {
    let caps = net.capabilities();
    caps.fetches(HashKind::Btih) || caps.fetches(HashKind::Btmh)
}

/// Reads a fetch's stream to its end, or until the gateway stops: for BitTorrent, the
/// torrent seeds while it lives.
async fn hold(events: FetchEvents, shutdown: CancellationToken) {
    tokio::select! {
        () = events.for_each(|_| std::future::ready(())) => {}
        () = shutdown.cancelled() => {}
    }
}

/// Spawns `task` on the manager's tasks from a `drop`; dropped outside a runtime (its
/// own teardown), there is nothing left to seed for.
fn spawn_from_drop(tasks: &TaskTracker, task: impl Future<Output = ()> + Send + 'static) {
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
            let m = t.meta();
            m.record.files.iter().any(|f| f.skip) && !m.record.needs_split()
        };
        if left_out && t.sink().is_complete() {
            spawn_from_drop(&self.tasks, hold(events, self.shutdown.clone()));
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
        let task = offer(
            using,
            self.torrent.clone(),
            net,
            self.req.clone(),
            self.shutdown.clone(),
        );
        spawn_from_drop(&self.tasks, task);
    }
}

/// Offers a torrent's own transfer to `net` again, if it is finished (one running, paused
/// or failed is left as it is), and holds the fetch.
async fn offer(
    using: Using,
    torrent: Arc<Transfer>,
    net: Arc<dyn DynNetwork>,
    req: FetchRequest,
    shutdown: CancellationToken,
) {
    let finished = torrent.meta().record.state == State::Complete;
    if !finished || torrent.is_cancelled() || shutdown.is_cancelled() {
        return;
    }
    let sink = torrent.sink().for_network(net.id());
    match net.fetch(req, sink).await {
        Ok(events) => {
            drop(using);
            tracing::info!(network = %net.id(), "seeding the torrent a file was fetched through again");
            hold(events, shutdown).await;
        }
        Err(e) => {
            tracing::debug!(network = %net.id(), error = %e, "the torrent is not seeded again")
        }
    }
}
