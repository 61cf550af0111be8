//! Metainfo tests. Expected hashes were computed independently (Python `hashlib`) over the
//! same bytes the tests build.

use super::*;
use crate::error::MetainfoError;

fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

fn torrent(info: &[u8]) -> Vec<u8> {
    let mut t = b"d8:announce20:http://t.example/ann4:info".to_vec();
    t.extend_from_slice(info);
    t.push(b'e');
    t
}

fn single_info() -> Vec<u8> {
    let mut info = b"d6:lengthi20e4:name8:test.txt12:piece lengthi16384e6:pieces20:".to_vec();
    info.extend_from_slice(&sha1(b"0123456789abcdefghij"));
    info.push(b'e');
    info
}

#[test]
fn single_file_info_hash_is_sha1_of_the_raw_info() {
    let m = Metainfo::parse(&torrent(&single_info())).unwrap();
    assert_eq!(
        m.info.info_hash.unwrap().to_hex(),
        "a3bc4a2bde6a86a318b78c588b1832ef002247c8"
    );
    assert_eq!(m.info.raw, single_info());
    assert_eq!(m.info.name, "test.txt");
    assert!(!m.info.multi_file);
    assert_eq!(m.info.total_length, 20);
    assert_eq!(
        m.tracker_tiers(),
        vec![vec!["http://t.example/ann".to_owned()]]
    );
    let g = m.info.geometry().unwrap();
    assert_eq!(g.piece_count(), 1);
    assert!(
        m.info
            .verify_piece(g.index(0).unwrap(), b"0123456789abcdefghij")
    );
    assert!(
        !m.info
            .verify_piece(g.index(0).unwrap(), b"0123456789abcdefghiX")
    );
    assert_eq!(m.info.info_hash_v2, None);
}

#[test]
fn ubuntu_geometry_from_the_spec() {
    // The spec's ubuntu-21.04 torrent: its real piece hashes are not in the spec, so the
    // pieces are zeros here; the geometry checks and the hash-the-raw-bytes rule are what is
    // tested (real info-hash 64a980ab… needs the original file).
    let mut info = b"d6:lengthi2818738176e4:name30:ubuntu-21.04-desktop-amd64.iso12:piece lengthi262144e6:pieces215060:".to_vec();
    info.extend_from_slice(&vec![0u8; 10_753 * 20]);
    info.push(b'e');
    let mut t = b"d8:announce35:https://torrent.ubuntu.com/announce4:info".to_vec();
    t.extend_from_slice(&info);
    t.push(b'e');
    let m = Metainfo::parse(&t).unwrap();
    assert_eq!(m.info.pieces.len(), 10_753);
    assert_eq!(m.info.geometry().unwrap().piece_count(), 10_753);
    assert_eq!(
        m.announce.as_deref(),
        Some("https://torrent.ubuntu.com/announce")
    );
    assert_eq!(
        m.info.info_hash.unwrap().to_hex(),
        "0e955838ee9906068bb65d1325875bb792452536"
    );
    // One hash short of 10,753 pieces is refused.
    let short = [&info[..info.len() - 21], b"e"].concat();
    let short = String::from_utf8_lossy(&short).replace("215060:", "215040:");
    assert!(matches!(
        Info::parse(&latin(&short)),
        Err(MetainfoError::PieceCount {
            got: 10_752,
            expected: 10_753,
            ..
        })
    ));
}

/// Inverse of `from_utf8_lossy` for the ASCII-plus-zeros strings above.
fn latin(s: &str) -> Vec<u8> {
    s.bytes().collect()
}

