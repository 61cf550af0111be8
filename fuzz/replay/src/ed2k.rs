//! Targets for `junction-ed2k`: TCP frames and UDP datagrams, server and peer messages,
//! server UDP, tags, search expressions and results, `server.met`, `ed2k://` links, AICH.
//!
//! Tags may hold floats (NaN is not equal to itself), so round trips that carry tags
//! compare encoded bytes: decode, encode, decode, encode gives the same bytes twice.

use bytes::{Bytes, BytesMut};
use junction_ed2k::aich;
use junction_ed2k::hash::PART_SIZE;
use junction_ed2k::link::Ed2kLink;
use junction_ed2k::server_met::ServerMet;
use junction_ed2k::wire::server::{decode_file_entries, encode_file_entries};
use junction_ed2k::wire::{
    PeerMessage, Protocol, SearchExpr, ServerMessage, ServerUdpMessage, Tag, TagEncoding,
    UdpPacket, UdpProtocol, frame, tag as tags,
};

/// The tag encoding chosen by the top bit of a selector byte.
fn encoding(sel: u8) -> TagEncoding {
    if sel & 0x80 != 0 {
        TagEncoding::Compact
    } else {
        TagEncoding::Classic
    }
}

/// AICH recovery data from a peer: decoding, then checking it against a root.
pub fn aich_recovery(data: &[u8]) {
    let Ok(hashes) = aich::decode_recovery(data) else {
        return;
    };
    // Re-encoding what was read gives it back.
    let again = aich::encode_recovery(PART_SIZE * 3, &hashes);
    if hashes.iter().all(|(i, _)| *i <= u64::from(u16::MAX)) {
        assert_eq!(aich::decode_recovery(&again).ok(), Some(hashes.clone()));
    }
    let size = u64::from(data.len() as u32) * 97_531 + 1;
    for part in 0..4 {
        let _ = aich::verify_part(size, part, &[0; 20], &hashes);
    }
}

/// Streaming TCP frame decoder (incl. bounded zlib inflate) and UDP datagram decoder. A
/// decoded frame re-encodes to the bytes it came from (a packed one, deflated again, to
/// bytes that decode to the same frame), and a datagram likewise.
pub fn frame(data: &[u8]) {
    // Feed in two pieces split by the first byte, as a socket would.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut buf = BytesMut::new();
    for part in [&data[..split], &data[split..]] {
        buf.extend_from_slice(part);
        loop {
            let held = buf.clone();
            let Ok(Some(f)) = frame::decode(&mut buf) else {
                break;
            };
            assert!(f.payload.len() <= frame::MAX_FRAME_LEN);
            let _ = ServerMessage::decode_frame(&f);
            let _ = PeerMessage::decode_frame(&f);
            let raw = &held[..held.len() - buf.len()];
            match f.to_bytes() {
                Ok(bytes) => {
                    if f.protocol != Protocol::Packed {
                        assert_eq!(&bytes[..], raw);
                    }
                    let again = frame::decode(&mut BytesMut::from(&bytes[..]));
                    assert_eq!(again.ok().flatten().as_ref(), Some(&f));
                }
                // Deflated again, a payload inflated to nearly the limit may outgrow it.
                Err(_) => assert_eq!(f.protocol, Protocol::Packed),
            }
        }
    }
    if let Ok(p) = UdpPacket::decode(Bytes::copy_from_slice(data)) {
        let _ = ServerUdpMessage::decode_packet(&p);
        let bytes = p.to_bytes();
        // A Kad-packed payload is deflated again at our level, not the sender's.
        if p.protocol == UdpProtocol::KadPacked {
            assert_eq!(UdpPacket::decode(bytes).ok(), Some(p));
        } else {
            assert_eq!(&bytes[..], data);
        }
    }
}

