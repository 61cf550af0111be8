//! Byte layouts from specs/ed2k.md, and malformed input that must be rejected.

use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::{Bytes, BytesMut};
use junction_ed2k::WireError;
use junction_ed2k::wire::peer::{Hello, MLDONKEY_MAGIC, ed2k_part_count};
use junction_ed2k::wire::server::{IdChange, LoginRequest, ObfuSource, SourceRequest};
use junction_ed2k::wire::tag::{ct, ft};
use junction_ed2k::wire::{
    ByteRange, ClientId, Comparison, Frame, PartStatus, PeerMessage, Protocol, SearchExpr,
    ServerMessage, Tag, TagEncoding, TagName, TagValue, TagsExt, frame, tag,
};

const H: [u8; 16] = [0xAB; 16];

fn payload_s(m: &ServerMessage) -> Vec<u8> {
    let mut v = Vec::new();
    m.encode(&mut v, TagEncoding::Classic).unwrap();
    v
}
fn payload_p(m: &PeerMessage) -> Vec<u8> {
    let mut v = Vec::new();
    m.encode(&mut v, TagEncoding::Classic).unwrap();
    v
}
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn tcp_header_counts_the_opcode() {
    let f = ServerMessage::ServerStatus { users: 1, files: 2 }
        .to_frame(TagEncoding::Classic)
        .unwrap();
    let bytes = f.to_bytes().unwrap();
    assert_eq!(
        &bytes[..],
        &[0xE3, 9, 0, 0, 0, 0x34, 1, 0, 0, 0, 2, 0, 0, 0]
    );
}

#[test]
fn classic_and_compact_tags() {
    let t = Tag::string(ft::FILENAME, "abc");
    let mut classic = Vec::new();
    t.encode(&mut classic, TagEncoding::Classic).unwrap();
    assert_eq!(
        classic,
        [0x02, 0x01, 0x00, 0x01, 0x03, 0x00, b'a', b'b', b'c']
    );
    let mut compact = Vec::new();
    t.encode(&mut compact, TagEncoding::Compact).unwrap();
    // STR3 = 0x13, | 0x80 for the 1-byte name.
    assert_eq!(compact, [0x93, 0x01, b'a', b'b', b'c']);

    let size = Tag::id(ft::FILESIZE, TagValue::uint(70_000));
    let mut c = Vec::new();
    size.encode(&mut c, TagEncoding::Compact).unwrap();
    assert_eq!(c, [0x83, 0x02, 0x70, 0x11, 0x01, 0x00]);
    assert_eq!(TagValue::uint(5), TagValue::U8(5));
    assert_eq!(TagValue::uint(1 << 40), TagValue::U64(1 << 40));

    // String-named compact tag keeps its name and the short string type.
    let named = Tag::named("Artist", TagValue::String("x".into()));
    let mut n = Vec::new();
    named.encode(&mut n, TagEncoding::Compact).unwrap();
    assert_eq!(n, cat(&[&[0x11, 6, 0], b"Artist", b"x"]));

    // STR17..STR22 are read; 0x27 is not a type.
    let mut s17 = vec![0xA1u8, 0x01];
    s17.extend_from_slice(&[b'z'; 17]);
    assert_eq!(
        Tag::decode(&mut &s17[..]).unwrap().value,
        TagValue::String([b'z'; 17][..].into())
    );
    assert_eq!(
        Tag::decode(&mut &[0xA7u8, 0x01, 0][..]),
        Err(WireError::UnknownTagType(0x27))
    );
}

#[test]
fn file_size_from_split_tags() {
    let tags = [
        Tag::u32(ft::FILESIZE, 0x0000_0010),
        Tag::u32(ft::FILESIZE_HI, 0x2),
    ];
    assert_eq!(tags.file_size(), Some(0x2_0000_0010));
    let tags = [Tag::id(ft::FILESIZE, TagValue::U64(5_000_000_000))];
    assert_eq!(tags.file_size(), Some(5_000_000_000));
}

