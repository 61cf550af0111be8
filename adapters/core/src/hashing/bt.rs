//! BitTorrent's hashes of one file: v1 piece SHA-1s, and v2's SHA-256 Merkle tree over
//! 16 KiB blocks (BEP 52), whose root (`pieces root`) is the one BitTorrent value that
//! names a file across torrents.

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// v2 leaf size.
pub const BLOCK_LEN: u64 = 16 * 1024;

/// A piece length for a file of `size` bytes, as torrent makers pick it: a power of two
/// from 16 KiB to 16 MiB giving about 2,000 pieces at most.
pub fn piece_len_for(size: u64) -> u64 {
    let mut len = BLOCK_LEN;
    while len < (16 << 20) && size / len > 2000 {
        len *= 2;
    }
    len
}

/// v1 piece hashes, fed in file order.
#[derive(Clone)]
pub struct PieceHasher {
    piece_len: u64,
    in_piece: u64,
    piece: Sha1,
    pieces: Vec<[u8; 20]>,
}

impl PieceHasher {
    pub fn new(piece_len: u64) -> PieceHasher {
        PieceHasher {
            piece_len: piece_len.max(1),
            in_piece: 0,
            piece: Sha1::new(),
            pieces: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = usize::try_from(self.piece_len - self.in_piece).unwrap_or(usize::MAX);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.piece.update(now);
            self.in_piece += now.len() as u64;
            data = rest;
            if self.in_piece == self.piece_len {
                self.pieces.push(self.piece.finalize_reset().into());
                self.in_piece = 0;
            }
        }
    }

    pub fn finish(mut self) -> Vec<[u8; 20]> {
        if self.in_piece > 0 {
            self.pieces.push(self.piece.finalize().into());
        }
        self.pieces
    }
}

/// The v2 tree of one file: its root and the layer where one hash covers one piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Tree {
    pub pieces_root: [u8; 32],
    /// One hash per piece; BEP 52 puts it in `piece layers` only for files longer than a
    /// piece.
    pub piece_layer: Vec<[u8; 32]>,
}

/// v2 leaf hashes, fed in file order.
#[derive(Clone, Default)]
pub struct V2Hasher {
    in_block: u64,
    block: Sha256,
    leaves: Vec<[u8; 32]>,
}

pub fn pair(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// Reduces `level` to the root of a full tree of `width` leaves (a power of two), the
/// missing nodes standing for subtrees of zero leaves. `pad` is the hash of such a
/// subtree at this level.
pub fn reduce(mut level: Vec<[u8; 32]>, mut width: u64, mut pad: [u8; 32]) -> [u8; 32] {
    while width > 1 {
        if level.len() % 2 == 1 {
            level.push(pad);
        }
        level = level.chunks(2).map(|p| pair(&p[0], &p[1])).collect();
        pad = pair(&pad, &pad);
        width /= 2;
    }
    level.first().copied().unwrap_or(pad)
}

impl V2Hasher {
    pub fn new() -> V2Hasher {
        V2Hasher::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (BLOCK_LEN - self.in_block) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.block.update(now);
            self.in_block += now.len() as u64;
            data = rest;
            if self.in_block == BLOCK_LEN {
                self.leaves.push(self.block.finalize_reset().into());
                self.in_block = 0;
            }
        }
    }

    /// The tree for pieces of `piece_len` bytes (a power of two of at least 16 KiB).
    /// `None` for an empty file, which has no `pieces root`.
    pub fn finish(mut self, piece_len: u64) -> Option<V2Tree> {
        if self.in_block > 0 {
            self.leaves.push(self.block.finalize().into());
        }
        if self.leaves.is_empty() {
            return None;
        }
        let per_piece = (piece_len / BLOCK_LEN).max(1).next_power_of_two();
        let piece_layer: Vec<[u8; 32]> = self
            .leaves
            .chunks(per_piece as usize)
            .map(|c| reduce(c.to_vec(), per_piece, [0; 32]))
            .collect();
        // The pad of a whole piece of zero leaves, for the levels above the pieces.
        let piece_pad = reduce(Vec::new(), per_piece, [0; 32]);
        let pieces_root = if self.leaves.len() as u64 <= per_piece {
            let width = (self.leaves.len() as u64).next_power_of_two();
            reduce(self.leaves, width, [0; 32])
        } else {
            let width = (piece_layer.len() as u64).next_power_of_two();
            reduce(piece_layer.clone(), width, piece_pad)
        };
        Some(V2Tree {
            pieces_root,
            piece_layer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The root straight from the definition: leaves padded with zero hashes to a power
    /// of two, paired up to one.
    fn naive_root(data: &[u8]) -> [u8; 32] {
        let mut level: Vec<[u8; 32]> = data
            .chunks(BLOCK_LEN as usize)
            .map(|b| Sha256::digest(b).into())
            .collect();
        level.resize(level.len().next_power_of_two(), [0; 32]);
        while level.len() > 1 {
            level = level.chunks(2).map(|p| pair(&p[0], &p[1])).collect();
        }
        level[0]
    }

    #[test]
    fn v2_roots_follow_the_definition_for_any_piece_length() {
        for size in [
            1u64,
            100,
            BLOCK_LEN,
            BLOCK_LEN + 1,
            5 * BLOCK_LEN + 7,
            64 * BLOCK_LEN,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i % 249) as u8).collect();
            for piece_len in [BLOCK_LEN, 4 * BLOCK_LEN, 16 * BLOCK_LEN] {
                let mut h = V2Hasher::new();
                let (a, b) = data.split_at(data.len() / 3);
                h.update(a);
                h.update(b);
                let tree = h.finish(piece_len).unwrap();
                assert_eq!(tree.pieces_root, naive_root(&data), "{size} {piece_len}");
                assert_eq!(tree.piece_layer.len() as u64, size.div_ceil(piece_len));
            }
        }
        assert_eq!(V2Hasher::new().finish(BLOCK_LEN), None);
    }

    #[test]
    fn v1_pieces_and_piece_lengths() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let mut h = PieceHasher::new(BLOCK_LEN);
        h.update(&data[..5]);
        h.update(&data[5..]);
        let pieces = h.finish();
        assert_eq!(pieces.len(), 7);
        assert_eq!(
            pieces[6],
            <[u8; 20]>::from(Sha1::digest(&data[6 * 16384..]))
        );
        assert_eq!(piece_len_for(1), BLOCK_LEN);
        assert_eq!(piece_len_for(1 << 30), 1 << 20);
        assert_eq!(piece_len_for(1 << 40), 16 << 20);
    }
}
