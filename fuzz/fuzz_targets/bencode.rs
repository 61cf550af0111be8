//! The strict bencode decoder: canonical input must re-encode byte for byte.
#![no_main]

use junction_core::bencode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = bencode::decode(data) {
        assert_eq!(value.to_vec(), data);
    }
    let _ = bencode::decode_prefix(data);
});
