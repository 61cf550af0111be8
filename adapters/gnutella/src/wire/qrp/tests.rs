//! Tests of the QRP wire layer: golden hashes, tables, patches, merges.

use super::*;

#[test]
fn golden_hashes() {
    assert_eq!(hash("", 13), 0);
    assert_eq!(hash("eb", 13), 6791);
    assert_eq!(hash("ebcklmenq", 13), 3527);
    assert_eq!(hash("n", 16), 65003);
    assert_eq!(hash("ndflalem", 16), 37658);
    assert_eq!(hash("ol2j34lj", 10), 318);
    assert_eq!(hash("7777a88a8a8a8", 10), 342);
    assert_eq!(hash("zzzzzzzzzzz", 10), 944);
    assert_eq!(hash("3NJA9", 10), 581);
    assert_eq!(hash("3nja9", 10), 581);
    assert_eq!(hash("test", 3), 2);
    assert_eq!(hash("qrp", 3), 7);
}

#[test]
fn spec_appendix_b_patch() {
    // 8-slot table, infinity 7, "test" at slot 2: patch 00 A0 00 00.
    let t = QrpTable::from_words(["test"], 8, 7).unwrap();
    let p = t.raw_patch(None);
    assert_eq!(
        (p.entry_bits, p.bytes.clone()),
        (4, vec![0x00, 0xA0, 0x00, 0x00])
    );
    let mut r = QrpReceiver::new();
    r.apply(&RouteTableUpdate::Reset {
        table_len: 8,
        infinity: 7,
    })
    .unwrap();
    let done = r
        .apply(&RouteTableUpdate::Patch {
            seq_no: 1,
            seq_size: 1,
            compressor: 0,
            entry_bits: 4,
            data: Bytes::from(p.bytes),
        })
        .unwrap();
    assert!(done);
    assert!(r.table().unwrap().contains_word("test"));
    assert!(!r.table().unwrap().contains_word("qrp"));
}

#[test]
fn prefixes_like_gtk_gnutella() {
    let mut w = table_words("gnutcap charlie.bin");
    w.sort();
    assert_eq!(
        w,
        [
            "bin", "char", "charl", "charli", "charlie", "gnut", "gnutc", "gnutca", "gnutcap"
        ]
    );
}

#[test]
fn every_entry_width() {
    for bits in [1u8, 2, 4, 8] {
        let mut r = QrpReceiver::new();
        r.apply(&RouteTableUpdate::Reset {
            table_len: 16,
            infinity: 1,
        })
        .unwrap();
        // Slot 0 gets entry value 1 in every width: for 1 bit that flips
        // it to present; for 2/4/8 bits +1 leaves it absent, so use -1.
        let per_byte = 8 / bits as usize;
        let mut raw = vec![0u8; 16 / per_byte];
        raw[0] = if bits == 1 {
            0x80
        } else {
            (((1u16 << bits) - 1) << (8 - bits)) as u8
        };
        r.apply(&RouteTableUpdate::Patch {
            seq_no: 1,
            seq_size: 1,
            compressor: 0,
            entry_bits: bits,
            data: Bytes::from(raw),
        })
        .unwrap();
        let t = r.table().unwrap();
        assert_eq!(
            t.present_slots().collect::<Vec<_>>(),
            vec![0],
            "bits {bits}"
        );
    }
}

#[test]
fn bad_sizes_and_sequences() {
    assert!(QrpTable::new(1 << 22, 2).is_err());
    assert!(QrpTable::new(u32::MAX, 2).is_err());
    assert!(QrpTable::new(1 << 31, 2).is_err());
    assert!(QrpTable::new(1000, 2).is_err());
    assert!(QrpTable::new(1024, 0).is_err());
    let mut r = QrpReceiver::new();
    let patch = |seq_no, seq_size| RouteTableUpdate::Patch {
        seq_no,
        seq_size,
        compressor: 0,
        entry_bits: 8,
        data: Bytes::from(vec![0u8; 8]),
    };
    assert!(r.apply(&patch(1, 1)).is_err(), "patch before reset");
    r.apply(&RouteTableUpdate::Reset {
        table_len: 16,
        infinity: 2,
    })
    .unwrap();
    assert!(r.apply(&patch(2, 2)).is_err(), "chunk 2 without 1");
    assert!(!r.apply(&patch(1, 2)).unwrap());
    assert!(r.apply(&patch(1, 2)).is_ok(), "restart");
    assert!(r.apply(&patch(2, 2)).unwrap());
    // too much data for the table
    let big = RouteTableUpdate::Patch {
        seq_no: 1,
        seq_size: 1,
        compressor: 0,
        entry_bits: 8,
        data: Bytes::from(vec![0u8; 4096]),
    };
    assert!(r.apply(&big).is_err());
    // zlib bomb: inflates beyond the table
    let bomb = RouteTableUpdate::Patch {
        seq_no: 1,
        seq_size: 1,
        compressor: 1,
        entry_bits: 8,
        data: Bytes::from(inflate::zlib(&vec![0u8; 1 << 20])),
    };
    assert!(r.apply(&bomb).is_err());
    assert!(r.table().is_some());
}

