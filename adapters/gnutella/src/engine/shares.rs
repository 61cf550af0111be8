//! What we share: files indexed by SHA-1 and by file index, the QRP table
//! built from their names, and local query matching.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::Arc;

use junction_core::{ContentId, HashKind, NetworkError, SharedItem};

use super::Shared;
use crate::wire::qrp::{self, QrpTable};
use crate::wire::thex::Level;
use crate::wire::urn::{Sha1Hash, TigerHash, Urn};

/// Slots of the QRP table we send (gtk-gnutella accepts 2^14 … 2^21).
pub const QRP_TABLE_LEN: u32 = 1 << 16;
/// Infinity of our table (a boolean table, as gtk-gnutella's).
pub const QRP_INFINITY: u8 = 2;
/// Most results we return for one query.
pub const MAX_RESULTS: usize = 50;
/// Alternate locations remembered per file.
const MAX_ALTS: usize = 16;

/// One shared file.
#[derive(Debug, Clone)]
pub struct SharedFile {
    /// File index (`/get/<index>/<name>`).
    pub index: u32,
    /// Where it is on disk.
    pub path: PathBuf,
    /// Name as offered.
    pub name: String,
    lower: String,
    /// Size in bytes.
    pub size: u64,
    /// Whole-file SHA-1.
    pub sha1: Sha1Hash,
    /// The eD2k hash, when the gateway knows it: sent in hits as `urn:ed2khash:`.
    pub ed2k: Option<[u8; 16]>,
    /// The BitTorrent info-hash of the gateway's torrent of it: sent as `urn:btih:`.
    pub btih: Option<[u8; 20]>,
    /// The Tiger tree root (TTH): sent in hits as GGEP `TT`, and in `X-Thex-URI`.
    pub tth: Option<TigerHash>,
    /// The tree's nodes at the depth we serve (`/uri-res/N2X`), once computed.
    pub tree: Option<Arc<Level>>,
    /// Other hosts known to have it (learnt from downloaders' `X-Alt`).
    pub alts: VecDeque<SocketAddrV4>,
}

impl SharedFile {
    /// The hashes its hits and uploads name it by.
    pub fn hashes(&self) -> crate::engine::hits::RecordHashes {
        crate::engine::hits::RecordHashes {
            sha1: self.sha1,
            ed2k: self.ed2k,
            tth: self.tth,
            btih: self.btih,
        }
    }
}

/// The share index.
#[derive(Debug)]
pub struct ShareIndex {
    by_index: BTreeMap<u32, SharedFile>,
    by_sha1: HashMap<[u8; 20], u32>,
    by_tth: HashMap<[u8; 24], u32>,
    next: u32,
    table: QrpTable,
}

impl Default for ShareIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl ShareIndex {
    /// Nothing shared.
    pub fn new() -> Self {
        ShareIndex {
            by_index: BTreeMap::new(),
            by_sha1: HashMap::new(),
            by_tth: HashMap::new(),
            next: 1,
            table: empty_table(),
        }
    }

    /// Add a file (or update the one with the same SHA-1); returns its index.
    pub fn add(&mut self, path: PathBuf, name: String, size: u64, sha1: Sha1Hash) -> u32 {
        if let Some(&i) = self.by_sha1.get(&sha1.0)
            && let Some(f) = self.by_index.get_mut(&i)
        {
            f.path = path;
            f.lower = name.to_lowercase();
            f.name = name;
            if f.size != size {
                f.tree = None;
            }
            f.size = size;
            self.rebuild_table();
            return i;
        }
        let index = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.by_sha1.insert(sha1.0, index);
        self.by_index.insert(
            index,
            SharedFile {
                index,
                path,
                lower: name.to_lowercase(),
                name,
                size,
                sha1,
                ed2k: None,
                btih: None,
                tth: None,
                tree: None,
                alts: VecDeque::new(),
            },
        );
        self.rebuild_table();
        index
    }

    /// Withdraws a file; false when it was not shared.
    pub fn remove(&mut self, sha1: &Sha1Hash) -> bool {
        let Some(i) = self.by_sha1.remove(&sha1.0) else {
            return false;
        };
        if let Some(f) = self.by_index.remove(&i)
            && let Some(t) = f.tth
        {
            self.by_tth.remove(&t.0);
        }
        self.rebuild_table();
        true
    }