#[test]
fn multi_file_with_tiers_and_pad_files() {
    let p = sha1(b"x");
    let mut info = b"d5:filesld6:lengthi3e4:pathl3:dir5:a.txteed4:attr1:p6:lengthi13e4:pathl4:.pad2:13eed6:lengthi4e4:pathl5:b.bineee4:name4:root12:piece lengthi16e6:pieces40:".to_vec();
    info.extend_from_slice(&p);
    info.extend_from_slice(&p);
    info.extend_from_slice(b"7:privatei1ee");
    let mut t = b"d8:announce1:a13:announce-listll1:b1:cel1:dee7:comment2:hi10:created by3:jn113:creation datei1700000000e4:info".to_vec();
    t.extend_from_slice(&info);
    t.extend_from_slice(b"5:nodesll9:127.0.0.1i6881eel1:xi99999eee8:url-list12:http://ws/x/e");
    let m = Metainfo::parse(&t).unwrap();
    let i = &m.info;
    assert!(i.multi_file && i.private);
    assert_eq!(i.total_length, 20);
    let files: Vec<_> = i
        .files
        .iter()
        .map(|f| (f.path.join("/"), f.offset, f.pad))
        .collect();
    assert_eq!(
        files,
        vec![
            ("dir/a.txt".into(), 0, false),
            (".pad/13".into(), 3, true),
            ("b.bin".into(), 16, false)
        ]
    );
    assert_eq!(m.tracker_tiers(), vec![vec!["b", "c"], vec!["d"]]);
    assert_eq!(
        m.nodes,
        vec![("127.0.0.1".to_owned(), 6881)],
        "bad port skipped"
    );
    assert_eq!(m.url_list, vec!["http://ws/x/"]);
    assert_eq!(m.comment.as_deref(), Some("hi"));
    assert_eq!(m.created_by.as_deref(), Some("jn1"));
    assert_eq!(m.creation_date, Some(1_700_000_000));
}

#[test]
fn path_traversal_and_bad_names_are_refused() {
    for (path, bad) in [
        ("l2:..e", ".."),
        ("l1:.e", "."),
        ("l0:e", ""),
        ("l3:a/be", "a/b"),
        ("l3:a\\be", "a\\b"),
        ("l3:a\x00be", "a\0b"),
    ] {
        let info = format!(
            "d5:filesld6:lengthi1e4:path{path}ee4:name1:x12:piece lengthi16e6:pieces20:{}e",
            "A".repeat(20)
        );
        assert_eq!(
            Info::parse(info.as_bytes()),
            Err(MetainfoError::UnsafePath(bad.into())),
            "{path}"
        );
    }
    let empty_path = format!(
        "d5:filesld6:lengthi1e4:pathleee4:name1:x12:piece lengthi16e6:pieces20:{}e",
        "A".repeat(20)
    );
    assert!(Info::parse(empty_path.as_bytes()).is_err());
    let bad_name = format!(
        "d6:lengthi1e4:name2:..12:piece lengthi16e6:pieces20:{}e",
        "A".repeat(20)
    );
    assert!(matches!(
        Info::parse(bad_name.as_bytes()),
        Err(MetainfoError::UnsafePath(_))
    ));
}

#[test]
fn malformed_info_dicts_are_errors() {
    let a20 = "A".repeat(20);
    for bad in [
        // non-canonical bencode: keys out of order
        format!("d4:name1:x6:lengthi1e12:piece lengthi16e6:pieces20:{a20}e"),
        // leading zero
        format!("d6:lengthi01e4:name1:x12:piece lengthi16e6:pieces20:{a20}e"),
        // both length and files
        format!("d5:filesle6:lengthi1e4:name1:x12:piece lengthi16e6:pieces20:{a20}e"),
        // pieces not a multiple of 20
        "d6:lengthi1e4:name1:x12:piece lengthi16e6:pieces3:abce".to_owned(),
        // zero piece length
        format!("d6:lengthi1e4:name1:x12:piece lengthi0e6:pieces20:{a20}e"),
        // negative length
        format!("d6:lengthi-1e4:name1:x12:piece lengthi16e6:pieces20:{a20}e"),
        // unknown meta version
        "d12:meta versioni3e4:name1:x12:piece lengthi16384ee".to_owned(),
        // not a dict
        "le".to_owned(),
    ] {
        assert!(Info::parse(bad.as_bytes()).is_err(), "{bad}");
    }
    assert_eq!(
        Info::parse(b"d12:meta versioni3e4:name1:x12:piece lengthi16384ee"),
        Err(MetainfoError::MetaVersion(3))
    );
    assert!(Metainfo::parse(b"d8:announce1:ae").is_err(), "no info");
}

fn v2_info(extra_v1: &[u8]) -> Vec<u8> {
    let root: Vec<u8> = (0..32).collect();
    let mut v = b"d9:file treed5:a.txtd0:d6:lengthi5e11:pieces root32:".to_vec();
    v.extend_from_slice(&root);
    v.extend_from_slice(b"eee");
    v.extend_from_slice(extra_v1);
    v.extend_from_slice(b"12:meta versioni2e4:name5:a.txt12:piece lengthi16384e");
    v
}

