//! The hashes networks name files by, computed from the bytes: eD2k's MD4 hashset and
//! AICH root, and (in [`crate::tiger_tree`]) Gnutella's Tiger tree.

pub mod ed2k;
pub mod md4;
