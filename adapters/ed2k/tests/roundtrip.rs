//! Property tests: encode → decode → equal for tags, search trees and every message type;
//! truncated and random input never panics.

use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::{Bytes, BytesMut};
use junction_ed2k::wire::frame;
use junction_ed2k::wire::peer::{
    EmuleInfo, ExchangeSource, FileIdentifier, FileRequestExt, Hello, SourceExchange,
};
use junction_ed2k::wire::server::{
    IdChange, LoginRequest, ObfuSource, SearchResults, Source, SourceRequest,
};
use junction_ed2k::wire::{
    ByteRange, ClientId, Comparison, FileEntry, Frame, PartStatus, PeerMessage, Protocol,
    SearchExpr, ServerMessage, Tag, TagEncoding, TagName, TagValue, WireString, tag,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn wstr(max: usize) -> impl Strategy<Value = WireString> {
    vec(any::<u8>(), 0..max).prop_map(|v| WireString::from(&v[..]))
}
fn hash() -> impl Strategy<Value = [u8; 16]> {
    any::<[u8; 16]>()
}
fn addr() -> impl Strategy<Value = SocketAddrV4> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddrV4::new(Ipv4Addr::from(ip), p))
}
fn tag_name() -> impl Strategy<Value = TagName> {
    prop_oneof![
        any::<u8>().prop_map(TagName::Id),
        // 1-byte string names are indistinguishable from IDs on the wire.
        vec(any::<u8>(), 2..12).prop_map(|v| TagName::Name(WireString::from(&v[..]))),
    ]
}
fn tag_value() -> impl Strategy<Value = TagValue> {
    prop_oneof![
        hash().prop_map(TagValue::Hash16),
        wstr(40).prop_map(TagValue::String),
        any::<u32>().prop_map(TagValue::U32),
        any::<f32>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(TagValue::Float),
        any::<bool>().prop_map(TagValue::Bool),
        (0u16..200).prop_flat_map(|bits| {
            vec(any::<u8>(), usize::from(bits) / 8 + 1).prop_map(move |d| TagValue::BoolArray {
                bits,
                data: d.into(),
            })
        }),
        vec(any::<u8>(), 0..40).prop_map(|v| TagValue::Blob(v.into())),
        any::<u16>().prop_map(TagValue::U16),
        any::<u8>().prop_map(TagValue::U8),
        vec(any::<u8>(), 0..40).prop_map(|v| TagValue::Bsob(v.into())),
        any::<u64>().prop_map(TagValue::U64),
    ]
}
fn tag_() -> impl Strategy<Value = Tag> {
    (tag_name(), tag_value()).prop_map(|(n, v)| Tag::new(n, v))
}
fn tags() -> impl Strategy<Value = Vec<Tag>> {
    vec(tag_(), 0..6)
}
fn encoding() -> impl Strategy<Value = TagEncoding> {
    prop_oneof![Just(TagEncoding::Classic), Just(TagEncoding::Compact)]
}
fn comparison() -> impl Strategy<Value = Comparison> {
    prop_oneof![
        Just(Comparison::Equal),
        Just(Comparison::Greater),
        Just(Comparison::Less),
        Just(Comparison::GreaterOrEqual),
        Just(Comparison::LessOrEqual),
        Just(Comparison::NotEqual),
    ]
}
fn search() -> impl Strategy<Value = SearchExpr> {
    let leaf =
        prop_oneof![
            wstr(20).prop_map(SearchExpr::Keywords),
            (wstr(20), tag_name()).prop_map(|(value, tag)| SearchExpr::MetaString { value, tag }),
            (any::<u64>(), comparison(), tag_name())
                .prop_map(|(value, op, tag)| SearchExpr::Numeric { value, op, tag }),
            (any::<u32>(), comparison(), tag_name()).prop_map(|(v, op, tag)| SearchExpr::Numeric {
                value: v.into(),
                op,
                tag
            }),
        ];
    leaf.prop_recursive(6, 40, 2, |inner| {
        (0u8..3, inner.clone(), inner).prop_map(|(op, a, b)| match op {
            0 => SearchExpr::and(a, b),
            1 => SearchExpr::or(a, b),
            _ => SearchExpr::not(a, b),
        })
    })
}
fn file_entry() -> impl Strategy<Value = FileEntry> {
    (hash(), any::<u32>(), any::<u16>(), tags()).prop_map(|(hash, id, port, tags)| FileEntry {
        hash,
        client_id: ClientId(id),
        port,
        tags,
    })
}
fn results() -> impl Strategy<Value = SearchResults> {
    (vec(file_entry(), 0..4), proptest::option::of(any::<bool>()))
        .prop_map(|(files, more)| SearchResults { files, more })
}
fn source_requests() -> impl Strategy<Value = Vec<SourceRequest>> {
    vec(
        (hash(), any::<u64>()).prop_map(|(hash, size)| SourceRequest { hash, size }),
        1..4,
    )
}
fn id_change() -> impl Strategy<Value = IdChange> {
    (
        any::<u32>(),
        0usize..4,
        any::<u32>(),
        any::<u32>(),
        any::<[u8; 4]>(),
        any::<u32>(),
    )
        .prop_map(|(id, n, flags, aux, ip, obfu)| IdChange {
            client_id: ClientId(id),
            tcp_flags: (n >= 1).then_some(flags),
            aux_port: (n >= 2).then_some(aux),
            reported: (n >= 3).then_some((Ipv4Addr::from(ip), obfu)),
        })
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        (hash(), any::<u32>(), any::<u16>(), tags()).prop_map(|(h, id, port, tags)| {
            ServerMessage::LoginRequest(LoginRequest {
                user_hash: h,
                client_id: ClientId(id),
                port,
                tags,
            })
        }),
        Just(ServerMessage::Reject),
        Just(ServerMessage::GetServerList),
        vec(file_entry(), 0..4).prop_map(ServerMessage::OfferFiles),
        search().prop_map(ServerMessage::SearchRequest),
        Just(ServerMessage::Disconnect),
        source_requests().prop_map(ServerMessage::GetSources),
        search().prop_map(ServerMessage::SearchUser),
        any::<u32>().prop_map(|id| ServerMessage::CallbackRequest {
            low_id: ClientId(id)
        }),
        Just(ServerMessage::QueryMoreResult),
        source_requests().prop_map(ServerMessage::GetSourcesObfu),
        vec(addr(), 0..10).prop_map(ServerMessage::ServerList),
        results().prop_map(ServerMessage::SearchResult),
        (any::<u32>(), any::<u32>())
            .prop_map(|(users, files)| ServerMessage::ServerStatus { users, files }),
        (addr(), proptest::option::of((any::<u8>(), hash())))
            .prop_map(|(addr, crypt)| ServerMessage::CallbackRequested { addr, crypt }),
        Just(ServerMessage::CallbackFailed),
        wstr(100).prop_map(ServerMessage::Message),
        id_change().prop_map(ServerMessage::IdChange),
        (hash(), addr(), tags()).prop_map(|(hash, addr, tags)| ServerMessage::ServerIdent {
            hash,
            addr,
            tags
        }),
        (
            hash(),
            vec(
                (any::<u32>(), any::<u16>()).prop_map(|(id, port)| Source {
                    client_id: ClientId(id),
                    port
                }),
                0..10
            )
        )
            .prop_map(|(hash, sources)| ServerMessage::FoundSources { hash, sources }),
        results().prop_map(ServerMessage::UsersList),
        (
            hash(),
            vec(
                (
                    any::<u32>(),
                    any::<u16>(),
                    0u8..0x80,
                    proptest::option::of(hash())
                )
                    .prop_map(|(id, port, opts, uh)| ObfuSource {
                        client_id: ClientId(id),
                        port,
                        crypt_options: if uh.is_some() { opts | 0x80 } else { opts },
                        user_hash: uh,
                    }),
                0..10
            )
        )
            .prop_map(|(hash, sources)| ServerMessage::FoundSourcesObfu { hash, sources }),
    ]
}

