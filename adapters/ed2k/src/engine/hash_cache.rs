//! A persistent cache of shared files' hashes (ed2k hash, MD4 part hashes, AICH root), keyed
//! by path, size and modification time, so sharing a file again after a restart does not
//! re-hash it (as eMule's `known.met`).
//!
//! The file is small and binary: `JED2KHC1`, an entry count, then per entry the path, size,
//! mtime (seconds and nanoseconds since the epoch), ed2k hash, AICH root, and part hashes.
//! Decoding is total and strict: any malformed byte, an impossible count, or an entry whose
//! part hashes do not fit its size or do not hash to its ed2k hash makes the whole file
//! ignored (and rewritten on the next insert). A lookup only answers for the same path with
//! the same size and mtime.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::wire::Hash16;
use crate::wire::hash::{AichHash, Ed2kHashset, part_hash_count, root_of_parts};

const MAGIC: &[u8; 8] = b"JED2KHC1";
/// Entries kept; the oldest inserted go first.
pub const MAX_ENTRIES: usize = 20_000;
/// Longest path stored.
const MAX_PATH: usize = 4096;
/// Most part hashes per entry (a 1 TiB file).
const MAX_PARTS: u64 = (1 << 40) / crate::wire::hash::PART_SIZE + 1;

/// What is cached for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub size: u64,
    /// Modification time as (seconds, nanoseconds) since the epoch.
    pub mtime: (u64, u32),
    pub hashset: Ed2kHashset,
    pub aich: AichHash,
    seq: u64,
}

/// The cache in memory, with the file it is saved to.
#[derive(Debug)]
pub struct HashCache {
    path: PathBuf,
    entries: HashMap<PathBuf, Entry>,
    next_seq: u64,
}

/// Size and mtime of a file, the cache key besides its path.
pub fn stat(path: &Path) -> std::io::Result<(u64, (u64, u32))> {
    let m = std::fs::metadata(path)?;
    let t = m
        .modified()?
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Ok((m.len(), (t.as_secs(), t.subsec_nanos())))
}

impl HashCache {
    /// Loads the cache at `path`; a missing, unreadable or malformed file gives an empty cache.
    pub fn load(path: PathBuf) -> Self {
        let entries = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes).unwrap_or_else(|| {
                tracing::warn!(path = %path.display(), "ed2k hash cache is malformed; ignoring it");
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        };
        let next_seq = entries.values().map(|e| e.seq + 1).max().unwrap_or(0);
        Self {
            path,
            entries,
            next_seq,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached hashes of `file`, if its size and mtime are still those cached.
    pub fn get(
        &self,
        file: &Path,
        size: u64,
        mtime: (u64, u32),
    ) -> Option<(Ed2kHashset, AichHash)> {
        let e = self.entries.get(file)?;
        (e.size == size && e.mtime == mtime).then(|| (e.hashset.clone(), e.aich))
    }

    /// Records a file's hashes (dropping the oldest entries beyond [`MAX_ENTRIES`]).
    pub fn insert(
        &mut self,
        file: PathBuf,
        size: u64,
        mtime: (u64, u32),
        hashset: Ed2kHashset,
        aich: AichHash,
    ) {
        if file.as_os_str().len() > MAX_PATH || !entry_ok(size, &hashset) {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.insert(
            file,
            Entry {
                size,
                mtime,
                hashset,
                aich,
                seq,
            },
        );
        if self.entries.len() > MAX_ENTRIES {
            // Drop the oldest tenth at once, so a full cache does not sort on every insert.
            let mut seqs: Vec<u64> = self.entries.values().map(|e| e.seq).collect();
            seqs.sort_unstable();
            let cut = seqs[self.entries.len() - MAX_ENTRIES * 9 / 10];
            self.entries.retain(|_, e| e.seq >= cut);
        }
    }

    /// Writes the cache (to a temporary file renamed over the old one).
    pub fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&encode(&self.entries))?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// Does a hashset fit a file of `size` bytes?
fn entry_ok(size: u64, h: &Ed2kHashset) -> bool {
    let n = part_hash_count(size);
    h.parts.len() as u64 == n && (n == 0 || root_of_parts(&h.parts) == h.root)
}

fn encode(entries: &HashMap<PathBuf, Entry>) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + entries.len() * 96);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    let mut list: Vec<_> = entries.iter().collect();
    list.sort_by_key(|(_, e)| e.seq);
    for (p, e) in list {
        let pb = path_bytes(p);
        out.extend_from_slice(&(pb.len() as u16).to_le_bytes());
        out.extend_from_slice(&pb);
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&e.mtime.0.to_le_bytes());
        out.extend_from_slice(&e.mtime.1.to_le_bytes());
        out.extend_from_slice(&e.hashset.root);
        out.extend_from_slice(&e.aich);
        out.extend_from_slice(&(e.hashset.parts.len() as u32).to_le_bytes());
        for h in &e.hashset.parts {
            out.extend_from_slice(h);
        }
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

fn decode(bytes: &[u8]) -> Option<HashMap<PathBuf, Entry>> {
    let mut r = Reader(bytes);
    if r.take(8)? != MAGIC {
        return None;
    }
    let count = u32::from_le_bytes(r.array()?) as usize;
    if count > MAX_ENTRIES {
        return None;
    }
    let mut entries = HashMap::with_capacity(count);
    for seq in 0..count as u64 {
        let plen = u16::from_le_bytes(r.array()?) as usize;
        if plen == 0 || plen > MAX_PATH {
            return None;
        }
        let path = path_from_bytes(r.take(plen)?)?;
        let size = u64::from_le_bytes(r.array()?);
        let secs = u64::from_le_bytes(r.array()?);
        let nanos = u32::from_le_bytes(r.array()?);
        let root: Hash16 = r.array()?;
        let aich: AichHash = r.array()?;
        let nparts = u64::from(u32::from_le_bytes(r.array()?));
        if nparts > MAX_PARTS || nparts != part_hash_count(size) || nanos >= 1_000_000_000 {
            return None;
        }
        let mut parts = Vec::with_capacity(usize::try_from(nparts).ok()?);
        for _ in 0..nparts {
            parts.push(r.array()?);
        }
        let hashset = Ed2kHashset { root, parts };
        if !entry_ok(size, &hashset) {
            return None;
        }
        entries.insert(
            path,
            Entry {
                size,
                mtime: (secs, nanos),
                hashset,
                aich,
                seq,
            },
        );
    }
    r.0.is_empty().then_some(entries)
}

#[cfg(unix)]
fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn path_from_bytes(b: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(b)))
}

