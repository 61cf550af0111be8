//! The share index: local files offered on every network. Each file is read once for
//! every hash any network names it by, and the hashes are kept in the store, so no
//! network reads it to share it and a restart offers it again without reading it.

mod stored;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::UNIX_EPOCH;

use junction_core::hashing::{FileHashes, Want, hash_reader};
use junction_core::{ContentId, Identity, SharedItem};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::Networks;
use crate::error::{GatewayError, Result};
use crate::identity::IdentityIndex;
use crate::store::{Store, Table};
pub use stored::StoredHashes;

/// Most files one `Share` call takes in, so a mistaken `/` does not run for hours.
const MAX_FILES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareRecord {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
    pub modified_ms: u64,
    pub urns: Vec<String>,
    pub networks: Vec<String>,
    pub errors: Vec<String>,
    /// Every hash from one read of the file.
    #[serde(default)]
    pub hashes: Option<StoredHashes>,
}

impl ShareRecord {
    pub fn content(&self) -> ContentId {
        ContentId::from_urns(Some(self.size), self.urns.iter().map(String::as_str))
            .unwrap_or_else(|_| ContentId::new(Some(self.size)))
    }
}

/// What unsharing one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unshared {
    pub path: PathBuf,
    /// Networks that stopped offering it.
    pub withdrawn: Vec<String>,
    /// Networks that could not withdraw it now, each with what happens instead.
    pub notes: Vec<String>,
}

/// A file read that ends when the gateway stops, so a long hash does not outlive it.
struct Stoppable {
    file: std::fs::File,
    closing: CancellationToken,
}

impl std::io::Read for Stoppable {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.closing.is_cancelled() {
            return Err(std::io::Error::other("the gateway is stopping"));
        }
        self.file.read(buf)
    }
}

#[derive(Debug, Clone)]
pub struct ShareIndex {
    closing: CancellationToken,
    store: Arc<Store>,
    networks: Networks,
    identities: Arc<IdentityIndex>,
    /// Held by `unshare`, and by `reshare_all` for each file, so a file unshared while
    /// the start-up offers run is not recorded again.
    gate: Arc<tokio::sync::Mutex<()>>,
    /// Each shared file by every URN it is known by, so a transfer finds a local copy
    /// without reading every record.
    /// Two copies of one content are two paths under its URNs.
    by_urn: Arc<Mutex<HashMap<String, Vec<PathBuf>>>>,
}

impl ShareIndex {
    /// `closing` stops any file read in progress when the gateway stops.
    pub fn new(
        store: Arc<Store>,
        networks: Networks,
        identities: Arc<IdentityIndex>,
        closing: CancellationToken,
    ) -> Self {
        let mut by_urn: HashMap<String, Vec<PathBuf>> = HashMap::new();
        for (_, r) in store.all::<ShareRecord>(Table::Shares).unwrap_or_default() {
            for u in r.urns {
                by_urn.entry(u).or_default().push(r.path.clone());
            }
        }
        ShareIndex {
            closing,
            store,
            networks,
            identities,
            gate: Arc::default(),
            by_urn: Arc::new(Mutex::new(by_urn)),
        }
    }

