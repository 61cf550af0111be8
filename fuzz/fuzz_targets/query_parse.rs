//! The query parser and the link parser: no panic, and what parses prints back parseable.
#![no_main]

use junction_core::{link, query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(q) = query::parse(text) {
        let again = query::parse(&q.expr.to_string()).expect("printed query reparses");
        assert_eq!(again.expr, q.expr);
    }
    let _ = link::parse_link(text);
    let _ = link::parse_torrent(data);
});
