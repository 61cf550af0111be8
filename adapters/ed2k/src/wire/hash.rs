//! ed2k (MD4 hashset) and AICH (SHA-1 Merkle) hashing. They live in core, which hashes a
//! finished download once for every network; eD2k uses them from there.

pub use junction_core::hashing::ed2k::*;
