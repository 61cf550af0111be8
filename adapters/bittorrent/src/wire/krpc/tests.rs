//! KRPC tests: the BEP 5 example messages, round trips, malformed input.

use std::net::{Ipv6Addr, SocketAddrV6};

use proptest::prelude::*;

use super::*;

fn id(s: &[u8; 20]) -> NodeId {
    NodeId(*s)
}

fn check_golden(wire: &[u8], want: &Message) {
    let got = Message::decode(wire).unwrap();
    assert_eq!(&got, want);
    assert_eq!(got.encode(), wire, "canonical re-encoding");
}

fn msg(t: &[u8], body: Body) -> Message {
    Message {
        transaction_id: t.to_vec(),
        version: None,
        ip: None,
        read_only: false,
        body,
    }
}

#[test]
fn bep5_examples() {
    check_golden(
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        &msg(
            b"aa",
            Body::Query(Query {
                id: id(b"abcdefghij0123456789"),
                method: Method::Ping,
            }),
        ),
    );
    check_golden(
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        &msg(
            b"aa",
            Body::Response(Response {
                id: id(b"mnopqrstuvwxyz123456"),
                ..Response::default()
            }),
        ),
    );
    check_golden(
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        &msg(
            b"aa",
            Body::Error(ErrorBody {
                code: code::GENERIC,
                message: "A Generic Error Ocurred".into(),
            }),
        ),
    );
    check_golden(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        &msg(
            b"aa",
            Body::Query(Query {
                id: id(b"abcdefghij0123456789"),
                method: Method::FindNode {
                    target: id(b"mnopqrstuvwxyz123456"),
                    want: Want::default(),
                },
            }),
        ),
    );
    check_golden(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        &msg(
            b"aa",
            Body::Query(Query {
                id: id(b"abcdefghij0123456789"),
                method: Method::GetPeers {
                    info_hash: InfoHash(*b"mnopqrstuvwxyz123456"),
                    want: Want::default(),
                },
            }),
        ),
    );
    check_golden(
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        &msg(
            b"aa",
            Body::Query(Query {
                id: id(b"abcdefghij0123456789"),
                method: Method::AnnouncePeer {
                    info_hash: InfoHash(*b"mnopqrstuvwxyz123456"),
                    port: 6881,
                    token: b"aoeusnth".to_vec(),
                    implied_port: true,
                },
            }),
        ),
    );
    // get_peers response with values: "axje.u" = 97.120.106.101:11893, "idhtnm" = 105.100.104.116:28269.
    let r = Message::decode(
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
    )
    .unwrap();
    let Body::Response(r) = r.body else {
        panic!("not a response")
    };
    assert_eq!(r.token.as_deref(), Some(&b"aoeusnth"[..]));
    assert_eq!(
        r.values,
        vec![
            "97.120.106.101:11893".parse::<SocketAddr>().unwrap(),
            "105.100.104.116:28269".parse().unwrap()
        ]
    );
}

#[test]
fn sample_infohashes_and_nodes() {
    let mut nodes = b"abcdefghij0123456789".to_vec();
    nodes.extend_from_slice(&[127, 0, 0, 1, 0x1A, 0xE1]);
    let mut wire = b"d1:rd2:id20:mnopqrstuvwxyz123456".to_vec();
    wire.extend_from_slice(b"8:intervali21600e5:nodes26:");
    wire.extend_from_slice(&nodes);
    wire.extend_from_slice(b"3:numi1234e7:samples40:");
    wire.extend_from_slice(&[0x11; 40]);
    wire.extend_from_slice(b"e1:t2:ab1:y1:re");
    let m = Message::decode(&wire).unwrap();
    let Body::Response(r) = &m.body else {
        panic!("not a response")
    };
    assert_eq!(r.interval, Some(21600));
    assert_eq!(r.num, Some(1234));
    assert_eq!(r.samples.as_ref().map(Vec::len), Some(2));
    assert_eq!(r.nodes[0].addr, "127.0.0.1:6881".parse().unwrap());
    assert_eq!(r.nodes[0].id, id(b"abcdefghij0123456789"));
    assert_eq!(m.encode(), wire);

    let q = b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q17:sample_infohashes1:t2:aa1:y1:qe";
    check_golden(
        q,
        &msg(
            b"aa",
            Body::Query(Query {
                id: id(b"abcdefghij0123456789"),
                method: Method::SampleInfohashes {
                    target: id(b"mnopqrstuvwxyz123456"),
                    want: Want { n4: true, n6: true },
                },
            }),
        ),
    );
}

#[test]
fn malformed_messages_are_errors() {
    for bad in [
        &b"d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe"[..], // short id
        b"d1:q4:ping1:t2:aa1:y1:qe",                                     // no args
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:y1:qe",            // no t
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:xe",     // bad y
        b"d1:rd2:id20:mnopqrstuvwxyz1234565:nodes25:aaaaaaaaaaaaaaaaaaaaaaaaae1:t2:aa1:y1:re", // ragged nodes
        b"d1:rd2:id20:mnopqrstuvwxyz1234566:valuesl5:abcdeee1:t2:aa1:y1:re", // bad compact peer
        b"d1:rd2:id20:mnopqrstuvwxyz1234567:samples3:abce1:t2:aa1:y1:re", // ragged samples
        b"d1:eli201ee1:t2:aa1:y1:ee",                                    // error without message
        b"d1:t2:aa1:y1:q1:ad2:id20:abcdefghij0123456789e1:q4:pinge",     // keys unsorted
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe", // port range
        b"le",
    ] {
        assert!(Message::decode(bad).is_err(), "{}", bad.escape_ascii());
    }
    // The transaction id survives for a 203 reply when the rest is unusable.
    assert_eq!(
        peek_transaction_id(b"d1:q4:ping1:t2:aa1:y1:qe"),
        Some(b"aa".to_vec())
    );
    // Unknown methods decode so the node can answer 204.
    let m = Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q3:foo1:t2:aa1:y1:qe").unwrap();
    assert!(matches!(
        m.body,
        Body::Query(Query {
            method: Method::Unknown(ref n),
            ..
        }) if n == b"foo"
    ));
}

