//! Every captured gtk-gnutella stream decodes completely and re-encodes to
//! the same bytes; decoded values match the capture annotations.

mod common;

use common::*;
use junction_gnutella::Urn;
use junction_gnutella::wire::handshake::StartLine;
use junction_gnutella::wire::http::{ByteRange, RequestExt, ResponseExt, Target};
use junction_gnutella::wire::message::{Message, QueryFlags};

const GTKG_UA: &str = "gtk-gnutella/1.2.3 (2024-03-03; Topless; Linux x86_64)";

/// Gnutella sessions: (name, handshake blocks a→b, blocks b→a).
const SESSIONS: &[(&str, usize, usize)] = &[
    ("01-leaf-to-gtkg-ultrapeer", 2, 1),
    ("01b-handshake-minimal-headers", 2, 1),
    ("01c-handshake-leaf-without-deflate", 1, 1),
    ("01d-handshake-connect-0.4", 1, 0),
    ("01e-handshake-rate-ban-429", 1, 1),
    ("01f-handshake-while-banned", 1, 0),
    ("02a-gtkg-ultrapeer-connects-out", 2, 1),
    ("02b-gtkg-leaf-connects-out", 2, 1),
];

/// Extracted descriptor vectors.
const EXTRACTS: &[&str] = &[
    "02c-qrp-table-from-gtkg-leaf",
    "02d-qrp-table-from-gtkg-ultrapeer",
    "02e-qrp-table-from-harness-leaf",
    "02f-vendor-messages-from-gtkg",
    "03a-tcp-ping-pong-harness-to-gtkg",
    "03b-tcp-ping-scp-ttl2-harness-to-gtkg",
    "03c-udp-ping-pong",
    "03d-udp-ping-scp-uhc",
    "03e-tcp-ping-pong-gtkg-to-harness",
    "04a-query-keyword-and-hit",
    "04b-query-ggep-h-flag-and-hit",
    "04c-query-by-urn-sha1-and-hit",
    "04d-query-by-ggep-h-and-hit",
    "04e-query-no-match",
    "04f-query-ultrapeer-to-gtkg-leaf-and-hit",
    "05a-query-originated-by-gtkg-leaf",
    "05b-urn-query-originated-by-gtkg-leaf",
    "05c-queries-relayed-by-gtkg-ultrapeer",
    "07a-bye-after-node-drop",
    "07b-bye-ultrapeer-shutdown",
    "07c-bye-leaf-shutdown",
    "08c-push-message-to-ultrapeer",
    "08d-push-message-to-leaf",
];

/// HTTP exchanges: (name, a→b starts with GIV, requests are sent by a).
const HTTP: &[(&str, bool, bool)] = &[
    ("06a-http-get-n2r-range-keepalive", false, true),
    ("06b-http-get-by-index", false, true),
    ("06c-http-range-beyond-eof-clamped", false, true),
    ("06d-http-404-unknown-urn", false, true),
    ("06e-http-gtkg-downloads-conn1", false, true),
    ("06f-http-get-full-no-range", false, true),
    ("06g-http-head", false, true),
    ("06h-http-browse-host", false, true),
    ("06i-http-gtkg-partial-download-conn1", false, true),
    ("06i-http-pfsp-partial-file-206-416", false, true),
    ("06j-http-get-servent-style-request", false, true),
    ("06k-http-get-thex-tree", false, true),
    ("08a-push-giv-from-ultrapeer", true, false),
    ("08b-push-giv-from-leaf", true, false),
];

#[test]
fn sessions_decode_fully() {
    let mut total = 0;
    for &(name, na, nb) in SESSIONS {
        for (dir, n) in [("a2b", na), ("b2a", nb)] {
            let file = format!("{name}.{dir}.bin");
            let bytes = data(&file);
            let (_blocks, hs_len) = handshakes(&file, &bytes, n);
            let rest = &bytes[hs_len..];
            let zfile = format!("{name}.{dir}.deflate.bin");
            if exists(&zfile) {
                assert_eq!(inflate(&zfile), rest, "{zfile} inflates to the .bin stream");
            }
            total += decode_stream(&file, rest).len();
        }
    }
    // Message count from the capture annotations: a silently skipped stream fails.
    assert_eq!(total, 60, "session messages decoded");
}

