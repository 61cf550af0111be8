//! Property tests: encode → decode → equal, for every descriptor type, GGEP
//! blocks, handshakes and HTTP heads.

use std::net::Ipv4Addr;

use bytes::Bytes;
use junction_core::http::Headers;
use junction_gnutella::Guid;
use junction_gnutella::wire::descriptor_header::{DescriptorDecoder, kind};
use junction_gnutella::wire::ext::{ExtArea, Item};
use junction_gnutella::wire::ggep::{Block, Extension};
use junction_gnutella::wire::handshake::Handshake;
use junction_gnutella::wire::http::{HttpHead, RequestHead, ResponseHead};
use junction_gnutella::wire::message::*;
use proptest::collection::vec;
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn no_nul(max: usize) -> impl Strategy<Value = Bytes> {
    vec(1u8..=255, 0..max).prop_map(Bytes::from)
}

fn extension() -> impl Strategy<Value = Extension> {
    (
        "[A-Za-z0-9.<]{1,15}",
        vec(any::<u8>(), 0..200),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(id, data, cobs, deflate)| {
            Extension::with_encoding(id, &data, cobs, deflate).unwrap()
        })
}

fn block() -> impl Strategy<Value = Block> {
    vec(extension(), 1..5).prop_map(Block::new)
}

/// Text items: no separators, not starting like a GGEP block, not empty.
fn text_item() -> impl Strategy<Value = Item> {
    (1u8..=255, vec(any::<u8>(), 0..60)).prop_filter_map("text item", |(first, rest)| {
        if first == 0xC3 || first == 0x1C {
            return None;
        }
        let mut v = vec![first];
        v.extend(rest.into_iter().filter(|&b| b != 0 && b != 0x1C));
        Some(Item::Text(Bytes::from(v)))
    })
}

fn ext_area() -> impl Strategy<Value = ExtArea> {
    vec(prop_oneof![text_item(), block().prop_map(Item::Ggep)], 0..4).prop_map(ExtArea::from_items)
}

fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn record() -> impl Strategy<Value = HitRecord> {
    (any::<u32>(), any::<u32>(), no_nul(40), ext_area()).prop_map(|(index, size, name, ext)| {
        HitRecord {
            index,
            size,
            name,
            ext,
        }
    })
}

