//! Targets for `junction-core`: bencode, the query parser, the link parser, HTTP ranges.

use junction_core::http_range::{ByteRange, ContentRange};
use junction_core::{bencode as benc, link as links, query};

/// The strict bencode decoder: canonical input must re-encode byte for byte, and any
/// value a prefix decodes to re-encodes to bytes that decode to the same value.
pub fn bencode(data: &[u8]) {
    if let Ok(value) = benc::decode(data) {
        assert_eq!(value.to_vec(), data);
    }
    if let Ok((value, _used)) = benc::decode_prefix(data) {
        let again = value.to_vec();
        assert_eq!(benc::decode(&again).ok().as_ref(), Some(&value));
    }
}

/// The query parser and the link parser: no panic, and what parses prints back parseable
/// to the same query, unless the printed form outgrows the parser's limits (`ext:a,b`
/// prints as `(ext:a OR ext:b)`, more terms than it was).
pub fn query_parse(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    if let Ok(q) = query::parse(text) {
        match query::parse(&q.expr.to_string()) {
            Ok(again) => assert_eq!(again.expr, q.expr),
            Err(query::ParseError::TooManyTerms | query::ParseError::TooLong(_)) => {}
            Err(e) => panic!("printed query does not reparse: {e:?}"),
        }
    }
    let _ = links::parse_link(text);
    let _ = links::parse_torrent(data);
}

/// The link parser the gateway uses for `StartTransfer` and its HTTP fronts: `magnet:`,
/// `ed2k://`, bare hashes and URNs as text, and `.torrent` bytes.
pub fn link(data: &[u8]) {
    if let Some(text) = super::text(data) {
        let _ = links::parse_link(text);
    }
    let _ = links::parse_torrent(data);
}

/// HTTP byte ranges (`Range`, `Content-Range`) as Gnutella's transfers and the gateway's
/// player front read them: a resolved range lies inside the content, and what parses
/// prints back to the same ranges.
pub fn http_range(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    if let Ok(ranges) = ByteRange::parse_header(text, 64) {
        assert!(!ranges.is_empty() && ranges.len() <= 64);
        let shown: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        let again = ByteRange::parse_header(&format!("bytes={}", shown.join(",")), 64);
        assert_eq!(again.as_ref(), Ok(&ranges));
        for r in &ranges {
            for size in [0, 1, 2, 1000, u64::MAX - 1, u64::MAX] {
                for (first, last) in [r.resolve(size), r.clamp(size)].into_iter().flatten() {
                    assert!(
                        first <= last && last < size,
                        "{r:?} in {size}: {first}-{last}"
                    );
                }
            }
        }
    }
    if let Ok(c) = ContentRange::parse(text) {
        assert!(
            c.start <= c.end && c.total.is_none_or(|t| c.end < t),
            "{c:?}"
        );
        assert_eq!(ContentRange::parse(&c.to_string()), Ok(c));
    }
}
