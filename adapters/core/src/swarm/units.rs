//! Hashes that check fixed-size units of one content: eD2k parts (MD4), BitTorrent v1
//! pieces (SHA-1), or the whole file (Gnutella's SHA-1). Whichever network learnt them,
//! they check bytes from every network.

use std::ops::Range;

use md4::Md4;
use sha1::{Digest, Sha1};

/// How a unit's digest is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitAlgo {
    Md4,
    Sha1,
}

/// Digest `i` covers bytes `i * unit_len .. min((i + 1) * unit_len, size)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitHashes {
    pub algo: UnitAlgo,
    pub unit_len: u64,
    pub digests: Vec<Vec<u8>>,
}

impl UnitHashes {
    /// A whole-file hash as one unit.
    pub fn whole(algo: UnitAlgo, size: u64, digest: &[u8]) -> UnitHashes {
        UnitHashes {
            algo,
            unit_len: size.max(1),
            digests: vec![digest.to_vec()],
        }
    }

    /// Whether these hashes describe a file of `size` bytes: one digest per unit, of the
    /// algorithm's length.
    pub fn fits(&self, size: u64) -> bool {
        let len = match self.algo {
            UnitAlgo::Md4 => 16,
            UnitAlgo::Sha1 => 20,
        };
        self.unit_len > 0
            && size.div_ceil(self.unit_len).max(1) == self.digests.len() as u64
            && self.digests.iter().all(|d| d.len() == len)
    }

    /// The unit holding `offset`, clipped to `size`.
    pub fn unit_at(&self, offset: u64, size: u64) -> (usize, Range<u64>) {
        let i = offset / self.unit_len;
        let start = i * self.unit_len;
        (i as usize, start..(start + self.unit_len).min(size))
    }
}

/// A running digest of one unit.
pub enum UnitHasher {
    Md4(Md4),
    Sha1(Sha1),
}

impl UnitHasher {
    pub fn new(algo: UnitAlgo) -> UnitHasher {
        match algo {
            UnitAlgo::Md4 => UnitHasher::Md4(Md4::new()),
            UnitAlgo::Sha1 => UnitHasher::Sha1(Sha1::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            UnitHasher::Md4(h) => h.update(data),
            UnitHasher::Sha1(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            UnitHasher::Md4(h) => h.finalize().to_vec(),
            UnitHasher::Sha1(h) => h.finalize().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_fit_and_locate() {
        let u = UnitHashes {
            algo: UnitAlgo::Sha1,
            unit_len: 4,
            digests: vec![vec![0; 20]; 3],
        };
        assert!(u.fits(10) && u.fits(12) && !u.fits(13) && !u.fits(8));
        assert_eq!(u.unit_at(9, 10), (2, 8..10));
        // MD4 of "abc" (RFC 1320).
        let mut h = UnitHasher::new(UnitAlgo::Md4);
        h.update(b"abc");
        assert_eq!(hex::encode(h.finish()), "a448017aaf21d8525fc10ae87aa6729d");
    }
}
