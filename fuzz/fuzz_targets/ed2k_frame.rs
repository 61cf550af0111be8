#![no_main]
//! Streaming TCP frame decoder (incl. bounded zlib inflate) and UDP datagram decoder.

use bytes::{Bytes, BytesMut};
use junction_ed2k::wire::{PeerMessage, ServerMessage, ServerUdpMessage, UdpPacket, frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Feed in two pieces split by the first byte, as a socket would.
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut buf = BytesMut::new();
    for part in [&data[..split], &data[split..]] {
        buf.extend_from_slice(part);
        while let Ok(Some(f)) = frame::decode(&mut buf) {
            assert!(f.payload.len() <= frame::MAX_FRAME_LEN);
            let _ = ServerMessage::decode_frame(&f);
            let _ = PeerMessage::decode_frame(&f);
        }
    }
    if let Ok(p) = UdpPacket::decode(Bytes::copy_from_slice(data)) {
        let _ = ServerUdpMessage::decode_packet(&p);
    }
});