#[test]
fn extracts_decode_fully() {
    let mut total = 0;
    for name in EXTRACTS {
        for dir in ["a2b", "b2a"] {
            let file = format!("{name}.{dir}.bin");
            total += decode_stream(&file, &data(&file)).len();
        }
    }
    assert_eq!(total, 46, "extracted messages decoded");
}

#[test]
fn http_heads_decode_fully() {
    for &(name, giv_first, a_requests) in HTTP {
        let a = data(&format!("{name}.a2b.bin"));
        let b = data(&format!("{name}.b2a.bin"));
        let (reqs, mut resp) = if a_requests {
            (requests(name, &a), &b[..])
        } else {
            (requests(name, &b), &a[..])
        };
        if giv_first {
            let (g, n) = giv(resp);
            assert_eq!(g.name, "file");
            resp = &resp[n..];
        }
        let methods: Vec<&str> = reqs.iter().map(|r| r.method.as_str()).collect();
        let resps = responses(name, resp, &methods);
        assert_eq!(resps.len(), reqs.len(), "{name}: one response per request");
    }
}

#[test]
fn handshake_values() {
    let b = data("01-leaf-to-gtkg-ultrapeer.b2a.bin");
    let (hs, _) = handshakes("01", &b, 1);
    let hs = &hs[0];
    assert!(hs.is_ok());
    assert_eq!(hs.user_agent(), Some(GTKG_UA));
    assert_eq!(hs.ultrapeer(), Some(true));
    assert_eq!(hs.ultrapeer_needed(), Some(true));
    assert!(hs.accepts_deflate() && hs.content_deflate());
    assert_eq!(hs.degree(), Some(46));
    assert_eq!(hs.max_ttl(), Some(4));
    assert_eq!(hs.dynamic_querying(), Some("0.1"));
    assert_eq!(hs.bye_packet(), Some("0.1"));
    assert_eq!(hs.remote_ip(), Some("127.0.0.62".parse().unwrap()));
    assert_eq!(
        hs.guid().unwrap().to_hex(),
        "54cd3102ab408d4acfb983e172dbd151"
    );
    assert_eq!(hs.features(), vec!["browse/1.0", "sflag/0.1", "HSEP/0.2"]);

    let a = data("02a-gtkg-ultrapeer-connects-out.a2b.bin");
    let (hs, _) = handshakes("02a", &a, 2);
    assert!(matches!(hs[0].start, StartLine::Connect { .. }));
    assert_eq!(hs[0].node(), Some("127.0.0.61:6461".parse().unwrap()));
    assert_eq!(hs[0].listen_addr(), hs[0].node());
    assert_eq!(hs[0].query_routing(), Some("0.2"));
    assert!(hs[1].is_ok() && hs[1].content_deflate() && hs[1].headers.len() == 1);

    let (rej, _) = handshakes(
        "01c",
        &data("01c-handshake-leaf-without-deflate.b2a.bin"),
        1,
    );
    assert_eq!(rej[0].code(), Some(403));
    assert!(
        matches!(&rej[0].start, StartLine::Status { reason, .. } if reason == "Gnet connection not compressed")
    );
    let (ban, _) = handshakes("01e", &data("01e-handshake-rate-ban-429.b2a.bin"), 1);
    assert_eq!(ban[0].code(), Some(429));

    let (old, n) = handshakes("01d", &data("01d-handshake-connect-0.4.a2b.bin"), 1);
    assert_eq!(n, 22);
    assert!(
        old[0].is_legacy(),
        "CONNECT/0.4 must be recognised as legacy"
    );
}

