//! Streams fed split at every byte decode the same as whole.

mod common;

use bytes::BytesMut;
use common::*;
use junction_gnutella::wire::descriptor_header::{DescriptorDecoder, RawDescriptor};
use junction_gnutella::wire::handshake::Handshake;
use junction_gnutella::wire::http::{HttpHead, ResponseHead};

fn frames(chunks: &[&[u8]]) -> Vec<RawDescriptor> {
    let dec = DescriptorDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        while let Some(d) = dec.decode(&mut buf).unwrap() {
            out.push(d);
        }
    }
    assert!(buf.is_empty());
    out
}

#[test]
fn descriptor_stream_split_at_every_byte() {
    // gtk-gnutella's inflated ultrapeer→leaf stream: vendor, pongs, hits, bye.
    let bytes = data("01-leaf-to-gtkg-ultrapeer.b2a.bin");
    let (_, hs) = handshakes("01", &bytes, 1);
    let stream = &bytes[hs..];
    let whole = frames(&[stream]);
    assert_eq!(whole.len(), 9);
    for cut in 0..=stream.len() {
        let (a, b) = stream.split_at(cut);
        assert_eq!(frames(&[a, b]), whole, "split at {cut}");
    }
    let singles: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(frames(&singles), whole, "byte by byte");
}

#[test]
fn handshake_then_compressed_stream_split_at_every_byte() {
    let bytes = data("02a-gtkg-ultrapeer-connects-out.a2b.bin");
    let (blocks, hs) = handshakes("02a", &bytes, 2);
    for cut in 0..=hs {
        let mut buf = BytesMut::from(&bytes[..cut]);
        let mut got = Vec::new();
        while let Some(h) = Handshake::decode(&mut buf).unwrap() {
            got.push(h);
        }
        buf.extend_from_slice(&bytes[cut..hs]);
        while let Some(h) = Handshake::decode(&mut buf).unwrap() {
            got.push(h);
        }
        assert_eq!(got, blocks, "split at {cut}");
        assert!(buf.is_empty());
    }
}

#[test]
fn http_head_split_at_every_byte() {
    let bytes = data("06a-http-get-n2r-range-keepalive.b2a.bin");
    let (whole, n) = ResponseHead::parse(&bytes).unwrap().unwrap();
    for cut in 0..n {
        assert!(
            ResponseHead::parse(&bytes[..cut]).unwrap().is_none(),
            "cut {cut}"
        );
    }
    let mut buf = BytesMut::from(&bytes[..n]);
    assert_eq!(ResponseHead::decode(&mut buf).unwrap(), Some(whole));
}
