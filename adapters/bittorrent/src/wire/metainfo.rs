//! `.torrent` metainfo: v1 (BEP 3, 12, 19, 27), v2 and hybrid (BEP 52), and creating a
//! v1 single-file torrent for content Junction already has.
//!
//! The info-hash is computed over the raw `info` bytes exactly as received (the strict
//! decoder keeps each entry's raw span), never over a re-encoding. File paths are checked
//! component by component, so no torrent can name a file outside its own directory.

use std::collections::BTreeMap;

use bytes::Bytes;
use junction_core::bencode::{self, Entry, Value};
use junction_core::{ContentId, HashKind};
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::error::MetainfoError;
use crate::wire::id::{InfoHash, InfoHashV2};
use crate::wire::piece::{Geometry, ValidPieceIndex};

/// Largest piece length accepted (libtorrent's limit is 128 MiB; nothing real goes past 64).
pub const MAX_PIECE_LENGTH: u32 = 256 << 20;
/// v2 pieces are powers of two of at least one 16 KiB block (BEP 52).
pub const MIN_V2_PIECE_LENGTH: u32 = 16 * 1024;

pub use builder::{PieceHasher, TorrentBuilder, piece_length_for};

type Result<T> = std::result::Result<T, MetainfoError>;

fn invalid(key: &'static str, why: &'static str) -> MetainfoError {
    MetainfoError::Invalid { key, why }
}

/// One v1 file, in piece-space order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path inside the torrent's directory (multi-file) or `[name]` (single-file). Every
    /// component is non-empty, not `.`/`..`, and has no separator.
    pub path: Vec<String>,
    pub length: u64,
    /// Byte offset of the file in the concatenated piece space.
    pub offset: u64,
    /// A BEP 47 padding file (`attr` contains `p`): zeros, never written to disk.
    pub pad: bool,
    /// Whole-file hashes the torrent's maker wrote (the file's dict, or the info dict of a
    /// single-file torrent).
    pub hashes: FileHashes,
}

/// Whole-file hashes some torrent makers add next to a file's length: `sha1` (libtorrent's
/// create_torrent with file hashes), `filehash` (BitComet's SHA-1), `ed2k` (BitComet's eD2k
/// hash) and `md5sum` (32 hex digits, BEP 3's optional key). They let the same file merge
/// with its copies on other networks. A value of the wrong type or length is ignored: it
/// is advisory and the pieces still verify the data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileHashes {
    pub sha1: Option<[u8; 20]>,
    pub ed2k: Option<[u8; 16]>,
    pub md5: Option<[u8; 16]>,
}

impl FileHashes {
    /// Reads the keys of one file's dictionary (or a single-file info dictionary).
    pub fn from_dict(v: &Value<'_>) -> Self {
        fn fixed<const N: usize>(v: &Value<'_>, key: &str) -> Option<[u8; N]> {
            v.get(key)?.as_bytes()?.try_into().ok()
        }
        let md5 = v
            .get("md5sum")
            .and_then(Value::as_bytes)
            .filter(|h| h.len() == 32)
            .and_then(|h| data_encoding::HEXLOWER_PERMISSIVE.decode(h).ok())
            .and_then(|b| b.try_into().ok());
        Self {
            sha1: fixed(v, "sha1").or_else(|| fixed(v, "filehash")),
            ed2k: fixed(v, "ed2k"),
            md5,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sha1.is_none() && self.ed2k.is_none() && self.md5.is_none()
    }

    /// Adds the hashes to a content id.
    pub fn add_to(&self, id: &mut ContentId) {
        if let Some(h) = &self.sha1 {
            id.set(HashKind::Sha1, h);
        }
        if let Some(h) = &self.ed2k {
            id.set(HashKind::Ed2k, h);
        }
        if let Some(h) = &self.md5 {
            id.set(HashKind::Md5, h);
        }
    }
}

/// One v2 file from the `file tree`, in tree (sorted) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2File {
    pub path: Vec<String>,
    pub length: u64,
    /// SHA-256 Merkle root over 16 KiB blocks; absent for empty files.
    pub pieces_root: Option<[u8; 32]>,
}

