//! Bytes captured from libtorrent 2.0.8 on loopback (tests/interop/bt_capture_libtorrent.py)
//! decode as expected: what a real client sends is what the wire layer and the peer code
//! are written against.

use bytes::BytesMut;
use junction_bittorrent::wire::metainfo::{Info, Metainfo};
use junction_bittorrent::wire::{
    ExtendedHandshake, Handshake, Message, MessageDecoder, MetadataMessage,
};

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn messages(raw: &[u8]) -> (Handshake, Vec<Message>) {
    let mut buf = BytesMut::from(raw);
    let hs = Handshake::decode(&mut buf).unwrap().unwrap();
    let mut dec = MessageDecoder::default();
    let mut out = Vec::new();
    while let Some(m) = dec.decode(&mut buf).unwrap() {
        out.push(m);
    }
    assert!(buf.is_empty(), "a trailing partial frame");
    (hs, out)
}

#[test]
fn libtorrent_seed_hello() {
    let torrent = Metainfo::parse(&data("libtorrent-vector.torrent")).unwrap();
    let (hs, msgs) = messages(&data("libtorrent-seed-hello.bin"));
    assert_eq!(Some(hs.info_hash), torrent.info.info_hash);
    assert_eq!(hs.peer_id.azureus_client(), Some("LT2080"));
    assert!(hs.reserved.extension_protocol() && hs.reserved.fast() && hs.reserved.dht());
    // libtorrent sends its extended handshake *before* have-all, although BEP 6 asks for
    // have-all/bitfield first; the peer code therefore accepts either order.
    let Message::Extended { id: 0, payload } = &msgs[0] else {
        panic!("first message: {:?}", msgs[0]);
    };
    let ext = ExtendedHandshake::decode(payload).unwrap();
    assert_eq!(ext.v.as_deref(), Some("libtorrent/2.0.8.0"));
    assert_eq!(ext.id_of("ut_metadata"), Some(2));
    assert_eq!(ext.id_of("ut_pex"), Some(1));
    assert_eq!(ext.metadata_size, Some(torrent.info.raw.len() as u32));
    assert_eq!(ext.reqq, Some(2000));
    assert!(ext.upload_only);
    assert!(msgs.contains(&Message::HaveAll));
    assert!(msgs.contains(&Message::Unchoke));
}

#[test]
fn libtorrent_serves_metadata() {
    let torrent = Metainfo::parse(&data("libtorrent-vector.torrent")).unwrap();
    let (_, msgs) = messages(&data("libtorrent-ut-metadata.bin"));
    // We asked under the id its handshake gave (2); it answers under the id ours gave (1).
    let reply = msgs
        .iter()
        .find_map(|m| match m {
            Message::Extended { id: 1, payload } => Some(payload.clone()),
            _ => None,
        })
        .expect("a ut_metadata reply");
    let MetadataMessage::Data {
        piece,
        total_size,
        data,
    } = MetadataMessage::decode(reply).unwrap()
    else {
        panic!("not a data message");
    };
    assert_eq!((piece, total_size as usize), (0, torrent.info.raw.len()));
    let info = Info::parse_verified(&data, &torrent.info.info_hash.unwrap()).unwrap();
    assert_eq!(info.name, "vector.bin");
    assert_eq!(info.total_length, 300_000);
}
