//! The search index: torrents shared, fetched, or learnt from the DHT (BEP 51 samples,
//! whose metadata is fetched in the background), searchable by name. The command loop owns
//! it ([`Index`]) and publishes a read-only copy after each change ([`IndexView`]) for the
//! handle's synchronous readers (`index_entry`, `status`).

use std::sync::Arc;

use bytes::Bytes;
use junction_core::query::Candidate;
use junction_core::{ContentId, HashKind, Hit, NetworkError, NetworkId, Query};
use tokio::sync::watch;

use super::torrent::Torrent;
use crate::wire::id::InfoHash;

/// Most torrents kept in the search index.
const MAX_INDEX: usize = 10_000;

/// A torrent Junction knows, searchable by name.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub info_hash: InfoHash,
    pub name: String,
    pub size: u64,
    pub files: Vec<String>,
    pub trackers: Vec<String>,
    /// The `.torrent` file, for torrents Junction made or was given.
    pub torrent: Option<Bytes>,
    /// Size, info-hashes and, for a single-file torrent, the whole-file hashes its info
    /// dictionary carries (`sha1`, `filehash`, `ed2k`, `md5sum`).
    pub id: ContentId,
}

impl IndexEntry {
    pub fn magnet(&self) -> String {
        let mut m = format!(
            "magnet:?xt=urn:btih:{}&dn={}&xl={}",
            self.info_hash.to_hex(),
            crate::wire::percent::encode(self.name.as_bytes()),
            self.size
        );
        // The whole-file hashes as more `xt`s, so other networks' clients can match it.
        for (kind, digest) in self.id.hashes() {
            if matches!(kind, HashKind::Sha1 | HashKind::Ed2k | HashKind::Md5) {
                m.push_str(&format!(
                    "&xt=urn:{}:{}",
                    kind.urn_prefix(),
                    kind.format(digest)
                ));
            }
        }
        for t in &self.trackers {
            m.push_str("&tr=");
            m.push_str(&crate::wire::percent::encode(t.as_bytes()));
        }
        m
    }
}

/// The entries, oldest first, as the command loop publishes them.
type Entries = Arc<Vec<Arc<IndexEntry>>>;

/// The search index, owned by the command loop.
pub(crate) struct Index {
    entries: Vec<Arc<IndexEntry>>,
    published: watch::Sender<Entries>,
}

/// The index as the command loop last published it: what the handle reads without asking.
#[derive(Clone)]
pub(crate) struct IndexView(watch::Receiver<Entries>);

impl IndexView {
    pub(crate) fn get(&self, ih: &InfoHash) -> Option<IndexEntry> {
        self.0
            .borrow()
            .iter()
            .find(|e| e.info_hash == *ih)
            .map(|e| IndexEntry::clone(e))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

impl Index {
    pub(crate) fn new() -> (Index, IndexView) {
        let (published, view) = watch::channel(Arc::new(Vec::new()));
        let index = Index {
            entries: Vec::new(),
            published,
        };
        (index, IndexView(view))
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(self.entries.clone()));
    }

    pub(crate) fn contains(&self, ih: &InfoHash) -> bool {
        self.entries.iter().any(|e| e.info_hash == *ih)
    }

    /// Adds `e`, or replaces the entry of its torrent when `e` has the `.torrent` or the
    /// old one had none; the oldest entry leaves when the index is full.
    pub(crate) fn add(&mut self, e: IndexEntry) {
        if let Some(old) = self.entries.iter_mut().find(|x| x.info_hash == e.info_hash) {
            if e.torrent.is_some() || old.torrent.is_none() {
                *old = Arc::new(e);
                self.publish();
            }
            return;
        }
        if self.entries.len() >= MAX_INDEX {
            self.entries.remove(0);
        }
        self.entries.push(Arc::new(e));
        self.publish();
    }

    /// Removes the entry of `ih`; whether there was one.
    pub(crate) fn remove(&mut self, ih: &InfoHash) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.info_hash != *ih);
        let removed = self.entries.len() < before;
        if removed {
            self.publish();
        }
        removed
    }

    /// The entries `q` matches (by name, a file's name, or a hash), as hits counting the
    /// torrent's connected peers (`peers`) and us as sources.
    pub(crate) fn search(
        &self,
        q: &Query,
        peers: impl Fn(&InfoHash) -> u32,
    ) -> Vec<Result<Hit, NetworkError>> {
        let mut hits = Vec::new();
        for e in &self.entries {
            let mut id = e.id.clone();
            id.set(HashKind::Btih, &e.info_hash.0);
            let peers = peers(&e.info_hash);
            let matched = std::iter::once(e.name.as_str())
                .chain(e.files.iter().map(String::as_str))
                .any(|name| {
                    q.expr.matches(&Candidate {
                        name,
                        size: e.size,
                        sources: peers + 1,
                        id: &id,
                    })
                });
            if matched {
                let mut h = Hit::new(NetworkId::BITTORRENT, id, e.name.clone(), e.size);
                h.sources = peers + 1;
                h.link = Some(e.magnet());
                hits.push(Ok(h));
            }
        }
        hits
    }
}

pub(crate) fn entry_of(
    t: &Torrent,
    trackers: &[Vec<String>],
    torrent: Option<Bytes>,
) -> Option<IndexEntry> {
    let meta = t.metadata()?;
    Some(IndexEntry {
        info_hash: t.info_hash,
        name: meta.info.name.clone(),
        size: meta.info.total_length,
        files: meta
            .info
            .files
            .iter()
            .filter(|f| !f.pad)
            .map(|f| f.path.join("/"))
            .collect(),
        trackers: trackers.iter().flatten().cloned().collect(),
        torrent,
        id: meta.info.content_id(),
    })
}