/// The `info` dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub piece_length: u32,
    pub private: bool,
    /// v1 files (pad files included and flagged); for a v2-only torrent, its files laid
    /// out the same way (each starting a piece).
    pub files: Vec<FileEntry>,
    /// Whether v1 used `files` (a directory called `name`) rather than `length`.
    pub multi_file: bool,
    /// v1 piece hashes; empty for a v2-only torrent.
    pub pieces: Vec<[u8; 20]>,
    /// v2 files; empty for a v1-only torrent.
    pub file_tree: Vec<V2File>,
    /// Sum of the file lengths (v1 including pad files, else v2).
    pub total_length: u64,
    /// SHA-1 of `raw`, for v1 and hybrid torrents.
    pub info_hash: Option<InfoHash>,
    /// SHA-256 of `raw`, for v2 and hybrid torrents.
    pub info_hash_v2: Option<InfoHashV2>,
    /// The exact bytes of the dictionary: what is hashed and what `ut_metadata` serves.
    pub raw: Bytes,
}

/// A whole `.torrent` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    pub info: Info,
    pub announce: Option<String>,
    /// BEP 12 tiers; when non-empty it replaces `announce`.
    pub announce_list: Vec<Vec<String>>,
    /// BEP 19 web seeds (`url-list`, a string or a list).
    pub url_list: Vec<String>,
    /// BEP 5 bootstrap nodes for trackerless torrents.
    pub nodes: Vec<(String, u16)>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
    /// BEP 52 `piece layers`: pieces root → per-piece hashes of that file.
    pub piece_layers: BTreeMap<[u8; 32], Vec<[u8; 32]>>,
}

fn opt_str(v: &Value<'_>, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn str_list(v: Option<&Value<'_>>) -> Vec<String> {
    match v {
        Some(Value::Bytes(_)) => v
            .and_then(Value::as_str)
            .map(str::to_owned)
            .into_iter()
            .collect(),
        Some(Value::List(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

impl Metainfo {
    /// Parses a `.torrent` file. Informational keys with the wrong type are ignored; the
    /// `info` dictionary is validated strictly.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let top = bencode::decode(data)?;
        if top.as_dict().is_none() {
            return Err(invalid("torrent", "not a dictionary"));
        }
        let info_entry = top.entry("info").ok_or(MetainfoError::Missing("info"))?;
        let info = Info::from_entry(info_entry)?;

        let announce_list: Vec<Vec<String>> = top
            .get("announce-list")
            .and_then(Value::as_list)
            .unwrap_or_default()
            .iter()
            .map(|tier| str_list(Some(tier)))
            .filter(|tier: &Vec<String>| !tier.is_empty())
            .collect();
        let nodes = top
            .get("nodes")
            .and_then(Value::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(|n| match n.as_list()? {
                [host, port] => Some((
                    host.as_str()?.to_owned(),
                    u16::try_from(port.as_int()?).ok()?,
                )),
                _ => None,
            })
            .collect();
        let piece_layers = parse_piece_layers(&top, &info)?;
        Ok(Self {
            announce: opt_str(&top, "announce"),
            announce_list,
            url_list: str_list(top.get("url-list")),
            nodes,
            comment: opt_str(&top, "comment"),
            created_by: opt_str(&top, "created by"),
            creation_date: top.get("creation date").and_then(Value::as_int),
            piece_layers,
            info,
        })
    }

    /// Tracker tiers to try in order (BEP 12): `announce-list`, else `announce` alone.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        if self.announce_list.is_empty() {
            self.announce.iter().map(|a| vec![a.clone()]).collect()
        } else {
            self.announce_list.clone()
        }
    }
}

fn parse_piece_layers(top: &Value<'_>, info: &Info) -> Result<BTreeMap<[u8; 32], Vec<[u8; 32]>>> {
    let mut layers = BTreeMap::new();
    let Some(v) = top.get("piece layers") else {
        return Ok(layers);
    };
    let entries = v
        .as_dict()
        .ok_or(invalid("piece layers", "not a dictionary"))?;
    for e in entries {
        let root: [u8; 32] = e
            .key
            .try_into()
            .map_err(|_| invalid("piece layers", "key is not a 32-byte pieces root"))?;
        let hashes = e
            .value
            .as_bytes()
            .ok_or(invalid("piece layers", "value is not a byte string"))?;
        if hashes.len() % 32 != 0 {
            return Err(invalid("piece layers", "layer length not a multiple of 32"));
        }
        let file = info
            .file_tree
            .iter()
            .find(|f| f.pieces_root == Some(root))
            .ok_or(invalid("piece layers", "layer for a root no file has"))?;
        let expected = file.length.div_ceil(u64::from(info.piece_length));
        if hashes.len() as u64 / 32 != expected {
            return Err(invalid(
                "piece layers",
                "wrong number of piece hashes for the file",
            ));
        }
        let layer = hashes
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect();
        layers.insert(root, layer);
    }
    Ok(layers)
}

/// Checks one path component: UTF-8, non-empty, not `.`/`..`, no separator or NUL.
fn component(raw: &[u8]) -> Result<String> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| MetainfoError::UnsafePath(String::from_utf8_lossy(raw).into_owned()))?;
    if s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\', '\0']) {
        return Err(MetainfoError::UnsafePath(s.to_owned()));
    }
    Ok(s.to_owned())
}