    fn rebuild_table(&mut self) {
        let mut t = empty_table();
        for f in self.by_index.values() {
            for w in qrp::table_words(&f.name) {
                t.insert(&w);
            }
            t.insert_urn(&Urn::Sha1(f.sha1));
        }
        self.table = t;
    }

    /// Our QRP table.
    pub fn table(&self) -> &QrpTable {
        &self.table
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.by_index.len()
    }

    /// Nothing shared.
    pub fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }

    /// Total size in KiB (for pongs).
    pub fn kbytes(&self) -> u32 {
        let total: u64 = self.by_index.values().map(|f| f.size).sum();
        u32::try_from(total / 1024).unwrap_or(u32::MAX)
    }

    /// The file with this index.
    pub fn by_index(&self, index: u32) -> Option<&SharedFile> {
        self.by_index.get(&index)
    }

    /// Up to `n` files whose index is above `index`, in index order (browse host
    /// walks the library this way, a batch at a time).
    pub fn after(&self, index: u32, n: usize) -> Vec<&SharedFile> {
        use std::ops::Bound;
        self.by_index
            .range((Bound::Excluded(index), Bound::Unbounded))
            .take(n)
            .map(|(_, f)| f)
            .collect()
    }

    /// The file with this SHA-1.
    pub fn by_sha1(&self, h: &Sha1Hash) -> Option<&SharedFile> {
        self.by_sha1.get(&h.0).and_then(|i| self.by_index.get(i))
    }

    /// The file with this Tiger tree root.
    pub fn by_tth(&self, t: &TigerHash) -> Option<&SharedFile> {
        self.by_tth.get(&t.0).and_then(|i| self.by_index.get(i))
    }

    /// Records the Tiger tree root of a shared file and, when computed, its nodes at
    /// the depth we serve (which must hash up to that root).
    pub fn set_tiger(&mut self, h: &Sha1Hash, tth: TigerHash, tree: Option<Level>) {
        let Some(&i) = self.by_sha1.get(&h.0) else {
            return;
        };
        let Some(f) = self.by_index.get_mut(&i) else {
            return;
        };
        if let Some(old) = f.tth.filter(|o| *o != tth) {
            self.by_tth.remove(&old.0);
            f.tree = None;
        }
        f.tth = Some(tth);
        if let Some(t) = tree.filter(|t| t.root() == Some(tth)) {
            f.tree = Some(Arc::new(t));
        }
        self.by_tth.insert(tth.0, i);
    }

    /// Records the other networks' hashes of a shared file, where known.
    pub fn set_other_hashes(
        &mut self,
        h: &Sha1Hash,
        ed2k: Option<[u8; 16]>,
        btih: Option<[u8; 20]>,
    ) {
        if let Some(f) = self
            .by_sha1
            .get(&h.0)
            .and_then(|i| self.by_index.get_mut(i))
        {
            f.ed2k = ed2k.or(f.ed2k);
            f.btih = btih.or(f.btih);
        }
    }

    /// Remember that `alt` has the file `h` too.
    pub fn add_alt(&mut self, h: &Sha1Hash, alt: SocketAddrV4) {
        let Some(i) = self.by_sha1.get(&h.0) else {
            return;
        };
        if let Some(f) = self.by_index.get_mut(i)
            && !f.alts.contains(&alt)
        {
            f.alts.push_front(alt);
            f.alts.truncate(MAX_ALTS);
        }
    }

    /// Files matching a query: by SHA-1 when it names one, otherwise every
    /// keyword (≥ 3 characters) must occur in the name.
    pub fn matches(&self, criteria: &str, urns: &[Urn]) -> Vec<&SharedFile> {
        if !urns.is_empty() {
            let mut out: Vec<&SharedFile> = Vec::new();
            for u in urns {
                let f = match (u.sha1(), u.tiger()) {
                    (Some(h), _) => self.by_sha1(&h),
                    (None, Some(t)) => self.by_tth(&t),
                    (None, None) => continue,
                };
                if let Some(f) = f
                    && !out.iter().any(|o| o.index == f.index)
                {
                    out.push(f);
                }
            }
            if !out.is_empty()
                || urns
                    .iter()
                    .any(|u| u.sha1().is_some() || u.tiger().is_some())
            {
                out.truncate(MAX_RESULTS);
                return out;
            }
        }
        let words = qrp::keywords(criteria);
        if words.is_empty() || !self.table.matches_keywords(criteria) {
            return Vec::new();
        }
        self.by_index
            .values()
            .filter(|f| words.iter().all(|w| f.lower.contains(w.as_str())))
            .take(MAX_RESULTS)
            .collect()
    }
}

