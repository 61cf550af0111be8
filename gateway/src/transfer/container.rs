//! A file that is also a file of a multi-file torrent the gateway knows (from a transfer
//! of that torrent, running or finished, whose files are named by their own hashes): a
//! network that fetches only whole torrents (BitTorrent) fetches it through that torrent,
//! keeping only the file's bytes ([`ContainerSink`]). The other direction of `by_file`.
//! Only a torrent whose own transfer is not running is used (finished with this file left
//! out, paused, or failed), since BitTorrent keeps one fetch per torrent; a finished one
//! stops seeding while the file is fetched through it, and seeds again once that fetch
//! ends (`seed::Again`). The bytes are checked by the file's own hashes, not the
//! torrent's (`ContainerSink`), since the torrent's word that its file is this content
//! was never checked.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use junction_core::swarm::ContainerSink;
use junction_core::{ContentId, DynNetwork, FetchEvent, FetchEvents, FetchRequest, Identity};

use super::{Inner, State, Transfer, seed};

/// The torrent transfers a file is being fetched through: BitTorrent runs one fetch per
/// torrent, so a second file's fetch must not stop the first one's.
#[derive(Debug, Default)]
pub(super) struct InUse(Arc<Mutex<HashSet<String>>>);

/// Holds a torrent transfer's id in [`InUse`] while its fetch stream lives.
pub(super) struct Using(Arc<Mutex<HashSet<String>>>, String);

impl Drop for Using {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
    }
}

impl InUse {
    fn contains(&self, id: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
    }

    pub(super) fn take(&self, id: &str) -> Option<Using> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(id.to_owned())
            .then(|| Using(self.0.clone(), id.to_owned()))
    }
}

/// Where a file lies in a torrent.
struct Container {
    /// The torrent's own transfer, and its id.
    holder: Arc<Transfer>,
    transfer: String,
    /// The `.torrent`, when the transfer was started from one (from a magnet, BitTorrent
    /// has the metadata cached, or fetches it again).
    torrent: Option<Vec<u8>>,
    id: ContentId,
    name: String,
    trackers: Vec<String>,
    at: u64,
}

/// The first torrent among the other transfers that holds `content` as one of its files.
fn find(inner: &Inner, t: &Transfer, content: &ContentId) -> Option<Container> {
    let content = inner.identities.complete(content);
    let size = content.size?;
    // Taken out of the map first: no transfer's lock is taken while the map is.
    let others: Vec<Arc<Transfer>> = inner.transfers.iter().map(|e| e.value().clone()).collect();
    for other in others {
        if std::ptr::eq(Arc::as_ptr(&other), t) {
            continue;
        }
        let (files, skip, complete, c) = {
            let m = other.run_state();
            // BitTorrent runs one fetch per torrent, the latest: a torrent still being
            // fetched is left to its own transfer rather than taken from it.
            if m.record.state == State::Active
                || m.record.files.is_empty()
                || inner.containers.contains(&m.record.id)
            {
                continue;
            }
            let c = Container {
                holder: other.clone(),
                transfer: m.record.id.clone(),
                torrent: m
                    .record
                    .torrent
                    .as_deref()
                    .and_then(|h| hex::decode(h).ok()),
                id: m.record.content(),
                name: m.record.name.clone(),
                trackers: m.record.trackers.clone(),
                at: 0,
            };
            let complete = m.record.state == State::Complete;
            (m.record.files(), m.record.skip_flags(), complete, c)
        };
        let places = junction_core::layout::place(&files);
        let found = files
            .iter()
            .zip(&places)
            .zip(&skip)
            .find(|((f, _), skipped)| {
                let id = ContentId::from_urns(Some(f.length), f.urns.iter().map(String::as_str));
                // A finished torrent's file is on disk: the transfer takes it from there.
                let on_disk = complete && !**skipped;
                !f.pad
                    && !on_disk
                    && f.length == size
                    && id.is_ok_and(|id| {
                        inner.identities.complete(&id).relation(&content) == Identity::Same
                    })
            });
        let Some(((_, &(at, _)), _)) = found else {
            continue;
        };
        return Some(Container { at, ..c });
    }
    None
}

/// Asks `net` to fetch this transfer's file through a torrent that holds it, when `net`
/// fetches torrents and one is known. Only the fetch's peers and notes are shown: what it
/// learns (the torrent's hashes, name and files) is the torrent's, not the file's.
pub(super) async fn fetch(
    inner: &Inner,
    t: &Transfer,
    net: &dyn DynNetwork,
) -> Option<FetchEvents> {
    if !seed::fetches_torrents(net) {
        return None;
    }
    let content = t.run_state().record.content();
    let c = find(inner, t, &content)?;
    if !c.id.hashes().any(|(k, _)| net.capabilities().fetches(k)) {
        return None;
    }
    let total = c.id.size?;
    let sink = ContainerSink::new(t.sink().for_network(net.id()), c.at, total)?;
    let using = inner.containers.take(&c.transfer)?;
    let req = FetchRequest {
        id: c.id,
        name: c.name,
        size: total,
        sources: Vec::new(),
        trackers: c.trackers,
        torrent: c.torrent.map(Into::into),
    };
    match net.fetch(req.clone(), Arc::new(sink)).await {
        Ok(s) => {
            let again = seed::Again::new(inner, using, c.holder, net, req);
            tracing::info!(network = %net.id(), at = c.at, "fetching the file through a torrent that holds it");
            let shown = |ev: &FetchEvent| {
                std::future::ready(matches!(ev, FetchEvent::Peers(_) | FetchEvent::Note(_)))
            };
            // The torrent is ours until this fetch ends.
            Some(
                s.filter(shown)
                    .map(move |ev| {
                        let _held = &again;
                        ev
                    })
                    .boxed(),
            )
        }
        Err(e) => {
            tracing::debug!(network = %net.id(), error = %e, "not fetched through its torrent");
            None
        }
    }
}
