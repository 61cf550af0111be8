//! The bodies of the fuzz targets in `fuzz/fuzz_targets/`, one function per target.
//!
//! Each takes whatever bytes the fuzzer (or a corpus file) gives and checks that the
//! decoders under test never panic, stay bounded, and that what decodes re-encodes to
//! itself. A failed check panics, which is what the fuzzer reports as a crash.
//! [`TARGETS`] names them all; `tests/replay.rs` runs every file of `fuzz/corpus/NAME/`
//! and `fuzz/regressions/NAME/` through the function of that name.

pub mod bt;
pub mod core;
pub mod ed2k;
pub mod gateway;
pub mod gnutella;

/// A target's body: any bytes in, a panic on a finding.
pub type Body = fn(&[u8]);

/// Every target: its name (the cargo-fuzz binary and the corpus folder) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("bencode", core::bencode),
    ("query_parse", core::query_parse),
    ("core_link", core::link),
    ("http_range", core::http_range),
    ("gateway_http", gateway::http),
    ("bt_krpc", bt::krpc),
    ("bt_metainfo", bt::metainfo),
    ("bt_metainfo_v2", bt::metainfo_v2),
    ("bt_peer_message", bt::peer_message),
    ("bt_tracker", bt::tracker),
    ("bt_magnet", bt::magnet),
    ("bt_http", bt::http),
    ("bt_torznab", bt::torznab),
    ("ed2k_aich_recovery", ed2k::aich_recovery),
    ("ed2k_frame", ed2k::frame),
    ("ed2k_message", ed2k::message),
    ("ed2k_tag", ed2k::tag),
    ("ed2k_server_udp", ed2k::server_udp),
    ("ed2k_search_results", ed2k::search_results),
    ("ed2k_server_met", ed2k::server_met),
    ("ed2k_link", ed2k::link),
    ("gnutella_browse", gnutella::browse),
    ("gnutella_descriptor", gnutella::descriptor),
    ("gnutella_ggep", gnutella::ggep),
    ("gnutella_handshake", gnutella::handshake),
    ("gnutella_thex", gnutella::thex),
    ("gnutella_qrp", gnutella::qrp),
    ("gnutella_link", gnutella::deflate_link),
    ("gnutella_http_fields", gnutella::http_fields),
];

/// The body of the target called `name`.
pub fn target(name: &str) -> Option<Body> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The input as text, if it is UTF-8.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
