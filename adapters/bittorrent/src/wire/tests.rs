//! Wire tests: golden layouts, round trips, split points and malformed input.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::extension::{MAX_METADATA_SIZE, metadata_piece_count, metadata_piece_len};
use super::message::{MAX_MESSAGE_LEN, id};
use super::*;
use crate::error::WireError;
use crate::wire::piece::{Bitfield, Geometry};

fn decode_all(data: &[u8]) -> Result<Vec<Message>, WireError> {
    let mut d = MessageDecoder::default();
    let mut buf = BytesMut::from(data);
    let mut out = Vec::new();
    while let Some(m) = d.decode(&mut buf)? {
        out.push(m);
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    Ok(out)
}

#[test]
fn golden_layouts() {
    let req = BlockRequest {
        index: 1,
        begin: 0x4000,
        length: 0x4000,
    };
    let cases: Vec<(Message, &[u8])> = vec![
        (Message::KeepAlive, &[0, 0, 0, 0]),
        (Message::Choke, &[0, 0, 0, 1, 0]),
        (Message::Unchoke, &[0, 0, 0, 1, 1]),
        (Message::Interested, &[0, 0, 0, 1, 2]),
        (Message::NotInterested, &[0, 0, 0, 1, 3]),
        (Message::Have(0x0102_0304), &[0, 0, 0, 5, 4, 1, 2, 3, 4]),
        (
            Message::Bitfield(Bytes::from_static(&[0xF0])),
            &[0, 0, 0, 2, 5, 0xF0],
        ),
        (
            Message::Request(req),
            &[0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (
            Message::Piece(PieceBlock {
                index: 2,
                begin: 3,
                data: Bytes::from_static(b"xy"),
            }),
            &[0, 0, 0, 11, 7, 0, 0, 0, 2, 0, 0, 0, 3, b'x', b'y'],
        ),
        (
            Message::Cancel(req),
            &[0, 0, 0, 13, 8, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (Message::Port(6881), &[0, 0, 0, 3, 9, 0x1A, 0xE1]),
        (Message::Suggest(7), &[0, 0, 0, 5, 0x0D, 0, 0, 0, 7]),
        (Message::HaveAll, &[0, 0, 0, 1, 0x0E]),
        (Message::HaveNone, &[0, 0, 0, 1, 0x0F]),
        (
            Message::Reject(req),
            &[0, 0, 0, 13, 0x10, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (Message::AllowedFast(9), &[0, 0, 0, 5, 0x11, 0, 0, 0, 9]),
        (
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"de"),
            },
            &[0, 0, 0, 4, 20, 0, b'd', b'e'],
        ),
    ];
    for (msg, wire) in cases {
        assert_eq!(&msg.to_bytes()[..], wire, "{msg:?}");
        assert_eq!(decode_all(wire).unwrap(), vec![msg]);
    }
}

#[test]
fn oversized_length_prefix_is_refused_before_buffering() {
    let mut buf = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xFF, 7][..]);
    assert_eq!(
        MessageDecoder::default().decode(&mut buf),
        Err(WireError::MessageTooLong {
            len: u32::MAX,
            max: MAX_MESSAGE_LEN
        })
    );
    let mut small = MessageDecoder::with_max_len(100);
    let mut buf = BytesMut::from(&[0, 0, 0, 101][..]);
    assert!(small.decode(&mut buf).is_err());
}

#[test]
fn wrong_payload_lengths_are_errors() {
    for bad in [
        &[0, 0, 0, 2, 0, 0][..],                            // choke with payload
        &[0, 0, 0, 4, 4, 0, 0, 0],                          // short have
        &[0, 0, 0, 12, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // short request
        &[0, 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0],              // piece without begin
        &[0, 0, 0, 2, 9, 0],                                // short port
        &[0, 0, 0, 1, 20],                                  // extended without id
    ] {
        assert!(
            matches!(decode_all(bad), Err(WireError::BadLength { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn unknown_ids_are_passed_up() {
    assert_eq!(
        decode_all(&[0, 0, 0, 2, 24, 9]).unwrap(),
        vec![Message::Unknown {
            id: 24,
            payload: Bytes::from_static(&[9])
        }]
    );
}

#[test]
fn piece_payload_is_zero_copy() {
    let wire = Message::Piece(PieceBlock {
        index: 0,
        begin: 0,
        data: Bytes::from(vec![5u8; 100]),
    })
    .to_bytes();
    let mut buf = BytesMut::from(&wire[..]);
    let base = buf.as_ptr() as usize;
    let Some(Message::Piece(p)) = MessageDecoder::default().decode(&mut buf).unwrap() else {
        panic!("not a piece");
    };
    assert_eq!(p.data.as_ptr() as usize, base + 13);
}

#[test]
fn validation_against_geometry() {
    let g = Geometry::new(32 * 1024, 100_000).unwrap(); // 4 pieces, last 1696 bytes
    let req = |index, begin, length| BlockRequest {
        index,
        begin,
        length,
    };
    assert!(req(3, 0, 1696).validate(&g).is_ok());
    assert!(matches!(
        req(4, 0, 1).validate(&g),
        Err(WireError::PieceIndexOutOfRange { index: 4, count: 4 })
    ));
    assert!(req(0, 0, 32 * 1024).validate(&g).is_err(), "above 16 KiB");
    assert!(req(3, 1, 1696).validate(&g).is_err(), "past the piece end");
    let piece = PieceBlock {
        index: 3,
        begin: 0,
        data: Bytes::from(vec![0; 1697]),
    };
    assert!(piece.validate(&g).is_err());
    // bitfield from the wire: 4 pieces → 1 byte, low 4 bits spare.
    assert!(Bitfield::from_payload(&[0xF0], g.piece_count()).is_ok());
    assert_eq!(
        Bitfield::from_payload(&[0xF8], g.piece_count()),
        Err(WireError::BitfieldSpareBits)
    );
}

#[test]
fn extended_handshake_reads_bep10_fields() {
    // Canonical form of the BEP 10 example plus the other keys we read.
    let mut raw = b"d4:ipv44:\x7f\x00\x00\x011:md11:ut_metadatai3e6:ut_pexi0e".to_vec();
    raw.extend_from_slice(b"e13:metadata_sizei31235e1:pi6881e4:reqqi250e1:v13:\xc2\xb5Torrent 1.26:yourip4:\x0a\x00\x00\x02e");
    let hs = ExtendedHandshake::decode(&raw).unwrap();
    assert_eq!(hs.id_of("ut_metadata"), Some(3));
    assert_eq!(hs.id_of("ut_pex"), None, "0 means disabled");
    assert_eq!(hs.p, Some(6881));
    assert_eq!(hs.reqq, Some(250));
    assert_eq!(hs.metadata_size, Some(31235));
    assert_eq!(hs.v.as_deref(), Some("\u{b5}Torrent 1.2"));
    assert_eq!(hs.yourip, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(hs.ipv4, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(hs.encode(), raw);
}

#[test]
fn extended_handshake_tolerates_odd_values_but_not_bad_bencode() {
    let hs = ExtendedHandshake::decode(
        b"d1:md1:ai300e1:bi-1e1:ci2ee13:metadata_sizei999999999e1:pi70000ee",
    )
    .unwrap();
    assert_eq!(hs.m.len(), 1);
    assert_eq!(hs.id_of("c"), Some(2));
    assert_eq!(hs.p, None);
    assert_eq!(hs.metadata_size, None, "above the cap");
    // The BEP 10 example as printed says `6:µT_PEX`, but "µ" is two bytes in UTF-8, so the
    // string is 7 bytes: the literal example is malformed; with the right length it decodes.
    let bep10 = "d1:md11:LT_metadatai1e6:\u{b5}T_PEXi2ee1:pi6881e1:v13:\u{b5}Torrent 1.2e";
    assert!(ExtendedHandshake::decode(bep10.as_bytes()).is_err());
    let fixed = bep10.replace("6:\u{b5}T_PEX", "7:\u{b5}T_PEX");
    let hs = ExtendedHandshake::decode(fixed.as_bytes()).unwrap();
    assert_eq!(
        (hs.id_of("LT_metadata"), hs.id_of("\u{b5}T_PEX")),
        (Some(1), Some(2))
    );
    assert_eq!(hs.encode(), fixed.as_bytes());
    assert!(ExtendedHandshake::decode(b"d1:pi1e1:md11:LT_metadatai1eee").is_err());
    assert!(ExtendedHandshake::decode(b"li1ee").is_err());
}

#[test]
fn ut_metadata_bep9_examples() {
    let req = MetadataMessage::decode(Bytes::from_static(b"d8:msg_typei0e5:piecei0ee")).unwrap();
    assert_eq!(req, MetadataMessage::Request { piece: 0 });
    assert_eq!(req.encode(), b"d8:msg_typei0e5:piecei0ee");
    let rej = MetadataMessage::decode(Bytes::from_static(b"d8:msg_typei2e5:piecei0ee")).unwrap();
    assert_eq!(rej, MetadataMessage::Reject { piece: 0 });

    let mut data = b"d8:msg_typei1e5:piecei2e10:total_sizei34256ee".to_vec();
    let tail = vec![7u8; 34256 - 2 * 16384];
    data.extend_from_slice(&tail);
    match MetadataMessage::decode(Bytes::from(data.clone())).unwrap() {
        MetadataMessage::Data {
            piece: 2,
            total_size: 34256,
            data: d,
        } => assert_eq!(&d[..], &tail[..]),
        other => panic!("{other:?}"),
    }
    // Wrong data length for the piece, piece past the end, unknown type, trailing on request.
    data.push(0);
    assert!(MetadataMessage::decode(Bytes::from(data)).is_err());
    assert!(
        MetadataMessage::decode(Bytes::from_static(
            b"d8:msg_typei1e5:piecei3e10:total_sizei34256ee"
        ))
        .is_err()
    );
    assert_eq!(
        MetadataMessage::decode(Bytes::from_static(b"d8:msg_typei7e5:piecei0ee")),
        Err(WireError::UnknownMetadataType(7))
    );
    assert!(MetadataMessage::decode(Bytes::from_static(b"d8:msg_typei0e5:piecei0eeX")).is_err());
    assert!(MetadataMessage::decode(Bytes::from_static(b"d8:msg_typei0e5:piecei-1ee")).is_err());
    assert_eq!(metadata_piece_count(34256), 3);
    assert_eq!(metadata_piece_len(34256, 2), Some(1488));
    assert_eq!(metadata_piece_len(34256, 3), None);
    assert_eq!(metadata_piece_len(16384, 1), None);
}

#[test]
fn ut_pex_compact_lists() {
    let raw = b"d5:added12:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe17:added.f2:\x02\x107:dropped6:\x0a\x00\x00\x03\x00\x50e";
    let pex = PexMessage::decode(raw).unwrap();
    assert_eq!(pex.added.len(), 2);
    assert_eq!(pex.added[0].0, "10.0.0.1:6881".parse().unwrap());
    assert!(pex.added[0].1.has(PexFlags::SEED));
    assert!(pex.added[1].1.has(PexFlags::REACHABLE));
    assert_eq!(pex.dropped, vec!["10.0.0.3:80".parse().unwrap()]);
    assert_eq!(pex.encode(), raw);
    // Bad compact peer length and mismatched flags are errors.
    assert!(matches!(
        PexMessage::decode(b"d5:added5:\x0a\x00\x00\x01\x1ae"),
        Err(WireError::Compact(_))
    ));
    assert!(PexMessage::decode(b"d5:added6:\x0a\x00\x00\x01\x1a\xe17:added.f2:\x00\x00e").is_err());
    assert!(PexMessage::decode(b"d6:added6i1ee").is_err());
}

fn arb_block() -> impl Strategy<Value = BlockRequest> {
    (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(index, begin, length)| BlockRequest {
        index,
        begin,
        length,
    })
}

fn arb_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        Just(Message::KeepAlive),
        Just(Message::Choke),
        Just(Message::Unchoke),
        Just(Message::Interested),
        Just(Message::NotInterested),
        Just(Message::HaveAll),
        Just(Message::HaveNone),
        any::<u32>().prop_map(Message::Have),
        any::<u32>().prop_map(Message::Suggest),
        any::<u32>().prop_map(Message::AllowedFast),
        any::<u16>().prop_map(Message::Port),
        arb_bytes(64).prop_map(Message::Bitfield),
        arb_block().prop_map(Message::Request),
        arb_block().prop_map(Message::Cancel),
        arb_block().prop_map(Message::Reject),
        (any::<u32>(), any::<u32>(), arb_bytes(300))
            .prop_map(|(index, begin, data)| Message::Piece(PieceBlock { index, begin, data })),
        (any::<u8>(), arb_bytes(64)).prop_map(|(id, payload)| Message::Extended { id, payload }),
        (prop_oneof![10u8..=12, 18u8..=19, 24u8..=255], arb_bytes(16))
            .prop_map(|(id, payload)| Message::Unknown { id, payload }),
    ]
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddrV6::new(
            Ipv6Addr::from(ip),
            p,
            0,
            0
        )
        .into()),
    ]
}

/// Sorted by family the way the encoder groups them, so decode gives the same order.
fn by_family<T>(mut v: Vec<T>, addr: impl Fn(&T) -> SocketAddr) -> Vec<T> {
    v.sort_by_key(|x| addr(x).is_ipv6());
    v
}

proptest! {
    #[test]
    fn messages_round_trip(msgs in proptest::collection::vec(arb_message(), 0..8)) {
        let mut wire = BytesMut::new();
        msgs.iter().for_each(|m| m.encode(&mut wire));
        prop_assert_eq!(decode_all(&wire).unwrap(), msgs);
    }

    #[test]
    fn stream_split_anywhere_decodes_the_same(msgs in proptest::collection::vec(arb_message(), 1..5)) {
        let mut wire = BytesMut::new();
        msgs.iter().for_each(|m| m.encode(&mut wire));
        for split in 0..=wire.len() {
            let mut d = MessageDecoder::default();
            let mut buf = BytesMut::from(&wire[..split]);
            let mut got = Vec::new();
            while let Some(m) = d.decode(&mut buf).unwrap() { got.push(m); }
            buf.extend_from_slice(&wire[split..]);
            while let Some(m) = d.decode(&mut buf).unwrap() { got.push(m); }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(&got, &msgs);
        }
    }

    #[test]
    fn byte_at_a_time_decodes_the_same(msgs in proptest::collection::vec(arb_message(), 1..5)) {
        let mut wire = BytesMut::new();
        msgs.iter().for_each(|m| m.encode(&mut wire));
        let mut d = MessageDecoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in &wire[..] {
            buf.extend_from_slice(&[*b]);
            while let Some(m) = d.decode(&mut buf).unwrap() { got.push(m); }
        }
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut buf = BytesMut::from(&data[..]);
        let mut d = MessageDecoder::default();
        while let Ok(Some(_)) = d.decode(&mut buf) {}
        let _ = ExtendedHandshake::decode(&data);
        let _ = PexMessage::decode(&data);
        let _ = MetadataMessage::decode(Bytes::from(data.clone()));
        let _ = Handshake::decode(&mut BytesMut::from(&data[..]));
    }

    #[test]
    fn extended_handshake_round_trips(
        m in proptest::collection::btree_map("[a-z_]{1,12}", any::<u8>(), 0..5),
        v in proptest::option::of(".{0,20}"),
        p in proptest::option::of(1u16..),
        reqq in proptest::option::of(any::<u32>()),
        metadata_size in proptest::option::of(1..=MAX_METADATA_SIZE),
        yourip in proptest::option::of(arb_addr().prop_map(|a| a.ip())),
        upload_only in any::<bool>(),
    ) {
        let hs = ExtendedHandshake { m, v, p, yourip, ipv4: None, ipv6: None, reqq, metadata_size, upload_only };
        prop_assert_eq!(ExtendedHandshake::decode(&hs.encode()).unwrap(), hs);
    }

    #[test]
    fn ut_metadata_round_trips(total_size in 1..=MAX_METADATA_SIZE, piece_seed in any::<u32>(), kind in 0..3u8) {
        let piece = piece_seed % metadata_piece_count(total_size);
        let msg = match kind {
            0 => MetadataMessage::Request { piece },
            1 => MetadataMessage::Reject { piece },
            _ => {
                let len = metadata_piece_len(total_size, piece).unwrap() as usize;
                MetadataMessage::Data { piece, total_size, data: Bytes::from(vec![0xAB; len]) }
            }
        };
        prop_assert_eq!(MetadataMessage::decode(Bytes::from(msg.encode())).unwrap(), msg);
    }

    #[test]
    fn ut_pex_round_trips(
        added in proptest::collection::vec((arb_addr(), any::<u8>().prop_map(PexFlags)), 0..10),
        dropped in proptest::collection::vec(arb_addr(), 0..10),
    ) {
        let msg = PexMessage {
            added: by_family(added, |x| x.0),
            dropped: by_family(dropped, |x| *x),
        };
        prop_assert_eq!(PexMessage::decode(&msg.encode()).unwrap(), msg);
    }

    #[test]
    fn handshake_round_trips(reserved in any::<[u8; 8]>(), ih in any::<[u8; 20]>(), pid in any::<[u8; 20]>()) {
        let hs = Handshake { reserved: Reserved(reserved), info_hash: crate::InfoHash(ih), peer_id: crate::PeerId(pid) };
        prop_assert_eq!(Handshake::parse(&hs.to_bytes()).unwrap(), hs);
    }
}

#[test]
fn ids_are_the_assigned_numbers() {
    assert_eq!((id::SUGGEST, id::REJECT, id::EXTENDED), (13, 16, 20));
}

/// Every decoder of peer, tracker and DHT input refuses a bencode nested a million deep
/// (issue 15) with an error, in bounded work and without recursing into the stack.
#[test]
fn deep_bencode_is_refused_by_every_decoder() {
    let n = 1_000_000;
    let mut lists = vec![b'l'; n];
    lists.extend(std::iter::repeat_n(b'e', n));
    let mut dicts = Vec::new();
    for _ in 0..n / 4 {
        dicts.extend_from_slice(b"d1:a");
    }
    dicts.extend(std::iter::repeat_n(b'e', n / 4));
    let t0 = std::time::Instant::now();
    for deep in [&lists, &dicts] {
        assert!(ExtendedHandshake::decode(deep).is_err());
        assert!(MetadataMessage::decode(Bytes::copy_from_slice(deep)).is_err());
        assert!(PexMessage::decode(deep).is_err());
        assert!(crate::wire::krpc::Message::decode(deep).is_err());
        assert!(crate::wire::tracker::http::AnnounceResponse::parse(deep).is_err());
        assert!(crate::wire::metainfo::Metainfo::parse(deep).is_err());
    }
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t0.elapsed()
    );
}
