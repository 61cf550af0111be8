#![no_main]
//! GGEP blocks, COBS and extension areas: no panic, bounded inflation, exact
//! re-encoding of whatever decodes.

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

use junction_gnutella::wire::cobs;
use junction_gnutella::wire::ext::ExtArea;
use junction_gnutella::wire::ggep::Block;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::parse(data) {
        let mut v = Vec::new();
        block.encode(&mut v);
        assert_eq!(v, data);
        for e in &block.extensions {
            let _ = e.data();
        }
        let _ = (
            block.hash(),
            block.alt_locs(),
            block.large_file_size(),
            block.scp(),
        );
    }
    if let Ok(d) = cobs::decode(data) {
        assert_eq!(cobs::decode(&cobs::encode(&d)).ok(), Some(d));
    }
    if let Ok(area) = ExtArea::decode_to_end(Bytes::copy_from_slice(data)) {
        let mut v = Vec::new();
        area.encode(&mut v);
        assert_eq!(v, data);
        let _ = area.urns();
    }
    let mut b = Bytes::copy_from_slice(data);
    let _ = ExtArea::decode_nul_terminated(&mut b);
});