#[test]
fn login_request_layout() {
    let m = ServerMessage::LoginRequest(LoginRequest {
        user_hash: H,
        client_id: ClientId(0),
        port: 4662,
        tags: vec![Tag::u32(ct::VERSION, ct::EDONKEY_VERSION)],
    });
    assert_eq!(
        payload_s(&m),
        cat(&[
            &H,
            &[0, 0, 0, 0, 0x36, 0x12, 1, 0, 0, 0],
            &[0x03, 1, 0, 0x11, 0x3C, 0, 0, 0]
        ])
    );
}

#[test]
fn search_request_spec_example() {
    let wire = [
        0x00, 0x00, 0x01, 0x03, 0x00, b'f', b'o', b'o', 0x03, 0xE8, 0x03, 0x00, 0x00, 0x01, 0x01,
        0x00, 0x02,
    ];
    let m = ServerMessage::decode(0x16, Bytes::copy_from_slice(&wire)).unwrap();
    assert_eq!(
        m,
        ServerMessage::SearchRequest(SearchExpr::and(
            SearchExpr::keywords("foo"),
            SearchExpr::Numeric {
                value: 1000,
                op: Comparison::Greater,
                tag: TagName::Id(ft::FILESIZE)
            }
        ))
    );
    assert_eq!(payload_s(&m), wire);
    // Values above 32 bits use the 0x08 node.
    let big = SearchExpr::Numeric {
        value: 1 << 33,
        op: Comparison::Less,
        tag: TagName::Id(ft::FILESIZE),
    };
    let mut b = Vec::new();
    big.encode(&mut b).unwrap();
    assert_eq!(b, [0x08, 0, 0, 0, 0, 2, 0, 0, 0, 2, 1, 0, 2]);
}

#[test]
fn id_change_lengths() {
    let ip = Ipv4Addr::new(1, 2, 3, 4);
    let id = ClientId::from_ipv4(ip);
    assert!(!id.is_low_id());
    assert_eq!(id.to_ipv4(), ip);
    assert!(ClientId(16_777_215).is_low_id());
    for (len, want) in [
        (4, (None, None, None)),
        (8, (Some(0x511), None, None)),
        (12, (Some(0x511), Some(4661), None)),
        (16, (Some(0x511), Some(4661), None)),
        (
            20,
            (
                Some(0x511),
                Some(4661),
                Some((Ipv4Addr::new(9, 8, 7, 6), 4665)),
            ),
        ),
    ] {
        let full = cat(&[
            &[1, 2, 3, 4],
            &0x511u32.to_le_bytes(),
            &4661u32.to_le_bytes(),
            &[9, 8, 7, 6],
            &4665u32.to_le_bytes(),
        ]);
        let m = ServerMessage::decode(0x40, Bytes::copy_from_slice(&full[..len])).unwrap();
        assert_eq!(
            m,
            ServerMessage::IdChange(IdChange {
                client_id: id,
                tcp_flags: want.0,
                aux_port: want.1,
                reported: want.2,
            }),
            "len {len}"
        );
    }
    assert!(ServerMessage::decode(0x40, Bytes::from_static(&[1, 2, 3])).is_err());
}

#[test]
fn get_sources_small_and_large() {
    let m = ServerMessage::GetSources(vec![
        SourceRequest {
            hash: H,
            size: 1000,
        },
        SourceRequest {
            hash: H,
            size: 5_000_000_000,
        },
    ]);
    let p = payload_s(&m);
    assert_eq!(
        p,
        cat(&[
            &H,
            &1000u32.to_le_bytes(),
            &H,
            &[0, 0, 0, 0],
            &5_000_000_000u64.to_le_bytes()
        ])
    );
    assert_eq!(ServerMessage::decode(0x19, p.into()).unwrap(), m);
}

