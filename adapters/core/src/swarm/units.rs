//! Hashes that check fixed-size units of one content: eD2k parts (MD4), BitTorrent v1
//! pieces (SHA-1), Tiger tree nodes (THEX), or the whole file (Gnutella's SHA-1). Whichever network learnt them,
//! they check bytes from every network.

use std::ops::Range;

use sha1::{Digest, Sha1};

use crate::hashing::md4::Md4;
use crate::tiger_tree::TigerTree;

/// How a unit's digest is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitAlgo {
    Md4,
    Sha1,
    /// The Tiger tree root of the unit's bytes: a THEX node, when units are aligned runs
    /// of `1024 × 2^k` bytes.
    TigerTree,
}

impl UnitAlgo {
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            UnitAlgo::Md4 => 16,
            UnitAlgo::Sha1 => 20,
            UnitAlgo::TigerTree => 24,
        }
    }
}

/// Digests of fixed-size units. Uniform: digest `i` covers bytes
/// `i * unit_len .. min((i + 1) * unit_len, size)`. In parts (eD2k's AICH blocks): the
/// file is cut into parts of `part_len` bytes first, and each part into units, the last
/// unit of a part being shorter. A run (the BitTorrent pieces that lie wholly inside one
/// file of a multi-file torrent): digest `i` covers `at + i * unit_len ..` one unit on,
/// clipped to the file's end, and the bytes before `at` and after the last unit are
/// checked by the other hashes known. An empty digest is one not known yet (AICH blocks
/// arrive part by part); its unit is checked by the other hashes meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitHashes {
    pub algo: UnitAlgo,
    pub unit_len: u64,
    pub part_len: Option<u64>,
    /// Where a run of units starts; `None`: the units cover the whole file.
    pub at: Option<u64>,
    pub digests: Vec<Vec<u8>>,
}

/// The unit number [`UnitHashes::unit_at`] gives bytes no unit covers (before or after a
/// run): no digest has it, so nothing checks them by this grid.
pub const NO_UNIT: usize = usize::MAX;

impl UnitHashes {
    /// Digests of equal units from the start of the file.
    pub fn uniform(algo: UnitAlgo, unit_len: u64, digests: Vec<Vec<u8>>) -> UnitHashes {
        UnitHashes {
            algo,
            unit_len,
            part_len: None,
            at: None,
            digests,
        }
    }

    /// Digests of equal units from byte `at` on, covering only `digests.len()` units: the
    /// pieces of a multi-file torrent that lie wholly inside one of its files, `at` being
    /// where the first starts in that file.
    pub fn run(algo: UnitAlgo, at: u64, unit_len: u64, digests: Vec<Vec<u8>>) -> UnitHashes {
        UnitHashes {
            algo,
            unit_len,
            part_len: None,
            at: Some(at),
            digests,
        }
    }

    /// Where a run's units end (the file's end when its last unit reaches it).
    fn run_end(&self, at: u64, size: u64) -> u64 {
        let units = self.digests.len() as u64;
        at.saturating_add(units.saturating_mul(self.unit_len))
            .min(size)
    }

    /// Digests of units inside parts of `part_len` bytes.
    pub fn in_parts(
        algo: UnitAlgo,
        part_len: u64,
        unit_len: u64,
        digests: Vec<Vec<u8>>,
    ) -> UnitHashes {
        UnitHashes {
            algo,
            unit_len,
            part_len: Some(part_len),
            at: None,
            digests,
        }
    }

    /// A whole-file hash as one unit.
    pub fn whole(algo: UnitAlgo, size: u64, digest: &[u8]) -> UnitHashes {
        UnitHashes::uniform(algo, size.max(1), vec![digest.to_vec()])
    }

