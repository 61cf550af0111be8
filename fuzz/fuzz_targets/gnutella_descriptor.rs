#![no_main]
//! Descriptor framing and every payload decoder: no panic, bounded buffers,
//! and a decoded message re-encodes to the bytes it came from.

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

use junction_gnutella::wire::header::DescriptorDecoder;
use junction_gnutella::wire::message::{Descriptor, Message};
use junction_gnutella::wire::qrp::QrpReceiver;

fuzz_target!(|data: &[u8]| {
    let dec = DescriptorDecoder::default();
    let mut buf = BytesMut::from(data);
    let mut qrp = QrpReceiver::new();
    while let Ok(Some(raw)) = dec.decode(&mut buf) {
        let Ok(d) = Descriptor::from_raw(&raw) else {
            continue;
        };
        let mut original = Vec::new();
        raw.encode(&mut original);
        assert_eq!(d.to_bytes().ok(), Some(original));
        match &d.message {
            Message::RouteTable(u) => {
                let _ = qrp.apply(u);
            }
            Message::QueryHit(h) => {
                for r in &h.results {
                    let _ = (r.urns(), r.file_size());
                }
                if let Some(t) = &h.trailer {
                    let _ = (t.push(), t.ggep());
                }
            }
            Message::Query(q) => {
                let _ = q.urns();
            }
            _ => {}
        }
    }
});
