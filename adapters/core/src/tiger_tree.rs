//! The Tiger tree hash (TTH, THEX): a Merkle tree of Tiger over 1024-byte leaves, as
//! Gnutella and Direct Connect name files (`urn:tree:tiger:`).
//!
//! A leaf is `Tiger(0x00 ‖ up to 1024 bytes)` (an empty file has one leaf, `Tiger(0x00)`);
//! a parent is `Tiger(0x01 ‖ left ‖ right)`; an odd node out is promoted unchanged. So
//! the node over any aligned run of `1024 × 2^k` bytes (or the file's last, shorter run)
//! is the root of exactly those bytes, which lets any such run be checked on its own.

use tiger::{Digest, Tiger};

/// Bytes per leaf.
pub const LEAF_LEN: usize = 1024;

/// One node of the tree.
pub type TigerHash = [u8; 24];

fn leaf(data: &[u8]) -> TigerHash {
    let mut h = Tiger::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The parent of two nodes.
pub fn parent(left: &TigerHash, right: &TigerHash) -> TigerHash {
    let mut h = Tiger::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The next level up: pairs become parents, an odd last node is promoted.
pub fn parents(level: &[TigerHash]) -> Vec<TigerHash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => parent(l, r),
            [one] => *one,
            _ => unreachable!("chunks(2) yields one or two"),
        })
        .collect()
}

/// The root over a level of nodes (`None` for no nodes).
pub fn root_of(level: &[TigerHash]) -> Option<TigerHash> {
    let mut level = level.to_vec();
    while level.len() > 1 {
        level = parents(&level);
    }
    level.first().copied()
}

/// An incremental tree hasher. Memory: one partial leaf and one node per level.
#[derive(Clone, Default)]
pub struct TigerTree {
    /// Finished subtrees, strictly decreasing in height from the bottom of the stack.
    stack: Vec<(u32, TigerHash)>,
    partial: Vec<u8>,
}

impl TigerTree {
    pub fn new() -> TigerTree {
        TigerTree::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.partial.is_empty() && data.len() > LEAF_LEN {
                let (block, rest) = data.split_at(LEAF_LEN);
                self.push(leaf(block));
                data = rest;
                continue;
            }
            let take = (LEAF_LEN - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            // A full leaf is kept until more data comes: it may be the last one.
            if self.partial.len() == LEAF_LEN && !data.is_empty() {
                let block = std::mem::take(&mut self.partial);
                self.push(leaf(&block));
            }
        }
    }

    fn push(&mut self, mut node: TigerHash) {
        let mut height = 0;
        while let Some(&(h, left)) = self.stack.last() {
            if h != height {
                break;
            }
            self.stack.pop();
            node = parent(&left, &node);
            height += 1;
        }
        self.stack.push((height, node));
    }

    /// The root. Folding the stack from the right is the same as promoting odd nodes
    /// level by level.
    pub fn finish(mut self) -> TigerHash {
        if !self.partial.is_empty() || self.stack.is_empty() {
            let block = std::mem::take(&mut self.partial);
            self.push(leaf(&block));
        }
        let Some((_, mut node)) = self.stack.pop() else {
            return leaf(&[]);
        };
        while let Some((_, left)) = self.stack.pop() {
            node = parent(&left, &node);
        }
        node
    }
}

/// The root of a whole buffer.
pub fn root(data: &[u8]) -> TigerHash {
    let mut t = TigerTree::new();
    t.update(data);
    t.finish()
}

/// The nodes of the level whose runs are `unit_len` bytes (a power-of-two multiple of
/// [`LEAF_LEN`]), one per run of `data`, in order.
pub fn level(data: &[u8], unit_len: usize) -> Vec<TigerHash> {
    if data.is_empty() {
        return vec![root(data)];
    }
    data.chunks(unit_len.max(LEAF_LEN)).map(root).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::BASE32_NOPAD;

    fn b32(h: TigerHash) -> String {
        BASE32_NOPAD.encode(&h)
    }

    #[test]
    fn vectors_from_gtk_gnutella_and_rhash() {
        assert_eq!(b32(root(b"")), "LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ");
        assert_eq!(b32(root(&[0])), "VK54ZIEEVTWNAUI5D5RDFIL37LX2IQNSTAXFKSA");
        assert_eq!(
            b32(root(&[b'A'; 1024])),
            "L66Q4YVNAFWVS23X2HJIRA5ZJ7WXR3F26RSASFA"
        );
        assert_eq!(
            b32(root(&[b'A'; 1025])),
            "PZMRYHGY6LTBEH63ZWAHDORHSYTLO4LEFUIKHWY"
        );
        assert_eq!(b32(root(b"a")), "CZQUWH3IYXBF5L3BGYUGZHASSMXU647IP2IKE4Y");
        assert_eq!(b32(root(b"abc")), "ASD4UJSEH5M47PDYB46KBTSQTSGDKLBHYXOMUIA");
        assert_eq!(
            b32(root(&vec![b'a'; 1_000_000])),
            "KEPTIGT4CQKF7S5EUVNJZSXXIPNMB3XSOAAQS4Y"
        );
    }

    #[test]
    fn plain_tiger_byte_order() {
        let h: TigerHash = Tiger::digest(b"abc").into();
        assert_eq!(
            hex::encode_upper(h),
            "2AAB1484E8C158F2BFB8C5FF41B57A525129131C957B5F93"
        );
    }

    #[test]
    fn any_split_and_any_level_give_the_same_root() {
        let data: Vec<u8> = (0..7 * 1024 + 300).map(|i| (i * 31 % 251) as u8).collect();
        let whole = root(&data);
        for cut in [0, 1, 1023, 1024, 1025, 4096, data.len()] {
            let mut t = TigerTree::new();
            t.update(&data[..cut]);
            t.update(&data[cut..]);
            assert_eq!(t.finish(), whole, "cut {cut}");
        }
        for unit in [1024, 2048, 4096, 8192, 1 << 20] {
            assert_eq!(root_of(&level(&data, unit)), Some(whole), "unit {unit}");
        }
    }
}