const MAX_OFF: u64 = 1 << 38;

fn range() -> impl Strategy<Value = ByteRange> {
    prop_oneof![
        (0..MAX_OFF, 0..MAX_OFF),
        (0..u64::from(u32::MAX), 0..u64::from(u32::MAX)),
    ]
    .prop_map(|(a, b)| ByteRange::new(a.min(b), a.max(b)).unwrap())
}
fn part_status() -> impl Strategy<Value = PartStatus> {
    vec(any::<bool>(), 0..70).prop_map(|v| PartStatus::from_bools(&v).unwrap())
}
fn hello() -> impl Strategy<Value = Hello> {
    (
        hash(),
        any::<u32>(),
        any::<u16>(),
        tags(),
        addr(),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(user_hash, id, port, tags, server, trailer)| Hello {
            user_hash,
            client_id: ClientId(id),
            port,
            tags,
            server,
            trailer,
        })
}
fn emule_info() -> impl Strategy<Value = EmuleInfo> {
    (any::<u8>(), any::<u8>(), tags()).prop_map(|(c, p, tags)| EmuleInfo {
        client_version: c,
        protocol_version: p,
        tags,
    })
}
fn source_exchange() -> impl Strategy<Value = SourceExchange> {
    (1u8..5, hash()).prop_flat_map(|(version, hash)| {
        vec(
            (any::<u32>(), any::<u16>(), addr(), hash_(), any::<u8>()).prop_map(
                move |(id, port, server, uh, co)| ExchangeSource {
                    client_id: ClientId(id),
                    port,
                    server,
                    user_hash: (version >= 2).then_some(uh),
                    crypt_options: (version >= 4).then_some(co),
                },
            ),
            0..6,
        )
        .prop_map(move |sources| SourceExchange {
            version,
            hash,
            sources,
        })
    })
}
fn hash_() -> impl Strategy<Value = [u8; 16]> {
    hash()
}
fn data_part() -> impl Strategy<Value = (ByteRange, Bytes)> {
    (
        prop_oneof![0..MAX_OFF - 100, 0..u64::from(u32::MAX) - 100],
        0usize..100,
    )
        .prop_flat_map(|(start, len)| {
            vec(any::<u8>(), len).prop_map(move |d| {
                (
                    ByteRange::new(start, start + d.len() as u64).unwrap(),
                    Bytes::from(d),
                )
            })
        })
}