/// Adds a file to the index (hashed in one read for whatever of its SHA-1 and Tiger tree
/// the gateway did not hand over), with the other networks' hashes it is known by.
/// Returns every hash it is now known by.
pub(crate) async fn add_item(
    shared: &Shared,
    item: &SharedItem,
) -> Result<ContentId, NetworkError> {
    let known = item
        .id
        .get(HashKind::Sha1)
        .and_then(|d| <[u8; 20]>::try_from(d).ok())
        .map(Sha1Hash);
    let known_tth = item
        .id
        .get(HashKind::Tth)
        .and_then(|d| <[u8; 24]>::try_from(d).ok())
        .map(TigerHash);
    // One read for whatever is missing: the SHA-1 and the Tiger tree together (the
    // tree of a file whose hashes were both cached is built when first asked for).
    let (size, sha1, tth, tree) = match (known, known_tth) {
        (Some(h), Some(t)) => (item.size, h, t, None),
        _ => {
            let path = item.path.clone();
            let want_sha1 = known.is_none();
            let (size, h, level) = tokio::task::spawn_blocking(move || hash_file(&path, want_sha1))
                .await
                .map_err(|e| NetworkError::Other(Box::new(e)))??;
            let root = level
                .root()
                .ok_or_else(|| NetworkError::Invalid("empty Tiger tree".into()))?;
            let sha1 = h
                .or(known)
                .ok_or_else(|| NetworkError::Invalid("no SHA-1 computed".into()))?;
            (size, sha1, root, Some(level))
        }
    };
    let name = if item.name.is_empty() {
        item.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        item.name.clone()
    };
    {
        let mut shares = shared.shares_mut();
        shares.add(item.path.clone(), name, size, sha1);
        shares.set_tiger(&sha1, tth, tree);
        let ed2k = item.id.get(HashKind::Ed2k).and_then(|d| d.try_into().ok());
        let btih = item.id.get(HashKind::Btih).and_then(|d| d.try_into().ok());
        shares.set_other_hashes(&sha1, ed2k, btih);
    }
    let mut id = item.id.clone();
    id.size = Some(size);
    id.set(HashKind::Sha1, &sha1.0);
    id.set(HashKind::Tth, &tth.0);
    Ok(id)
}

/// Read a file once: its size, its SHA-1 (when `sha1`), and its Tiger tree at the
/// depth we serve (whose root is the TTH).
pub fn hash_file(
    path: &std::path::Path,
    sha1: bool,
) -> std::io::Result<(u64, Option<Sha1Hash>, Level)> {
    use sha1::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    let mut h = sha1.then(sha1::Sha1::new);
    let mut tree = crate::wire::thex::LevelHasher::new(size);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > size {
            break;
        }
        if let Some(h) = h.as_mut() {
            h.update(&buf[..n]);
        }
        tree.update(&buf[..n]);
    }
    if total != size {
        return Err(std::io::Error::other(format!(
            "{} changed size while being hashed",
            path.display()
        )));
    }
    Ok((
        size,
        h.map(|h| Sha1Hash(h.finalize().into())),
        tree.finish(),
    ))
}

fn empty_table() -> QrpTable {
    QrpTable::new(QRP_TABLE_LEN, QRP_INFINITY).expect("constant table geometry is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_and_urn_matching() {
        let mut s = ShareIndex::new();
        let h = Sha1Hash::digest(b"x");
        let i = s.add("/x".into(), "Gnutcap Bravo.txt".into(), 1, h);
        assert_eq!(s.matches("bravo gnutcap", &[]).len(), 1);
        assert_eq!(s.matches("brav", &[]).len(), 1);
        assert!(s.matches("charlie", &[]).is_empty());
        assert!(s.matches("a b", &[]).is_empty());
        assert_eq!(s.matches("", &[Urn::Sha1(h)])[0].index, i);
        assert!(s.table().matches_keywords("gnutcap"));
        assert_eq!(s.add("/y".into(), "renamed".into(), 1, h), i);
        assert_eq!(s.len(), 1);
    }
}
