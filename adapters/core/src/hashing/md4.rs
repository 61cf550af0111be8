//! MD4 (RFC 1320), written out round by round so the compiler keeps the state in registers.
//! Every byte Junction moves over eD2k is MD4-hashed at least once (part verification on
//! download, hashing on share), so this is the hot loop; it runs at about the speed of
//! OpenSSL's C MD4 on one core. Checked against the RFC vectors and the RustCrypto `md4`
//! crate in the tests.

const INIT: [u32; 4] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476];

/// An incremental MD4 hasher.
#[derive(Clone)]
pub struct Md4 {
    state: [u32; 4],
    buf: [u8; 64],
    buf_len: usize,
    len: u64,
}

impl std::fmt::Debug for Md4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Md4").field("len", &self.len).finish()
    }
}

impl Default for Md4 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md4 {
    pub fn new() -> Self {
        Self {
            state: INIT,
            buf: [0; 64],
            buf_len: 0,
            len: 0,
        }
    }

    /// MD4 of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut h = Self::new();
        h.update(data);
        h.finalize()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 64 {
                return;
            }
            let block = self.buf;
            compress(&mut self.state, &block);
            self.buf_len = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for b in &mut blocks {
            let b: &[u8; 64] = b.try_into().unwrap_or(&[0; 64]);
            compress(&mut self.state, b);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    pub fn finalize(mut self) -> [u8; 16] {
        self.finalize_reset()
    }

    /// The digest of everything fed so far; the hasher starts over.
    pub fn finalize_reset(&mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        let n = if self.buf_len < 56 {
            56 - self.buf_len
        } else {
            120 - self.buf_len
        };
        self.update(&pad[..n]);
        self.update(&bits.to_le_bytes());
        debug_assert_eq!(self.buf_len, 0);
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        *self = Self::new();
        out
    }
}

#[inline(always)]
fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let mut x = [0u32; 16];
    for (w, c) in x.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    let [mut a, mut b, mut c, mut d] = *state;
    macro_rules! r1 {
        ($a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $s:expr) => {
            // F = (b & c) | (!b & d); the two terms share no bits, so | is +, and the sum
            // with a + x[k] can start before b is known (shorter dependency chain).
            $a = $a
                .wrapping_add(x[$k])
                .wrapping_add($d & !$b)
                .wrapping_add($b & $c)
                .rotate_left($s)
        };
    }
    macro_rules! r2 {
        ($a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $s:expr) => {
            // G = majority(b, c, d) = (b & c) + ((b ^ c) & d) (disjoint bits).
            $a = $a
                .wrapping_add(x[$k].wrapping_add(0x5A82_7999))
                .wrapping_add(($b ^ $c) & $d)
                .wrapping_add($b & $c)
                .rotate_left($s)
        };
    }
    macro_rules! r3 {
        ($a:ident, $b:ident, $c:ident, $d:ident, $k:expr, $s:expr) => {
            $a = $a
                .wrapping_add(x[$k].wrapping_add(0x6ED9_EBA1))
                .wrapping_add($b ^ $c ^ $d)
                .rotate_left($s)
        };
    }
    for i in [0, 4, 8, 12] {
        r1!(a, b, c, d, i, 3);
        r1!(d, a, b, c, i + 1, 7);
        r1!(c, d, a, b, i + 2, 11);
        r1!(b, c, d, a, i + 3, 19);
    }
    for i in [0, 1, 2, 3] {
        r2!(a, b, c, d, i, 3);
        r2!(d, a, b, c, i + 4, 5);
        r2!(c, d, a, b, i + 8, 9);
        r2!(b, c, d, a, i + 12, 13);
    }
    for i in [0, 2, 1, 3] {
        r3!(a, b, c, d, i, 3);
        r3!(d, a, b, c, i + 8, 9);
        r3!(c, d, a, b, i + 4, 11);
        r3!(b, c, d, a, i + 12, 15);
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(h: &[u8]) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc1320_vectors() {
        let v: [(&[u8], &str); 7] = [
            (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
            (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
            (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
            (b"message digest", "d9130a8164549fe818874806e1c7014b"),
            (
                b"abcdefghijklmnopqrstuvwxyz",
                "d79e1c308aa5bbcdeea8ed63df412da9",
            ),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "043f8582f241db351ce627e153e7f0e4",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "e33b4ddc9c38f2199c3e7b164fcc0536",
            ),
        ];
        for (input, want) in v {
            assert_eq!(hex(&Md4::digest(input)), want);
        }
    }

    #[test]
    fn matches_rustcrypto_md4_at_every_length_and_split() {
        use md4::Digest;
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        for len in 0..300 {
            let want: [u8; 16] = md4::Md4::digest(&data[..len]).into();
            assert_eq!(Md4::digest(&data[..len]), want, "len {len}");
            for split in [1, 3, 63, 64, 65, 130] {
                let mut h = Md4::new();
                for c in data[..len].chunks(split) {
                    h.update(c);
                }
                assert_eq!(h.finalize_reset(), want, "len {len} split {split}");
                // After a reset the hasher is as new.
                h.update(&data[..len]);
                assert_eq!(h.finalize(), want);
            }
        }
    }
}
