//! Shared files: hashing (ed2k hashset + AICH root, one pass, or from the hash cache),
//! sharing and unsharing, and reading parts to upload.

use std::io::Read;
use std::path::{Path, PathBuf};

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use junction_core::{ContentId, HashKind, NetworkError, SharedItem};

use super::{Shared, server_session};
use crate::engine::hash_cache::stat;
use crate::wire::Hash16;
use crate::wire::hash::{AichHash, Ed2kHashset};

/// A file we offer to peers.
#[derive(Debug, Clone)]
pub struct SharedFile {
    pub hash: Hash16,
    pub name: String,
    pub size: u64,
    pub path: PathBuf,
    /// MD4 part hashes (empty below one part).
    pub parts: Vec<Hash16>,
    pub aich: AichHash,
    /// The file opened once for uploads (positional reads need no seek, so one handle
    /// serves every connection).
    pub handle: Arc<OnceLock<std::fs::File>>,
    /// Per part: did a sample of it compress well? (Sampled once per part, not per block.)
    pub compressible: Arc<std::sync::Mutex<std::collections::HashMap<u64, bool>>>,
    /// Every AICH block hash, read once when a peer first asks for recovery data.
    pub aich_blocks: Arc<OnceLock<Vec<AichHash>>>,
}

impl SharedFile {
    /// The recovery data of `part` for a peer whose file failed that part's check, or
    /// `None` when `master` is not ours or the part is one block or less (eMule sends no
    /// recovery data for those either).
    pub async fn aich_recovery(&self, part: u16, master: &AichHash) -> Option<Vec<u8>> {
        let start = u64::from(part) * crate::wire::hash::PART_SIZE;
        if *master != self.aich || self.size.saturating_sub(start) <= crate::wire::hash::BLOCK_SIZE
        {
            return None;
        }
        if self.aich_blocks.get().is_none() {
            let path = self.path.clone();
            let blocks = tokio::task::spawn_blocking(move || aich_blocks(&path))
                .await
                .ok()?
                .ok()?;
            let root =
                crate::wire::aich::node_hash(crate::wire::aich::Node::root(self.size), &blocks);
            if root != Some(self.aich) {
                tracing::warn!(name = %self.name, "shared file changed on disk; no AICH recovery data");
                return None;
            }
            let _ = self.aich_blocks.set(blocks);
        }
        let blocks = self.aich_blocks.get()?;
        let hashes = crate::wire::aich::recovery_for_part(self.size, part.into(), blocks)?;
        Some(crate::wire::aich::encode_recovery(self.size, &hashes))
    }
}

/// The SHA-1 of every AICH block of a file, part by part.
fn aich_blocks(path: &Path) -> std::io::Result<Vec<AichHash>> {
    use sha1::{Digest, Sha1};
    let mut f = std::io::BufReader::with_capacity(HASH_CHUNK, std::fs::File::open(path)?);
    let size = f.get_ref().metadata()?.len();
    let mut out = Vec::new();
    let mut buf = vec![0u8; crate::wire::hash::BLOCK_SIZE as usize];
    let mut at = 0u64;
    while at < size {
        let part_end = (at / crate::wire::hash::PART_SIZE + 1) * crate::wire::hash::PART_SIZE;
        let len = (crate::wire::hash::BLOCK_SIZE.min(part_end - at)).min(size - at) as usize;
        f.read_exact(&mut buf[..len])?;
        out.push(Sha1::digest(&buf[..len]).into());
        at += len as u64;
    }
    Ok(out)
}

/// Hashes a file in one pass; runs on the blocking pool.
pub async fn hash_file(path: PathBuf) -> std::io::Result<(Ed2kHashset, AichHash, u64)> {
    tokio::task::spawn_blocking(move || hash_file_blocking(&path))
        .await
        .map_err(std::io::Error::other)?
}

/// Bytes read at a time while hashing.
const HASH_CHUNK: usize = 1 << 20;

/// Reads the file once for its ed2k hashset and AICH root (core's one-pass hasher, each
/// hash on a thread of its own).
fn hash_file_blocking(path: &Path) -> std::io::Result<(Ed2kHashset, AichHash, u64)> {
    use junction_core::hashing::{Want, hash_file};
    let want = Want {
        ed2k: true,
        aich: true,
        ..Want::default()
    };
    let h = hash_file(path, want)?;
    match (h.ed2k, h.aich) {
        (Some(ed2k), Some(aich)) => Ok((ed2k, aich, h.size)),
        _ => Err(std::io::Error::other("hasher gave no ed2k hash")),
    }
}