#[test]
fn v2_and_hybrid() {
    let mut info = v2_info(b"");
    info.push(b'e');
    let i = Info::parse(&info).unwrap();
    assert_eq!(
        i.info_hash_v2.unwrap().to_hex(),
        "338c00aa45210cd0e521fff13a6ef9c70e923627a39137c4e4c137c9a4e53de9"
    );
    assert_eq!(
        i.info_hash_v2.unwrap().to_multihash_hex(),
        "1220338c00aa45210cd0e521fff13a6ef9c70e923627a39137c4e4c137c9a4e53de9"
    );
    assert_eq!(i.info_hash, None);
    assert_eq!(
        i.swarm_hash().to_hex(),
        "338c00aa45210cd0e521fff13a6ef9c70e923627"
    );
    assert_eq!(i.file_tree.len(), 1);
    assert_eq!(i.file_tree[0].path, vec!["a.txt"]);
    assert_eq!(i.total_length, 5);
    // Laid out as v1 would: one file, one piece.
    assert_eq!(i.geometry().map(|g| g.piece_count()), Some(1));
    assert!(i.is_v2_only() && !i.multi_file);
    assert!(Info::parse_verified(&info, &i.swarm_hash()).is_ok());
    assert!(matches!(
        Info::parse_verified(&info, &InfoHash([0; 20])),
        Err(MetainfoError::HashMismatch { .. })
    ));

    // Hybrid: the same file described by v1 keys too. Keys stay sorted: `length` goes
    // between `file tree` and `meta version`, `pieces` after `piece length`.
    let mut hybrid = v2_info(b"6:lengthi5e");
    hybrid.extend_from_slice(b"6:pieces20:");
    hybrid.extend_from_slice(&sha1(b"hello"));
    hybrid.push(b'e');
    let h = Info::parse(&hybrid).unwrap();
    assert!(h.info_hash.is_some() && h.info_hash_v2.is_some());
    assert_eq!(h.swarm_hash(), h.info_hash.unwrap());

    let mut mismatch = v2_info(b"6:lengthi6e");
    mismatch.extend_from_slice(b"6:pieces20:");
    mismatch.extend_from_slice(&sha1(b"hello!"));
    mismatch.push(b'e');
    assert_eq!(Info::parse(&mismatch), Err(MetainfoError::HybridMismatch));
}

#[test]
fn v2_piece_layers_are_checked() {
    let root: Vec<u8> = (0..32).collect();
    let mut info = b"d9:file treed1:fd0:d6:lengthi40000e11:pieces root32:".to_vec();
    info.extend_from_slice(&root);
    info.extend_from_slice(b"eee12:meta versioni2e4:name1:f12:piece lengthi16384ee");
    let build = |layer_len: usize| {
        let mut t = b"d4:info".to_vec();
        t.extend_from_slice(&info);
        t.extend_from_slice(b"12:piece layersd32:");
        t.extend_from_slice(&root);
        t.extend_from_slice(format!("{layer_len}:").as_bytes());
        t.extend_from_slice(&vec![7u8; layer_len]);
        t.extend_from_slice(b"ee");
        t
    };
    let m = Metainfo::parse(&build(96)).unwrap();
    assert_eq!(m.piece_layers.get(root.as_slice()).map(Vec::len), Some(3));
    assert!(Metainfo::parse(&build(64)).is_err());
    assert!(Metainfo::parse(&build(95)).is_err());
    // v2 pieces must be powers of two of at least 16 KiB; files need a pieces root.
    assert!(
        Info::parse(
            b"d9:file treed1:fd0:d6:lengthi1eeee12:meta versioni2e4:name1:f12:piece lengthi16384ee"
        )
        .is_err()
    );
    assert!(
        Info::parse(
            b"d9:file treed1:fd0:d6:lengthi0eeee12:meta versioni2e4:name1:f12:piece lengthi16384ee"
        )
        .is_ok()
    );
    assert!(
        Info::parse(
            b"d9:file treed1:fd0:d6:lengthi0eeee12:meta versioni2e4:name1:f12:piece lengthi16000ee"
        )
        .is_err()
    );
    assert!(Info::parse(b"d9:file treed2:..d0:d6:lengthi0eeee12:meta versioni2e4:name1:f12:piece lengthi16384ee").is_err());
}

