//! BEP 52 hash messages (`hash request` 21, `hashes` 22, `hash reject` 23) and the SHA-256
//! Merkle arithmetic around them: a piece's hash from its bytes, a file's root from its
//! piece layer, the hashes and uncle proof that answer a request, and checking an answer.
//!
//! Layers are counted from the 16 KiB leaves (layer 0) up. A file's tree has
//! `next_power_of_two(blocks)` leaves; leaves past the end of the file are zero hashes, and a
//! node over nothing but such leaves is the hash of its zero children (the "pad" hash).

use bytes::{BufMut, Bytes};
use sha2::{Digest, Sha256};

use crate::error::WireError;

pub type Hash = [u8; 32];

/// Payload of a `hash request` or `hash reject`: pieces root, then four `u32`s.
pub const REQUEST_LEN: usize = 48;
/// Most base-layer hashes we ask for or answer in one message: BEP 52 says a request
/// SHOULD NOT ask for more than 512.
pub const MAX_REQUEST_HASHES: u32 = 512;
/// Most hashes a `hashes` message may carry: 512 from the base layer and an uncle for
/// each of at most 64 layers above it. Longer payloads are refused before allocating.
pub const MAX_HASHES: usize = MAX_REQUEST_HASHES as usize + 64;

/// `hash request` and `hash reject` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRequest {
    /// The file's `pieces root`.
    pub pieces_root: Hash,
    /// Layers above the leaves where the requested hashes lie (0: the leaves).
    pub base_layer: u32,
    /// The first requested hash in the base layer; a multiple of `length`.
    pub index: u32,
    /// How many base-layer hashes: a power of two of at least 2.
    pub length: u32,
    /// How many layers above the base the proof reaches (the lowest are implied).
    pub proof_layers: u32,
}

/// `hashes` payload: the request it answers, then the base-layer hashes followed by the
/// uncle hashes from the lowest layer up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashes {
    pub request: HashRequest,
    pub hashes: Vec<Hash>,
}

fn u32_at(p: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = p.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_be_bytes(b)
}

impl HashRequest {
    /// Decodes a `hash request` or `hash reject` payload (exactly 48 bytes).
    pub fn decode(msg_id: u8, p: &[u8]) -> Result<Self, WireError> {
        let (Some(root), REQUEST_LEN) = (p.get(..32), p.len()) else {
            return Err(WireError::BadLength {
                id: msg_id,
                len: p.len(),
            });
        };
        let mut pieces_root = [0u8; 32];
        pieces_root.copy_from_slice(root);
        Ok(Self {
            pieces_root,
            base_layer: u32_at(p, 32),
            index: u32_at(p, 36),
            length: u32_at(p, 40),
            proof_layers: u32_at(p, 44),
        })
    }

    pub fn encode(&self, out: &mut (impl BufMut + ?Sized)) {
        out.put_slice(&self.pieces_root);
        out.put_u32(self.base_layer);
        out.put_u32(self.index);
        out.put_u32(self.length);
        out.put_u32(self.proof_layers);
    }
}

impl Hashes {
    /// Decodes a `hashes` payload: 48 bytes of request, then whole 32-byte hashes, at most
    /// [`MAX_HASHES`] of them.
    pub fn decode(msg_id: u8, p: &Bytes) -> Result<Self, WireError> {
        let bad = || WireError::BadLength {
            id: msg_id,
            len: p.len(),
        };
        let (head, rest) = p.split_at_checked(REQUEST_LEN).ok_or_else(bad)?;
        if rest.len() % 32 != 0 || rest.len() / 32 > MAX_HASHES {
            return Err(bad());
        }
        let request = HashRequest::decode(msg_id, head)?;
        let hashes = rest
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect();
        Ok(Self { request, hashes })
    }

    pub fn encoded_len(&self) -> usize {
        REQUEST_LEN + 32 * self.hashes.len()
    }

    pub fn encode(&self, out: &mut (impl BufMut + ?Sized)) {
        self.request.encode(out);
        for h in &self.hashes {
            out.put_slice(h);
        }
    }
}

/// A node of the tree: SHA-256 of its two children (core's, which hashes shared files).
fn pair(l: &Hash, r: &Hash) -> Hash {
    junction_core::hashing::bt::pair(l, r)
}

/// The hash of a subtree of `2^height` zero leaves.
pub fn pad_hash(height: u32) -> Hash {
    (0..height).fold([0; 32], |p, _| pair(&p, &p))
}

/// The root over `level` padded to `width` nodes (a power of two) with `pad`, the hash of
/// a missing node at this level.
pub fn root_of(level: &[Hash], width: u64, pad: Hash) -> Hash {
    junction_core::hashing::bt::reduce(level.to_vec(), width.max(1), pad)
}

/// `log2` of the leaves one piece covers: the layer of the piece hashes.
pub fn piece_layer_height(piece_length: u32) -> u32 {
    (piece_length / (16 * 1024)).max(1).trailing_zeros()
}

/// The hash a piece of `piece_length` bytes gets in its file's piece layer: the root of its
/// leaves, those past the file's end zero. `data` is the piece's bytes within the file.
pub fn piece_hash(data: &[u8], piece_length: u32) -> Hash {
    let leaves: Vec<Hash> = data
        .chunks(16 * 1024)
        .map(|b| Sha256::digest(b).into())
        .collect();
    root_of(&leaves, 1 << piece_layer_height(piece_length), [0; 32])
}