fn length_of(v: Option<&Value<'_>>, key: &'static str) -> Result<u64> {
    let n = v.ok_or(MetainfoError::Missing(key))?;
    n.as_int()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(invalid(key, "not a non-negative integer"))
}

impl Info {
    /// Parses a raw `info` dictionary, e.g. one assembled from `ut_metadata` pieces.
    pub fn parse(raw: &[u8]) -> Result<Self> {
        let value = bencode::decode(raw)?;
        Self::from_value(&value, raw)
    }

    /// Parses metadata fetched for `expected` and checks it hashes to it (v1 SHA-1, or the
    /// truncated v2 SHA-256 for a v2-only swarm).
    pub fn parse_verified(raw: &[u8], expected: &InfoHash) -> Result<Self> {
        let info = Self::parse(raw)?;
        if info.info_hash.as_ref() == Some(expected)
            || info.info_hash_v2.map(|h| h.truncated()).as_ref() == Some(expected)
        {
            Ok(info)
        } else {
            Err(MetainfoError::HashMismatch {
                expected: expected.to_hex(),
                got: info.swarm_hash().to_hex(),
            })
        }
    }

    fn from_entry(entry: &Entry<'_>) -> Result<Self> {
        Self::from_value(&entry.value, entry.raw)
    }

    fn from_value(v: &Value<'_>, raw: &[u8]) -> Result<Self> {
        if v.as_dict().is_none() {
            return Err(invalid("info", "not a dictionary"));
        }
        let name = component(
            v.get("name")
                .and_then(Value::as_bytes)
                .ok_or(MetainfoError::Missing("name"))?,
        )?;
        let piece_length = u32::try_from(length_of(v.get("piece length"), "piece length")?)
            .ok()
            .filter(|&n| n > 0 && n <= MAX_PIECE_LENGTH)
            .ok_or(invalid("piece length", "zero or above 256 MiB"))?;
        let private = v
            .get("private")
            .and_then(Value::as_int)
            .is_some_and(|n| n != 0);

        let v2 = match v.get("meta version") {
            None => false,
            Some(m) => match m.as_int() {
                Some(2) => true,
                Some(1) => false,
                Some(n) => return Err(MetainfoError::MetaVersion(n)),
                None => return Err(invalid("meta version", "not an integer")),
            },
        };
        let v1 = v.get("pieces").is_some() || !v2;

        let mut info = Info {
            name,
            piece_length,
            private,
            files: Vec::new(),
            multi_file: false,
            pieces: Vec::new(),
            file_tree: Vec::new(),
            total_length: 0,
            info_hash: None,
            info_hash_v2: None,
            raw: Bytes::copy_from_slice(raw),
        };
        if v1 {
            info.parse_v1(v)?;
            info.info_hash = Some(InfoHash(Sha1::digest(raw).into()));
        }
        if v2 {
            info.parse_v2(v)?;
            info.info_hash_v2 = Some(InfoHashV2(Sha256::digest(raw).into()));
        }
        if v1 && v2 {
            info.check_hybrid()?;
        }
        Ok(info)
    }

