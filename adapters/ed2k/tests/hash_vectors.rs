//! Golden vectors from specs/ed2k.md §7 and specs/hashes-and-links.md §2, §6.

use junction_ed2k::hash::{
    self, AichHasher, Ed2kHasher, FileHasher, MD4_EMPTY, PART_SIZE, aich_root, ed2k_hash, md4,
    to_base32, to_hex,
};

fn hex(h: &[u8]) -> String {
    to_hex(h)
}

#[test]
fn md4_vectors() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "31D6CFE0D16AE931B73C59D7E0C089C0"),
        (b"a", "BDE52CB31DE33E46245E05FBDBD6FB24"),
        (b"abc", "A448017AAF21D8525FC10AE87AA6729D"),
        (b"message digest", "D9130A8164549FE818874806E1C7014B"),
        (
            b"abcdefghijklmnopqrstuvwxyz",
            "D79E1C308AA5BBCDEEA8ED63DF412DA9",
        ),
        (
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "E33B4DDC9C38F2199C3E7B164FCC0536",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(hex(&md4(input)), *want);
    }
    assert_eq!(md4(b""), MD4_EMPTY);
    let a = vec![b'a'; 1_000_000];
    assert_eq!(hex(&ed2k_hash(&a).root), "BBCE80CC6BB65E5C6745E30D4EECA9A4");
}

#[test]
fn ed2k_zero_files() {
    let zeros = vec![0u8; 48_640_000];
    let cases: &[(usize, &str)] = &[
        (0, "31D6CFE0D16AE931B73C59D7E0C089C0"),
        (1, "47C61A0FA8738BA77308A8A600F88E4B"),
        (9_727_999, "AC44B93FC9AFF773AB0005C911F8396F"),
        (9_728_000, "FC21D9AF828F92A8DF64BEAC3357425D"),
        (9_728_001, "06329E9DBA1373512C06386FE29E3C65"),
        (19_456_000, "114B21C63A74B6CA922291A11177DD5C"),
        (48_640_000, "3B613901DABA54F6C0671793E28A1205"),
    ];
    for &(size, want) in cases {
        let set = ed2k_hash(&zeros[..size]);
        assert_eq!(hex(&set.root), want, "size {size}");
        assert_eq!(set.parts.len() as u64, hash::part_hash_count(size as u64));
        assert!(set.is_consistent());
    }
    let exact = ed2k_hash(&zeros[..9_728_000]);
    assert_eq!(
        exact.parts.iter().map(|p| hex(p)).collect::<Vec<_>>(),
        [
            "D7DEF262A127CD79096A108E7A9FC138",
            "31D6CFE0D16AE931B73C59D7E0C089C0"
        ]
    );
    let plus1 = ed2k_hash(&zeros[..9_728_001]);
    assert_eq!(hex(&plus1.parts[0]), "D7DEF262A127CD79096A108E7A9FC138");
    assert_eq!(hex(&plus1.parts[1]), "47C61A0FA8738BA77308A8A600F88E4B");
    // The "blue" variant without the empty trailing hash is *not* what we produce.
    assert_ne!(hex(&exact.root), "D7DEF262A127CD79096A108E7A9FC138");
}

#[test]
fn aich_vectors() {
    let a = vec![b'a'; 1_000_000];
    assert_eq!(
        to_base32(&aich_root(b"")),
        "3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"
    );
    assert_eq!(
        to_base32(&aich_root(b"a")),
        "Q336IN72UWT7ZYK5DXOLT2XK5I3XMZ5Y"
    );
    assert_eq!(
        to_base32(&aich_root(b"abc")),
        "VGMT4NSHA2AWVOR6EVYXQUGCNSONBWE5"
    );
    assert_eq!(
        to_base32(&aich_root(&a)),
        "KSYPATEV3KP26FJYUEEBCPL5LQJ5FGUK"
    );
    let zeros = vec![0u8; 48_640_000];
    let cases: &[(usize, &str)] = &[
        (9_727_999, "L6SPMD2CM6PRZBGRQ6UFC4HJFFOATRA4"),
        (9_728_000, "5D3N4HQHIUMQ7IU7A5QLPLI6RHSWOR7B"),
        (9_728_001, "HL3TFXORIUEPXUWFPY3JLR7SMKGTO4IH"),
        (19_456_000, "EEXRXRAV5SIJN5I2EITKIBPCXQ6QWG4E"),
        (48_640_000, "EZCO3XF2RJ4FERRDEXGOSSRGL5NA5BBM"),
    ];
    for &(size, want) in cases {
        assert_eq!(to_base32(&aich_root(&zeros[..size])), want, "size {size}");
    }
}

/// Feeding in odd chunk sizes gives the same result as one call.
#[test]
fn incremental_matches_one_shot() {
    let data: Vec<u8> = (0..(2 * PART_SIZE as usize + 777_777))
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let want_ed2k = ed2k_hash(&data);
    let want_aich = aich_root(&data);
    for chunk in [1usize << 20, 184_320, 65_537, 9_728_000, 10_000_000] {
        let mut e = Ed2kHasher::new();
        let mut a = AichHasher::new();
        for c in data.chunks(chunk) {
            e.update(c);
            a.update(c);
        }
        assert_eq!(e.len(), data.len() as u64);
        assert_eq!(e.finish(), want_ed2k, "chunk {chunk}");
        assert_eq!(a.finish(), want_aich, "chunk {chunk}");
    }
    let mut f = FileHasher::new();
    // Irregular chunk sizes.
    let mut rest = &data[..];
    let mut n = 1usize;
    while !rest.is_empty() {
        let take = n.min(rest.len());
        f.update(&rest[..take]);
        rest = &rest[take..];
        n = n * 7 % 3_000_017 + 1;
    }
    assert_eq!(f.finish(), (want_ed2k, want_aich));
}

#[test]
fn text_forms() {
    assert_eq!(
        hash::parse_hex_hash("31d6cfe0d16ae931b73c59d7e0c089c0"),
        Some(MD4_EMPTY)
    );
    assert_eq!(hash::parse_hex_hash("31d6"), None);
    assert_eq!(
        hash::parse_hex_hash("Z1D6CFE0D16AE931B73C59D7E0C089C0"),
        None
    );
    let h = aich_root(b"abc");
    assert_eq!(
        hash::parse_base32_aich("vgmt4nsha2awvor6evyxqugcnsonbwe5"),
        Some(h)
    );
    assert_eq!(to_base32(&[0x0F, 0xF5]), "B72Q");
}

/// Rough throughput check against raw MD4 (run with `--ignored --nocapture`, ideally release).
#[test]
#[ignore = "timing, not correctness"]
fn hasher_throughput_vs_raw_md4() {
    use md4::{Digest, Md4};
    let data = vec![0x5Au8; 200 * 1024 * 1024];
    let t = std::time::Instant::now();
    let mut fast = junction_ed2k::fast_md4::Md4::new();
    for c in data.chunks(1 << 20) {
        fast.update(c);
    }
    let _ = fast.finalize();
    println!("junction fast_md4 {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let mut raw = Md4::new();
    for c in data.chunks(1 << 20) {
        raw.update(c);
    }
    let _ = raw.finalize();
    let raw_t = t.elapsed();
    let t = std::time::Instant::now();
    let mut h = Ed2kHasher::new();
    for c in data.chunks(1 << 20) {
        h.update(c);
    }
    let _ = h.finish();
    let ours = t.elapsed();
    println!("raw md4 {raw_t:?}, ed2k hasher {ours:?}");
    assert!(ours.as_secs_f64() < raw_t.as_secs_f64() / 0.8);
}
