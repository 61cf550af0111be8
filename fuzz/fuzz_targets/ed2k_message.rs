#![no_main]
//! Server and peer message decoders on raw payloads: `[protocol selector][opcode][payload]`.
//! Whatever decodes must re-encode to bytes that decode and re-encode identically.

use bytes::Bytes;
use junction_ed2k::wire::{PeerMessage, Protocol, ServerMessage, TagEncoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [sel, opcode, payload @ ..] = data else {
        return;
    };
    let payload = Bytes::copy_from_slice(payload);
    let enc = if sel & 0x80 != 0 {
        TagEncoding::Compact
    } else {
        TagEncoding::Classic
    };
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
});