/// Reads `len` bytes at `offset` of a shared file.
pub async fn read_at(f: &SharedFile, offset: u64, len: usize) -> std::io::Result<Bytes> {
    let (path, handle) = (f.path.clone(), f.handle.clone());
    tokio::task::spawn_blocking(move || {
        if handle.get().is_none() {
            let _ = handle.set(std::fs::File::open(&path)?);
        }
        let file = handle
            .get()
            .ok_or_else(|| std::io::Error::other("file handle"))?;
        let mut buf = vec![0u8; len];
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset)?;
        #[cfg(not(unix))]
        {
            use std::io::{Seek, SeekFrom};
            let mut f = file.try_clone()?;
            f.seek(SeekFrom::Start(offset))?;
            f.read_exact(&mut buf)?;
        }
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// A shared file's hashes, from the cache when its path, size and mtime match.
pub(crate) async fn hashes(
    s: &Shared,
    path: &std::path::Path,
) -> Result<(Ed2kHashset, AichHash, u64), NetworkError> {
    let cache = s.hash_cache.clone();
    let p = path.to_path_buf();
    let lookup = tokio::task::spawn_blocking(move || {
        let key = std::fs::canonicalize(&p).unwrap_or(p);
        let st = stat(&key).ok();
        let hit = match (&cache, st) {
            (Some(c), Some((size, mtime))) => c
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key, size, mtime)
                .map(|(h, a)| (h, a, size)),
            _ => None,
        };
        (key, st, hit)
    })
    .await
    .map_err(|e| NetworkError::Io(std::io::Error::other(e)))?;
    let (key, before, hit) = lookup;
    if let Some(hit) = hit {
        tracing::debug!(path = %key.display(), "hashes from the cache");
        return Ok(hit);
    }
    let (hashset, aich, size) = hash_file(path.to_path_buf()).await?;
    s.files_hashed.fetch_add(1, Ordering::Relaxed);
    if let (Some(c), Some((bsize, mtime))) = (s.hash_cache.clone(), before) {
        let (h, a) = (hashset.clone(), aich);
        // Cached only if the file did not change while it was hashed.
        let saved = tokio::task::spawn_blocking(move || {
            if bsize != size || stat(&key).ok() != before {
                return Ok(());
            }
            let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
            c.insert(key, size, mtime, h, a);
            c.save()
        })
        .await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "cannot save the ed2k hash cache");
        }
    }
    Ok((hashset, aich, size))
}

/// Shares a file: its hashes (given by the gateway, or read here), then it is offered to
/// the server. The content id it is known by on eD2k.
pub(crate) async fn share(s: &Shared, item: SharedItem) -> Result<ContentId, NetworkError> {
    let given = item
        .hashes
        .as_deref()
        .and_then(|h| match (&h.ed2k, h.aich) {
            (Some(e), Some(a)) => Some((e.clone(), a, h.size)),
            _ => None,
        });
    let (hashset, aich, size) = match given {
        // The gateway read the file once for every network.
        Some(h) => h,
        None => hashes(s, &item.path).await?,
    };
    if size == 0 {
        return Err(NetworkError::Invalid(
            "eD2k cannot share an empty file".into(),
        ));
    }
    if item.size != 0 && item.size != size {
        return Err(NetworkError::Invalid(format!(
            "{} has {size} bytes, {} expected",
            item.path.display(),
            item.size
        )));
    }
    let name = if item.name.trim().is_empty() {
        item.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into())
    } else {
        item.name.clone()
    };
    let f = Arc::new(SharedFile {
        hash: hashset.root,
        name,
        size,
        path: item.path.clone(),
        parts: hashset.parts,
        aich,
        handle: Default::default(),
        compressible: Default::default(),
        aich_blocks: Default::default(),
    });
    tracing::info!(name = %f.name, size, hash = %crate::wire::hash::to_hex(&f.hash), "sharing");
    s.files
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(f.hash, f.clone());
    let _ = s.server_session.try_send(server_session::Cmd::Offer);
    let mut id = item.id.clone();
    id.size = Some(size);
    id.set(HashKind::Ed2k, &f.hash);
    id.set(HashKind::Aich, &f.aich);
    Ok(id)
}

/// Stops sharing a file: the server gets the list again without it.
pub(crate) fn unshare(s: &Shared, id: &ContentId) -> Result<(), NetworkError> {
    let hash: [u8; 16] = id
        .get(HashKind::Ed2k)
        .and_then(|d| d.try_into().ok())
        .ok_or_else(|| NetworkError::Invalid("no ed2k hash: not an eD2k share".into()))?;
    let gone = s
        .files
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&hash);
    if gone.is_none() {
        return Err(NetworkError::NotFound("not shared on eD2k".into()));
    }
    // The server gets the list again without it; peers asking for it are refused.
    let _ = s.server_session.try_send(server_session::Cmd::Offer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threaded_hash_matches_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0usize, 1, 184_320, 9_728_000, 9_728_000 + 1_234_567] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 1000) as u8).collect();
            let p = dir.path().join(format!("f{size}"));
            std::fs::write(&p, &data).unwrap();
            let (ed2k, aich, n) = hash_file_blocking(&p).unwrap();
            assert_eq!(n, size as u64);
            assert_eq!(ed2k, crate::wire::hash::ed2k_hash(&data));
            assert_eq!(aich, crate::wire::hash::aich_root(&data));
            if size > 0 {
                let blocks = aich_blocks(&p).unwrap();
                let root = crate::wire::aich::node_hash(crate::wire::aich::Node::root(n), &blocks);
                assert_eq!(root, Some(aich));
            }
        }
    }
}
