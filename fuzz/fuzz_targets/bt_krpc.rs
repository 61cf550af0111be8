//! DHT KRPC messages: decode, and a decoded message must re-encode to a decodable twin.
#![no_main]

use junction_bittorrent::krpc::{Message, peek_transaction_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = peek_transaction_id(data);
    if let Ok(msg) = Message::decode(data) {
        let again = Message::decode(&msg.encode());
        assert_eq!(again.as_ref(), Ok(&msg));
    }
});