/// Server and peer message decoders on raw payloads: `[protocol selector][opcode][payload]`.
/// Whatever decodes must re-encode to bytes that decode and re-encode identically.
pub fn message(data: &[u8]) {
    let [sel, opcode, payload @ ..] = data else {
        return;
    };
    let payload = Bytes::copy_from_slice(payload);
    let enc = encoding(*sel);
    match sel % 3 {
        0 => {
            if let Ok(m) = ServerMessage::decode(*opcode, payload) {
                let once = m.to_frame(enc).unwrap();
                let again = ServerMessage::decode_frame(&once)
                    .unwrap()
                    .to_frame(enc)
                    .unwrap();
                assert_eq!(once, again);
            }
        }
        n => {
            let proto = if n == 1 {
                Protocol::Edonkey
            } else {
                Protocol::Emule
            };
            if let Ok(m) = PeerMessage::decode(proto, *opcode, payload) {
                let once = m.to_frame(enc).unwrap();
                let again = PeerMessage::decode_frame(&once)
                    .unwrap()
                    .to_frame(enc)
                    .unwrap();
                assert_eq!(once, again);
            }
        }
    }
}

/// Tags, tag lists, search trees, server.met and links. Whatever decodes must re-encode to
/// bytes that decode and re-encode identically.
pub fn tag(data: &[u8]) {
    if let Ok(t) = Tag::decode(&mut &data[..]) {
        for enc in [TagEncoding::Classic, TagEncoding::Compact] {
            let mut once = Vec::new();
            t.encode(&mut once, enc).unwrap();
            let mut twice = Vec::new();
            Tag::decode(&mut &once[..])
                .unwrap()
                .encode(&mut twice, enc)
                .unwrap();
            assert_eq!(once, twice);
        }
    }
    let _ = tags::decode_list(&mut &data[..]);
    let _ = tags::decode_kad_list(&mut &data[..]);
    if let Ok(e) = SearchExpr::decode(&mut &data[..]) {
        let mut out = Vec::new();
        e.encode(&mut out).unwrap();
        assert_eq!(SearchExpr::decode(&mut &out[..]).unwrap(), e);
    }
    server_met(data);
    link(data);
}

/// Server UDP (`0xE3`) messages on raw payloads: `[encoding selector][opcode][payload]`,
/// without the datagram header so every opcode is reached directly. Round trip by bytes.
pub fn server_udp(data: &[u8]) {
    let [sel, opcode, payload @ ..] = data else {
        return;
    };
    let enc = encoding(*sel);
    if let Ok(m) = ServerUdpMessage::decode(*opcode, Bytes::copy_from_slice(payload)) {
        let once = m.to_packet(enc).unwrap();
        let again = ServerUdpMessage::decode_packet(&once)
            .unwrap()
            .to_packet(enc)
            .unwrap();
        assert_eq!(once, again);
    }
}

/// Search results (`OP_SEARCHRESULT` file entries, also shared-file lists): a count and
/// entries of hash, client id, port and tags. Round trip by bytes.
pub fn search_results(data: &[u8]) {
    let [sel, rest @ ..] = data else {
        return;
    };
    let enc = encoding(*sel);
    if let Ok(files) = decode_file_entries(&mut &rest[..]) {
        let mut once = Vec::new();
        encode_file_entries(&files, &mut once, enc).unwrap();
        let again = decode_file_entries(&mut &once[..]).unwrap();
        let mut twice = Vec::new();
        encode_file_entries(&again, &mut twice, enc).unwrap();
        assert_eq!(once, twice);
        for f in &files {
            let _ = (f.name(), f.size());
        }
    }
}

/// `server.met` files (downloaded from server lists): round trip by bytes.
pub fn server_met(data: &[u8]) {
    if let Ok(met) = ServerMet::decode(data) {
        let once = met.to_vec().unwrap();
        assert_eq!(
            ServerMet::decode(&once[..]).unwrap().to_vec().unwrap(),
            once
        );
    }
}

/// `ed2k://` links (file, server, serverlist): what parses prints back to the same link.
pub fn link(data: &[u8]) {
    if let Some(s) = super::text(data)
        && let Ok(link) = Ed2kLink::parse(s)
    {
        assert_eq!(Ed2kLink::parse(&link.to_string()).as_ref(), Ok(&link));
    }
}
