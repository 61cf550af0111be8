//! Identity links: hashes known to name the same bytes, learnt from shares, finished
//! transfers and networks (a torrent's metadata, an eD2k link with AICH). A hit that
//! carries one of them is completed with the others, so the same file found by its ed2k
//! hash on eD2k and by its SHA-1 on Gnutella becomes one item.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use junction_core::{ContentId, HashKind, Identity};
use serde::{Deserialize, Serialize};

use crate::store::{Store, Table};

#[derive(Debug, Serialize, Deserialize)]
struct Link {
    size: Option<u64>,
    urns: Vec<String>,
}

/// One digest of one kind.
type HashKey = (HashKind, Vec<u8>);

#[derive(Debug)]
pub struct IdentityIndex {
    store: Arc<Store>,
    by_hash: RwLock<HashMap<HashKey, Arc<ContentId>>>,
}

impl IdentityIndex {
    pub fn open(store: Arc<Store>) -> crate::Result<IdentityIndex> {
        let index = IdentityIndex {
            store,
            by_hash: RwLock::default(),
        };
        for (_, link) in index.store.all::<Link>(Table::Identities)? {
            if let Ok(id) = ContentId::from_urns(link.size, link.urns.iter().map(String::as_str)) {
                index.insert(Arc::new(id));
            }
        }
        Ok(index)
    }

    /// Records that these hashes name the same bytes. Ids with a single hash teach nothing;
    /// ids that conflict with what is known are refused, so one bad source cannot glue two
    /// files together.
    pub fn learn(&self, id: &ContentId) {
        if id.hashes().count() < 2 || id.size.is_none() {
            return;
        }
        let mut merged = id.clone();
        for known in self.linked(id) {
            match known.relation(id) {
                Identity::Conflict => {
                    tracing::warn!(new = ?id, known = ?known, "conflicting identity link ignored");
                    return;
                }
                _ => merged.absorb(&known),
            }
        }
        if self.linked(&merged).iter().any(|k| **k == merged) {
            return;
        }
        let urns = merged.urns();
        let link = Link {
            size: merged.size,
            urns: urns.clone(),
        };
        if let Err(e) = self.store.put(Table::Identities, &urns[0], &link) {
            tracing::warn!(error = %e, "could not persist an identity link");
        }
        self.insert(Arc::new(merged));
    }

    /// The id with every hash linked to it added.
    pub fn complete(&self, id: &ContentId) -> ContentId {
        let mut out = id.clone();
        for known in self.linked(id) {
            if known.relation(&out) == Identity::Same {
                out.absorb(&known);
            }
        }
        out
    }

    fn linked(&self, id: &ContentId) -> Vec<Arc<ContentId>> {
        let map = self.by_hash.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<Arc<ContentId>> = Vec::new();
        for (k, d) in id.hashes() {
            if let Some(known) = map.get(&(k, d.to_vec()))
                && !out.iter().any(|o| Arc::ptr_eq(o, known))
            {
                out.push(known.clone());
            }
        }
        out
    }

    fn insert(&self, id: Arc<ContentId>) {
        let mut map = self.by_hash.write().unwrap_or_else(|p| p.into_inner());
        for (k, d) in id.hashes() {
            map.insert((k, d.to_vec()), id.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(size: u64, hashes: &[(HashKind, u8)]) -> ContentId {
        let mut c = ContentId::new(Some(size));
        for &(k, b) in hashes {
            c.set(k, &vec![b; k.digest_len()]);
        }
        c
    }

    #[test]
    fn links_complete_hits_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
        let index = IdentityIndex::open(store.clone()).unwrap();
        index.learn(&id(10, &[(HashKind::Ed2k, 1), (HashKind::Sha1, 2)]));
        index.learn(&id(10, &[(HashKind::Sha1, 2), (HashKind::Btih, 3)]));
        // A conflicting claim (same ed2k, other sha1) is refused.
        index.learn(&id(10, &[(HashKind::Ed2k, 1), (HashKind::Sha1, 9)]));
        drop(index);
        let index = IdentityIndex::open(store).unwrap();
        let full = index.complete(&id(10, &[(HashKind::Ed2k, 1)]));
        assert_eq!(full.get(HashKind::Sha1), Some(&[2u8; 20][..]));
        assert_eq!(full.get(HashKind::Btih), Some(&[3u8; 20][..]));
        // Another size is other content: nothing added.
        let other = index.complete(&id(11, &[(HashKind::Ed2k, 1)]));
        assert!(other.get(HashKind::Sha1).is_none());
    }
}