fn peer_message() -> impl Strategy<Value = PeerMessage> {
    prop_oneof![
        file_and_transfer_message(),
        queue_browse_and_extension_message(),
        aich_and_other_message()
    ]
}

/// The hello, file, hashset, upload-request and part messages.
fn file_and_transfer_message() -> impl Strategy<Value = PeerMessage> {
    prop_oneof![
        hello().prop_map(PeerMessage::Hello),
        hello().prop_map(PeerMessage::HelloAnswer),
        (hash(), data_part()).prop_map(|(hash, (range, data))| PeerMessage::SendingPart {
            hash,
            range,
            data
        }),
        (hash(), [range(), range(), range()])
            .prop_map(|(hash, ranges)| PeerMessage::RequestParts { hash, ranges }),
        hash().prop_map(PeerMessage::FileNotFound),
        hash().prop_map(PeerMessage::EndOfDownload),
        Just(PeerMessage::AskSharedFiles),
        vec(file_entry(), 0..3).prop_map(PeerMessage::AskSharedFilesAnswer),
        (any::<u32>(), any::<u32>()).prop_map(|(o, n)| PeerMessage::ChangeClientId {
            old: ClientId(o),
            new: ClientId(n)
        }),
        wstr(60).prop_map(PeerMessage::Message),
        hash().prop_map(PeerMessage::SetReqFileId),
        (hash(), part_status()).prop_map(|(hash, parts)| PeerMessage::FileStatus { hash, parts }),
        hash().prop_map(PeerMessage::HashsetRequest),
        (hash(), vec(hash(), 0..10))
            .prop_map(|(hash, parts)| PeerMessage::HashsetAnswer { hash, parts }),
        proptest::option::of(hash()).prop_map(PeerMessage::StartUploadRequest),
        Just(PeerMessage::AcceptUploadRequest),
        Just(PeerMessage::CancelTransfer),
        Just(PeerMessage::OutOfPartRequests),
        (
            hash(),
            proptest::option::of((part_status(), proptest::option::of(any::<u16>())))
        )
            .prop_map(|(hash, ext)| PeerMessage::RequestFilename {
                hash,
                ext: ext.map(|(parts, complete_sources)| FileRequestExt {
                    parts,
                    complete_sources
                }),
            }),
        (hash(), wstr(60)).prop_map(|(hash, name)| PeerMessage::FilenameAnswer { hash, name }),
    ]
}

