//! Server UDP messages: spec layouts and round trips.

use std::net::{Ipv4Addr, SocketAddrV4};

use bytes::Bytes;
use junction_ed2k::wire::server::{Source, SourceRequest};
use junction_ed2k::wire::server_udp::{ServerDescription, ServerStats};
use junction_ed2k::wire::tag::ct;
use junction_ed2k::wire::{
    ClientId, FileEntry, SearchExpr, ServerUdpMessage, Tag, TagEncoding, TagValue, UdpPacket,
    WireString,
};
use proptest::collection::vec;
use proptest::prelude::*;

const H: [u8; 16] = [0x5A; 16];

fn roundtrip(m: &ServerUdpMessage) -> ServerUdpMessage {
    let bytes = m.to_packet(TagEncoding::Compact).unwrap().to_bytes();
    ServerUdpMessage::decode_packet(&UdpPacket::decode(bytes).unwrap()).unwrap()
}

#[test]
fn repeated_search_results_use_e3_99_prefixes() {
    let entry = FileEntry {
        hash: H,
        client_id: ClientId(1),
        port: 2,
        tags: vec![],
    };
    let m = ServerUdpMessage::GlobSearchRes(vec![entry.clone(), entry]);
    let bytes = m.to_packet(TagEncoding::Classic).unwrap().to_bytes();
    assert_eq!(&bytes[..2], &[0xE3, 0x99]);
    assert_eq!(bytes.len(), 2 + 26 + 2 + 26);
    assert_eq!(&bytes[28..30], &[0xE3, 0x99]);
    assert_eq!(roundtrip(&m), m);
}

#[test]
fn glob_search_req3_and_found_sources() {
    let m = ServerUdpMessage::GlobSearchReq3 {
        tags: vec![Tag::id(ct::SERVER_UDPSEARCH_FLAGS, TagValue::U8(1))],
        expr: SearchExpr::keywords("abc"),
    };
    let mut p = Vec::new();
    m.encode(&mut p, TagEncoding::Compact).unwrap();
    assert_eq!(p, [1, 0, 0, 0, 0x89, 0x0E, 1, 0x01, 3, 0, b'a', b'b', b'c']);
    assert_eq!(roundtrip(&m), m);

    let src = Source {
        client_id: ClientId(0x0403_0201),
        port: 4662,
    };
    let m = ServerUdpMessage::GlobFoundSources(vec![(H, vec![src]), ([1; 16], vec![])]);
    let mut p = Vec::new();
    m.encode(&mut p, TagEncoding::Compact).unwrap();
    assert_eq!(p.len(), 16 + 1 + 6 + 2 + 16 + 1);
    assert_eq!(roundtrip(&m), m);
}

#[test]
fn server_description_forms() {
    let new = ServerUdpMessage::ServerDescRes(ServerDescription::New {
        challenge: 0x1234_F0FF,
        tags: vec![Tag::string(0x01, "name")],
    });
    let mut p = Vec::new();
    new.encode(&mut p, TagEncoding::Classic).unwrap();
    assert_eq!(&p[..2], &[0xFF, 0xF0]);
    assert_eq!(roundtrip(&new), new);
    let old = ServerUdpMessage::ServerDescRes(ServerDescription::Old {
        name: "n".into(),
        description: "d".into(),
    });
    assert_eq!(roundtrip(&old), old);
}

#[test]
fn server_stats_lengths() {
    let base = [
        &0x55AA_0001u32.to_le_bytes()[..],
        &10u32.to_le_bytes(),
        &20u32.to_le_bytes(),
    ]
    .concat();
    let m = ServerUdpMessage::decode(0x97, base.clone().into()).unwrap();
    assert_eq!(
        m,
        ServerUdpMessage::GlobServStatRes(ServerStats {
            challenge: 0x55AA_0001,
            users: 10,
            files: 20,
            ..Default::default()
        })
    );
    let mut full = base;
    full.extend_from_slice(&[0; 4 * 5]);
    full.extend_from_slice(&[1, 0, 2, 0, 3, 0, 0, 0]);
    let ServerUdpMessage::GlobServStatRes(s) = ServerUdpMessage::decode(0x97, full.into()).unwrap()
    else {
        panic!()
    };
    assert_eq!(s.obfuscation, Some((1, 2, 3)));
    assert!(ServerUdpMessage::decode(0x97, Bytes::from_static(&[0; 11])).is_err());
    assert!(ServerUdpMessage::decode(0x55, Bytes::new()).is_err());
    // A found-sources count larger than what follows.
    let p = [&H[..], &[9], &[0; 6]].concat();
    assert!(ServerUdpMessage::decode(0x9B, p.into()).is_err());
}

