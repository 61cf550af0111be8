//! Targets for `junction-bittorrent`: KRPC, metainfo (v1 and v2), peer wire, trackers,
//! magnet links, the tracker client's HTTP reader and Torznab feeds.

use bytes::{Bytes, BytesMut};
use junction_bittorrent::wire::hashes::{self, LayerTree};
use junction_bittorrent::wire::krpc::{Message as Krpc, peek_transaction_id};
use junction_bittorrent::wire::magnet::{Magnet, Topic};
use junction_bittorrent::wire::metainfo::{Info, Metainfo};
use junction_bittorrent::wire::piece::{Bitfield, Geometry};
use junction_bittorrent::wire::tracker::{http as tracker_http, udp};
use junction_bittorrent::wire::{
    ExtendedHandshake, Handshake, Message, MessageDecoder, MetadataMessage, PexMessage,
};
use junction_bittorrent::wire::{compact, percent};
use junction_bittorrent::wire::{http as net_http, torznab};

/// DHT KRPC messages: decode, and a decoded message must re-encode to a decodable twin.
pub fn krpc(data: &[u8]) {
    let _ = peek_transaction_id(data);
    if let Ok(msg) = Krpc::decode(data) {
        let again = Krpc::decode(&msg.encode());
        assert_eq!(again.as_ref(), Ok(&msg));
    }
}

/// `.torrent` files, bare `info` dictionaries, magnet links and tracker responses.
pub fn metainfo(data: &[u8]) {
    if let Ok(m) = Metainfo::parse(data) {
        // The info-hash covers the raw bytes, which must parse alone to the same info.
        assert_eq!(Info::parse(&m.info.raw).as_ref(), Ok(&m.info));
    }
    let _ = Info::parse(data);
    let _ = tracker_http::AnnounceResponse::parse(data);
    let _ = tracker_http::parse_scrape(data);
    let _ = udp::Request::decode(data);
    let _ = udp::Response::decode(data, udp::Family::V4);
    let _ = udp::Response::decode(data, udp::Family::V6);
    if let Some(text) = super::text(data) {
        let _ = Magnet::parse(text);
        let _ = tracker_http::AnnounceRequest::from_query(text);
    }
}

/// Metainfo v2 and hybrids (BEP 52): the `file tree`, `piece layers`, and everything
/// derived from a parsed torrent (content id, per-file hashes, piece checks).
pub fn metainfo_v2(data: &[u8]) {
    let Ok(m) = Metainfo::parse(data) else {
        let _ = Info::parse(data);
        return;
    };
    let info = &m.info;
    assert_eq!(Info::parse(&info.raw).as_ref(), Ok(info));
    if let Some(h) = info.info_hash {
        assert_eq!(Info::parse_verified(&info.raw, &h).as_ref(), Ok(info));
    }
    let _ = (
        info.swarm_hash(),
        info.file_hashes(),
        info.content_id(),
        m.tracker_tiers(),
    );
    for i in 0..info.files.len().min(64) {
        let _ = info.file_units(i);
    }
    // Every piece layer belongs to a file of the tree and is not longer than it.
    for (root, layer) in &m.piece_layers {
        let file = info
            .file_tree
            .iter()
            .find(|f| f.pieces_root.as_ref() == Some(root));
        let file = file.expect("a piece layer names a file of the tree");
        let pl = u64::from(info.piece_length.max(1));
        assert!(layer.len() as u64 <= file.length.div_ceil(pl));
    }
    if let Some(g) = info.geometry() {
        for i in [0, 1, g.piece_count().saturating_sub(1), g.piece_count()] {
            if let Ok(idx) = g.index(i) {
                let _ = info.piece_hash(idx);
                let _ = info.verify_piece(idx, &data[..data.len().min(64)]);
            }
        }
    }
}