fn trailer() -> impl Strategy<Value = QhdTrailer> {
    (any::<[u8; 4]>(), bytes(5), bytes(40)).prop_map(|(vendor, open_data, private_data)| {
        QhdTrailer {
            vendor,
            open_data,
            private_data,
        }
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        ext_area().prop_map(|ext| Message::Ping(Ping { ext })),
        pong(),
        bye(),
        route_table_reset(),
        route_table_patch(),
        vendor_message(),
        push(),
        query(),
        query_hit(),
        unknown(),
    ]
}

fn pong() -> impl Strategy<Value = Message> {
    (any::<u16>(), ip(), any::<u32>(), any::<u32>(), ext_area()).prop_map(
        |(port, ip, files, kbytes, ext)| {
            Message::Pong(Pong {
                port,
                ip,
                files,
                kbytes,
                ext,
            })
        },
    )
}

fn bye() -> impl Strategy<Value = Message> {
    (any::<u16>(), no_nul(60), bytes(20), any::<bool>()).prop_map(
        |(code, reason, trailing, nul)| {
            Message::Bye(Bye {
                code,
                reason,
                nul_terminated: nul,
                trailing: if nul { trailing } else { Bytes::new() },
            })
        },
    )
}

fn route_table_reset() -> impl Strategy<Value = Message> {
    (any::<u32>(), any::<u8>()).prop_map(|(table_len, infinity)| {
        Message::RouteTable(RouteTableUpdate::Reset {
            table_len,
            infinity,
        })
    })
}

fn route_table_patch() -> impl Strategy<Value = Message> {
    (
        1u8..=255,
        any::<u8>(),
        0u8..=1,
        prop::sample::select(vec![1u8, 2, 4, 8]),
        bytes(100),
    )
        .prop_map(|(seq_size, n, compressor, entry_bits, data)| {
            Message::RouteTable(RouteTableUpdate::Patch {
                seq_no: 1 + n % seq_size,
                seq_size,
                compressor,
                entry_bits,
                data,
            })
        })
}

fn vendor_message() -> impl Strategy<Value = Message> {
    (
        any::<bool>(),
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<u16>(),
        bytes(100),
    )
        .prop_map(|(standard, vendor, selector, version, payload)| {
            Message::Vendor(VendorMessage {
                standard,
                vendor,
                selector,
                version,
                payload,
            })
        })
}

fn push() -> impl Strategy<Value = Message> {
    (
        any::<[u8; 16]>(),
        any::<u32>(),
        ip(),
        any::<u16>(),
        ext_area(),
    )
        .prop_map(|(g, index, ip, port, ext)| {
            Message::Push(Push {
                servent: Guid(g),
                index,
                ip,
                port,
                ext,
            })
        })
}

fn query() -> impl Strategy<Value = Message> {
    (any::<u16>(), no_nul(60), ext_area()).prop_map(|(f, criteria, ext)| {
        Message::Query(Query {
            flags: QueryFlags(f),
            criteria,
            ext,
        })
    })
}

fn query_hit() -> impl Strategy<Value = Message> {
    (
        any::<u16>(),
        ip(),
        any::<u32>(),
        vec(record(), 0..5),
        prop::option::of(trailer()),
        any::<[u8; 16]>(),
    )
        .prop_map(|(port, ip, speed, results, trailer, g)| {
            Message::QueryHit(QueryHit {
                port,
                ip,
                speed,
                results,
                trailer,
                servent: Guid(g),
            })
        })
}

/// Payload kinds no decoder claims, kept as they are.
fn unknown() -> impl Strategy<Value = Message> {
    (any::<u8>(), bytes(100))
        .prop_filter("unknown kinds only", |(k, _)| {
            ![
                kind::PING,
                kind::PONG,
                kind::BYE,
                kind::QRP,
                kind::VENDOR,
                kind::VENDOR_STD,
                kind::PUSH,
                kind::QUERY,
                kind::QUERY_HIT,
            ]
            .contains(k)
        })
        .prop_map(|(kind, payload)| Message::Unknown { kind, payload })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn descriptor_round_trip(g in any::<[u8; 16]>(), ttl in any::<u8>(), hops in any::<u8>(), msg in message()) {
        let d = Descriptor::new(Guid(g), ttl, hops, msg);
        let wire = d.to_bytes().unwrap();
        let (raw, used) = DescriptorDecoder::new(1 << 20).parse(&wire).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        let back = Descriptor::from_raw(&raw).unwrap();
        prop_assert_eq!(&back.message, &d.message);
        prop_assert_eq!((back.header.guid, back.header.ttl, back.header.hops), (Guid(g), ttl, hops));
        prop_assert_eq!(back.to_bytes().unwrap(), wire);
    }

    #[test]
    fn ggep_block_round_trip(b in block()) {
        let mut v = Vec::new();
        b.encode(&mut v);
        prop_assert_eq!(v.len(), b.encoded_len());
        let back = Block::parse(&v).unwrap();
        for (e, f) in b.extensions.iter().zip(&back.extensions) {
            prop_assert_eq!(e.data().unwrap(), f.data().unwrap());
        }
        prop_assert_eq!(back, b);
    }

    #[test]
    fn cobs_round_trip(data in vec(any::<u8>(), 0..1000)) {
        let enc = junction_gnutella::wire::cobs::encode(&data);
        prop_assert!(!enc.contains(&0));
        prop_assert_eq!(junction_gnutella::wire::cobs::decode(&enc).unwrap(), data);
    }

    #[test]
    fn handshake_round_trip(
        code in 100u16..1000,
        reason in "[A-Za-z][ -~]{0,30}[A-Za-z]",
        hs in vec(("[A-Za-z][A-Za-z0-9-]{0,20}", "([!-~]([ -~]{0,30}[!-~])?)?"), 0..10),
        connect in any::<bool>(),
    ) {
        let mut h = Headers::new();
        for (k, v) in hs {
            h.push(k, v);
        }
        let block = if connect { Handshake::connect(h) } else { Handshake::status(code, reason, h) };
        let wire = block.to_bytes();
        let (back, n) = Handshake::parse(&wire).unwrap().unwrap();
        prop_assert_eq!(n, wire.len());
        prop_assert_eq!(back, block);
    }

    #[test]
    fn http_heads_round_trip(
        code in 100u16..1000,
        path in "/[!-~]{0,40}",
        hs in vec(("[A-Za-z][A-Za-z0-9-]{0,20}", "([!-~]([ -~]{0,30}[!-~])?)?"), 0..10),
    ) {
        let mut h = Headers::new();
        for (k, v) in hs {
            h.push(k, v);
        }
        let req = RequestHead::new("GET", path, h.clone());
        let wire = req.to_bytes();
        prop_assert_eq!(RequestHead::parse(&wire).unwrap().unwrap(), (req, wire.len()));
        let resp = ResponseHead::new(code, "Some Reason", h);
        let wire = resp.to_bytes();
        prop_assert_eq!(ResponseHead::parse(&wire).unwrap().unwrap(), (resp, wire.len()));
    }

    /// Arbitrary bytes never panic any decoder.
    #[test]
    fn garbage_never_panics(k in any::<u8>(), data in vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(k, Bytes::from(data.clone()));
        let _ = Block::parse(&data);
        let _ = Handshake::parse(&data);
        let _ = RequestHead::parse(&data);
        let _ = ResponseHead::parse(&data);
        let _ = junction_gnutella::wire::http::Giv::parse(&data);
        let _ = junction_gnutella::wire::cobs::decode(&data);
        let _ = DescriptorDecoder::default().parse(&data);
    }
}
