//! v2 (BEP 52) on the wire: where a v2-only torrent's pieces lie, and what each must hash to.
//!
//! A v2 torrent's pieces are per file: each non-empty file starts a piece, and a file's
//! last piece ends with the file. Peers number pieces as if BEP 47 pad files filled each
//! file up to the next piece (libtorrent lays v2 torrents out so, and a hybrid's v1 half
//! says so outright), so a v2-only torrent gets the same layout here: pad entries in
//! [`Info::files`], the total length counting them, and the uniform [`Geometry`] every
//! v1 path already uses. Only the check of a piece differs: SHA-256 Merkle against the
//! file's piece layer (or its root, for a file of one piece) instead of SHA-1.

use std::collections::BTreeMap;

use super::{FileEntry, FileHashes, Info, MetainfoError, Result, invalid};
use crate::wire::hashes::{self, Hash, HashRequest, HashRequestError, LayerTree};
use crate::wire::piece::ValidPieceIndex;

impl Info {
    /// Lays a v2-only torrent's files out as v1 would with BEP 47 pad files: every file
    /// but the last is followed by the zeros up to the next piece.
    pub(super) fn lay_out_v2(&mut self) -> Result<()> {
        let pl = u64::from(self.piece_length);
        let mut offset = 0u64;
        let last = self.file_tree.len().saturating_sub(1);
        for (i, f) in self.file_tree.iter().enumerate() {
            self.files.push(FileEntry {
                path: f.path.clone(),
                length: f.length,
                offset,
                pad: false,
                hashes: FileHashes::default(),
            });
            offset = offset
                .checked_add(f.length)
                .ok_or(invalid("length", "total length overflows"))?;
            let pad = offset.next_multiple_of(pl) - offset;
            if i < last && pad > 0 {
                self.files.push(FileEntry {
                    path: vec![".pad".into(), pad.to_string()],
                    length: pad,
                    offset,
                    pad: true,
                    hashes: FileHashes::default(),
                });
                offset += pad;
            }
        }
        self.total_length = Some(offset)
            .filter(|&t| t <= i64::MAX as u64)
            .ok_or(invalid("length", "total length overflows"))?;
        self.multi_file =
            !matches!(self.file_tree.as_slice(), [f] if f.path == [self.name.clone()]);
        Ok(())
    }

    /// A v2-only torrent: no SHA-1 pieces to check with.
    pub fn is_v2_only(&self) -> bool {
        self.info_hash.is_none() && self.info_hash_v2.is_some()
    }
}

/// What one piece must hash to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct V2Piece {
    /// The piece-layer hash, or the file's root for a file of one piece.
    hash: Hash,
    /// Bytes of the file in the piece; the rest is padding, which must be zeros.
    len: u32,
    /// The file has one piece: `hash` is its root, over its own leaves.
    small: bool,
}

/// The v2 hashes of a torrent: what each piece must hash to, and the piece layers (each
/// checked against its file's root) to answer `hash request`s with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Pieces {
    pieces: Vec<Option<V2Piece>>,
    layers: BTreeMap<Hash, LayerTree>,
    piece_length: u32,
}