#[test]
fn ping_pong_values() {
    let pong = &decode_stream("03a", &data("03a-tcp-ping-pong-harness-to-gtkg.b2a.bin"))[0];
    let Message::Pong(p) = &pong.message else {
        panic!("{pong:?}")
    };
    assert_eq!(
        (p.ip.to_string(), p.port, p.files, p.kbytes),
        ("127.0.0.61".into(), 6461, 3, 1024)
    );
    let g = p.ext.ggep_blocks().next().unwrap();
    assert_eq!(&g.vendor_code().unwrap().unwrap().vendor, b"GTKG");
    assert!(g.ultrapeer_slots().unwrap().is_ok());
    assert!(g.daily_uptime().unwrap().is_ok());

    let ping = &decode_stream("03e", &data("03e-tcp-ping-pong-gtkg-to-harness.a2b.bin"))[0];
    let Message::Ping(p) = &ping.message else {
        panic!()
    };
    assert_eq!(ping.header.ttl, 4);
    let scp = p.ext.ggep_blocks().next().unwrap().scp().unwrap().unwrap();
    assert_eq!(
        scp.flags,
        Some(1),
        "gtk-gnutella ultrapeer wants ultrapeers"
    );
}

#[test]
fn query_and_hit_values() {
    let s = decode_stream("04a", &data("04a-query-keyword-and-hit.a2b.bin"));
    let Message::Query(q) = &s[0].message else {
        panic!()
    };
    assert_eq!(
        (q.text(), q.flags),
        ("gnutcap".to_owned(), QueryFlags(0x8000))
    );
    keyword_hit_values();
    urn_query_and_hit_values();
}

/// 04a's hit (gtk-gnutella's answer to a keyword query): address, records, hashes, trailer.
fn keyword_hit_values() {
    let s = decode_stream("04a", &data("04a-query-keyword-and-hit.b2a.bin"));
    let Message::QueryHit(h) = &s[0].message else {
        panic!()
    };
    assert_eq!((s[0].header.ttl, s[0].header.hops), (6, 0));
    assert_eq!(
        (h.ip.to_string(), h.port, h.speed),
        ("127.0.0.61".into(), 6461, 16)
    );
    let names: Vec<_> = h
        .results
        .iter()
        .map(|r| (r.index, r.file_size(), r.name_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            (3, 1_048_576, "gnutcap-alpha.bin".into()),
            (2, 65536, "gnutcap-bravo.txt".into()),
            (1, 100_000, "gnutcap charlie.bin".into())
        ]
    );
    assert_eq!(
        h.results[1].sha1().unwrap().to_base32(),
        "4A4FBL4XWBMMUTZEVC2RUSWBX7UPIOI7"
    );
    let tt = h.results[1].ext.ggep_blocks().next().unwrap();
    assert!(tt.get("TT").unwrap().is_cobs());
    assert_eq!(
        tt.tiger_tree_root().unwrap().unwrap().to_base32(),
        "V3OIMCCWACJQAKJCKCPXT5RM3QKWCZYT6C7SGBA"
    );
    assert_eq!(tt.creation_time().unwrap().unwrap(), 1_795_599_854);
    let t = h.trailer.as_ref().unwrap();
    assert_eq!(t.vendor_str(), "GTKG");
    assert_eq!(
        (t.push(), t.busy(), t.has_uploaded(), t.has_ggep()),
        (Some(false), Some(false), Some(false), Some(true))
    );
    let g = t.ggep().unwrap().unwrap();
    assert!(g.get("GTKGV").is_some() && g.get("BH").is_some());
    assert_eq!(h.servent.to_hex(), "54cd3102ab408d4acfb983e172dbd151");
}

