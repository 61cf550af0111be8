//! What proves a verified range: the digest its bytes had when they verified. An owner
//! that journals proofs as they come (the gateway, between saves of its verified set)
//! can trust those ranges again after a crash once the bytes on disk still match.

use std::ops::Range;

use sha1::{Digest, Sha1};

use super::{Store, UnitAlgo, hash_stored};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub range: Range<u64>,
    pub algo: UnitAlgo,
    pub digest: Vec<u8>,
}

impl Proof {
    /// The SHA-1 of bytes in hand, written at `range` (a self-checked write).
    pub fn sha1_of(range: Range<u64>, data: &[u8]) -> Proof {
        Proof {
            range,
            algo: UnitAlgo::Sha1,
            digest: Sha1::digest(data).to_vec(),
        }
    }

    /// Whether `store` still holds the bytes this proof was made from.
    pub fn holds<S: Store + ?Sized>(&self, store: &S) -> bool {
        hash_stored(store, self.algo, self.range.clone()).is_some_and(|d| d == self.digest)
    }
}