impl V2Pieces {
    /// Checks `layers` (the metainfo's `piece layers`) against the file roots and maps
    /// every piece to its hash. Fails when a file longer than a piece has no layer (a
    /// magnet's info dict carries none) or a layer does not hash to its root.
    pub fn new(info: &Info, layers: &BTreeMap<Hash, Vec<Hash>>) -> Result<Self> {
        let pl = u64::from(info.piece_length);
        let count = info.total_length.div_ceil(pl);
        let count =
            usize::try_from(count).map_err(|_| invalid("piece length", "too many pieces"))?;
        let mut pieces = vec![None; count];
        let mut kept = BTreeMap::new();
        let data_files = info.files.iter().filter(|f| !f.pad);
        for (f, v2) in data_files.zip(&info.file_tree) {
            let Some(root) = v2.pieces_root else { continue };
            let first = usize::try_from(f.offset / pl).unwrap_or(usize::MAX);
            let n = usize::try_from(f.length.div_ceil(pl)).unwrap_or(usize::MAX);
            let hashes: Vec<Hash> = match n {
                1 => vec![root],
                _ => {
                    let layer = layers
                        .get(&root)
                        .ok_or(MetainfoError::Missing("piece layers"))?;
                    let tree = LayerTree::new(layer, hashes::piece_layer_height(info.piece_length));
                    if layer.len() != n || tree.root() != root {
                        return Err(invalid(
                            "piece layers",
                            "a layer does not hash to its pieces root",
                        ));
                    }
                    kept.insert(root, tree);
                    layer.clone()
                }
            };
            for (j, hash) in hashes.into_iter().enumerate() {
                let start = pl * j as u64;
                // At most a piece length, a u32.
                let len = (f.length - start).min(pl) as u32;
                let slot = first
                    .checked_add(j)
                    .and_then(|i| pieces.get_mut(i))
                    .ok_or(invalid("file tree", "a file lies past the last piece"))?;
                *slot = Some(V2Piece {
                    hash,
                    len,
                    small: n == 1,
                });
            }
        }
        Ok(Self {
            pieces,
            layers: kept,
            piece_length: info.piece_length,
        })
    }

    /// Checks a downloaded piece (its padding included, as the geometry gives it).
    pub fn verify(&self, index: ValidPieceIndex, data: &[u8]) -> bool {
        let Some(Some(p)) = self.pieces.get(index.get() as usize) else {
            return false;
        };
        let Some((file, pad)) = data.split_at_checked(p.len as usize) else {
            return false;
        };
        let hash = match p.small {
            true => hashes::small_file_root(file),
            false => hashes::piece_hash(file, self.piece_length),
        };
        hash == p.hash && pad.iter().all(|&b| b == 0)
    }