#[test]
fn created_torrent_parses_back_and_hashes_the_same() {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut b = TorrentBuilder::new("data.bin", 32 * 1024);
    b.trackers = vec![vec!["http://a/announce".into()], vec!["udp://b:1".into()]];
    b.created_by = Some("Junction".into());
    b.private = true;
    let bytes = b.build_from_bytes(&data).unwrap();
    let m = Metainfo::parse(&bytes).unwrap();
    assert_eq!(m.info.pieces.len(), 4);
    assert_eq!(m.info.total_length, 100_000);
    assert!(m.info.private);
    assert_eq!(m.announce.as_deref(), Some("http://a/announce"));
    assert_eq!(m.announce_list.len(), 2);
    let g = m.info.geometry().unwrap();
    for i in g.indices() {
        let start = g.piece_offset(i) as usize;
        let end = start + g.piece_len(i) as usize;
        assert!(m.info.verify_piece(i, &data[start..end]));
    }
    // Incremental hashing in odd chunk sizes gives the same torrent.
    let mut h = PieceHasher::new(32 * 1024).unwrap();
    data.chunks(777).for_each(|c| h.update(c));
    let (pieces, len) = h.finish();
    assert_ne!(
        b.build(&pieces, len).unwrap(),
        bytes,
        "build_from_bytes adds the sha1"
    );
    b.sha1 = Some(sha1(&data));
    assert_ne!(b.build(&pieces, len).unwrap(), bytes, "and the v2 tree");
    let mut v2 = junction_core::hashing::bt::V2Hasher::new();
    v2.update(&data);
    b.v2 = v2.finish(32 * 1024);
    assert_eq!(b.build(&pieces, len).unwrap(), bytes);
    assert!(m.info.info_hash_v2.is_some(), "a v1+v2 hybrid");
    assert!(b.build(&pieces[..3], len).is_err());
    assert!(
        TorrentBuilder::new("../x", 16384)
            .build_from_bytes(b"x")
            .is_err()
    );
    // Empty content: zero pieces.
    let empty = TorrentBuilder::new("e", 16384)
        .build_from_bytes(b"")
        .unwrap();
    assert_eq!(Metainfo::parse(&empty).unwrap().info.pieces.len(), 0);
}

#[test]
fn whole_file_hashes_round_trip_through_a_created_torrent() {
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 13) as u8).collect();
    let mut b = TorrentBuilder::new("f.bin", 16384);
    b.ed2k = Some([0xED; 16]);
    let bytes = b.build_from_bytes(&data).unwrap();
    // Canonical: the strict decoder accepts it, so the keys are in order.
    let m = Metainfo::parse(&bytes).unwrap();
    let h = m.info.file_hashes();
    assert_eq!(h.sha1, Some(sha1(&data)));
    assert_eq!(h.ed2k, Some([0xED; 16]));
    assert_eq!(h.md5, None);
    let id = m.info.content_id();
    assert_eq!(id.size, Some(50_000));
    assert_eq!(id.get(HashKind::Sha1), Some(&sha1(&data)[..]));
    assert_eq!(id.get(HashKind::Ed2k), Some(&[0xED; 16][..]));
    assert_eq!(
        id.get(HashKind::Btih),
        Some(&m.info.info_hash.unwrap().0[..])
    );
    // A torrent made without them has none.
    let mut plain = TorrentBuilder::new("f.bin", 16384);
    plain.sha1 = Some([1; 20]);
    let m = Metainfo::parse(&plain.build(&m.info.pieces, 50_000).unwrap()).unwrap();
    assert_eq!(m.info.file_hashes().ed2k, None);
    assert_eq!(m.info.file_hashes().sha1, Some([1; 20]));
}

/// A single-file info dict with `extra` (sorted bencode keys before `length`) and `tail`
/// (keys after `pieces`).
fn info_with(extra: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut info = b"d".to_vec();
    info.extend_from_slice(extra);
    info.extend_from_slice(b"6:lengthi20e");
    info.extend_from_slice(b"6:md5sum32:0123456789ABCDEF0123456789abcdef");
    info.extend_from_slice(b"4:name8:test.txt12:piece lengthi16384e6:pieces20:");
    info.extend_from_slice(&sha1(b"0123456789abcdefghij"));
    info.extend_from_slice(tail);
    info.push(b'e');
    info
}

