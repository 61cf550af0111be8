#![no_main]
//! AICH recovery data from a peer: decoding, then checking it against a root.

use junction_ed2k::aich;
use junction_ed2k::hash::PART_SIZE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(hashes) = aich::decode_recovery(data) else {
        return;
    };
    // Re-encoding what was read gives it back.
    let again = aich::encode_recovery(PART_SIZE * 3, &hashes);
    if hashes.iter().all(|(i, _)| *i <= u64::from(u16::MAX)) {
        assert_eq!(aich::decode_recovery(&again).ok(), Some(hashes.clone()));
    }
    let size = u64::from(data.len() as u32) * 97_531 + 1;
    for part in 0..4 {
        let _ = aich::verify_part(size, part, &[0; 20], &hashes);
    }
});