    /// The hashes answering a peer's `hash request`, from the layer of the file it names.
    pub fn answer(&self, req: &HashRequest) -> std::result::Result<Vec<Hash>, HashRequestError> {
        self.layers
            .get(&req.pieces_root)
            .ok_or(HashRequestError::Root)?
            .answer(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::metainfo::{Metainfo, TorrentBuilder};

    /// A v2-only `.torrent` of `files`, made the way libtorrent makes one: the file tree,
    /// and piece layers for the files longer than a piece.
    pub(crate) fn v2_torrent(name: &str, pl: u32, files: &[(&str, &[u8])]) -> Vec<u8> {
        use junction_core::hashing::bt::V2Hasher;
        let mut tree = Vec::new();
        let mut layers = Vec::new();
        let single = files.len() == 1 && files[0].0 == name;
        for (path, data) in files {
            let mut h = V2Hasher::new();
            h.update(data);
            let t = h.finish(u64::from(pl)).unwrap();
            tree.extend_from_slice(
                format!(
                    "{}:{path}d0:d6:lengthi{}e11:pieces root32:",
                    path.len(),
                    data.len()
                )
                .as_bytes(),
            );
            tree.extend_from_slice(&t.pieces_root);
            tree.extend_from_slice(b"ee");
            if t.piece_layer.len() > 1 {
                layers.push((t.pieces_root, t.piece_layer.concat()));
            }
        }
        assert!(single || files.iter().all(|f| f.0 != name));
        let mut info = b"d9:file treed".to_vec();
        info.extend_from_slice(&tree);
        info.extend_from_slice(
            format!(
                "e12:meta versioni2e4:name{}:{name}12:piece lengthi{pl}ee",
                name.len()
            )
            .as_bytes(),
        );
        let mut t = b"d4:info".to_vec();
        t.extend_from_slice(&info);
        t.extend_from_slice(b"12:piece layersd");
        layers.sort();
        for (root, layer) in layers {
            t.extend_from_slice(b"32:");
            t.extend_from_slice(&root);
            t.extend_from_slice(format!("{}:", layer.len()).as_bytes());
            t.extend_from_slice(&layer);
        }
        t.extend_from_slice(b"ee");
        t
    }

    fn data(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn a_multi_file_v2_torrent_is_laid_out_with_pads_and_checked_by_merkle() {
        let pl = 32 * 1024u32;
        let (a, b, c) = (data(70_000, 1), data(5, 2), data(40_000, 3));
        let bytes = v2_torrent("dir", pl, &[("a", &a), ("b", &b), ("c", &c)]);
        let m = Metainfo::parse(&bytes).unwrap();
        let info = &m.info;
        assert!(info.is_v2_only() && info.multi_file);
        // a: 3 pieces then a pad to 98,304; b: one piece then a pad; c: 2 pieces, no pad.
        let layout: Vec<(u64, u64, bool)> = info
            .files
            .iter()
            .map(|f| (f.offset, f.length, f.pad))
            .collect();
        assert_eq!(
            layout,
            vec![
                (0, 70_000, false),
                (70_000, 28_304, true),
                (98_304, 5, false),
                (98_309, 32_763, true),
                (131_072, 40_000, false)
            ]
        );
        let g = info.geometry().unwrap();
        assert_eq!((g.piece_count(), g.total_length()), (6, 171_072));
        let v2 = V2Pieces::new(info, &m.piece_layers).unwrap();
        // The bytes as the transfer holds them: files and zero padding.
        let mut all = a.clone();
        all.resize(98_304, 0);
        all.extend_from_slice(&b);
        all.resize(131_072, 0);
        all.extend_from_slice(&c);
        for i in g.indices() {
            let off = g.piece_offset(i) as usize;
            let piece = &all[off..off + g.piece_len(i) as usize];
            assert!(v2.verify(i, piece), "piece {}", i.get());
            let mut bad = piece.to_vec();
            *bad.last_mut().unwrap() ^= 1;
            assert!(
                !v2.verify(i, &bad),
                "piece {} with a flipped byte (in the pad for 2 and 3)",
                i.get()
            );
        }
        // Hash requests: the two files longer than a piece have layers to serve.
        assert_eq!(v2.layers.len(), 2);
        let root_c = info.file_tree[2].pieces_root.unwrap();
        let r = HashRequest {
            pieces_root: root_c,
            base_layer: 1,
            index: 0,
            length: 2,
            proof_layers: 0,
        };
        assert_eq!(v2.answer(&r).unwrap().len(), 2);
        let r = HashRequest {
            pieces_root: info.file_tree[1].pieces_root.unwrap(),
            ..r
        };
        assert_eq!(v2.answer(&r), Err(HashRequestError::Root));
    }

    #[test]
    fn a_layer_that_does_not_hash_to_its_root_is_refused_and_a_magnet_has_none() {
        let pl = 16 * 1024u32;
        let f = data(50_000, 9);
        let bytes = v2_torrent("f.bin", pl, &[("f.bin", &f)]);
        let m = Metainfo::parse(&bytes).unwrap();
        assert!(!m.info.multi_file);
        assert_eq!(m.info.files.len(), 1);
        assert!(V2Pieces::new(&m.info, &m.piece_layers).is_ok());
        let mut layers = m.piece_layers.clone();
        layers.values_mut().next().unwrap()[0][0] ^= 1;
        assert!(V2Pieces::new(&m.info, &layers).is_err());
        assert_eq!(
            V2Pieces::new(&m.info, &BTreeMap::new()),
            Err(MetainfoError::Missing("piece layers"))
        );
        // Junction's hybrids carry v1 and v2: the v1 layout stays as the torrent says.
        let hybrid = TorrentBuilder::new("f.bin", pl)
            .build_from_bytes(&f)
            .unwrap();
        let h = Metainfo::parse(&hybrid).unwrap();
        assert!(!h.info.is_v2_only());
    }
}
