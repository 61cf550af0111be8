//! ed2k (MD4 hashset) and AICH (SHA-1 Merkle) hashing, both incremental.
//!
//! Both hashers take data in chunks of any size and hash it as it streams through: nothing is
//! buffered or copied beyond the digest state, so they run at the speed of MD4 / SHA-1.

use sha1::{Digest, Sha1};

use super::md4::Md4;

/// A 16-byte MD4 hash: an ed2k file or part hash.
pub type Hash16 = [u8; 16];

/// eD2k part size (`PARTSIZE`).
pub const PART_SIZE: u64 = 9_728_000;
/// AICH leaf / request block size (`EMBLOCKSIZE`, 180 KiB).
pub const BLOCK_SIZE: u64 = 184_320;
/// Largest file eMule handles (`MAX_FILE_SIZE`, 256 GiB).
pub const MAX_FILE_SIZE: u64 = 1 << 38;
/// Largest file pre-large-file clients handle (`OLD_MAX_FILE_SIZE`).
pub const OLD_MAX_FILE_SIZE: u64 = 4_290_048_000;
/// MD4 of the empty string, the hash of the empty trailing part.
pub const MD4_EMPTY: Hash16 = [
    0x31, 0xD6, 0xCF, 0xE0, 0xD1, 0x6A, 0xE9, 0x31, 0xB7, 0x3C, 0x59, 0xD7, 0xE0, 0xC0, 0x89, 0xC0,
];

/// A 20-byte SHA-1 (AICH) hash.
pub type AichHash = [u8; 20];

/// MD4 of `data`.
pub fn md4(data: &[u8]) -> Hash16 {
    Md4::digest(data)
}

/// The result of ed2k hashing: the file hash and its MD4 part hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ed2kHashset {
    /// The ed2k file hash.
    pub root: Hash16,
    /// Empty for files smaller than one part; otherwise one hash per full part plus the hash
    /// of the remainder, which is appended even when empty (exact multiples of `PART_SIZE`).
    pub parts: Vec<Hash16>,
}

impl Ed2kHashset {
    /// Checks that `root` is the hash of `parts` (for a hashset received from a peer).
    pub fn is_consistent(&self) -> bool {
        match self.parts.len() {
            0 => true,
            _ => root_of_parts(&self.parts) == self.root,
        }
    }
}

/// `MD4(concat(parts))`.
pub fn root_of_parts(parts: &[Hash16]) -> Hash16 {
    let mut h = Md4::new();
    parts.iter().for_each(|p| h.update(p));
    h.finalize()
}

/// Number of MD4 part hashes a hashset of a `size`-byte file has.
pub fn part_hash_count(size: u64) -> u64 {
    if size >= PART_SIZE {
        size / PART_SIZE + 1
    } else {
        0
    }
}

/// Number of data parts (`GetPartCount`): `ceil(size / PART_SIZE)`.
pub fn part_count(size: u64) -> u64 {
    size.div_ceil(PART_SIZE)
}

/// Incremental ed2k hasher.
#[derive(Debug, Clone, Default)]
pub struct Ed2kHasher {
    part: Md4,
    part_len: u64,
    parts: Vec<Hash16>,
}

impl Ed2kHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = PART_SIZE - self.part_len;
            let take = usize::try_from(room).map_or(data.len(), |r| r.min(data.len()));
            let (now, rest) = data.split_at(take);
            self.part.update(now);
            self.part_len += take as u64;
            data = rest;
            if self.part_len == PART_SIZE {
                self.parts.push(self.part.finalize_reset());
                self.part_len = 0;
            }
        }
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.parts.len() as u64 * PART_SIZE + self.part_len
    }

    /// True before any byte was fed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Part hashes finished so far (useful to verify parts during a download).
    pub fn completed_parts(&self) -> &[Hash16] {
        &self.parts
    }

    pub fn finish(mut self) -> Ed2kHashset {
        let last: Hash16 = self.part.finalize();
        if self.parts.is_empty() {
            return Ed2kHashset {
                root: last,
                parts: Vec::new(),
            };
        }
        self.parts.push(last);
        Ed2kHashset {
            root: root_of_parts(&self.parts),
            parts: self.parts,
        }
    }
}

/// ed2k hash of a whole buffer.
pub fn ed2k_hash(data: &[u8]) -> Ed2kHashset {
    let mut h = Ed2kHasher::new();
    h.update(data);
    h.finish()
}

fn sha1_pair(a: &AichHash, b: &AichHash) -> AichHash {
    let mut h = Sha1::new();
    h.update(a);
    h.update(b);
    h.finalize().into()
}

/// Root of a block-level (≤ one part) subtree over `leaves`, covering `size` bytes.
///
/// Shape (`CAICHHashTree::FindHash`): `n = ceil(size / BLOCK_SIZE)`; the left child covers
/// `floor((n + is_left) / 2)` blocks. So the majority goes left under a left parent and right
/// under a right parent.
fn block_tree(leaves: &[AichHash], size: u64, is_left: bool) -> AichHash {
    let n = size.div_ceil(BLOCK_SIZE);
    if n <= 1 || leaves.len() <= 1 {
        return leaves.first().copied().unwrap_or_default();
    }
    let left_blocks = (n + u64::from(is_left)) / 2;
    let split = usize::try_from(left_blocks)
        .unwrap_or(leaves.len())
        .min(leaves.len());
    let left_size = left_blocks * BLOCK_SIZE;
    let (l, r) = leaves.split_at(split);
    sha1_pair(
        &block_tree(l, left_size, true),
        &block_tree(r, size - left_size, false),
    )
}

