//! The torrents map: owned by the command loop, the only task that adds or removes a
//! torrent, and published read-only after each change ([`TorrentsView`]) for the accept task
//! (which torrent an incoming handshake names) and the handle's synchronous readers
//! (`status`, `torrent_stats`).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use super::torrent::Torrent;
use crate::wire::id::InfoHash;

type Map = HashMap<InfoHash, Arc<Torrent>>;

/// The running torrents by info-hash, owned by the command loop.
pub(crate) struct Torrents {
    map: Map,
    published: watch::Sender<Arc<Map>>,
}

/// The torrents as the command loop last published them.
#[derive(Clone)]
pub(crate) struct TorrentsView(watch::Receiver<Arc<Map>>);

impl TorrentsView {
    pub(crate) fn get(&self, ih: &InfoHash) -> Option<Arc<Torrent>> {
        self.0.borrow().get(ih).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Torrent>> {
        self.0.borrow().values().cloned().collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }
}

impl Torrents {
    pub(crate) fn new() -> (Torrents, TorrentsView) {
        let (published, view) = watch::channel(Arc::new(Map::new()));
        let torrents = Torrents {
            map: Map::new(),
            published,
        };
        (torrents, TorrentsView(view))
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(self.map.clone()));
    }

    pub(crate) fn get(&self, ih: &InfoHash) -> Option<&Arc<Torrent>> {
        self.map.get(ih)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<Torrent>> {
        self.map.values()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds `t` under its info-hash; returns the torrent it replaced.
    pub(crate) fn insert(&mut self, t: Arc<Torrent>) -> Option<Arc<Torrent>> {
        let old = self.map.insert(t.info_hash, t);
        self.publish();
        old
    }

    pub(crate) fn remove(&mut self, ih: &InfoHash) -> Option<Arc<Torrent>> {
        let old = self.map.remove(ih);
        if old.is_some() {
            self.publish();
        }
        old
    }

    /// A torrent's task ended: it leaves the map, unless a newer torrent took its place.
    pub(crate) fn remove_stopped(&mut self, t: &Arc<Torrent>) {
        if self
            .map
            .get(&t.info_hash)
            .is_some_and(|x| Arc::ptr_eq(x, t))
        {
            self.map.remove(&t.info_hash);
            self.publish();
        }
    }
}