#[test]
fn xor_distance_and_buckets() {
    let a = NodeId([0; 20]);
    let mut b = [0u8; 20];
    b[0] = 0x80;
    assert_eq!(a.bucket_index(&NodeId(b)), Some(159));
    let mut c = [0u8; 20];
    c[19] = 1;
    assert_eq!(a.bucket_index(&NodeId(c)), Some(0));
    c[19] = 0x10;
    assert_eq!(a.bucket_index(&NodeId(c)), Some(4));
    assert_eq!(a.bucket_index(&a), None);
    assert!(a.distance(&NodeId(c)) < a.distance(&NodeId(b)));
    assert_eq!(NodeId(b).distance(&NodeId(b)).leading_zeros(), 160);
}

fn arb_id() -> impl Strategy<Value = NodeId> {
    any::<[u8; 20]>().prop_map(NodeId)
}

fn arb_want() -> impl Strategy<Value = Want> {
    (any::<bool>(), any::<bool>()).prop_map(|(n4, n6)| Want { n4, n6 })
}

fn arb_v6() -> impl Strategy<Value = SocketAddrV6> {
    (any::<[u8; 16]>(), any::<u16>())
        .prop_map(|(ip, p)| SocketAddrV6::new(Ipv6Addr::from(ip), p, 0, 0))
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        arb_v6().prop_map(SocketAddr::V6),
    ]
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..=max)
}

fn arb_body() -> impl Strategy<Value = Body> {
    let method = prop_oneof![
        Just(Method::Ping),
        (arb_id(), arb_want()).prop_map(|(target, want)| Method::FindNode { target, want }),
        (any::<[u8; 20]>(), arb_want()).prop_map(|(h, want)| Method::GetPeers {
            info_hash: InfoHash(h),
            want
        }),
        (
            any::<[u8; 20]>(),
            any::<u16>(),
            arb_bytes(MAX_TOKEN_LEN),
            any::<bool>()
        )
            .prop_map(|(h, port, token, implied_port)| Method::AnnouncePeer {
                info_hash: InfoHash(h),
                port,
                token,
                implied_port
            }),
        (arb_id(), arb_want()).prop_map(|(target, want)| Method::SampleInfohashes { target, want }),
        "[a-z_]{1,12}"
            .prop_filter("not a known method", |s| !matches!(
                s.as_str(),
                "ping" | "find_node" | "get_peers" | "announce_peer" | "sample_infohashes"
            ))
            .prop_map(|s| Method::Unknown(s.into_bytes())),
    ];
    let query = (arb_id(), method).prop_map(|(id, method)| Body::Query(Query { id, method }));
    let response = (
        arb_id(),
        proptest::collection::vec(
            (arb_id(), any::<[u8; 4]>(), any::<u16>()).prop_map(|(id, ip, p)| NodeV4 {
                id,
                addr: SocketAddrV4::new(ip.into(), p),
            }),
            0..5,
        ),
        proptest::collection::vec(
            (arb_id(), arb_v6()).prop_map(|(id, addr)| NodeV6 { id, addr }),
            0..3,
        ),
        proptest::collection::vec(arb_addr(), 0..5),
        proptest::option::of(arb_bytes(MAX_TOKEN_LEN)),
        proptest::option::of(proptest::collection::vec(
            any::<[u8; 20]>().prop_map(InfoHash),
            0..5,
        )),
        proptest::option::of(0..=i64::MAX as u64),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(id, nodes, nodes6, values, token, samples, num, interval)| {
                Body::Response(Response {
                    id,
                    nodes,
                    nodes6,
                    values,
                    token,
                    samples,
                    num,
                    interval,
                })
            },
        );
    let error = (any::<i64>(), ".{0,30}")
        .prop_map(|(code, message)| Body::Error(ErrorBody { code, message }));
    prop_oneof![query, response, error]
}

proptest! {
    #[test]
    fn messages_round_trip(
        transaction_id in arb_bytes(MAX_TRANSACTION_ID_LEN),
        version in proptest::option::of(arb_bytes(4)),
        ip in proptest::option::of(arb_addr()),
        read_only in any::<bool>(),
        body in arb_body(),
    ) {
        let m = Message { transaction_id, version, ip, read_only, body };
        let wire = m.encode();
        prop_assert_eq!(Message::decode(&wire).unwrap(), m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Message::decode(&data);
        let _ = peek_transaction_id(&data);
    }

    #[test]
    fn bucket_index_matches_distance_order(a in arb_id(), b in arb_id(), c in arb_id()) {
        if a.distance(&b) < a.distance(&c) {
            prop_assert!(a.bucket_index(&b) <= a.bucket_index(&c));
        }
    }
}