#[cfg(not(unix))]
fn path_bytes(p: &Path) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn path_from_bytes(b: &[u8]) -> Option<PathBuf> {
    std::str::from_utf8(b).ok().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hash::{PART_SIZE, aich_root, ed2k_hash};

    fn sample(size: usize) -> (Ed2kHashset, AichHash) {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        (ed2k_hash(&data), aich_root(&data))
    }

    #[test]
    fn round_trip_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        let mut c = HashCache::load(path.clone());
        assert!(c.is_empty());
        let size = PART_SIZE as usize * 2;
        let (h, a) = sample(size);
        c.insert("/x/f".into(), size as u64, (5, 6), h.clone(), a);
        let (h1, a1) = sample(10);
        c.insert("/x/small".into(), 10, (7, 8), h1.clone(), a1);
        c.save().unwrap();
        let c = HashCache::load(path);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(Path::new("/x/f"), size as u64, (5, 6)), Some((h, a)));
        assert_eq!(c.get(Path::new("/x/small"), 10, (7, 8)), Some((h1, a1)));
        // Another size or mtime is a miss.
        assert_eq!(c.get(Path::new("/x/f"), size as u64 - 1, (5, 6)), None);
        assert_eq!(c.get(Path::new("/x/f"), size as u64, (5, 7)), None);
        assert_eq!(c.get(Path::new("/x/g"), size as u64, (5, 6)), None);
    }

    #[test]
    fn malformed_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        let mut c = HashCache::load(path.clone());
        let size = PART_SIZE as usize + 5;
        let (h, a) = sample(size);
        c.insert("/x/f".into(), size as u64, (1, 2), h, a);
        c.save().unwrap();
        let good = std::fs::read(&path).unwrap();
        // Every truncation and every single flipped byte in the hashes or counts is rejected
        // or (for the path and mtime, which are free-form) at most changes the key.
        for n in 0..good.len() {
            std::fs::write(&path, &good[..n]).unwrap();
            assert!(HashCache::load(path.clone()).is_empty(), "truncated at {n}");
        }
        let hashes_start = good.len() - (16 + 20 + 4 + 2 * 16);
        for i in (0..12).chain(hashes_start..good.len()) {
            let mut bad = good.clone();
            bad[i] ^= 0x55;
            std::fs::write(&path, &bad).unwrap();
            let c = HashCache::load(path.clone());
            // The AICH root cannot be checked against the part hashes; a flip there changes
            // only what is served, as a flip in the file itself would.
            let aich = hashes_start + 16..hashes_start + 36;
            if !aich.contains(&i) {
                assert!(c.is_empty(), "flip at {i} accepted");
            }
        }
        // A size that does not fit the part hashes.
        let mut bad = good.clone();
        let size_at = 8 + 4 + 2 + "/x/f".len();
        bad[size_at..size_at + 8].copy_from_slice(&(PART_SIZE * 3).to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        assert!(HashCache::load(path).is_empty());
    }

    #[test]
    fn bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = HashCache::load(dir.path().join("cache"));
        let (h, a) = sample(3);
        for i in 0..MAX_ENTRIES + 10 {
            c.insert(format!("/f{i}").into(), 3, (0, 0), h.clone(), a);
        }
        assert!(c.len() <= MAX_ENTRIES);
        assert!(c.get(Path::new("/f0"), 3, (0, 0)).is_none());
        assert!(
            c.get(Path::new(&format!("/f{}", MAX_ENTRIES + 9)), 3, (0, 0))
                .is_some()
        );
    }
}