    /// How many units a file of `size` bytes has (a run: as many as it has digests, if
    /// each of them holds at least one byte of the file).
    pub fn count(&self, size: u64) -> u64 {
        if let Some(at) = self.at {
            let n = self.digests.len() as u64;
            let last = n
                .checked_sub(1)
                .and_then(|k| k.checked_mul(self.unit_len))
                .and_then(|o| o.checked_add(at));
            return match last {
                Some(start) if start < size && self.part_len.is_none() => n,
                _ => 0,
            };
        }
        match self.part_len {
            None => size.div_ceil(self.unit_len).max(1),
            Some(part) => {
                let per_part = part.div_ceil(self.unit_len);
                (size / part) * per_part + (size % part).div_ceil(self.unit_len)
            }
        }
    }

    /// Whether these hashes describe a file of `size` bytes: one digest per unit, each of
    /// the algorithm's length or not known yet, and at least one known.
    pub fn fits(&self, size: u64) -> bool {
        let len = self.algo.digest_len();
        // A Tiger node covers an aligned power-of-two run of leaves, or the whole file.
        // A run (see `UnitHashes::run`) holds BitTorrent pieces, never Tiger nodes.
        let aligned = self.algo != UnitAlgo::TigerTree
            || self.at.is_none()
                && (self.digests.len() == 1
                    || (self.unit_len.is_multiple_of(1024)
                        && (self.unit_len / 1024).is_power_of_two()));
        aligned
            && self.unit_len > 0
            && self.part_len.is_none_or(|p| p >= self.unit_len)
            && self.count(size) == self.digests.len() as u64
            && self.digests.iter().all(|d| d.is_empty() || d.len() == len)
            && self.digests.iter().any(|d| !d.is_empty())
    }

    /// The unit holding `offset`, clipped to `size`. Bytes a run does not cover make one
    /// unit before it and one after it, numbered [`NO_UNIT`].
    pub fn unit_at(&self, offset: u64, size: u64) -> (usize, Range<u64>) {
        if let Some(at) = self.at {
            let end = self.run_end(at, size);
            if offset < at {
                return (NO_UNIT, 0..at.min(size));
            }
            if offset >= end {
                return (NO_UNIT, end..size);
            }
            let i = (offset - at) / self.unit_len;
            let start = at + i * self.unit_len;
            return (i as usize, start..(start + self.unit_len).min(size));
        }
        let Some(part) = self.part_len else {
            let i = offset / self.unit_len;
            let start = i * self.unit_len;
            return (i as usize, start..(start + self.unit_len).min(size));
        };
        let (p, within) = (offset / part, offset % part);
        let b = within / self.unit_len;
        let start = p * part + b * self.unit_len;
        let end = (start + self.unit_len).min((p + 1) * part).min(size);
        ((p * part.div_ceil(self.unit_len) + b) as usize, start..end)
    }

    /// Whether `other` is more of the same grid (AICH blocks of another part).
    pub fn same_grid(&self, other: &UnitHashes) -> bool {
        self.algo == other.algo
            && self.unit_len == other.unit_len
            && self.part_len == other.part_len
            && self.at == other.at
            && self.digests.len() == other.digests.len()
    }

    /// Takes in the digests `other` knows and this grid does not. False when the two
    /// disagree on a unit both know: one of them is wrong, and neither is taken.
    pub fn merge(&mut self, other: &UnitHashes) -> bool {
        let disagree = self
            .digests
            .iter()
            .zip(&other.digests)
            .any(|(a, b)| !a.is_empty() && !b.is_empty() && a != b);
        if disagree {
            return false;
        }
        for (a, b) in self.digests.iter_mut().zip(&other.digests) {
            if a.is_empty() {
                a.clone_from(b);
            }
        }
        true
    }
}

/// A running digest of one unit.
pub enum UnitHasher {
    Md4(Md4),
    Sha1(Sha1),
    TigerTree(Box<TigerTree>),
}