    fn urns(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<PathBuf>>> {
        self.by_urn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The shared file whose content is `id` (by any hash they share, and none that
    /// differs), if it is still there.
    pub fn find(&self, id: &ContentId) -> Option<ShareRecord> {
        let paths: Vec<PathBuf> = {
            let urns = self.urns();
            id.urns()
                .iter()
                .filter_map(|u| urns.get(u))
                .flatten()
                .cloned()
                .collect()
        };
        paths.into_iter().find_map(|p| {
            let r = self.record(&p).ok().flatten()?;
            (r.content().relation(id) == Identity::Same && r.path.is_file()).then_some(r)
        })
    }

    /// Shares a file, or every file under a folder, on the networks named in `only`
    /// (every network when empty).
    pub async fn share(&self, path: &Path, only: &[String]) -> Result<Vec<ShareRecord>> {
        let root = std::fs::canonicalize(path)
            .map_err(|e| GatewayError::Invalid(format!("cannot share {}: {e}", path.display())))?;
        let files = tokio::task::spawn_blocking(move || collect_files(&root))
            .await
            .map_err(|e| GatewayError::Store(e.to_string()))??;
        let mut out = Vec::with_capacity(files.len());
        for (path, size, modified_ms) in files {
            out.push(self.offer(path, size, modified_ms, only).await?);
        }
        Ok(out)
    }

    pub fn list(&self) -> Result<Vec<ShareRecord>> {
        let mut all: Vec<ShareRecord> = self
            .store
            .all(Table::Shares)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(all)
    }

    /// Stops offering a shared file, or every shared file under a folder, and forgets
    /// its record, so a restart does not offer it again. Each file says which networks
    /// withdrew it and what the others do instead.
    pub async fn unshare(&self, path: &Path) -> Result<Vec<Unshared>> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let _gate = self.gate.lock().await;
        let records: Vec<ShareRecord> = self
            .list()?
            .into_iter()
            .filter(|r| r.path == path || r.path.starts_with(&path))
            .collect();
        if records.is_empty() {
            return Err(GatewayError::NotFound(format!(
                "{} is not shared; `junction shares` lists what is",
                path.display()
            )));
        }
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let id = r.content();
            let mut done = Unshared {
                path: r.path.clone(),
                withdrawn: Vec::new(),
                notes: Vec::new(),
            };
            for net in self
                .networks
                .iter()
                .filter(|n| r.networks.iter().any(|x| x == n.id().as_str()))
            {
                match net.unshare(id.clone()).await {
                    Ok(()) => done.withdrawn.push(net.id().to_string()),
                    Err(e) => done.notes.push(format!("{}: {e}", net.id())),
                }
            }
            self.store
                .remove(Table::Shares, &r.path.to_string_lossy())?;
            forget_path(&mut self.urns(), &r.path);
            out.push(done);
        }
        Ok(out)
    }

    /// The record of a shared file, by its path.
    pub fn record(&self, path: &Path) -> Result<Option<ShareRecord>> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let key = path.to_string_lossy().into_owned();
        self.store.get::<ShareRecord>(Table::Shares, &key)
    }

    /// Every hash of a file read before, if it has not changed since.
    pub fn hashes(&self, path: &Path) -> Result<Option<FileHashes>> {
        let Some(r) = self.record(path)? else {
            return Ok(None);
        };
        let now = std::fs::metadata(&r.path).ok();
        let same = now.is_some_and(|m| m.len() == r.size && modified_ms(&m) == r.modified_ms);
        Ok(r.hashes.filter(|_| same).and_then(|h| h.hashes(r.size)))
    }

    /// A finished download: read once for every hash any network names it by, linked to
    /// the hashes it was fetched by (so later hits merge and later transfers find sources
    /// on every network), and offered on the networks in `offer_on` (none when empty).
    /// Returns every hash now known for it.
    pub async fn adopt_download(
        &self,
        path: &Path,
        fetched_by: &ContentId,
        offer_on: &[String],
    ) -> Result<ContentId> {
        let m = std::fs::metadata(path)?;
        let (size, modified) = (m.len(), modified_ms(&m));
        let (mut id, hashes) = self.hashes_of(path, size, modified).await?;
        if id.relation(fetched_by) == Identity::Conflict {
            // Every byte passed the hashes it was fetched by; a disagreement means the file
            // changed on disk since. Link nothing.
            return Err(GatewayError::Invalid(format!(
                "{} no longer holds the bytes it was downloaded as; not shared",
                path.display()
            )));
        }
        id.absorb(fetched_by);
        self.identities.learn(&id);
        if offer_on.is_empty() {
            return Ok(id);
        }
        let record = self
            .offer_as(path.to_path_buf(), size, modified, offer_on, id, hashes)
            .await?;
        Ok(record.content())
    }

    /// A file's hashes: from the store when it was read before at this size and time,
    /// otherwise from one read (on the blocking pool).
    async fn hashes_of(
        &self,
        path: &Path,
        size: u64,
        modified: u64,
    ) -> Result<(ContentId, Arc<FileHashes>)> {
        let key = path.to_string_lossy().into_owned();
        let cached = self
            .store
            .get::<ShareRecord>(Table::Shares, &key)?
            .filter(|r| r.size == size && r.modified_ms == modified)
            .and_then(|r| Some((r.content(), r.hashes?.hashes(size)?)));
        if let Some((mut id, h)) = cached {
            id.absorb(&h.content_id());
            return Ok((id, Arc::new(h)));
        }
        let file = std::fs::File::open(path)?;
        let closing = self.closing.clone();
        let read = Stoppable { file, closing };
        let h = tokio::task::spawn_blocking(move || hash_reader(read, Want::all(size)))
            .await
            .map_err(|e| GatewayError::Store(e.to_string()))??;
        if h.size != size {
            return Err(GatewayError::Invalid(format!(
                "{} changed while it was read; share it again",
                path.display()
            )));
        }
        Ok((h.content_id(), Arc::new(h)))
    }

