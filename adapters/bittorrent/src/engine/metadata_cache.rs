//! The info dicts of earlier magnet look-ups (an identify, the DHT index), with the peers
//! that had them, so the next fetch of that torrent starts from both.

use std::net::SocketAddr;

use super::sync::lock;
use super::torrent::Ctx;
use crate::wire::id::InfoHash;
use crate::wire::metainfo::Info;

/// Most info dicts kept by [`cache_metadata`], and most bytes of them.
pub(crate) const META_CACHE_ENTRIES: usize = 64;
pub(crate) const META_CACHE_BYTES: usize = 16 << 20;

/// Keeps an info dict fetched over ut_metadata, and the peers that had it, so the next
/// fetch of that torrent starts with both: after a magnet's identify, or for a hit the
/// DHT index found.
pub(crate) fn cache_metadata(ctx: &Ctx, info: &Info, peers: Vec<SocketAddr>) {
    if info.raw.len() > META_CACHE_BYTES {
        return;
    }
    let mut c = lock(&ctx.metadata_cache);
    c.retain(|(i, _)| i.swarm_hash() != info.swarm_hash());
    c.push_back((info.clone(), peers));
    let mut bytes: usize = c.iter().map(|(i, _)| i.raw.len()).sum();
    while c.len() > META_CACHE_ENTRIES || bytes > META_CACHE_BYTES {
        match c.pop_front() {
            Some((old, _)) => bytes -= old.raw.len(),
            None => break,
        }
    }
}

pub(crate) fn cached_metadata(ctx: &Ctx, ih: &InfoHash) -> Option<(Info, Vec<SocketAddr>)> {
    lock(&ctx.metadata_cache)
        .iter()
        .find(|(i, _)| i.swarm_hash() == *ih)
        .cloned()
}
