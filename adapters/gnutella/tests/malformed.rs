//! Malformed input yields errors, never panics or unbounded allocation.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use junction_gnutella::Error;
use junction_gnutella::wire::descriptor_header::{DescriptorDecoder, Header, kind};
use junction_gnutella::wire::ggep::Block;
use junction_gnutella::wire::guid::Guid;
use junction_gnutella::wire::handshake::{Handshake, MAX_HANDSHAKE_LEN};
use junction_gnutella::wire::http::{HttpHead, MAX_HEAD_LEN, RequestHead};
use junction_gnutella::wire::message::{Message, RouteTableUpdate};
use junction_gnutella::wire::qrp::QrpReceiver;

#[test]
fn oversized_payload_length() {
    for len in [64 * 1024 + 1, 0x7FFF_FFFF] {
        let mut b = BytesMut::new();
        Header::new(Guid::ZERO, kind::QUERY, 1, 0, len).encode(&mut b);
        let err = DescriptorDecoder::default().decode(&mut b).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert!(b.capacity() < 1024, "nothing reserved for a refused length");
    }
}

#[test]
fn truncated_ggep() {
    let full = hex::decode("c381485501e03850af97b058ca4f24a8b51a4ac1bfe8f4391f").unwrap();
    assert!(Block::parse(&full).is_ok());
    for cut in 0..full.len() {
        let err = Block::parse(&full[..cut]).unwrap_err();
        assert!(
            matches!(err, Error::Truncated { .. } | Error::Invalid { .. }),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn bad_cobs_in_a_hit() {
    // An `H` marked COBS whose code byte overruns the data.
    let b = Block::parse(&[0xC3, 0xC1, b'H', 0x43, 0x09, 0x01, 0x02]).unwrap();
    assert!(matches!(b.hash(), Some(Err(Error::Invalid { .. }))));
}

#[test]
fn huge_qrp_sizes() {
    for table_len in [1u32 << 22, 1 << 31, u32::MAX, 0, 3] {
        let mut r = QrpReceiver::new();
        let err = r
            .apply(&RouteTableUpdate::Reset {
                table_len,
                infinity: 2,
            })
            .unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { .. } | Error::Invalid { .. }),
            "{table_len}: {err}"
        );
    }
    // Bad PATCH header fields are refused when decoding.
    for payload in [
        &[1u8, 0, 1, 1, 4][..],
        &[1, 2, 1, 1, 4],
        &[1, 1, 1, 2, 4],
        &[1, 1, 1, 1, 3],
        &[2],
    ] {
        assert!(
            Message::decode(kind::QRP, Bytes::copy_from_slice(payload)).is_err(),
            "{payload:?}"
        );
    }
}

#[test]
fn oversized_heads() {
    let mut hs = b"GNUTELLA CONNECT/0.6\r\nX: ".to_vec();
    hs.resize(MAX_HANDSHAKE_LEN + 10, b'a');
    assert!(matches!(Handshake::parse(&hs), Err(Error::TooLarge { .. })));
    let mut http = b"GET / HTTP/1.1\r\nX: ".to_vec();
    http.resize(MAX_HEAD_LEN + 10, b'a');
    // The head parser is core's; Gnutella sees its refusal as its own TooLarge.
    assert!(matches!(
        RequestHead::parse(&http).map_err(Error::from),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn every_truncated_captured_payload_fails_cleanly() {
    // Cutting a payload short must give an error or a shorter valid message,
    // never a panic; cutting inside fixed fields must always be an error.
    for name in [
        "04a-query-keyword-and-hit.b2a.bin",
        "04b-query-ggep-h-flag-and-hit.b2a.bin",
        "03a-tcp-ping-pong-harness-to-gtkg.b2a.bin",
        "08c-push-message-to-ultrapeer.a2b.bin",
        "07a-bye-after-node-drop.b2a.bin",
        "02f-vendor-messages-from-gtkg.a2b.bin",
        "05b-urn-query-originated-by-gtkg-leaf.a2b.bin",
    ] {
        for d in decode_stream(name, &data(name)) {
            let payload = d.message.to_payload();
            for cut in 0..payload.len() {
                let _ = Message::decode(d.header.kind, payload.slice(..cut));
            }
            let min_fixed = match d.header.kind {
                kind::PONG => 14,
                kind::PUSH => 26,
                kind::QUERY_HIT => 27,
                kind::VENDOR => 8,
                kind::BYE => 2,
                _ => 0,
            };
            for cut in 0..min_fixed.min(payload.len()) {
                assert!(
                    Message::decode(d.header.kind, payload.slice(..cut)).is_err(),
                    "{name} cut {cut}"
                );
            }
        }
    }
}

#[test]
fn query_hit_with_lying_counts() {
    // 255 announced records but only the fixed part and a GUID.
    let mut p = vec![255u8, 0, 0, 127, 0, 0, 1, 0, 0, 0, 0];
    p.extend_from_slice(&[0; 16]);
    assert!(Message::decode(kind::QUERY_HIT, Bytes::from(p)).is_err());
    // Trailer whose open-data size runs past the end.
    let mut p = vec![0u8, 0, 0, 127, 0, 0, 1, 0, 0, 0, 0];
    p.extend_from_slice(b"GTKG\x09\x01");
    p.extend_from_slice(&[0; 16]);
    assert!(Message::decode(kind::QUERY_HIT, Bytes::from(p)).is_err());
}

/// zlib of `data`, as a peer would compress a QRP patch.
fn zlib(data: &[u8]) -> Bytes {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(data).unwrap();
    Bytes::from(z.finish().unwrap())
}

fn patch(entry_bits: u8, compressor: u8, data: Bytes) -> RouteTableUpdate {
    RouteTableUpdate::Patch {
        seq_no: 1,
        seq_size: 1,
        compressor,
        entry_bits,
        data,
    }
}

#[test]
fn a_reset_alone_allocates_no_table() {
    let mut r = QrpReceiver::new();
    // Any number of the largest RESETs: nothing allocated, no table to route by.
    for _ in 0..1000 {
        r.apply(&RouteTableUpdate::Reset {
            table_len: 1 << 21,
            infinity: 7,
        })
        .unwrap();
        assert!(r.table().is_none());
    }
    // The table appears when its first patch is complete.
    let data = zlib(&vec![0u8; 1 << 20]);
    assert!(r.apply(&patch(4, 1, data)).unwrap());
    assert_eq!(r.table().unwrap().len(), 1 << 21);
}

#[test]
fn a_million_entry_patch_is_bounded() {
    let million = vec![0x11u8; 1_000_000];
    // For a small table: refused before inflating more than the table holds, however it
    // is sent (plain, compressed, over many chunks).
    let mut r = QrpReceiver::new();
    let small = RouteTableUpdate::Reset {
        table_len: 1024,
        infinity: 7,
    };
    r.apply(&small).unwrap();
    let t0 = std::time::Instant::now();
    let err = r.apply(&patch(8, 1, zlib(&million))).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let err = r
        .apply(&patch(8, 0, Bytes::from(million.clone())))
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let mut refused = false;
    for seq_no in 1..=16u8 {
        let chunk = RouteTableUpdate::Patch {
            seq_no,
            seq_size: 16,
            compressor: 0,
            entry_bits: 8,
            data: Bytes::copy_from_slice(&million[..62_500]),
        };
        if r.apply(&chunk).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "16 chunks of 62,500 entries for a 1024-slot table");
    assert!(r.table().is_none(), "nothing half-applied");
    // For a table that big it is ordinary work: applied at once.
    r.apply(&RouteTableUpdate::Reset {
        table_len: 1 << 20,
        infinity: 7,
    })
    .unwrap();
    // Each entry -6: from infinity (7) to 1, present.
    let mut full = vec![0xFAu8; 1_000_000];
    full.resize(1 << 20, 0);
    assert!(r.apply(&patch(8, 1, zlib(&full))).unwrap());
    assert_eq!(r.table().unwrap().present_count(), 1_000_000);
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
}

/// A GGEP block of `n` one-byte-id, empty extensions, none of them marked last.
fn endless_ggep(n: usize) -> Vec<u8> {
    let mut b = vec![0xC3];
    for _ in 0..n {
        b.extend_from_slice(&[0x01, b'X', 0x40]);
    }
    b
}

#[test]
fn endless_ggep_is_refused_after_a_bounded_count() {
    for n in [65, 10_000, 100_000] {
        let err = Block::parse(&endless_ggep(n)).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{n}: {err}");
    }
    // In a query's extension area, and as block after block of a hit's.
    let mut q = vec![0u8, 0];
    q.extend_from_slice(b"abc\0");
    q.extend_from_slice(&endless_ggep(20_000));
    assert!(Message::decode(kind::QUERY, Bytes::from(q)).is_err());
    let mut q = vec![0u8, 0];
    q.extend_from_slice(b"abc\0");
    for _ in 0..20_000 {
        q.extend_from_slice(&[0xC3, 0x81, b'X', 0x40]);
    }
    assert!(Message::decode(kind::QUERY, Bytes::from(q)).is_err());
}