/// A finished full part: its subtree root as a left child and as a right child (the shape, and
/// so the root, depends on which side of its parent it sits).
#[derive(Debug, Clone, Copy)]
struct PartRoots {
    left: AichHash,
    right: AichHash,
}

/// Incremental AICH hasher. Memory: 40 bytes per finished part plus ≤ 53 leaves.
#[derive(Debug, Clone, Default)]
pub struct AichHasher {
    block: Sha1,
    block_len: u64,
    part_len: u64,
    leaves: Vec<AichHash>,
    parts: Vec<PartRoots>,
}

impl AichHasher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            // A block ends at BLOCK_SIZE or at the part boundary, whichever is first.
            let room = (BLOCK_SIZE - self.block_len).min(PART_SIZE - self.part_len);
            let take = usize::try_from(room).map_or(data.len(), |r| r.min(data.len()));
            let (now, rest) = data.split_at(take);
            self.block.update(now);
            self.block_len += take as u64;
            self.part_len += take as u64;
            data = rest;
            if self.block_len == BLOCK_SIZE || self.part_len == PART_SIZE {
                self.leaves.push(self.block.finalize_reset().into());
                self.block_len = 0;
            }
            if self.part_len == PART_SIZE {
                self.parts.push(PartRoots {
                    left: block_tree(&self.leaves, PART_SIZE, true),
                    right: block_tree(&self.leaves, PART_SIZE, false),
                });
                self.leaves.clear();
                self.part_len = 0;
            }
        }
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.parts.len() as u64 * PART_SIZE + self.part_len
    }

    /// True before any byte was fed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The AICH root. Empty input gives SHA-1("") (RHash's convention; eMule builds no tree).
    pub fn finish(mut self) -> AichHash {
        let size = self.len();
        if self.block_len > 0 || self.leaves.is_empty() && self.parts.is_empty() {
            self.leaves.push(self.block.finalize_reset().into());
        }
        let tail = Tail {
            leaves: &self.leaves,
            size: self.part_len,
        };
        if size <= PART_SIZE {
            // The root is a left branch.
            return match self.parts.first() {
                Some(p) => p.left,
                None => block_tree(tail.leaves, size, true),
            };
        }
        part_tree(&self.parts, &tail, 0, size, true)
    }
}

struct Tail<'a> {
    leaves: &'a [AichHash],
    size: u64,
}

/// Root of a part-level node covering `size` bytes starting at part index `first`.
fn part_tree(
    parts: &[PartRoots],
    tail: &Tail<'_>,
    first: u64,
    size: u64,
    is_left: bool,
) -> AichHash {
    if size <= PART_SIZE {
        let idx = usize::try_from(first).unwrap_or(usize::MAX);
        return match parts.get(idx) {
            Some(p) if is_left => p.left,
            Some(p) => p.right,
            // The trailing partial part.
            None => block_tree(tail.leaves, tail.size, is_left),
        };
    }
    let n = size.div_ceil(PART_SIZE);
    let left_parts = (n + u64::from(is_left)) / 2;
    let left_size = left_parts * PART_SIZE;
    sha1_pair(
        &part_tree(parts, tail, first, left_size, true),
        &part_tree(parts, tail, first + left_parts, size - left_size, false),
    )
}

/// AICH root of a whole buffer.
pub fn aich_root(data: &[u8]) -> AichHash {
    let mut h = AichHasher::new();
    h.update(data);
    h.finish()
}

/// Both hashes in one pass over the data.
#[derive(Debug, Clone, Default)]
pub struct FileHasher {
    pub ed2k: Ed2kHasher,
    pub aich: AichHasher,
}

impl FileHasher {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn update(&mut self, data: &[u8]) {
        self.ed2k.update(data);
        self.aich.update(data);
    }
    pub fn finish(self) -> (Ed2kHashset, AichHash) {
        (self.ed2k.finish(), self.aich.finish())
    }
}

/// Upper-case hex, as eMule/aMule print ed2k hashes.
pub fn to_hex(hash: &[u8]) -> String {
    data_encoding::HEXUPPER.encode(hash)
}

/// Parses 32 hex digits (either case) into an MD4 hash.
pub fn parse_hex_hash(s: &str) -> Option<Hash16> {
    if s.len() != 32 {
        return None;
    }
    let v = data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .ok()?;
    v.try_into().ok()
}

/// RFC 4648 Base32 without padding (AICH text form).
pub fn to_base32(hash: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(hash)
}

/// Parses 32 Base32 characters (case-insensitive) into an AICH hash.
pub fn parse_base32_aich(s: &str) -> Option<AichHash> {
    if s.len() != 32 {
        return None;
    }
    let v = data_encoding::BASE32_NOPAD
        .decode(s.to_ascii_uppercase().as_bytes())
        .ok()?;
    v.try_into().ok()
}
