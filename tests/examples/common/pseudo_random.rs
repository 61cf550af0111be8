//! Deterministic test content, one copy for the aMule drivers (through `amule.rs`) and
//! `adapters/ed2k/tests/loopback.rs`, which include this file by `#[path]`.

/// `len` bytes of xorshift64 output from `seed`: the same bytes for the same seed on every run.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
