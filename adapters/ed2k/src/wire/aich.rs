//! AICH recovery: the block hashes of one part, proven against the file's AICH root.
//!
//! eMule's AICH tree is a SHA-1 Merkle tree whose leaves are the 184,320-byte blocks of
//! each part. A peer that has the whole tree answers `OP_AICHREQUEST` for a part with
//! that part's block hashes plus the sibling hash at every level above it; the receiver
//! rebuilds the root from them and trusts the blocks only if it equals the root it
//! already trusts. Then each block is checked on its own, so a corrupt part costs one
//! block, and blame falls only on the writers of the bad block.
//!
//! A node is named by its path from the root, as eMule numbers it: the root is 1, a left
//! child appends a 1 bit, a right child a 0 bit.

use std::collections::HashMap;

use sha1::{Digest, Sha1};

use crate::WireError;
use crate::wire::hash::{AichHash, BLOCK_SIZE, OLD_MAX_FILE_SIZE, PART_SIZE};

/// Blocks in a full part: the last one is shorter (52 × 180 KiB + 140 KiB).
pub const BLOCKS_PER_PART: u64 = PART_SIZE.div_ceil(BLOCK_SIZE);

/// One node of the tree: the bytes it covers and where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub ident: u64,
    pub start: u64,
    pub size: u64,
    pub is_left: bool,
}

impl Node {
    /// The root over a file of `size` bytes (a left branch, as eMule builds it).
    pub fn root(size: u64) -> Node {
        Node {
            ident: 1,
            start: 0,
            size,
            is_left: true,
        }
    }

    pub fn is_leaf(&self) -> bool {
        self.size <= BLOCK_SIZE
    }

    /// Above part level a node splits into parts, within a part into blocks. The left
    /// child takes the larger half under a left parent, the smaller under a right one.
    pub fn children(&self) -> Option<(Node, Node)> {
        if self.is_leaf() {
            return None;
        }
        let base = if self.size > PART_SIZE {
            PART_SIZE
        } else {
            BLOCK_SIZE
        };
        let units = self.size.div_ceil(base);
        let left_size = (units + u64::from(self.is_left)) / 2 * base;
        let left = Node {
            ident: self.ident << 1 | 1,
            start: self.start,
            size: left_size,
            is_left: true,
        };
        let right = Node {
            ident: self.ident << 1,
            start: self.start + left_size,
            size: self.size - left_size,
            is_left: false,
        };
        Some((left, right))
    }

    fn contains(&self, offset: u64) -> bool {
        (self.start..self.start + self.size).contains(&offset)
    }
}