/// Slots and queue ranks, browsing, eMule info, compressed parts, comments, source exchange,
/// public IP and callbacks.
fn queue_browse_and_extension_message() -> impl Strategy<Value = PeerMessage> {
    prop_oneof![
        hash().prop_map(PeerMessage::ChangeSlot),
        any::<u32>().prop_map(PeerMessage::QueueRank),
        Just(PeerMessage::AskSharedDirs),
        wstr(30).prop_map(PeerMessage::AskSharedFilesDir),
        vec(wstr(20), 0..5).prop_map(PeerMessage::AskSharedDirsAnswer),
        (wstr(20), vec(file_entry(), 0..3))
            .prop_map(|(dir, files)| PeerMessage::AskSharedFilesDirAnswer { dir, files }),
        Just(PeerMessage::AskSharedDeniedAnswer),
        emule_info().prop_map(PeerMessage::EmuleInfo),
        emule_info().prop_map(PeerMessage::EmuleInfoAnswer),
        (hash(), 0..MAX_OFF, vec(any::<u8>(), 0..50), 0u32..1000).prop_map(
            |(hash, start, d, extra)| PeerMessage::CompressedPart {
                hash,
                start,
                packed_total: d.len() as u32 + extra,
                data: d.into(),
            }
        ),
        any::<u16>().prop_map(PeerMessage::QueueRanking),
        (any::<u8>(), wstr(60))
            .prop_map(|(rating, comment)| PeerMessage::FileDesc { rating, comment }),
        hash().prop_map(PeerMessage::RequestSources),
        vec(any::<u8>(), 0..40).prop_map(|v| PeerMessage::AnswerSources(v.into())),
        (any::<u8>(), any::<u16>(), hash()).prop_map(|(version, options, hash)| {
            PeerMessage::RequestSources2 {
                version,
                options,
                hash,
            }
        }),
        source_exchange().prop_map(PeerMessage::AnswerSources2),
        Just(PeerMessage::PublicIpRequest),
        any::<[u8; 4]>().prop_map(|ip| PeerMessage::PublicIpAnswer(Ipv4Addr::from(ip))),
        (hash(), hash(), any::<u32>(), any::<u16>()).prop_map(|(b, f, ip, port)| {
            PeerMessage::Callback {
                buddy_id: b,
                file_id: f,
                ip,
                port,
            }
        }),
    ]
}

/// AICH messages, the hashset request v2, and opcodes kept unparsed.
fn aich_and_other_message() -> impl Strategy<Value = PeerMessage> {
    prop_oneof![
        (hash(), any::<u16>(), any::<[u8; 20]>())
            .prop_map(|(hash, part, master)| PeerMessage::AichRequest { hash, part, master }),
        (
            hash(),
            any::<u16>(),
            any::<[u8; 20]>(),
            vec(any::<u8>(), 0..60)
        )
            .prop_map(|(hash, part, master, r)| PeerMessage::AichAnswer {
                hash,
                part,
                master,
                recovery: r.into()
            }),
        hash().prop_map(PeerMessage::AichAnswerFailed),
        (hash(), any::<[u8; 20]>())
            .prop_map(|(hash, aich)| PeerMessage::AichFileHashAnswer { hash, aich }),
        hash().prop_map(PeerMessage::AichFileHashRequest),
        (
            proptest::option::of(hash()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<[u8; 20]>()),
            0u8..8,
            any::<u8>()
        )
            .prop_map(
                |(md4, size, aich, o, options)| PeerMessage::HashsetRequest2 {
                    file: FileIdentifier {
                        md4,
                        size,
                        aich,
                        options: o
                    },
                    options,
                }
            ),
        (
            prop_oneof![Just(0x85u8), Just(0x92), Just(0xB2), Just(0x9F)],
            vec(any::<u8>(), 0..30)
        )
            .prop_map(|(opcode, p)| PeerMessage::Unparsed {
                protocol: Protocol::Emule,
                opcode,
                payload: p.into()
            }),
    ]
}