    fn parse_v1(&mut self, v: &Value<'_>) -> Result<()> {
        match (v.get("length"), v.get("files")) {
            (Some(_), Some(_)) => return Err(invalid("files", "both `length` and `files` given")),
            (None, None) => return Err(MetainfoError::Missing("length")),
            (Some(len), None) => {
                let length = length_of(Some(len), "length")?;
                self.files.push(FileEntry {
                    path: vec![self.name.clone()],
                    length,
                    offset: 0,
                    pad: false,
                    hashes: FileHashes::from_dict(v),
                });
            }
            (None, Some(files)) => {
                self.multi_file = true;
                let list = files.as_list().ok_or(invalid("files", "not a list"))?;
                let mut offset = 0u64;
                for f in list {
                    let length = length_of(f.get("length"), "length")?;
                    let path = f
                        .get("path")
                        .and_then(Value::as_list)
                        .ok_or(MetainfoError::Missing("path"))?;
                    if path.is_empty() {
                        return Err(invalid("path", "empty path"));
                    }
                    let path = path
                        .iter()
                        .map(|c| {
                            component(
                                c.as_bytes()
                                    .ok_or(invalid("path", "component not a string"))?,
                            )
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let pad = f
                        .get("attr")
                        .and_then(Value::as_bytes)
                        .is_some_and(|a| a.contains(&b'p'));
                    self.files.push(FileEntry {
                        path,
                        length,
                        offset,
                        pad,
                        hashes: FileHashes::from_dict(f),
                    });
                    offset = offset
                        .checked_add(length)
                        .ok_or(invalid("length", "total length overflows"))?;
                }
            }
        }
        let total = self
            .files
            .iter()
            .try_fold(0u64, |acc, f| acc.checked_add(f.length));
        self.total_length = total
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or(invalid("length", "total length overflows"))?;

        let pieces = v
            .get("pieces")
            .and_then(Value::as_bytes)
            .ok_or(MetainfoError::Missing("pieces"))?;
        if pieces.len() % 20 != 0 {
            return Err(invalid("pieces", "length is not a multiple of 20"));
        }
        let expected = self.total_length.div_ceil(u64::from(self.piece_length));
        let got = (pieces.len() / 20) as u64;
        if got != expected {
            return Err(MetainfoError::PieceCount {
                got,
                expected,
                total: self.total_length,
                piece_length: u64::from(self.piece_length),
            });
        }
        self.pieces = pieces
            .chunks_exact(20)
            .filter_map(|c| c.try_into().ok())
            .collect();
        Ok(())
    }

    fn parse_v2(&mut self, v: &Value<'_>) -> Result<()> {
        if !self.piece_length.is_power_of_two() || self.piece_length < MIN_V2_PIECE_LENGTH {
            return Err(invalid(
                "piece length",
                "v2 needs a power of two of at least 16 KiB",
            ));
        }
        let tree = v
            .get("file tree")
            .ok_or(MetainfoError::Missing("file tree"))?;
        let mut path = Vec::new();
        walk_tree(tree, &mut path, &mut self.file_tree)?;
        if self.file_tree.is_empty() {
            return Err(invalid("file tree", "no files"));
        }
        let total = self
            .file_tree
            .iter()
            .try_fold(0u64, |acc, f| acc.checked_add(f.length));
        let total = total
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or(invalid("length", "total length overflows"))?;
        if self.files.is_empty() {
            self.total_length = total;
            self.lay_out_v2()?;
        }
        Ok(())
    }

    /// A hybrid's v1 and v2 halves must describe the same files, or one hash would vouch
    /// for different data than the other.
    fn check_hybrid(&self) -> Result<()> {
        let v1: Vec<(Vec<String>, u64)> = self
            .files
            .iter()
            .filter(|f| !f.pad)
            .map(|f| (f.path.clone(), f.length))
            .collect();
        let v2: Vec<(Vec<String>, u64)> = self
            .file_tree
            .iter()
            .map(|f| (f.path.clone(), f.length))
            .collect();
        if v1 == v2 {
            Ok(())
        } else {
            Err(MetainfoError::HybridMismatch)
        }
    }

    /// The hash peers, trackers and the DHT know this torrent by.
    pub fn swarm_hash(&self) -> InfoHash {
        self.info_hash
            .or_else(|| self.info_hash_v2.map(|h| h.truncated()))
            .unwrap_or_default()
    }

    /// The v1 files in the order of their bytes, for the gateway's layout on disk, each
    /// with the whole-file hashes the torrent gives it (so other networks can fetch it).
    pub fn file_spans(&self) -> Vec<junction_core::layout::FileSpan> {
        self.files
            .iter()
            .map(|f| {
                let mut id = ContentId::new(Some(f.length));
                f.hashes.add_to(&mut id);
                junction_core::layout::FileSpan {
                    path: f.path.clone(),
                    length: f.length,
                    pad: f.pad,
                    urns: id.urns(),
                }
            })
            .collect()
    }

    /// The whole-file hashes of a single-file torrent; none for a multi-file one, which is
    /// not one file.
    pub fn file_hashes(&self) -> FileHashes {
        match self.files.as_slice() {
            [f] if !self.multi_file => f.hashes,
            _ => FileHashes::default(),
        }
    }

    /// What identifies this torrent's content: its size, info-hashes, and for a single
    /// file the whole-file hashes (and the v2 `pieces root`) that other networks share.
    pub fn content_id(&self) -> ContentId {
        let mut id = ContentId::new(Some(self.total_length));
        if let Some(h) = &self.info_hash {
            id.set(HashKind::Btih, &h.0);
        }
        if let Some(h) = &self.info_hash_v2 {
            id.set(HashKind::Btmh, &h.0);
        }
        if !self.multi_file
            && let [f] = self.file_tree.as_slice()
            && let Some(root) = &f.pieces_root
        {
            id.set(HashKind::BtRoot, root);
        }
        self.file_hashes().add_to(&mut id);
        id
    }

    /// The piece geometry: v1's, or a v2-only torrent's laid out as v1 would with pad
    /// files, so that each file starts a piece. `None` past 2^32 pieces.
    pub fn geometry(&self) -> Option<Geometry> {
        let g = Geometry::new(self.piece_length, self.total_length).ok()?;
        Some(match self.is_v2_only() {
            true => g.with_padded_tail(),
            false => g,
        })
    }

    /// The SHA-1 a v1 piece must hash to.
    pub fn piece_hash(&self, index: ValidPieceIndex) -> Option<&[u8; 20]> {
        self.pieces.get(index.get() as usize)
    }

    /// Checks a downloaded v1 piece.
    pub fn verify_piece(&self, index: ValidPieceIndex, data: &[u8]) -> bool {
        self.piece_hash(index)
            .is_some_and(|h| <[u8; 20]>::from(Sha1::digest(data)) == *h)
    }
}

/// Walks a v2 `file tree`: directories are dicts of components, a file is a dict whose only
/// key is `""`. Depth is already bounded by the bencode decoder.
fn walk_tree(node: &Value<'_>, path: &mut Vec<String>, out: &mut Vec<V2File>) -> Result<()> {
    let entries = node
        .as_dict()
        .ok_or(invalid("file tree", "node is not a dictionary"))?;
    for e in entries {
        if e.key.is_empty() {
            return Err(invalid(
                "file tree",
                "file entry mixed with directory entries",
            ));
        }
        path.push(component(e.key)?);
        match e.value.entry("") {
            Some(file) => {
                if e.value.as_dict().map(<[Entry<'_>]>::len) != Some(1) {
                    return Err(invalid("file tree", "file node has other keys"));
                }
                let length = length_of(file.value.get("length"), "length")?;
                let pieces_root = match file.value.get("pieces root") {
                    None if length == 0 => None,
                    None => return Err(MetainfoError::Missing("pieces root")),
                    Some(r) => Some(
                        r.as_bytes()
                            .and_then(|b| b.try_into().ok())
                            .ok_or(invalid("pieces root", "not 32 bytes"))?,
                    ),
                };
                out.push(V2File {
                    path: path.clone(),
                    length,
                    pieces_root,
                });
            }
            None => walk_tree(&e.value, path, out)?,
        }
        path.pop();
    }
    Ok(())
}

mod builder;
mod files;
mod v2;

pub use v2::V2Pieces;
#[cfg(test)]
mod tests;