#[test]
fn found_sources_obfu_userhash_bit_0x80() {
    let p = cat(&[
        &H,
        &[2],
        &[1, 2, 3, 4, 0x36, 0x12, 0x80],
        &[0x11; 16],
        &[5, 6, 7, 8, 0x37, 0x12, 0x01],
    ]);
    let m = ServerMessage::decode(0x44, p.clone().into()).unwrap();
    let ServerMessage::FoundSourcesObfu { sources, .. } = &m else {
        panic!()
    };
    assert_eq!(
        sources,
        &[
            ObfuSource {
                client_id: ClientId::from_ipv4(Ipv4Addr::new(1, 2, 3, 4)),
                port: 4662,
                crypt_options: 0x80,
                user_hash: Some([0x11; 16])
            },
            ObfuSource {
                client_id: ClientId::from_ipv4(Ipv4Addr::new(5, 6, 7, 8)),
                port: 4663,
                crypt_options: 0x01,
                user_hash: None
            }
        ]
    );
    assert_eq!(payload_s(&m), p);
    // Count says 3 but only 2 follow.
    let mut bad = p.clone();
    bad[16] = 3;
    assert!(ServerMessage::decode(0x44, bad.into()).is_err());
}

#[test]
fn callback_requested_short_and_long() {
    let short = [1, 2, 3, 4, 0x36, 0x12];
    let m = ServerMessage::decode(0x35, Bytes::copy_from_slice(&short)).unwrap();
    assert_eq!(
        m,
        ServerMessage::CallbackRequested {
            addr: SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 4662),
            crypt: None
        }
    );
    let long = cat(&[&short, &[0x81], &H]);
    let m = ServerMessage::decode(0x35, long.clone().into()).unwrap();
    assert_eq!(payload_s(&m), long);
}

#[test]
fn search_result_more_byte() {
    let entry = cat(&[
        &H,
        &[0; 4],
        &[0; 2],
        &[1, 0, 0, 0],
        &[0x02, 1, 0, 1, 1, 0, b'x'],
    ]);
    let p = cat(&[&[1, 0, 0, 0], &entry, &[1]]);
    let ServerMessage::SearchResult(r) = ServerMessage::decode(0x33, p.into()).unwrap() else {
        panic!()
    };
    assert_eq!(r.more, Some(true));
    assert_eq!(r.files[0].name().unwrap().to_string(), "x");
    let p = cat(&[&[1, 0, 0, 0], &entry]);
    let ServerMessage::SearchResult(r) = ServerMessage::decode(0x33, p.into()).unwrap() else {
        panic!()
    };
    assert_eq!(r.more, None);
}

#[test]
fn hello_layout_and_mldonkey_trailer() {
    let hello = Hello {
        user_hash: H,
        client_id: ClientId(7),
        port: 4662,
        tags: vec![],
        server: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 4661),
        trailer: Some(MLDONKEY_MAGIC),
    };
    let p = payload_p(&PeerMessage::Hello(hello.clone()));
    assert_eq!(
        p,
        cat(&[
            &[0x10],
            &H,
            &[7, 0, 0, 0, 0x36, 0x12, 0, 0, 0, 0, 10, 0, 0, 1, 0x35, 0x12],
            b"MLDK"
        ])
    );
    // The answer has no hash-size byte.
    let a = payload_p(&PeerMessage::HelloAnswer(hello));
    assert_eq!(a[..], p[1..]);
    let mut bad = p.clone();
    bad[0] = 15;
    assert!(PeerMessage::decode(Protocol::Edonkey, 0x01, bad.into()).is_err());
}

#[test]
fn part_status_bitfield() {
    // Exact multiple of PARTSIZE has one extra entry.
    assert_eq!(ed2k_part_count(9_727_999), 1);
    assert_eq!(ed2k_part_count(9_728_000), 2);
    assert_eq!(ed2k_part_count(9_728_001), 2);
    assert_eq!(ed2k_part_count(19_456_000), 3);

    let mut s = PartStatus::for_file_size(10 * 9_728_000 - 1).unwrap();
    assert_eq!(s.len(), 10);
    s.set(0, true);
    s.set(9, true);
    s.set(50, true); // out of range: ignored
    let m = PeerMessage::FileStatus {
        hash: H,
        parts: s.clone(),
    };
    let p = payload_p(&m);
    // LSB first: part 0 = bit 0 of byte 0, part 9 = bit 1 of byte 1.
    assert_eq!(p[16..], [10, 0, 0b0000_0001, 0b0000_0010]);
    assert!(s.check_for_size(10 * 9_728_000 - 1).is_ok());
    assert!(matches!(
        s.check_for_size(9_728_000),
        Err(WireError::PartCountMismatch {
            got: 10,
            expected: 2,
            ..
        })
    ));
    assert!(PartStatus::new(0).check_for_size(123).is_ok());
    assert_eq!(s.complete_count(), 2);
    // Padding bits set by a sloppy peer are ignored.
    let mut sloppy = p.clone();
    sloppy[19] = 0xFE;
    let PeerMessage::FileStatus { parts, .. } =
        PeerMessage::decode(Protocol::Edonkey, 0x50, sloppy.into()).unwrap()
    else {
        panic!()
    };
    assert!(parts.get(9) && !parts.get(8) && parts.complete_count() == 2);
    // Bitfield shorter than the count.
    let short = cat(&[&H, &[20, 0, 0xFF]]);
    assert!(PeerMessage::decode(Protocol::Edonkey, 0x50, short.into()).is_err());
}

