//! A file's hashes as the store keeps them, so a restart offers a share on every network
//! without reading it again: part hashes and pieces included, in hex.

use junction_core::hashing::bt::V2Tree;
use junction_core::hashing::ed2k::Ed2kHashset;
use junction_core::hashing::{BtHashes, FileHashes};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHashes {
    sha1: String,
    ed2k: String,
    /// Concatenated MD4 part hashes (empty below one part).
    ed2k_parts: String,
    aich: String,
    tth: String,
    piece_len: u64,
    /// Concatenated v1 piece SHA-1s.
    pieces: String,
    /// The v2 `pieces root` and piece layer (none for an empty file).
    v2_root: Option<String>,
    v2_layer: String,
}

fn joined<const N: usize>(items: &[[u8; N]]) -> String {
    hex::encode(items.as_flattened())
}

fn split<const N: usize>(text: &str) -> Option<Vec<[u8; N]>> {
    let bytes = hex::decode(text).ok()?;
    if bytes.len() % N != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(N)
            .map(|c| c.try_into().expect("chunks of N"))
            .collect(),
    )
}

fn array<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex::decode(text).ok()?.try_into().ok()
}

impl StoredHashes {
    /// `None` unless every kind was computed (as `Want::all` does).
    pub fn of(h: &FileHashes) -> Option<StoredHashes> {
        let (ed2k, bt) = (h.ed2k.as_ref()?, h.bt.as_ref()?);
        Some(StoredHashes {
            sha1: hex::encode(h.sha1?),
            ed2k: hex::encode(ed2k.root),
            ed2k_parts: joined(&ed2k.parts),
            aich: hex::encode(h.aich?),
            tth: hex::encode(h.tth?),
            piece_len: bt.piece_len,
            pieces: joined(&bt.pieces),
            v2_root: bt.v2.as_ref().map(|v| hex::encode(v.pieces_root)),
            v2_layer: bt
                .v2
                .as_ref()
                .map_or(String::new(), |v| joined(&v.piece_layer)),
        })
    }

    /// The hashes of a file of `size` bytes; `None` if what was stored is damaged.
    pub fn hashes(&self, size: u64) -> Option<FileHashes> {
        let v2 = match &self.v2_root {
            Some(root) => Some(V2Tree {
                pieces_root: array(root)?,
                piece_layer: split(&self.v2_layer)?,
            }),
            None => None,
        };
        Some(FileHashes {
            size,
            sha1: Some(array(&self.sha1)?),
            ed2k: Some(Ed2kHashset {
                root: array(&self.ed2k)?,
                parts: split(&self.ed2k_parts)?,
            }),
            aich: Some(array(&self.aich)?),
            tth: Some(array(&self.tth)?),
            bt: Some(BtHashes {
                piece_len: self.piece_len,
                pieces: split(&self.pieces)?,
                v2,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_core::hashing::{Want, hash_bytes};

    #[test]
    fn hashes_come_back_as_they_were_stored() {
        for size in [0usize, 5, 9_728_000 + 77] {
            let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let h = hash_bytes(&data, Want::all(size as u64));
            let stored = StoredHashes::of(&h).unwrap();
            let json = serde_json::to_string(&stored).unwrap();
            let back: StoredHashes = serde_json::from_str(&json).unwrap();
            assert_eq!(back.hashes(size as u64), Some(h));
        }
        let partial = hash_bytes(b"x", Want::default());
        assert_eq!(StoredHashes::of(&partial), None);
    }
}
