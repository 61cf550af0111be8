#![no_main]
//! Tags, tag lists, search trees, server.met and links. Whatever decodes must re-encode to
//! bytes that decode and re-encode identically (bytes, not values: a float tag may be NaN).

use junction_ed2k::server_met::ServerMet;
use junction_ed2k::wire::{SearchExpr, Tag, TagEncoding, tag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tag::decode(&mut &data[..]) {
        for enc in [TagEncoding::Classic, TagEncoding::Compact] {
            let mut once = Vec::new();
            t.encode(&mut once, enc).unwrap();
            let mut twice = Vec::new();
            Tag::decode(&mut &once[..])
                .unwrap()
                .encode(&mut twice, enc)
                .unwrap();
            assert_eq!(once, twice);
        }
    }
    let _ = tag::decode_list(&mut &data[..]);
    let _ = tag::decode_kad_list(&mut &data[..]);
    if let Ok(e) = SearchExpr::decode(&mut &data[..]) {
        let mut out = Vec::new();
        e.encode(&mut out).unwrap();
        assert_eq!(SearchExpr::decode(&mut &out[..]).unwrap(), e);
    }
    if let Ok(met) = ServerMet::decode(data) {
        let once = met.to_vec().unwrap();
        assert_eq!(
            ServerMet::decode(&once[..]).unwrap().to_vec().unwrap(),
            once
        );
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(link) = junction_ed2k::link::Ed2kLink::parse(s) {
            let _ = junction_ed2k::link::Ed2kLink::parse(&link.to_string());
        }
    }
});