    /// Offers every recorded share again (at start-up), skipping files that are gone.
    pub async fn reshare_all(&self) {
        let Ok(all) = self.list() else { return };
        for r in all {
            let _gate = self.gate.lock().await;
            let key = r.path.to_string_lossy();
            if !matches!(
                self.store.get::<ShareRecord>(Table::Shares, &key),
                Ok(Some(_))
            ) {
                continue; // unshared since
            }
            match std::fs::metadata(&r.path) {
                Ok(m) if m.is_file() => {
                    if let Err(e) = self
                        .offer(r.path.clone(), m.len(), modified_ms(&m), &r.networks)
                        .await
                    {
                        tracing::warn!(path = %r.path.display(), error = %e, "could not share again");
                    }
                }
                _ => tracing::info!(path = %r.path.display(), "shared file is gone; not offered"),
            }
        }
    }

    async fn offer(
        &self,
        path: PathBuf,
        size: u64,
        modified_ms: u64,
        only: &[String],
    ) -> Result<ShareRecord> {
        let (id, hashes) = self.hashes_of(&path, size, modified_ms).await?;
        self.offer_as(path, size, modified_ms, only, id, hashes)
            .await
    }

    /// Offers a file on the networks in `only` (every network when empty), with its
    /// hashes, and records it. `id` may hold more hashes than `hashes` gives (ones it was
    /// downloaded by, a torrent's info-hash).
    async fn offer_as(
        &self,
        path: PathBuf,
        size: u64,
        modified_ms: u64,
        only: &[String],
        mut id: ContentId,
        hashes: Arc<FileHashes>,
    ) -> Result<ShareRecord> {
        let key = path.to_string_lossy().into_owned();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut networks = Vec::new();
        let mut errors = Vec::new();
        let mut wanted: Vec<_> = self
            .networks
            .iter()
            .filter(|n| only.is_empty() || only.iter().any(|o| o == n.id().as_str()))
            .collect();
        // A network that names the file by a kind not known yet (BitTorrent's info-hash of
        // the torrent it makes) shares first, so the others offer that hash too (Gnutella
        // hits carry `urn:btih`).
        wanted.sort_by_key(|n| n.capabilities().ids.iter().all(|&k| id.get(k).is_some()));
        for net in wanted {
            let item = SharedItem {
                path: path.clone(),
                name: name.clone(),
                size,
                id: id.clone(),
                hashes: Some(hashes.clone()),
            };
            match net.share(item).await {
                Ok(learnt) => {
                    id.absorb(&learnt);
                    networks.push(net.id().to_string());
                }
                Err(e) => errors.push(format!("{}: {e}", net.id())),
            }
        }
        // What every network computed names the same bytes.
        self.identities.learn(&id);
        let record = ShareRecord {
            path,
            name,
            size,
            modified_ms,
            urns: id.urns(),
            networks,
            errors,
            hashes: StoredHashes::of(&hashes),
        };
        self.store.put(Table::Shares, &key, &record)?;
        let mut urns = self.urns();
        forget_path(&mut urns, &record.path);
        for u in &record.urns {
            urns.entry(u.clone()).or_default().push(record.path.clone());
        }
        drop(urns);
        Ok(record)
    }
}

/// Takes `path` out of the URN index, leaving other copies of the same content.
fn forget_path(urns: &mut HashMap<String, Vec<PathBuf>>, path: &Path) {
    urns.retain(|_, paths| {
        paths.retain(|p| p != path);
        !paths.is_empty()
    });
}

fn modified_ms(m: &std::fs::Metadata) -> u64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// Regular files under `root` (or `root` itself), without following symlinks.
fn collect_files(root: &Path) -> Result<Vec<(PathBuf, u64, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p)?;
        if m.is_file() {
            out.push((p, m.len(), modified_ms(&m)));
            if out.len() > MAX_FILES {
                return Err(GatewayError::Invalid(format!(
                    "{} holds more than {MAX_FILES} files; share a smaller folder",
                    root.display()
                )));
            }
        } else if m.is_dir() {
            for entry in std::fs::read_dir(&p)? {
                stack.push(entry?.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
