//! The search index: torrents shared, fetched, or learnt from the DHT (BEP 51 samples,
//! whose metadata is fetched in the background), searchable by name.

use super::*;

/// Most torrents kept in the search index.
pub(super) const MAX_INDEX: usize = 10_000;

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

/// Info-hashes whose metadata is fetched at once for the index, and how long one may take.
pub(super) const INDEX_FETCHES: usize = 2;
pub(super) const INDEX_FETCH_TIME: Duration = Duration::from_secs(120);
pub(super) const MAX_INDEX_QUEUE: usize = 200;

/// Learns info-hashes from DHT nodes with BEP 51 `sample_infohashes` and fetches their
/// metadata (DHT `get_peers`, then ut_metadata from those peers) into the search index.
pub(super) async fn dht_indexer(
    dht: Dht,
    ctx: Arc<Ctx>,
    index: Arc<Mutex<Vec<IndexEntry>>>,
    cancel: CancellationToken,
) {
    let mut queue: std::collections::VecDeque<InfoHash> = std::collections::VecDeque::new();
    let mut seen: std::collections::HashSet<InfoHash> = std::collections::HashSet::new();
    let mut running: Vec<(InfoHash, Instant)> = Vec::new();
    let mut next_sample = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        // What peers announced to this node, at once; samples of what other nodes hold,
        // every `dht_sample_interval`.
        let mut found = dht.stored();
        if Instant::now() >= next_sample && dht.node_count() > 0 {
            next_sample = Instant::now() + ctx.config.dht_sample_interval;
            for node in dht.some_nodes(8) {
                if let Ok(samples) = dht.sample(node).await {
                    found.extend(samples);
                }
            }
        }
        for ih in found {
            if seen.len() < 100_000 && seen.insert(ih) && queue.len() < MAX_INDEX_QUEUE {
                queue.push_back(ih);
            }
        }
        // Finished or overdue metadata fetches end.
        running.retain(|(ih, started)| {
            let Some(t) = ctx.torrent(ih) else {
                return false;
            };
            if t.meta().is_some() || started.elapsed() > INDEX_FETCH_TIME {
                if matches!(t.storage, Storage::MetadataOnly) {
                    t.cancel.cancel();
                }
                return false;
            }
            true
        });
        while running.len() < INDEX_FETCHES {
            let Some(ih) = queue.pop_front() else { break };
            let known = lock(&index).iter().any(|e| e.info_hash == ih);
            if known || ctx.torrent(&ih).is_some() {
                continue;
            }
            debug!(info_hash = %ih, "fetching metadata for the index");
            let t = Torrent::new(ctx.clone(), ih, String::new(), Storage::MetadataOnly);
            lock(&ctx.torrents).insert(ih, t.clone());
            running.push((ih, Instant::now()));
            tokio::spawn(
                run_torrent(
                    t,
                    Vec::new(),
                    None,
                    index.clone(),
                    None,
                    cancel.child_token(),
                )
                .instrument(info_span!("index_meta", info_hash = %ih)),
            );
        }
    }
}

pub(super) fn add_to_index(index: &Mutex<Vec<IndexEntry>>, e: IndexEntry) {
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

pub(super) fn entry_of(
    t: &Torrent,
    trackers: &[Vec<String>],
    torrent: Option<Bytes>,
) -> Option<IndexEntry> {
    let meta = t.meta()?;
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
