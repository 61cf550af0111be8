#![no_main]
//! Gnutella handshake blocks, HTTP heads and GIV lines: streaming parsers
//! must never panic; whatever parses must re-encode and parse again.

use libfuzzer_sys::fuzz_target;

use junction_gnutella::wire::handshake::{Handshake, MAX_HANDSHAKE_LEN};
use junction_gnutella::wire::http::{Giv, RequestHead, ResponseHead};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((hs, n))) = Handshake::parse(data) {
        assert!(n <= data.len());
        // Re-encoding normalises `Name:value` to `Name: value`, so it may
        // grow; within the bound it must parse back to the same block.
        let wire = hs.to_bytes();
        if wire.len() <= MAX_HANDSHAKE_LEN {
            let again = Handshake::parse(&wire).ok().flatten().map(|(h, _)| h);
            assert_eq!(again.as_ref(), Some(&hs));
        }
        let _ = (
            hs.try_ultrapeers(),
            hs.listen_addr(),
            hs.guid(),
            hs.degree(),
        );
    }
    if let Ok(Some((req, _))) = RequestHead::parse(data) {
        let _ = (req.target(), req.range(), req.alt_locs(), req.content_urn());
    }
    if let Ok(Some((resp, _))) = ResponseHead::parse(data) {
        let _ = (resp.content_range(), resp.queued(), resp.available_ranges());
    }
    let _ = Giv::parse(data);
});