fn pair(left: &AichHash, right: &AichHash) -> AichHash {
    let mut h = Sha1::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The node of part `part`, and the siblings met on the way down to it, top first.
/// `None` when the file has no such part.
fn path_to_part(size: u64, part: u64) -> Option<(Node, Vec<Node>)> {
    let start = part.checked_mul(PART_SIZE)?;
    if start >= size {
        return None;
    }
    let mut node = Node::root(size);
    let mut siblings = Vec::new();
    while node.size > PART_SIZE {
        let (l, r) = node.children()?;
        if l.contains(start) {
            siblings.push(r);
            node = l;
        } else {
            siblings.push(l);
            node = r;
        }
    }
    Some((node, siblings))
}

/// The leaves under `node`, left to right.
fn leaves(node: Node, out: &mut Vec<Node>) {
    match node.children() {
        None => out.push(node),
        Some((l, r)) => {
            leaves(l, out);
            leaves(r, out);
        }
    }
}

/// The hash of `node` from the file's block hashes (`blocks[i]` is block `i % 53` of part
/// `i / 53`, as [`block_index`] numbers them).
pub fn node_hash(node: Node, blocks: &[AichHash]) -> Option<AichHash> {
    match node.children() {
        None => blocks
            .get(usize::try_from(block_index(node.start)).ok()?)
            .copied(),
        Some((l, r)) => Some(pair(&node_hash(l, blocks)?, &node_hash(r, blocks)?)),
    }
}

/// The index of the block starting at `offset`, counting `BLOCKS_PER_PART` per part.
pub fn block_index(offset: u64) -> u64 {
    offset / PART_SIZE * BLOCKS_PER_PART + offset % PART_SIZE / BLOCK_SIZE
}

/// What a peer with the whole tree sends for `part`: the part's block hashes and the
/// siblings above it, each with its identifier.
pub fn recovery_for_part(
    size: u64,
    part: u64,
    blocks: &[AichHash],
) -> Option<Vec<(u64, AichHash)>> {
    let (node, siblings) = path_to_part(size, part)?;
    let mut out = Vec::new();
    for s in siblings {
        out.push((s.ident, node_hash(s, blocks)?));
    }
    let mut under = Vec::new();
    leaves(node, &mut under);
    for leaf in under {
        out.push((leaf.ident, node_hash(leaf, blocks)?));
    }
    Some(out)
}

/// Checks a part's recovery data against the trusted root. Returns the part's block
/// hashes in order, or `None` when a hash is missing or the root does not match.
pub fn verify_part(
    size: u64,
    part: u64,
    root: &AichHash,
    hashes: &[(u64, AichHash)],
) -> Option<Vec<AichHash>> {
    let (node, siblings) = path_to_part(size, part)?;
    let by_ident: HashMap<u64, AichHash> = hashes.iter().copied().collect();
    let mut under = Vec::new();
    leaves(node, &mut under);
    let blocks: Vec<AichHash> = under
        .iter()
        .map(|l| by_ident.get(&l.ident).copied())
        .collect::<Option<_>>()?;
    let mut hash = subtree(node, &by_ident)?;
    let mut below = node;
    for s in siblings.iter().rev() {
        let sib = by_ident.get(&s.ident)?;
        hash = if below.is_left {
            pair(&hash, sib)
        } else {
            pair(sib, &hash)
        };
        below = Node {
            ident: below.ident >> 1,
            is_left: (below.ident >> 1) & 1 == 1,
            ..below
        };
    }
    (hash == *root).then_some(blocks)
}

fn subtree(node: Node, by_ident: &HashMap<u64, AichHash>) -> Option<AichHash> {
    match node.children() {
        None => by_ident.get(&node.ident).copied(),
        Some((l, r)) => Some(pair(&subtree(l, by_ident)?, &subtree(r, by_ident)?)),
    }
}

/// Most hashes one part's recovery data can hold: 53 blocks and one sibling per level of
/// a 256 GiB file.
const MAX_RECOVERY_HASHES: usize = 128;
/// Largest identifier eMule reads in the 32-bit section.
const MAX_IDENT32: u32 = 0x40_0000;

/// The recovery data of `OP_AICHANSWER`, after `<file hash><part><master>`. Files up to
/// 4 GB: `<u16 n>` n × `<u16 ident><hash 20>` `<u16 0>`; larger: `<u16 0><u16 n>`
/// n × `<u32 ident><hash 20>`.
pub fn encode_recovery(size: u64, hashes: &[(u64, AichHash)]) -> Vec<u8> {
    let large = size > OLD_MAX_FILE_SIZE;
    let mut out = Vec::with_capacity(4 + hashes.len() * 24);
    let n = u16::try_from(hashes.len()).unwrap_or(u16::MAX);
    if large {
        out.extend_from_slice(&0u16.to_le_bytes());
    }
    out.extend_from_slice(&n.to_le_bytes());
    for (ident, hash) in hashes.iter().take(usize::from(n)) {
        if large {
            out.extend_from_slice(&u32::try_from(*ident).unwrap_or(0).to_le_bytes());
        } else {
            out.extend_from_slice(&u16::try_from(*ident).unwrap_or(0).to_le_bytes());
        }
        out.extend_from_slice(hash);
    }
    if !large {
        out.extend_from_slice(&0u16.to_le_bytes());
    }
    out
}

/// Reads recovery data in either section. Trailing bytes are ignored, as eMule does.
pub fn decode_recovery(mut buf: &[u8]) -> Result<Vec<(u64, AichHash)>, WireError> {
    let u16_at = |buf: &mut &[u8]| -> Result<u16, WireError> {
        let (head, rest) = buf.split_first_chunk::<2>().ok_or(WireError::Truncated {
            what: "AICH hash count",
            needed: 2,
            remaining: buf.len(),
        })?;
        *buf = rest;
        Ok(u16::from_le_bytes(*head))
    };
    let mut n = u16_at(&mut buf)?;
    let wide = n == 0;
    if wide {
        n = u16_at(&mut buf)?;
    }
    let n = usize::from(n);
    let entry = if wide { 24 } else { 22 };
    if n == 0 || n > MAX_RECOVERY_HASHES || buf.len() < n * entry {
        return Err(WireError::CountTooLarge {
            what: "AICH recovery hash",
            count: n as u64,
            max: (buf.len() / entry).min(MAX_RECOVERY_HASHES) as u64,
        });
    }
    let mut out = Vec::with_capacity(n);
    for chunk in buf[..n * entry].chunks_exact(entry) {
        let (ident, hash) = chunk.split_at(entry - 20);
        let ident = match ident {
            [a, b] => u64::from(u16::from_le_bytes([*a, *b])),
            [a, b, c, d] => {
                let i = u32::from_le_bytes([*a, *b, *c, *d]);
                if i > MAX_IDENT32 {
                    return Err(WireError::InvalidValue {
                        what: "AICH node identifier",
                        value: i.into(),
                    });
                }
                u64::from(i)
            }
            _ => unreachable!("entries are 22 or 24 bytes"),
        };
        if ident <= 1 {
            // The root is what the data is checked against; it is never sent.
            return Err(WireError::InvalidValue {
                what: "AICH node identifier",
                value: ident,
            });
        }
        let mut h = [0u8; 20];
        h.copy_from_slice(hash);
        out.push((ident, h));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hash::aich_root;

    fn blocks_of(data: &[u8]) -> Vec<AichHash> {
        let mut out = Vec::new();
        for part in data.chunks(PART_SIZE as usize) {
            for b in part.chunks(BLOCK_SIZE as usize) {
                out.push(Sha1::digest(b).into());
            }
        }
        out
    }

    #[test]
    fn the_tree_hashes_to_the_streaming_root() {
        for size in [
            1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            PART_SIZE,
            PART_SIZE + 1,
            2 * PART_SIZE,
            3 * PART_SIZE + 5 * BLOCK_SIZE + 7,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let blocks = blocks_of(&data);
            let root = node_hash(Node::root(size), &blocks).unwrap();
            assert_eq!(root, aich_root(&data), "size {size}");
        }
    }

    #[test]
    fn recovery_data_proves_each_part_and_a_lie_fails() {
        let size = 3 * PART_SIZE + 5 * BLOCK_SIZE + 7;
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let blocks = blocks_of(&data);
        let root = aich_root(&data);
        for part in 0..4 {
            let rec = recovery_for_part(size, part, &blocks).unwrap();
            let got = verify_part(size, part, &root, &rec).unwrap();
            let first = block_index(part * PART_SIZE) as usize;
            assert_eq!(got, blocks[first..first + got.len()], "part {part}");
            let mut lie = rec.clone();
            lie[0].1[3] ^= 1;
            assert_eq!(verify_part(size, part, &root, &lie), None, "part {part}");
            assert_eq!(verify_part(size, part, &root, &rec[1..]), None);
        }
        assert_eq!(recovery_for_part(size, 4, &blocks), None);
    }

    /// eMule's numbering, from its tree code: a file of three parts, part 1. The root's
    /// right child (part 2) is 0b10, the left child's left (part 0) 0b111, and part 1's
    /// first block 0b110111111; 2 siblings and 53 blocks.
    #[test]
    fn identifiers_follow_emule() {
        let size = 3 * PART_SIZE;
        let blocks = vec![[7u8; 20]; 3 * BLOCKS_PER_PART as usize];
        let rec = recovery_for_part(size, 1, &blocks).unwrap();
        assert_eq!(rec.len(), 55);
        assert_eq!((rec[0].0, rec[1].0, rec[2].0), (0b10, 0b111, 0b1_1011_1111));
        let bytes = encode_recovery(size, &rec);
        assert_eq!(bytes.len(), 2 + 55 * 22 + 2);
        assert_eq!(&bytes[..4], &[55, 0, 0b10, 0]);
        assert_eq!(decode_recovery(&bytes).unwrap(), rec);
        let big = encode_recovery(5 << 30, &rec);
        assert_eq!(&big[..6], &[0, 0, 55, 0, 0b10, 0]);
        assert_eq!(decode_recovery(&big).unwrap(), rec);
    }

    proptest::proptest! {
        #[test]
        fn recovery_data_round_trips(
            idents in proptest::collection::vec(2u64..0x40_0000, 1..MAX_RECOVERY_HASHES),
            seed: u8,
            large: bool,
        ) {
            let size = if large { 5 << 30 } else { 3 * PART_SIZE };
            let idents: Vec<u64> = if large { idents } else { idents.iter().map(|i| 2 + i % 0xFFFE).collect() };
            let hashes: Vec<(u64, AichHash)> = idents.iter().map(|&i| (i, [seed ^ i as u8; 20])).collect();
            proptest::prop_assert_eq!(decode_recovery(&encode_recovery(size, &hashes)).unwrap(), hashes);
        }
    }

    #[test]
    fn malformed_recovery_data_is_an_error() {
        let rec = vec![(2u64, [1u8; 20]), (3, [2; 20])];
        let bytes = encode_recovery(PART_SIZE * 2, &rec);
        for cut in 0..bytes.len() - 2 {
            assert!(decode_recovery(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_recovery(&[0, 0, 0, 0]).is_err());
        assert!(decode_recovery(&[1, 0, 1, 0]).is_err(), "truncated entry");
        let mut root = encode_recovery(PART_SIZE, &[(1, [0; 20])]);
        root.truncate(24);
        assert!(decode_recovery(&root).is_err(), "the root is never sent");
    }
}