fn addr() -> impl Strategy<Value = SocketAddrV4> {
    (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddrV4::new(Ipv4Addr::from(ip), p))
}
fn entry() -> impl Strategy<Value = FileEntry> {
    (
        any::<[u8; 16]>(),
        any::<u32>(),
        any::<u16>(),
        vec(any::<u32>(), 0..3),
    )
        .prop_map(|(hash, id, port, vals)| FileEntry {
            hash,
            client_id: ClientId(id),
            port,
            tags: vals.into_iter().map(|v| Tag::u32(0x15, v)).collect(),
        })
}
fn stats() -> impl Strategy<Value = ServerStats> {
    (any::<[u32; 9]>(), 0usize..6, any::<(u16, u16)>()).prop_map(|(v, n, (a, b))| ServerStats {
        challenge: v[0],
        users: v[1],
        files: v[2],
        max_users: (n >= 1).then_some(v[3]),
        file_limits: (n >= 2).then_some((v[4], v[5])),
        udp_flags: (n >= 3).then_some(v[6]),
        low_id_users: (n >= 4).then_some(v[7]),
        obfuscation: (n >= 5).then_some((a, b, v[8])),
    })
}
fn message() -> impl Strategy<Value = ServerUdpMessage> {
    let expr = vec(any::<u8>(), 0..20).prop_map(|v| SearchExpr::Keywords(WireString::from(&v[..])));
    prop_oneof![
        (vec(entry(), 0..2), expr.clone()).prop_map(|(e, expr)| ServerUdpMessage::GlobSearchReq3 {
            tags: e.into_iter().flat_map(|e| e.tags).collect(),
            expr
        }),
        expr.clone().prop_map(ServerUdpMessage::GlobSearchReq2),
        expr.prop_map(ServerUdpMessage::GlobSearchReq),
        vec(entry(), 1..4).prop_map(ServerUdpMessage::GlobSearchRes),
        vec(any::<[u8; 16]>(), 0..4).prop_map(ServerUdpMessage::GlobGetSources),
        vec(
            (any::<[u8; 16]>(), any::<u64>()).prop_map(|(hash, size)| SourceRequest { hash, size }),
            0..4
        )
        .prop_map(ServerUdpMessage::GlobGetSources2),
        vec(
            (
                any::<[u8; 16]>(),
                vec(
                    (any::<u32>(), any::<u16>()).prop_map(|(i, port)| Source {
                        client_id: ClientId(i),
                        port
                    }),
                    0..5
                )
            ),
            1..4
        )
        .prop_map(ServerUdpMessage::GlobFoundSources),
        any::<u32>().prop_map(|challenge| ServerUdpMessage::GlobServStatReq { challenge }),
        stats().prop_map(ServerUdpMessage::GlobServStatRes),
        (addr(), any::<u32>()).prop_map(|(addr, id)| ServerUdpMessage::GlobCallbackReq {
            addr,
            client_id: ClientId(id)
        }),
        any::<u32>().prop_map(|i| ServerUdpMessage::InvalidLowId(ClientId(i))),
        addr().prop_map(ServerUdpMessage::ServerListReq),
        vec(addr(), 0..5).prop_map(ServerUdpMessage::ServerListRes),
        proptest::option::of(any::<u32>()).prop_map(ServerUdpMessage::ServerDescReq),
        (any::<u16>(), vec(entry(), 0..2)).prop_map(|(hi, e)| {
            ServerUdpMessage::ServerDescRes(ServerDescription::New {
                challenge: u32::from(hi) << 16 | 0xF0FF,
                tags: e.into_iter().flat_map(|e| e.tags).collect(),
            })
        }),
        (vec(any::<u8>(), 0..20), vec(any::<u8>(), 0..20)).prop_map(|(n, d)| {
            ServerUdpMessage::ServerDescRes(ServerDescription::Old {
                name: WireString::from(&n[..]),
                description: WireString::from(&d[..]),
            })
        }),
        Just(ServerUdpMessage::ServerListReq2),
    ]
}

proptest! {
    #[test]
    fn udp_roundtrip(m in message()) {
        prop_assert_eq!(roundtrip(&m), m);
    }

    #[test]
    fn udp_random_never_panics(op in any::<u8>(), p in vec(any::<u8>(), 0..120)) {
        let p = Bytes::from(p);
        if let Ok(m) = ServerUdpMessage::decode(op, p.clone()) {
            // Whatever decodes re-encodes stably.
            if let Ok(pkt) = m.to_packet(TagEncoding::Compact) {
                let again = ServerUdpMessage::decode_packet(&pkt).unwrap();
                prop_assert_eq!(again.to_packet(TagEncoding::Compact).unwrap(), pkt);
            }
        }
        for cut in 0..p.len() {
            let _ = ServerUdpMessage::decode(op, p.slice(..cut));
        }
    }
}