/// Peer wire: handshake, streamed messages and every extension payload decoder.
pub fn peer_message(data: &[u8]) {
    let _ = Handshake::decode(&mut BytesMut::from(data));
    let geometry = Geometry::new(32 * 1024, 1_000_000).ok();
    let mut buf = BytesMut::from(data);
    let mut decoder = MessageDecoder::default();
    while let Ok(Some(msg)) = decoder.decode(&mut buf) {
        // Every decoded message re-encodes to a frame that decodes to itself.
        let again = Message::decode_frame(msg.to_bytes().slice(4..));
        assert_eq!(again.as_ref(), Ok(&msg));
        let Some(g) = geometry else { continue };
        match &msg {
            Message::Request(r) | Message::Cancel(r) | Message::Reject(r) => {
                let _ = r.validate(&g);
            }
            Message::Piece(p) => {
                let _ = p.validate(&g);
            }
            Message::Bitfield(b) => {
                let _ = Bitfield::from_payload(b, g.piece_count());
            }
            Message::Have(i) => {
                let _ = g.index(*i);
            }
            // BEP 52: answered from a small tree, and answers checked against its root.
            Message::HashRequest(r) | Message::HashReject(r) => {
                let tree = LayerTree::new(&[[7; 32]; 5], r.base_layer % 4);
                let _ = tree.answer(r);
            }
            Message::Hashes(h) => {
                let _ = hashes::verify(h, &h.request.pieces_root, h.request.proof_layers % 70);
            }
            Message::Extended { payload, .. } => {
                let _ = ExtendedHandshake::decode(payload);
                let _ = MetadataMessage::decode(payload.clone());
                let _ = PexMessage::decode(payload);
            }
            _ => {}
        }
    }
    let _ = MetadataMessage::decode(Bytes::copy_from_slice(data));
}

/// Tracker traffic, both directions, as round trips: UDP requests and responses
/// (BEP 15), HTTP announce and scrape responses (bencode), the announce query string
/// our tracker role reads, compact peer lists and percent-encoding.
pub fn tracker(data: &[u8]) {
    if let Ok(r) = udp::Request::decode(data) {
        assert_eq!(udp::Request::decode(&r.to_vec()).as_ref(), Ok(&r));
    }
    for family in [udp::Family::V4, udp::Family::V6] {
        if let Ok(r) = udp::Response::decode(data, family) {
            let again = udp::Response::decode(&r.to_vec(family), family);
            assert_eq!(again.as_ref(), Ok(&r));
        }
    }
    if let Ok(a) = tracker_http::AnnounceResponse::parse(data) {
        let again = tracker_http::AnnounceResponse::parse(&a.encode());
        assert_eq!(again.as_ref(), Ok(&a));
    }
    if let Ok(s) = tracker_http::parse_scrape(data) {
        let again = tracker_http::parse_scrape(&tracker_http::encode_scrape(&s));
        assert_eq!(again.as_ref(), Ok(&s));
    }
    if let Ok(v4) = compact::decode_v4(data) {
        assert_eq!(compact::encode_v4(&v4), data);
    }
    if let Ok(v6) = compact::decode_v6(data) {
        assert_eq!(compact::encode_v6(&v6), data);
    }
    let _ = compact::decode_one(data);
    let _ = compact::decode_ip(data);
    if let Some(text) = super::text(data) {
        if let Ok(q) = tracker_http::AnnounceRequest::from_query(text) {
            let again = tracker_http::AnnounceRequest::from_query(&q.to_query());
            assert_eq!(again.as_ref(), Ok(&q));
        }
        for plus_is_space in [false, true] {
            if let Some(bytes) = percent::decode(text, plus_is_space) {
                let again = percent::decode(&percent::encode(&bytes), plus_is_space);
                assert_eq!(again.as_ref(), Some(&bytes));
            }
        }
        let _ = tracker_http::scrape_url(text);
    }
}

/// Magnet links (BEP 9, 53, BEP 52 `btmh`): what parses prints back to the same link.
pub fn magnet(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    if let Ok(m) = Magnet::parse(text) {
        let again = Magnet::parse(&m.to_string());
        assert_eq!(again.as_ref(), Ok(&m));
        let _ = (m.btih(), m.btmh(), m.swarm_hash(), m.peer_addrs().count());
    }
    if let Ok(t) = Topic::parse(text) {
        assert_eq!(Topic::parse(&t.to_string()).as_ref(), Ok(&t));
    }
}

/// The tracker client's HTTP/1.x reader (`net/http.rs`): the response head and body as
/// read until the connection closed, and announce URLs.
pub fn http(data: &[u8]) {
    if let Ok(body) = net_http::parse_response(data) {
        assert!(body.len() <= data.len());
    }
    if let Some(text) = super::text(data)
        && let Ok(url) = net_http::Url::parse(text)
    {
        assert!(url.target.starts_with('/'));
    }
}

/// Torznab feeds (an indexer's RSS answer, or its `<error>`).
pub fn torznab(data: &[u8]) {
    let Some(text) = super::text(data) else {
        return;
    };
    if let Ok(items) = torznab::parse(text) {
        for item in &items {
            let _ = item.to_hit();
        }
    }
}