/// 04b to 05a: a GGEP-H hit, URN queries, a firewalled leaf's hit and a leaf's own query.
fn urn_query_and_hit_values() {
    // GGEP-H flag: the hit carries only a COBS GGEP H bitprint.
    let s = decode_stream("04b", &data("04b-query-ggep-h-flag-and-hit.b2a.bin"));
    let Message::QueryHit(h) = &s[0].message else {
        panic!()
    };
    let urns = h.results[0].urns();
    assert_eq!(urns.len(), 1);
    assert_eq!(
        urns[0],
        Urn::parse(
            "urn:bitprint:5T6I5BX53A4BD6OMTP2QBGJ3MMDJSI56.IUHOXFDC3H6J4BH7DMITVRGNXOI5L6QMXFCLS3A"
        )
        .unwrap()
    );
    assert!(h.results[0].ext.texts().next().is_none());

    let s = decode_stream("04c", &data("04c-query-by-urn-sha1-and-hit.a2b.bin"));
    let Message::Query(q) = &s[0].message else {
        panic!()
    };
    assert_eq!(
        q.urns(),
        vec![Urn::parse("urn:sha1:W5KVHB5MIOKGIZJ26BVGC5JGWU53N3VK").unwrap()]
    );
    assert!(q.criteria.is_empty());

    let s = decode_stream("04d", &data("04d-query-by-ggep-h-and-hit.a2b.bin"));
    let Message::Query(q) = &s[0].message else {
        panic!()
    };
    assert!(q.flags.has(QueryFlags::GGEP_H));
    assert_eq!(
        q.urns()[0].sha1().unwrap().to_base32(),
        "4A4FBL4XWBMMUTZEVC2RUSWBX7UPIOI7"
    );

    // 04f: gtk-gnutella is side a (the leaf); its hit has the push flag.
    let s = decode_stream(
        "04f",
        &data("04f-query-ultrapeer-to-gtkg-leaf-and-hit.a2b.bin"),
    );
    let h = s
        .iter()
        .find_map(|d| match &d.message {
            Message::QueryHit(h) => Some(h),
            _ => None,
        })
        .expect("04f has a hit");
    assert_eq!(
        h.trailer.as_ref().unwrap().push(),
        Some(true),
        "the leaf is firewalled"
    );

    let s = decode_stream("05a", &data("05a-query-originated-by-gtkg-leaf.a2b.bin"));
    let Message::Query(q) = &s[0].message else {
        panic!()
    };
    assert_eq!(q.flags.0, 0xF900);
    assert!(q.flags.has(QueryFlags::FIREWALLED) && q.flags.has(QueryFlags::LEAF_GUIDED));
    assert!(q.ext.ggep("PR").is_some());
}

#[test]
fn bye_push_vendor_values() {
    let s = decode_stream("07a", &data("07a-bye-after-node-drop.b2a.bin"));
    let Message::Bye(b) = &s[0].message else {
        panic!()
    };
    assert_eq!(
        (b.code, b.reason_line()),
        (201, "User manual removal".to_owned())
    );
    assert_eq!(b.headers().get("Server"), Some(GTKG_UA));
    let s = decode_stream("07b", &data("07b-bye-ultrapeer-shutdown.a2b.bin"));
    let Message::Bye(b) = &s[0].message else {
        panic!()
    };
    assert_eq!(
        (b.code, b.reason_line()),
        (200, "Servent shutdown".to_owned())
    );

    let s = decode_stream("08c", &data("08c-push-message-to-ultrapeer.a2b.bin"));
    let Message::Push(p) = &s[0].message else {
        panic!()
    };
    assert_eq!(p.servent.to_hex(), "54cd3102ab408d4acfb983e172dbd151");
    assert_eq!(
        (p.index, p.ip.to_string(), p.port),
        (3, "127.0.0.62".into(), 6462)
    );

    let s = decode_stream("02f", &data("02f-vendor-messages-from-gtkg.a2b.bin"));
    let Message::Vendor(v) = &s[0].message else {
        panic!()
    };
    let list = v.supported_messages().unwrap().unwrap();
    assert_eq!(list.len(), 26);
    assert_eq!(list[0], (*b"BEAR", 4, 1));
    let vendors: Vec<_> = s
        .iter()
        .filter_map(|d| match &d.message {
            Message::Vendor(v) => Some((v.vendor_str(), v.selector)),
            _ => None,
        })
        .collect();
    assert!(vendors.contains(&("BEAR".into(), 7)) && vendors.contains(&("LIME".into(), 21)));
}

