//! The search index: torrents shared, fetched, or learnt from the DHT (BEP 51 samples,
//! whose metadata is fetched in the background), searchable by name.

use std::sync::Mutex;

use bytes::Bytes;
use junction_core::query::Candidate;
use junction_core::{ContentId, HashKind, Hit, NetworkError, NetworkId, Query};

use super::sync::lock;
use super::torrent::{Ctx, Torrent};
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

pub(crate) fn add_to_index(index: &Mutex<Vec<IndexEntry>>, e: IndexEntry) {
    let mut idx = lock(index);
    if let Some(old) = idx.iter_mut().find(|x| x.info_hash == e.info_hash) {
        if e.torrent.is_some() || old.torrent.is_none() {
            *old = e;
        }
        return;
    }
    if idx.len() >= MAX_INDEX {
        idx.remove(0);
    }
    idx.push(e);
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

/// The index entries `q` matches (by name, a file's name, or a hash), as hits counting the
/// torrent's connected peers (and us) as sources.
pub(crate) fn search(
    index: &Mutex<Vec<IndexEntry>>,
    ctx: &Ctx,
    q: &Query,
) -> Vec<Result<Hit, NetworkError>> {
    let entries = lock(index).clone();
    let mut hits = Vec::new();
    for e in entries {
        let mut id = e.id.clone();
        id.set(HashKind::Btih, &e.info_hash.0);
        let peers = ctx
            .torrent(&e.info_hash)
            .map_or(0, |t| t.state().peers.len() as u32);
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
