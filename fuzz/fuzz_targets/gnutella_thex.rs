#![no_main]
//! DIME messages and THEX answers (`/uri-res/N2X`): no panic, no allocation beyond
//! what the input holds; whatever DIME decodes re-encodes to the same records.

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

use junction_gnutella::TigerHash;
use junction_gnutella::wire::{dime, thex};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(records) = dime::decode_message(&body) {
        let mut v = Vec::new();
        if dime::encode_message(&records, &mut v).is_ok() {
            assert_eq!(
                dime::decode_message(&Bytes::from(v)).ok(),
                Some(records.clone())
            );
        }
        for r in &records {
            let _ = thex::parse_xml(&r.data);
        }
    }
    // The file size and root come from the input too, so both sides of every check
    // (size, depth, root, level) are reached.
    let (size, root) = match data.get(..32) {
        Some(head) => {
            let mut s = [0u8; 8];
            s.copy_from_slice(&head[..8]);
            let mut r = [0u8; 24];
            r.copy_from_slice(&head[8..]);
            (u64::from_le_bytes(s) >> (head[0] % 64), r)
        }
        None => (65536, [0u8; 24]),
    };
    if let Ok(level) = thex::decode_answer(&body, size, &TigerHash(root)) {
        assert_eq!(level.root(), Some(TigerHash(root)));
        assert!(level.unit_len >= 1024 && (level.unit_len / 1024).is_power_of_two());
    }
    for body in [body.slice(32.min(body.len())..), body] {
        let _ = thex::decode_answer(&body, 65536, &TigerHash(root));
    }
});
