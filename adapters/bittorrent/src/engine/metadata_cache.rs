//! The info dicts of earlier magnet look-ups (an identify, the DHT index), with the peers
//! that had them, so the next fetch of that torrent starts from both. The command loop owns
//! the cache; torrent tasks report what they fetched.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::wire::id::InfoHash;
use crate::wire::metainfo::Info;

/// Most info dicts kept by [`MetadataCache::put`], and most bytes of them.
pub(crate) const META_CACHE_ENTRIES: usize = 64;
pub(crate) const META_CACHE_BYTES: usize = 16 << 20;

/// Info dicts fetched over ut_metadata, with the peers that were connected then, oldest
/// first.
#[derive(Default)]
pub(crate) struct MetadataCache(VecDeque<(Info, Vec<SocketAddr>)>);

impl MetadataCache {
    /// Keeps an info dict fetched over ut_metadata, and the peers that had it, so the next
    /// fetch of that torrent starts with both: after a magnet's identify, or for a hit the
    /// DHT index found.
    pub(crate) fn put(&mut self, info: Info, peers: Vec<SocketAddr>) {
        if info.raw.len() > META_CACHE_BYTES {
            return;
        }
        let c = &mut self.0;
        c.retain(|(i, _)| i.swarm_hash() != info.swarm_hash());
        c.push_back((info, peers));
        let mut bytes: usize = c.iter().map(|(i, _)| i.raw.len()).sum();
        while c.len() > META_CACHE_ENTRIES || bytes > META_CACHE_BYTES {
            match c.pop_front() {
                Some((old, _)) => bytes -= old.raw.len(),
                None => break,
            }
        }
    }

    pub(crate) fn get(&self, ih: &InfoHash) -> Option<(Info, Vec<SocketAddr>)> {
        self.0.iter().find(|(i, _)| i.swarm_hash() == *ih).cloned()
    }
}
