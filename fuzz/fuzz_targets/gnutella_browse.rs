#![no_main]
//! Browse host replies (`GET /`, `application/x-gnutella-packets`): the chunked
//! decoder and the whole reply decoder (head, chunks, deflate, descriptors) never
//! panic and stay bounded, whatever the split of the input.

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

use junction_gnutella::wire::browse::{BrowseDecoder, ChunkedDecoder};
use junction_gnutella::wire::http::ResponseHead;
use junction_gnutella::wire::message::Message;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut c = ChunkedDecoder::default();
    let mut out = BytesMut::new();
    if c.decode(&data[..split], &mut out).is_ok() {
        let _ = c.decode(&data[split..], &mut out);
    }
    assert!(out.len() <= data.len());
    // A head of our choosing, then the input as body (plain, chunked, deflated).
    for head in [
        &b"HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\nTransfer-Encoding: chunked\r\nContent-Encoding: deflate\r\n\r\n",
    ] {
        let (h, _) = ResponseHead::parse(head).unwrap().unwrap();
        let mut dec = BrowseDecoder::new(&h).unwrap();
        for piece in [&data[..split], &data[split..]] {
            match dec.feed(piece) {
                Ok(ds) => {
                    for d in ds {
                        if let Message::QueryHit(hit) = d.message {
                            assert!(hit.results.len() <= 255);
                        }
                    }
                }
                Err(_) => break,
            }
        }
        let _ = dec.finish();
    }
    // The input as a whole reply, head included.
    if let Ok(Some((h, n))) = ResponseHead::parse(data)
        && let Ok(mut dec) = BrowseDecoder::new(&h)
    {
        let _ = dec.feed(&data[n..]);
    }
});