impl UnitHasher {
    pub fn new(algo: UnitAlgo) -> UnitHasher {
        match algo {
            UnitAlgo::Md4 => UnitHasher::Md4(Md4::new()),
            UnitAlgo::Sha1 => UnitHasher::Sha1(Sha1::new()),
            UnitAlgo::TigerTree => UnitHasher::TigerTree(Box::default()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            UnitHasher::Md4(h) => h.update(data),
            UnitHasher::Sha1(h) => h.update(data),
            UnitHasher::TigerTree(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            UnitHasher::Md4(h) => h.finalize().to_vec(),
            UnitHasher::Sha1(h) => h.finalize().to_vec(),
            UnitHasher::TigerTree(h) => h.finish().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_fit_and_locate() {
        let u = UnitHashes::uniform(UnitAlgo::Sha1, 4, vec![vec![0; 20]; 3]);
        assert!(u.fits(10) && u.fits(12) && !u.fits(13) && !u.fits(8));
        assert_eq!(u.unit_at(9, 10), (2, 8..10));
        // MD4 of "abc" (RFC 1320).
        let mut h = UnitHasher::new(UnitAlgo::Md4);
        h.update(b"abc");
        assert_eq!(hex::encode(h.finish()), "a448017aaf21d8525fc10ae87aa6729d");
    }

    #[test]
    fn a_run_covers_its_units_only() {
        // Units of 4 from byte 3: 0..3 is before the run, 3..7 7..11 11..15, then 15..17.
        let u = UnitHashes::run(UnitAlgo::Sha1, 3, 4, vec![vec![0; 20]; 3]);
        assert!(u.fits(17) && u.fits(15) && !u.fits(11) && !u.fits(3));
        assert_eq!(u.unit_at(0, 17), (NO_UNIT, 0..3));
        assert_eq!(u.unit_at(3, 17), (0, 3..7));
        assert_eq!(u.unit_at(14, 17), (2, 11..15));
        assert_eq!(u.unit_at(16, 17), (NO_UNIT, 15..17));
        // The file ends inside the last unit (the torrent's last, short piece).
        assert_eq!(u.unit_at(12, 13), (2, 11..13));
        // Not the same grid as the same units from byte 0.
        let from0 = UnitHashes::uniform(UnitAlgo::Sha1, 4, vec![vec![0; 20]; 3]);
        assert!(!u.same_grid(&from0));
        // Tiger nodes are aligned from the file's start: never a run.
        assert!(!UnitHashes::run(UnitAlgo::TigerTree, 0, 1024, vec![vec![0; 24]]).fits(2048));
        assert!(!UnitHashes::run(UnitAlgo::Sha1, 3, 4, Vec::new()).fits(17));
        assert!(!UnitHashes::run(UnitAlgo::Sha1, u64::MAX, 4, vec![vec![0; 20]; 2]).fits(17));
    }

    #[test]
    fn units_in_parts_end_with_each_part() {
        // Parts of 10, units of 4: 0..4 4..8 8..10 | 10..14 14..18 18..20 | 20..23.
        let mut u = UnitHashes::in_parts(UnitAlgo::Sha1, 10, 4, vec![vec![]; 7]);
        assert!(!u.fits(23), "nothing known yet");
        u.digests[4] = vec![1; 20];
        assert!(u.fits(23) && u.fits(24) && !u.fits(25) && !u.fits(20));
        assert_eq!(u.unit_at(9, 23), (2, 8..10));
        assert_eq!(u.unit_at(10, 23), (3, 10..14));
        assert_eq!(u.unit_at(22, 23), (6, 20..23));
        let mut other = UnitHashes::in_parts(UnitAlgo::Sha1, 10, 4, vec![vec![]; 7]);
        other.digests[0] = vec![2; 20];
        assert!(u.same_grid(&other) && u.merge(&other));
        assert_eq!(u.digests[0], vec![2; 20]);
        other.digests[4] = vec![3; 20];
        assert!(!u.merge(&other), "a disagreement takes in nothing");
    }
}