/// Encodes through a real frame and decodes it back.
fn through_frame(f: &Frame) -> Frame {
    let mut wire = BytesMut::new();
    f.encode(&mut wire).unwrap();
    let got = frame::decode(&mut wire).unwrap().unwrap();
    assert!(wire.is_empty());
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tag_roundtrip(t in tag_(), enc in encoding()) {
        let mut b = Vec::new();
        t.encode(&mut b, enc).unwrap();
        let mut s = &b[..];
        prop_assert_eq!(Tag::decode(&mut s).unwrap(), t);
        prop_assert!(s.is_empty());
    }

    #[test]
    fn tag_list_roundtrip(ts in tags(), enc in encoding()) {
        let mut b = Vec::new();
        tag::encode_list(&ts, &mut b, enc).unwrap();
        prop_assert_eq!(tag::decode_list(&mut &b[..]).unwrap(), ts.clone());
        let mut k = Vec::new();
        tag::encode_kad_list(&ts, &mut k).unwrap();
        prop_assert_eq!(tag::decode_kad_list(&mut &k[..]).unwrap(), ts);
    }

    #[test]
    fn search_roundtrip(e in search()) {
        let mut b = Vec::new();
        e.encode(&mut b).unwrap();
        let mut s = &b[..];
        prop_assert_eq!(SearchExpr::decode(&mut s).unwrap(), e);
        prop_assert!(s.is_empty());
    }

    #[test]
    fn server_message_roundtrip(m in server_message(), enc in encoding()) {
        let f = m.to_frame(enc).unwrap();
        prop_assert_eq!(f.protocol, Protocol::Edonkey);
        let back = ServerMessage::decode_frame(&through_frame(&f)).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn peer_message_roundtrip(m in peer_message(), enc in encoding(), packed in any::<bool>()) {
        let mut f = m.to_frame(enc).unwrap();
        // Packing is only used for 0xC5 opcodes.
        if packed && f.protocol == Protocol::Emule {
            f.protocol = Protocol::Packed;
        }
        let back = PeerMessage::decode_frame(&through_frame(&f)).unwrap();
        prop_assert_eq!(back, m);
    }

    /// Every prefix of a valid message decodes to something or an error, never a panic.
    #[test]
    fn truncated_never_panics(m in peer_message(), s in server_message()) {
        let f = m.to_frame(TagEncoding::Compact).unwrap();
        for cut in 0..f.payload.len() {
            let _ = PeerMessage::decode(f.protocol, f.opcode, f.payload.slice(..cut));
        }
        let f = s.to_frame(TagEncoding::Compact).unwrap();
        for cut in 0..f.payload.len() {
            let _ = ServerMessage::decode(f.opcode, f.payload.slice(..cut));
        }
    }

    #[test]
    fn random_payloads_never_panic(op in any::<u8>(), p in vec(any::<u8>(), 0..200)) {
        let p = Bytes::from(p);
        let _ = ServerMessage::decode(op, p.clone());
        let _ = PeerMessage::decode(Protocol::Edonkey, op, p.clone());
        let _ = PeerMessage::decode(Protocol::Emule, op, p.clone());
        let _ = Tag::decode(&mut p.clone());
        let _ = tag::decode_list(&mut p.clone());
        let _ = SearchExpr::decode(&mut p.clone());
        let _ = junction_ed2k::server_met::ServerMet::decode(p.clone());
        let mut b = BytesMut::from(&p[..]);
        while let Ok(Some(_)) = frame::decode(&mut b) {}
    }

    /// Mirrors fuzz/fuzz_targets/ed2k_message.rs: anything that decodes re-encodes stably.
    #[test]
    fn decoded_messages_reencode_stably(
        op in any::<u8>(),
        sel in 0u8..3,
        p in vec(any::<u8>(), 0..120),
    ) {
        let p = Bytes::from(p);
        if sel == 0 {
            if let Ok(m) = ServerMessage::decode(op, p) {
                let once = m.to_frame(TagEncoding::Compact).unwrap();
                let again = ServerMessage::decode_frame(&once).unwrap();
                prop_assert_eq!(again.to_frame(TagEncoding::Compact).unwrap(), once);
            }
        } else {
            let proto = if sel == 1 { Protocol::Edonkey } else { Protocol::Emule };
            if let Ok(m) = PeerMessage::decode(proto, op, p) {
                let once = m.to_frame(TagEncoding::Compact).unwrap();
                let again = PeerMessage::decode_frame(&once).unwrap();
                prop_assert_eq!(again.to_frame(TagEncoding::Compact).unwrap(), once);
            }
        }
    }
}
