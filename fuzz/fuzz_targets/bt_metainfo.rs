//! `.torrent` files, bare `info` dictionaries, magnet links and tracker responses.
#![no_main]

use junction_bittorrent::magnet::Magnet;
use junction_bittorrent::metainfo::{Info, Metainfo};
use junction_bittorrent::tracker::{http, udp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Metainfo::parse(data) {
        // The info-hash covers the raw bytes, which must parse alone to the same info.
        assert_eq!(Info::parse(&m.info.raw).as_ref(), Ok(&m.info));
    }
    let _ = Info::parse(data);
    let _ = http::AnnounceResponse::parse(data);
    let _ = http::parse_scrape(data);
    let _ = udp::Request::decode(data);
    let _ = udp::Response::decode(data, udp::Family::V4);
    let _ = udp::Response::decode(data, udp::Family::V6);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Magnet::parse(text);
        let _ = http::AnnounceRequest::from_query(text);
    }
});