/// An 8-slot table received with `infinity` and a 1-bit patch setting slot 0 present.
fn received_one_bit(infinity: u8) -> QrpTable {
    let mut r = QrpReceiver::new();
    r.apply(&RouteTableUpdate::Reset {
        table_len: 8,
        infinity,
    })
    .unwrap();
    r.apply(&RouteTableUpdate::Patch {
        seq_no: 1,
        seq_size: 1,
        compressor: 0,
        entry_bits: 1,
        data: Bytes::from_static(&[0x80]),
    })
    .unwrap();
    r.table().unwrap().clone()
}

/// Fuzz finding (`gnutella_qrp`): a received table with infinity 214 and a slot at 1
/// (a 1-bit patch sets present slots to 1) needs a delta of -213, which an 8-bit entry
/// cannot hold; the clamped -128 rebuilt the slot as 86. Such a table is not sent.
#[test]
fn a_delta_beyond_an_8_bit_entry_is_not_sent() {
    let t = received_one_bit(214);
    assert_eq!(t.slots(), [1, 214, 214, 214, 214, 214, 214, 214]);
    assert!(t.to_messages(4096).is_err());
    let absent = QrpTable::new(8, 214).unwrap();
    assert!(t.patch_from(Some(&absent), 4096).is_err());
    // -127 and +127 still fit, and rebuild the table exactly.
    let t = received_one_bit(128);
    let mut again = QrpReceiver::new();
    for m in t.to_messages(4096).unwrap() {
        again.apply(&m).unwrap();
    }
    assert_eq!(again.table(), Some(&t));
    let mut back = QrpReceiver::new();
    back.apply(&RouteTableUpdate::Reset {
        table_len: 8,
        infinity: 128,
    })
    .unwrap();
    for m in t.patch_from(None, 4096).unwrap() {
        back.apply(&m).unwrap();
    }
    assert_eq!(back.table().unwrap().slots(), t.slots());
}

#[test]
fn encode_then_receive() {
    let t = QrpTable::from_words(["alpha", "beta", "gamma"], 1 << 14, 2).unwrap();
    let msgs = t.to_messages(16).unwrap();
    assert!(msgs.len() > 2);
    let mut r = QrpReceiver::new();
    let mut done = false;
    for m in &msgs {
        done = r.apply(m).unwrap();
    }
    assert!(done);
    assert_eq!(r.table(), Some(&t));
    let mut t2 = t.clone();
    t2.insert("delta");
    for m in t2.patch_from(Some(&t), 4096).unwrap() {
        r.apply(&m).unwrap();
    }
    assert_eq!(r.table(), Some(&t2));
    assert!(t2.matches_keywords("Alpha DELTA"));
    assert!(!t2.matches_keywords("alpha omega"));
    assert!(!t2.matches_keywords("a b"));
}

#[test]
fn merging_tables_of_other_sizes_keeps_every_word() {
    let words = ["gnutcap", "bravo", "charlie", "x7q"];
    let small = QrpTable::from_words(words, 1 << 14, 2).unwrap();
    let big = QrpTable::from_words(["delta", "echo"], 1 << 20, 7).unwrap();
    let mut union = QrpTable::new(1 << 16, 2).unwrap();
    union.merge(&small);
    union.merge(&big);
    for w in words.iter().chain(&["delta", "echo"]) {
        assert!(union.contains_word(w), "{w}");
    }
    assert!(union.matches_keywords("gnutcap echo"));
    assert!(union.present_count() < 64);
}
