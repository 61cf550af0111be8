//! Peer wire: handshake, streamed messages and every extension payload decoder.
#![no_main]

use bytes::{Bytes, BytesMut};
use junction_bittorrent::piece::{Bitfield, Geometry};
use junction_bittorrent::wire::{
    ExtendedHandshake, Handshake, Message, MessageDecoder, MetadataMessage, PexMessage,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
            Message::Extended { payload, .. } => {
                let _ = ExtendedHandshake::decode(payload);
                let _ = MetadataMessage::decode(payload.clone());
                let _ = PexMessage::decode(payload);
            }
            _ => {}
        }
    }
    let _ = MetadataMessage::decode(Bytes::copy_from_slice(data));
});