#[test]
fn bitcomet_and_md5_file_hashes_are_read_and_bad_ones_ignored() {
    // BitComet: `ed2k` (16 bytes) and `filehash` (SHA-1, 20 bytes); `md5sum` in hex.
    let mut extra = b"4:ed2k16:".to_vec();
    extra.extend_from_slice(&[7; 16]);
    extra.extend_from_slice(b"8:filehash20:");
    extra.extend_from_slice(&[9; 20]);
    let info = Info::parse(&info_with(&extra, b"")).unwrap();
    let h = info.file_hashes();
    assert_eq!(h.ed2k, Some([7; 16]));
    assert_eq!(h.sha1, Some([9; 20]));
    let md5: [u8; 16] = hex::decode("0123456789abcdef0123456789abcdef")
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(h.md5, Some(md5));
    let id = info.content_id();
    assert_eq!(id.get(HashKind::Md5), Some(&md5[..]));
    assert_eq!(id.get(HashKind::Sha1), Some(&[9; 20][..]));

    // libtorrent's `sha1` wins over `filehash`.
    let mut tail = b"4:sha120:".to_vec();
    tail.extend_from_slice(&[3; 20]);
    let info = Info::parse(&info_with(&extra, &tail)).unwrap();
    assert_eq!(info.file_hashes().sha1, Some([3; 20]));

    // Wrong lengths and types: ignored, the torrent still parses.
    let bad = b"4:ed2k15:xxxxxxxxxxxxxxx8:filehashi5e";
    let info = Info::parse(&info_with(bad, b"4:sha119:xxxxxxxxxxxxxxxxxxx")).unwrap();
    assert!(info.file_hashes().ed2k.is_none());
    assert!(info.file_hashes().sha1.is_none());
    let mut raw = info_with(b"", b"");
    let at = raw.windows(6).position(|w| w == b"012345").unwrap();
    raw[at] = b'g'; // not hex
    assert!(Info::parse(&raw).unwrap().file_hashes().md5.is_none());
    assert!(
        Info::parse(&info_with(b"", b""))
            .unwrap()
            .content_id()
            .get(HashKind::Ed2k)
            .is_none()
    );
}

#[test]
fn multi_file_hashes_stay_per_file() {
    let mut info = b"d5:filesld6:lengthi10e4:pathl1:ae4:sha120:".to_vec();
    info.extend_from_slice(&[5; 20]);
    info.extend_from_slice(
        b"ed6:lengthi10e4:pathl1:beee4:name1:d12:piece lengthi16384e6:pieces20:",
    );
    info.extend_from_slice(&sha1(b"x"));
    info.push(b'e');
    let info = Info::parse(&info).unwrap();
    assert_eq!(info.files[0].hashes.sha1, Some([5; 20]));
    assert!(info.files[1].hashes.is_empty());
    // The torrent is no one file: its id carries no file hash.
    assert!(info.file_hashes().is_empty());
    assert!(info.content_id().get(HashKind::Sha1).is_none());
    // Each file's span for the gateway carries its own hashes, as URNs.
    let spans = info.file_spans();
    let mut a = junction_core::ContentId::new(Some(10));
    a.set(HashKind::Sha1, &[5; 20]);
    assert_eq!(spans[0].urns, a.urns());
    assert!(spans[1].urns.is_empty(), "{:?}", spans[1].urns);
}

#[test]
fn piece_length_suggestion() {
    assert_eq!(piece_length_for(0), 16 * 1024);
    assert_eq!(piece_length_for(2_818_738_176), 2 << 20);
    assert_eq!(piece_length_for(u64::MAX), 16 << 20);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Metainfo::parse(&data);
            let _ = Info::parse(&data);
        }

        #[test]
        fn built_torrents_round_trip(len in 0usize..5000, plen_pow in 4u32..12) {
            let data = vec![0x5Au8; len];
            let bytes = TorrentBuilder::new("f", 1 << plen_pow).build_from_bytes(&data).unwrap();
            let m = Metainfo::parse(&bytes).unwrap();
            prop_assert_eq!(m.info.total_length, len as u64);
            prop_assert_eq!(m.info.info_hash.unwrap().0, sha1(&m.info.raw));
        }
    }
}
