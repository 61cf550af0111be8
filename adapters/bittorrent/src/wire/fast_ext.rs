//! The BEP 6 allowed-fast set: pieces a peer may request even while choked.
//!
//! Both sides compute the same set from the peer's IPv4 address (its /24, so peers behind
//! one NAT share a set) and the info-hash.

use std::net::Ipv4Addr;

use sha1::{Digest, Sha1};

use crate::wire::id::InfoHash;

/// The usual set size (BEP 6 suggests 10).
pub const DEFAULT_K: usize = 10;

/// Generates up to `k` distinct piece indices for the peer at `ip` (BEP 6 algorithm):
/// `x = (ip & 0xFFFFFF00) ‖ infohash`, then repeatedly `x = SHA1(x)`, taking each of its
/// five big-endian `u32` words modulo the piece count. Stops at `piece_count` indices, so
/// it terminates for tiny torrents too.
pub fn allowed_fast_set(
    ip: Ipv4Addr,
    info_hash: &InfoHash,
    piece_count: u32,
    k: usize,
) -> Vec<u32> {
    let k = k.min(piece_count as usize);
    let mut set = Vec::with_capacity(k);
    let masked = u32::from(ip) & 0xFFFF_FF00;
    let mut x = [0u8; 24];
    x[..4].copy_from_slice(&masked.to_be_bytes());
    x[4..].copy_from_slice(&info_hash.0);
    let mut digest: [u8; 20] = Sha1::digest(x).into();
    while set.len() < k {
        for word in digest.chunks_exact(4) {
            if set.len() >= k {
                break;
            }
            let y = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            let index = y % piece_count;
            if !set.contains(&index) {
                set.push(index);
            }
        }
        digest = Sha1::digest(digest).into();
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep6_vectors() {
        let ih = InfoHash([0xAA; 20]);
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        assert_eq!(
            allowed_fast_set(ip, &ih, 1313, 7),
            vec![1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(ip, &ih, 1313, 9),
            vec![1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
        // Same /24, same set.
        assert_eq!(
            allowed_fast_set(Ipv4Addr::new(80, 4, 4, 1), &ih, 1313, 7),
            allowed_fast_set(ip, &ih, 1313, 7)
        );
    }

    #[test]
    fn small_torrents_terminate() {
        let ih = InfoHash([1; 20]);
        let ip = Ipv4Addr::LOCALHOST;
        assert!(allowed_fast_set(ip, &ih, 0, 10).is_empty());
        let mut all = allowed_fast_set(ip, &ih, 3, 10);
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2]);
    }
}
