//! The headers gtk-gnutella sends in each handshake role, and what our
//! [`HandshakeProfile`] builds for the same role: same names, same order,
//! except gtk-gnutella's own signed `X-Token`.

mod common;

use common::*;
use junction_gnutella::wire::handshake::{Handshake, HandshakeProfile};

/// gtk-gnutella-specific headers we deliberately do not send: `X-Token` is
/// signed with gtk-gnutella's private key.
const NOT_OURS: &[&str] = &["X-Token"];

fn names(h: &Handshake) -> Vec<String> {
    h.headers
        .iter()
        .map(|(k, _)| k.to_owned())
        .filter(|k| !NOT_OURS.iter().any(|n| n.eq_ignore_ascii_case(k)))
        .collect()
}

fn profile(ultrapeer: bool, listen: &str, h: &Handshake) -> HandshakeProfile {
    HandshakeProfile {
        ultrapeer,
        listen: Some(listen.parse().unwrap()),
        guid: h.guid(),
        degree: h.degree().unwrap(),
        max_ttl: h.max_ttl().unwrap(),
        live_since: h.headers.get("X-Live-Since").map(str::to_owned),
        features: h.features().iter().map(|s| s.to_string()).collect(),
        ..HandshakeProfile::default()
    }
}

/// Headers gtk-gnutella sends when it connects out as ultrapeer (02a).
const GTKG_ULTRAPEER_CONNECT: &[&str] = &[
    "Node",
    "Remote-IP",
    "User-Agent",
    "Pong-Caching",
    "Bye-Packet",
    "GGEP",
    "GUID",
    "Vendor-Message",
    "X-Query-Routing",
    "X-Requeries",
    "Accept-Encoding",
    "X-Live-Since",
    "X-Ultrapeer",
    "X-Ultrapeer-Query-Routing",
    "X-Degree",
    "X-Max-TTL",
    "X-Dynamic-Querying",
    "X-Ext-Probes",
    "X-Features",
];

/// Headers gtk-gnutella sends when it connects out as leaf (02b).
const GTKG_LEAF_CONNECT: &[&str] = &[
    "Node",
    "Remote-IP",
    "User-Agent",
    "Pong-Caching",
    "Bye-Packet",
    "GGEP",
    "GUID",
    "Vendor-Message",
    "X-Query-Routing",
    "X-Requeries",
    "Accept-Encoding",
    "X-Live-Since",
    "X-Ultrapeer",
    "X-Dynamic-Querying",
    "X-Ultrapeer-Query-Routing",
    "X-Degree",
    "X-Max-TTL",
    "X-Features",
];

/// Headers of gtk-gnutella's 200 OK as ultrapeer accepting a leaf (01).
const GTKG_ULTRAPEER_ACCEPT: &[&str] = &[
    "User-Agent",
    "Pong-Caching",
    "Bye-Packet",
    "GGEP",
    "GUID",
    "Vendor-Message",
    "Remote-IP",
    "X-Ultrapeer",
    "X-Requeries",
    "Accept-Encoding",
    "Content-Encoding",
    "X-Ultrapeer-Needed",
    "X-Query-Routing",
    "X-Ultrapeer-Query-Routing",
    "X-Degree",
    "X-Max-TTL",
    "X-Dynamic-Querying",
    "X-Ext-Probes",
    "X-Live-Since",
    "X-Features",
];

#[test]
fn ultrapeer_connect_matches_gtkg() {
    let (hs, _) = handshakes("02a", &data("02a-gtkg-ultrapeer-connects-out.a2b.bin"), 2);
    assert_eq!(names(&hs[0]), GTKG_ULTRAPEER_CONNECT);
    let p = profile(true, "127.0.0.61:6461", &hs[0]);
    let ours = p.connect_request(hs[0].remote_ip());
    assert_eq!(names(&ours), GTKG_ULTRAPEER_CONNECT);
    // Values that carry meaning must agree too.
    for h in [
        "Node",
        "Remote-IP",
        "GUID",
        "X-Ultrapeer",
        "X-Query-Routing",
        "Accept-Encoding",
        "X-Degree",
        "X-Dynamic-Querying",
    ] {
        assert_eq!(ours.headers.get(h), hs[0].headers.get(h), "{h}");
    }
    // Step 3: only Content-Encoding, like gtk-gnutella's.
    let (resp, _) = handshakes(
        "02a b2a",
        &data("02a-gtkg-ultrapeer-connects-out.b2a.bin"),
        1,
    );
    assert_eq!(p.final_response(&resp[0]), hs[1]);
}

#[test]
fn leaf_connect_matches_gtkg() {
    let (hs, _) = handshakes("02b", &data("02b-gtkg-leaf-connects-out.a2b.bin"), 2);
    assert_eq!(names(&hs[0]), GTKG_LEAF_CONNECT);
    let p = profile(false, "127.0.0.64:6464", &hs[0]);
    let ours = p.connect_request(hs[0].remote_ip());
    assert_eq!(names(&ours), GTKG_LEAF_CONNECT);
    assert_eq!(ours.ultrapeer(), Some(false));
    let (resp, _) = handshakes("02b b2a", &data("02b-gtkg-leaf-connects-out.b2a.bin"), 1);
    assert_eq!(p.final_response(&resp[0]), hs[1]);
}

#[test]
fn ultrapeer_accept_matches_gtkg() {
    let (req, _) = handshakes("01 a2b", &data("01-leaf-to-gtkg-ultrapeer.a2b.bin"), 1);
    let (hs, _) = handshakes("01 b2a", &data("01-leaf-to-gtkg-ultrapeer.b2a.bin"), 1);
    assert_eq!(names(&hs[0]), GTKG_ULTRAPEER_ACCEPT);
    let p = profile(true, "127.0.0.61:6461", &hs[0]);
    let ours = p.accept_response(&req[0], Some("127.0.0.62".parse().unwrap()));
    assert_eq!(names(&ours), GTKG_ULTRAPEER_ACCEPT);
    for h in [
        "X-Ultrapeer",
        "X-Ultrapeer-Needed",
        "Content-Encoding",
        "Remote-IP",
        "X-Query-Routing",
    ] {
        assert_eq!(ours.headers.get(h), hs[0].headers.get(h), "{h}");
    }
    // Its other leaf (01b) sent no User-Agent and was accepted the same way.
    let (req_b, _) = handshakes("01b", &data("01b-handshake-minimal-headers.a2b.bin"), 1);
    assert_eq!(
        names(&p.accept_response(&req_b[0], None))[..1],
        ["User-Agent"]
    );
}

#[test]
fn rejection_matches_gtkg() {
    let (hs, _) = handshakes(
        "01c",
        &data("01c-handshake-leaf-without-deflate.b2a.bin"),
        1,
    );
    let p = HandshakeProfile::default();
    let ours = p.reject(
        403,
        "Gnet connection not compressed",
        hs[0].remote_ip(),
        &[],
    );
    assert_eq!(names(&ours), names(&hs[0]));
    assert_eq!(ours.start, hs[0].start);
    let with_try = p.reject(
        503,
        "Too many connections",
        None,
        &["127.0.0.1:6346".parse().unwrap()],
    );
    assert_eq!(
        with_try.try_ultrapeers(),
        vec!["127.0.0.1:6346".parse().unwrap()]
    );
}