#[test]
fn http_values() {
    let reqs = requests("06a", &data("06a-http-get-n2r-range-keepalive.a2b.bin"));
    assert_eq!(reqs.len(), 2);
    assert!(
        matches!(reqs[0].target(), Target::N2R(Urn::Sha1(h)) if h.to_base32() == "5T6I5BX53A4BD6OMTP2QBGJ3MMDJSI56")
    );
    assert_eq!(
        reqs[1].range().unwrap().unwrap(),
        vec![ByteRange::From {
            start: 1024,
            end: Some(2047)
        }]
    );

    let reqs = requests("06b", &data("06b-http-get-by-index.a2b.bin"));
    assert_eq!(
        reqs[0].target(),
        Target::ByIndex {
            index: 1,
            name: "gnutcap charlie.bin".into()
        }
    );

    // gtk-gnutella clamps a range beyond EOF to the last byte; so does ByteRange::clamp.
    let req = &requests("06c", &data("06c-http-range-beyond-eof-clamped.a2b.bin"))[0];
    let resp = &responses(
        "06c",
        &data("06c-http-range-beyond-eof-clamped.b2a.bin"),
        &["GET"],
    )[0]
    .0;
    let cr = resp.content_range().unwrap().unwrap();
    let r = req.range().unwrap().unwrap()[0];
    assert_eq!(r.clamp(cr.total.unwrap()), Some((cr.start, cr.end)));
    assert_eq!(r.resolve(65536), None);
    assert_eq!(
        resp.content_urn().unwrap().to_string(),
        "urn:sha1:4A4FBL4XWBMMUTZEVC2RUSWBX7UPIOI7"
    );

    let r = &responses("06d", &data("06d-http-404-unknown-urn.b2a.bin"), &["GET"])[0].0;
    assert_eq!(r.code, 404);

    let j = requests("06j", &data("06j-http-get-servent-style-request.a2b.bin"));
    assert_eq!(j[0].headers.get("X-Queue"), Some("1.1"));
    let r = &responses(
        "06j",
        &data("06j-http-get-servent-style-request.b2a.bin"),
        &["GET"],
    )[0]
    .0;
    assert_eq!(
        r.queued().unwrap().id.as_deref(),
        Some("84132077dadb3903532f2d45e1509e99")
    );

    let rs = responses(
        "06i",
        &data("06i-http-pfsp-partial-file-206-416.b2a.bin"),
        &["GET", "GET"],
    );
    assert_eq!((rs[0].0.code, rs[1].0.code), (206, 416));
    assert_eq!(
        rs[1].0.available_ranges(),
        Some(vec![(0, 65535), (524_288, 589_823)])
    );

    let e = requests("06e", &data("06e-http-gtkg-downloads-conn1.a2b.bin"));
    assert!(
        e[0].range().is_none(),
        "gtk-gnutella's first request has no Range"
    );
    assert_eq!(e[1].alt_locs(), vec!["127.0.0.61:6461".parse().unwrap()]);
    assert!(e[1].content_urn().is_some());

    let g = responses(
        "06i-gtkg",
        &data("06i-http-gtkg-partial-download-conn1.b2a.bin"),
        &["GET"; 3],
    );
    let busy = &g.last().unwrap().0;
    assert_eq!((busy.code, busy.retry_after()), (503, Some(3600)));

    // Browse host: the chunked body is a QueryHit stream.
    let bh = responses("06h", &data("06h-http-browse-host.b2a.bin"), &["GET"]);
    let hits = decode_stream("06h body", &bh[0].1);
    assert!(
        !hits.is_empty()
            && hits
                .iter()
                .all(|d| matches!(d.message, Message::QueryHit(_)))
    );

    let head = responses("06g", &data("06g-http-head.b2a.bin"), &["HEAD"]);
    assert_eq!(head[0].0.content_length(), Some(100_000));
}
