//! Items the fronts have handed out, keyed by info-hash, and the synthetic info-hash of
//! content no torrent is known for.
//!
//! The *arr apps take the info-hash from a result's magnet and track the download by it, so
//! an eD2k- or Gnutella-only result needs one. Its synthetic btih is a digest of the
//! content's own hashes and size: the same content always gets the same one (across
//! restarts too), and a magnet carrying it next to the real `xt` can be recognised without
//! any record. The map here only serves a bare info-hash given without its magnet, and the
//! feed an empty query returns; it is bounded, the oldest leaving first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use junction_core::{ContentId, HashKind};
use sha1::{Digest, Sha1};

use crate::search::Item;

/// Items remembered; enough for several apps' searches, small in memory.
const CAPACITY: usize = 4096;

/// The hash kinds a synthetic info-hash is made from, strongest identity first.
const BASIS: [HashKind; 3] = [HashKind::Ed2k, HashKind::Sha1, HashKind::Tth];

/// A synthetic BitTorrent info-hash for content without a real one: SHA-1 over a fixed
/// label, the size and the first of the content's eD2k, SHA-1 or TTH hashes. `None` when
/// it has a real info-hash or none of those.
pub fn synthetic_btih(id: &ContentId) -> Option<[u8; 20]> {
    if id.get(HashKind::Btih).is_some() {
        return None;
    }
    let (kind, digest) = BASIS.iter().find_map(|&k| id.get(k).map(|d| (k, d)))?;
    let mut h = Sha1::new();
    h.update(b"junction synthetic btih v1\0");
    h.update(kind.urn_prefix().as_bytes());
    h.update(digest);
    h.update(id.size.unwrap_or(0).to_be_bytes());
    Some(h.finalize().into())
}

/// The content a magnet names once a synthetic info-hash is taken out of it: the real
/// hashes are kept, the made-up one dropped so no network looks for it. A real info-hash
/// is left as it is.
pub fn without_synthetic(id: &ContentId) -> ContentId {
    let Some(btih) = id.get(HashKind::Btih) else {
        return id.clone();
    };
    let mut rest = ContentId::new(id.size);
    for (k, d) in id.hashes().filter(|(k, _)| *k != HashKind::Btih) {
        rest.set(k, d);
    }
    match synthetic_btih(&rest) {
        Some(s) if s.as_slice() == btih => rest,
        _ => id.clone(),
    }
}

/// One item as the fronts hand it out.
#[derive(Debug, Clone)]
pub struct KnownItem {
    pub item: Item,
    /// The real info-hash, or the synthetic one.
    pub btih: [u8; 20],
    pub synthetic: bool,
    /// When the gateway first saw it: Torznab's `pubDate`, stable across searches.
    pub first_seen: SystemTime,
}

impl KnownItem {
    /// The item's content with its info-hash, real or synthetic (as the magnet carries it).
    pub fn content_with_btih(&self) -> ContentId {
        let mut c = self.item.content.clone();
        c.set(HashKind::Btih, &self.btih);
        c
    }
}

#[derive(Debug, Default)]
pub struct Known {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_btih: HashMap<[u8; 20], KnownItem>,
    /// Oldest first.
    order: VecDeque<[u8; 20]>,
}

impl Known {
    /// Remembers an item (refreshing what a later search says of it) and returns it with its
    /// info-hash; `None` for an item with no hash to make one from.
    pub fn remember(&self, item: Item) -> Option<KnownItem> {
        let (btih, synthetic) = match item.content.get(HashKind::Btih) {
            Some(d) => (<[u8; 20]>::try_from(d).ok()?, false),
            None => (synthetic_btih(&item.content)?, true),
        };
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let first_seen = g
            .by_btih
            .get(&btih)
            .map_or_else(SystemTime::now, |k| k.first_seen);
        let known = KnownItem {
            item,
            btih,
            synthetic,
            first_seen,
        };
        if g.by_btih.insert(btih, known.clone()).is_none() {
            g.order.push_back(btih);
            while g.order.len() > CAPACITY {
                if let Some(old) = g.order.pop_front() {
                    g.by_btih.remove(&old);
                }
            }
        }
        Some(known)
    }

    pub fn get(&self, btih: &[u8]) -> Option<KnownItem> {
        let key = <[u8; 20]>::try_from(btih).ok()?;
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.by_btih.get(&key).cloned()
    }

    /// The newest `n` items, newest first.
    pub fn recent(&self, n: usize) -> Vec<KnownItem> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.order
            .iter()
            .rev()
            .filter_map(|k| g.by_btih.get(k).cloned())
            .take(n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed2k_only() -> ContentId {
        ContentId::new(Some(1234)).with(HashKind::Ed2k, &[9; 16])
    }

    fn item(content: ContentId) -> Item {
        Item {
            id: "i".into(),
            name: "a.mkv".into(),
            size: 1234,
            content,
            availability: vec![],
            other_names: vec![],
            score: 0.0,
            file_type: None,
            links: vec![],
            sources: vec![],
        }
    }

    #[test]
    fn a_synthetic_btih_is_stable_and_comes_out_of_a_magnet_again() {
        let id = ed2k_only();
        let s = synthetic_btih(&id).unwrap();
        assert_eq!(synthetic_btih(&id.clone()), Some(s));
        assert_ne!(
            synthetic_btih(&ContentId::new(Some(1235)).with(HashKind::Ed2k, &[9; 16])),
            Some(s),
            "the size is part of it"
        );
        let with = id.clone().with(HashKind::Btih, &s);
        assert_eq!(without_synthetic(&with), id);
        // A real info-hash stays.
        let real = id.clone().with(HashKind::Btih, &[1; 20]);
        assert_eq!(without_synthetic(&real), real);
        assert_eq!(synthetic_btih(&real), None);
    }

    #[test]
    fn remembers_by_info_hash_within_its_bound() {
        let k = Known::default();
        let first = k.remember(item(ed2k_only())).unwrap();
        assert!(first.synthetic);
        let again = k.remember(item(ed2k_only())).unwrap();
        assert_eq!(again.first_seen, first.first_seen);
        assert_eq!(k.get(&first.btih).unwrap().item.name, "a.mkv");
        assert_eq!(k.recent(10).len(), 1);
        assert!(k.remember(item(ContentId::new(Some(1)))).is_none());
        for i in 0..CAPACITY as u64 + 5 {
            k.remember(item(ContentId::new(Some(i)).with(HashKind::Sha1, &[1; 20])));
        }
        assert!(k.get(&first.btih).is_none(), "the oldest left");
        assert_eq!(k.recent(usize::MAX).len(), CAPACITY);
    }
}