#[test]
fn request_parts_32_and_64() {
    let r = [
        ByteRange::new(0, 184_320).unwrap(),
        ByteRange::new(184_320, 368_640).unwrap(),
        ByteRange::default(),
    ];
    let m = PeerMessage::RequestParts { hash: H, ranges: r };
    assert_eq!((m.protocol(), m.opcode()), (Protocol::Edonkey, 0x47));
    let p = payload_p(&m);
    let mut want = H.to_vec();
    for v in [0u32, 184_320, 0, 184_320, 368_640, 0] {
        want.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(p, want);

    let big = PeerMessage::RequestParts {
        hash: H,
        ranges: [
            ByteRange::new(5_000_000_000, 5_000_184_320).unwrap(),
            ByteRange::default(),
            ByteRange::default(),
        ],
    };
    assert_eq!((big.protocol(), big.opcode()), (Protocol::Emule, 0xA3));
    assert_eq!(payload_p(&big).len(), 16 + 48);

    // start > end is rejected.
    let mut bad = H.to_vec();
    for v in [10u32, 0, 0, 5, 0, 0] {
        bad.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(
        PeerMessage::decode(Protocol::Edonkey, 0x47, bad.into()),
        Err(WireError::InvalidRange { start: 10, end: 5 })
    );
}

#[test]
fn data_packets() {
    let m = PeerMessage::SendingPart {
        hash: H,
        range: ByteRange::new(100, 105).unwrap(),
        data: Bytes::from_static(b"hello"),
    };
    let p = payload_p(&m);
    assert_eq!(p, cat(&[&H, &[100, 0, 0, 0, 105, 0, 0, 0], b"hello"]));
    // Data length must equal end - start.
    let mut long = p.clone();
    long.push(b'!');
    assert!(PeerMessage::decode(Protocol::Edonkey, 0x46, long.into()).is_err());
    assert!(
        PeerMessage::decode(Protocol::Edonkey, 0x46, p[..p.len() - 1].to_vec().into()).is_err()
    );

    let big = PeerMessage::SendingPart {
        hash: H,
        range: ByteRange::new(1 << 33, (1 << 33) + 1).unwrap(),
        data: Bytes::from_static(b"x"),
    };
    assert_eq!((big.protocol(), big.opcode()), (Protocol::Emule, 0xA2));
    assert_eq!(payload_p(&big).len(), 16 + 16 + 1);

    let c = PeerMessage::CompressedPart {
        hash: H,
        start: 9_728_000,
        packed_total: 3,
        data: Bytes::from_static(b"zzz"),
    };
    assert_eq!((c.protocol(), c.opcode()), (Protocol::Emule, 0x40));
    assert_eq!(
        payload_p(&c),
        cat(&[&H, &9_728_000u32.to_le_bytes(), &[3, 0, 0, 0], b"zzz"])
    );
    // The chunk cannot exceed the announced total.
    let bad = cat(&[&H, &[0; 4], &[1, 0, 0, 0], b"zzz"]);
    assert!(PeerMessage::decode(Protocol::Emule, 0x40, bad.into()).is_err());
}

#[test]
fn small_emule_layouts() {
    assert_eq!(
        payload_p(&PeerMessage::QueueRanking(7)),
        cat(&[&[7, 0], &[0; 10]])
    );
    assert_eq!(
        payload_p(&PeerMessage::RequestSources2 {
            version: 4,
            options: 0,
            hash: H
        }),
        cat(&[&[4, 0, 0], &H])
    );
    assert_eq!(
        PeerMessage::decode(Protocol::Emule, 0x9C, Bytes::copy_from_slice(&H)).unwrap(),
        PeerMessage::AichAnswerFailed(H)
    );
    assert_eq!(
        payload_p(&PeerMessage::HashsetAnswer {
            hash: H,
            parts: vec![[1; 16]]
        }),
        cat(&[&H, &[1, 0], &[1; 16]])
    );
}

#[test]
fn packed_frame_carries_emule_opcodes() {
    let m = PeerMessage::QueueRanking(3);
    let mut f = m.to_frame(TagEncoding::Compact).unwrap();
    f.protocol = Protocol::Packed;
    let mut wire = BytesMut::new();
    f.encode(&mut wire).unwrap();
    assert_eq!(wire[0], 0xD4);
    let got = frame::decode(&mut wire).unwrap().unwrap();
    assert_eq!(PeerMessage::decode_frame(&got).unwrap(), m);
    // On a server link the same opcode is read as an 0xE3 message.
    let f = Frame::new(Protocol::Packed, 0x34, vec![1, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(
        ServerMessage::decode_frame(&f).unwrap(),
        ServerMessage::ServerStatus { users: 1, files: 2 }
    );
}

#[test]
fn malformed_inputs_are_errors() {
    // Unknown opcodes.
    assert_eq!(
        ServerMessage::decode(0x77, Bytes::new()),
        Err(WireError::UnknownOpcode {
            protocol: 0xE3,
            opcode: 0x77
        })
    );
    assert!(PeerMessage::decode(Protocol::Edonkey, 0x02, Bytes::new()).is_err());
    assert!(PeerMessage::decode(Protocol::Emule, 0x03, Bytes::new()).is_err());
    // Tag count far larger than the bytes present: rejected before allocating.
    let mut b = &[0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x01, 0x05][..];
    assert!(matches!(
        tag::decode_list(&mut b),
        Err(WireError::CountTooLarge {
            count: 0xFFFF_FFFF,
            ..
        })
    ));
    // Truncated tags of every kind.
    for t in [
        &[0x02, 0x01, 0x00, 0x01, 0x05, 0x00, b'a'][..],
        &[0x01, 0x01, 0x00, 0x01, 0x00],
        &[0x07, 0x01, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x00],
        &[0x83, 0x01, 0x00],
        &[0x02, 0x09, 0x00, b'a'],
        &[0x90, 0x01],
        &[],
    ] {
        assert!(Tag::decode(&mut &t[..]).is_err(), "{t:?}");
    }
    // File entry count bound.
    let p = [0xFF, 0xFF, 0xFF, 0x00, 0, 0, 0];
    assert!(matches!(
        ServerMessage::decode(0x15, Bytes::copy_from_slice(&p)),
        Err(WireError::CountTooLarge { .. })
    ));
    // Hashset count bound.
    let p = cat(&[&H, &[0xFF, 0xFF], &[0; 32]]);
    assert!(PeerMessage::decode(Protocol::Edonkey, 0x52, p.into()).is_err());
    // Source exchange with too many sources for the bytes.
    let p = cat(&[&[4], &H, &[0xF5, 0x01]]);
    assert!(PeerMessage::decode(Protocol::Emule, 0x84, p.into()).is_err());
    // File identifier with mandatory option bits.
    assert!(PeerMessage::decode(Protocol::Emule, 0xB1, Bytes::from_static(&[0x08, 0])).is_err());
    // Error messages name the value and the limit.
    let e = WireError::FrameTooLarge {
        len: 123_456_789,
        max: 2 * 1024 * 1024,
    };
    assert_eq!(
        e.to_string(),
        "frame length 123456789 exceeds the 2097152 byte maximum"
    );
}
