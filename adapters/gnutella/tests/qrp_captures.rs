//! QRP tables from the captures: our hash, keyword/prefix rules and patch
//! decoder reproduce gtk-gnutella's tables; our encoder reproduces the
//! harness table gtk-gnutella accepted.

mod common;

use common::*;
use junction_gnutella::wire::message::{Message, RouteTableUpdate};
use junction_gnutella::wire::qrp::{QrpReceiver, QrpTable, table_words};

fn updates(file: &str) -> Vec<RouteTableUpdate> {
    decode_stream(file, &data(file))
        .into_iter()
        .map(|d| match d.message {
            Message::RouteTable(u) => u,
            m => panic!("{file}: not QRP: {m:?}"),
        })
        .collect()
}

fn library_table(names: &[&str]) -> QrpTable {
    QrpTable::from_words(names.iter().flat_map(|n| table_words(n)), 16384, 2).unwrap()
}

#[test]
fn gtkg_leaf_table_matches_our_table_for_the_same_files() {
    let mut r = QrpReceiver::new();
    let mut completed = 0;
    for u in updates("02c-qrp-table-from-gtkg-leaf.a2b.bin") {
        completed += usize::from(r.apply(&u).unwrap());
    }
    assert_eq!(completed, 1);
    let theirs = r.table().unwrap();
    assert_eq!((theirs.len(), theirs.infinity()), (16384, 2));
    let slots: Vec<usize> = theirs.present_slots().collect();
    assert_eq!(
        slots,
        [
            2568, 3890, 4462, 5495, 6387, 6962, 7085, 9861, 10867, 11099, 11515, 12278, 13287,
            14146
        ]
    );
    let ours = library_table(&[
        "gnutcap-alpha.bin",
        "gnutcap-bravo.txt",
        "gnutcap charlie.bin",
    ]);
    assert_eq!(&ours, theirs);
    assert!(theirs.matches_keywords("gnutcap alpha"));
    assert!(theirs.matches_keywords("GNUT char"));
    assert!(!theirs.matches_keywords("gnutcap delta"));
}

#[test]
fn incremental_patches_without_reset() {
    let ups = updates("02d-qrp-table-from-gtkg-ultrapeer.a2b.bin");
    assert_eq!(ups.len(), 4, "RESET + 3 PATCH");
    assert!(matches!(ups[0], RouteTableUpdate::Reset { .. }));
    let mut r = QrpReceiver::new();
    let mut files = vec![
        "gnutcap-alpha.bin",
        "gnutcap-bravo.txt",
        "gnutcap charlie.bin",
    ];
    let later = ["gnutcap-delta.bin", "gnutcap-echo.bin"];
    for (i, u) in ups.iter().enumerate() {
        let done = r.apply(u).unwrap();
        if i >= 2 {
            files.push(later[i - 2]);
        }
        if done {
            assert_eq!(
                r.table().unwrap(),
                &library_table(&files),
                "after message {i}"
            );
        }
    }
    assert!(r.table().unwrap().matches_keywords("delta echo"));
}

#[test]
fn our_encoder_reproduces_the_harness_patch() {
    let ups = updates("02e-qrp-table-from-harness-leaf.a2b.bin");
    let mut r = QrpReceiver::new();
    for u in &ups {
        r.apply(u).unwrap();
    }
    let ours = QrpTable::from_words(["gnutcap", "harness", "leaf"], 65536, 7).unwrap();
    assert_eq!(r.table().unwrap(), &ours);
    assert_eq!(
        ours.present_slots().collect::<Vec<_>>(),
        [15500, 15563, 34962]
    );

    // Same RESET, and a PATCH that inflates to the same bytes.
    let msgs = ours.to_messages(4096).unwrap();
    assert_eq!(msgs[0], ups[0]);
    let (
        RouteTableUpdate::Patch {
            data: theirs,
            entry_bits: 4,
            ..
        },
        RouteTableUpdate::Patch {
            data: mine,
            entry_bits: 4,
            ..
        },
    ) = (&ups[1], &msgs[1])
    else {
        panic!("expected 4-bit patches");
    };
    let inflate = |d: &[u8]| {
        use std::io::Read;
        let mut v = Vec::new();
        flate2::read::ZlibDecoder::new(d)
            .read_to_end(&mut v)
            .unwrap();
        v
    };
    assert_eq!(inflate(theirs), inflate(mine));
    assert_eq!(inflate(mine), ours.raw_patch(None).bytes);
}