/// The root of a file no longer than one piece: its leaves padded to a power of two only
/// (BEP 52 gives such a file no piece layer).
pub fn small_file_root(data: &[u8]) -> Hash {
    let leaves: Vec<Hash> = data
        .chunks(16 * 1024)
        .map(|b| Sha256::digest(b).into())
        .collect();
    root_of(&leaves, (leaves.len() as u64).next_power_of_two(), [0; 32])
}

/// A file's root from its piece layer (files longer than one piece).
pub fn root_from_layer(layer: &[Hash], piece_length: u32) -> Hash {
    let width = (layer.len() as u64).next_power_of_two();
    root_of(layer, width, pad_hash(piece_layer_height(piece_length)))
}

/// Why a hash request is not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashRequestError {
    #[error("no file with that pieces root has a piece layer")]
    Root,
    #[error("only the piece layer is served")]
    Layer,
    #[error("length is not a power of two from 2 to 512")]
    Length,
    #[error("index is not a multiple of length, or past the layer")]
    Index,
}

/// A file's tree from its piece layer up to its root: `levels[0]` is the layer, each next
/// one the parents of the one below, the missing right nodes being pad hashes. Built once
/// per file, so that answering a request costs its own length, not the file's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerTree {
    levels: Vec<Vec<Hash>>,
    /// Pad hash of each level: a subtree of zero leaves as high as a node of it.
    pads: Vec<Hash>,
    layer_height: u32,
}

impl LayerTree {
    pub fn new(layer: &[Hash], layer_height: u32) -> Self {
        let width = (layer.len() as u64).next_power_of_two();
        let mut levels = vec![layer.to_vec()];
        let mut pads = vec![pad_hash(layer_height)];
        for _ in 0..width.trailing_zeros() {
            let (below, pad) = (
                levels.last().map_or(&[][..], Vec::as_slice),
                pads[pads.len() - 1],
            );
            let up = below
                .chunks(2)
                .map(|p| pair(&p[0], p.get(1).unwrap_or(&pad)))
                .collect();
            levels.push(up);
            pads.push(pair(&pad, &pad));
        }
        Self {
            levels,
            pads,
            layer_height,
        }
    }

    /// The file's root.
    pub fn root(&self) -> Hash {
        let top = self.levels.len() - 1;
        self.levels[top].first().copied().unwrap_or(self.pads[top])
    }

    fn node(&self, level: usize, i: u64) -> Hash {
        let l = &self.levels[level];
        usize::try_from(i)
            .ok()
            .and_then(|i| l.get(i))
            .copied()
            .unwrap_or(self.pads[level])
    }

    /// Answers `req`: the requested hashes of the piece layer (pad hashes past the file's
    /// pieces), then one uncle per proof layer, from the lowest the requested hashes do
    /// not already give up to the one below the root.
    pub fn answer(&self, req: &HashRequest) -> Result<Vec<Hash>, HashRequestError> {
        if req.base_layer != self.layer_height {
            return Err(HashRequestError::Layer);
        }
        let len = req.length;
        if !len.is_power_of_two() || !(2..=MAX_REQUEST_HASHES).contains(&len) {
            return Err(HashRequestError::Length);
        }
        let height = self.levels.len() - 1;
        let width = 1u64 << height;
        if !req.index.is_multiple_of(len) || u64::from(req.index) + u64::from(len) > width {
            return Err(HashRequestError::Index);
        }
        let first = u64::from(req.index);
        let mut out: Vec<Hash> = (first..first + u64::from(len))
            .map(|i| self.node(0, i))
            .collect();
        let k = len.trailing_zeros() as usize;
        let top = height.min(
            usize::try_from(req.proof_layers)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        );
        let mut node = first >> k;
        for level in k..top {
            out.push(self.node(level, node ^ 1));
            node >>= 1;
        }
        Ok(out)
    }
}

/// Checks a `hashes` answer against the file's root: the base-layer hashes must climb,
/// through the uncles, to `root`. Returns the base-layer hashes when they do. `layers` is
/// the height of the file's tree above the base layer (the proof must reach the root).
pub fn verify(answer: &Hashes, root: &Hash, layers: u32) -> Option<Vec<Hash>> {
    let req = &answer.request;
    let len = req.length;
    if !len.is_power_of_two() || len < 2 || !req.index.is_multiple_of(len) {
        return None;
    }
    let base = answer.hashes.get(..len as usize)?;
    let uncles = &answer.hashes[len as usize..];
    let k = len.trailing_zeros();
    if k > layers || uncles.len() != (layers - k) as usize {
        return None;
    }
    let mut node_hash = root_of(base, u64::from(len), [0; 32]);
    let mut node = req.index >> k;
    for u in uncles {
        node_hash = match node & 1 {
            0 => pair(&node_hash, u),
            _ => pair(u, &node_hash),
        };
        node >>= 1;
    }
    (node == 0 && node_hash == *root).then(|| base.to_vec())
}

#[cfg(test)]
mod tests;
