//! Helpers shared by the capture tests.
#![allow(dead_code)]

use bytes::BytesMut;
use junction_gnutella::wire::descriptor_header::DescriptorDecoder;
use junction_gnutella::wire::handshake::Handshake;
use junction_gnutella::wire::http::{Giv, HttpHead, RequestHead, ResponseHead};
use junction_gnutella::wire::link::LinkInflater;
use junction_gnutella::wire::message::Descriptor;

pub fn path(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn exists(name: &str) -> bool {
    std::path::Path::new(&path(name)).exists()
}

/// Decode a whole descriptor stream; every descriptor must decode and
/// re-encode to its exact bytes, and nothing may be left over.
pub fn decode_stream(what: &str, bytes: &[u8]) -> Vec<Descriptor> {
    let dec = DescriptorDecoder::default();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(raw) = dec
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{what}: framing: {e}"))
    {
        let d = Descriptor::from_raw(&raw)
            .unwrap_or_else(|e| panic!("{what}: message #{}: {e}", out.len()));
        let mut original = Vec::new();
        raw.encode(&mut original);
        assert_eq!(
            d.to_bytes().unwrap(),
            original,
            "{what}: message #{} ({:?}) does not re-encode byte-exactly",
            out.len(),
            d.message
        );
        out.push(d);
    }
    assert!(buf.is_empty(), "{what}: {} bytes left undecoded", buf.len());
    out
}

/// Parse `n` handshake blocks at the start of `bytes` (each must re-encode
/// exactly); returns them and the offset after the last.
pub fn handshakes(what: &str, bytes: &[u8], n: usize) -> (Vec<Handshake>, usize) {
    let mut pos = 0;
    let mut out = Vec::new();
    for i in 0..n {
        let (hs, len) = Handshake::parse(&bytes[pos..])
            .unwrap_or_else(|e| panic!("{what}: handshake block {i}: {e}"))
            .unwrap_or_else(|| panic!("{what}: handshake block {i} incomplete"));
        assert_eq!(
            hs.to_bytes(),
            &bytes[pos..pos + len],
            "{what}: block {i} re-encoding"
        );
        pos += len;
        out.push(hs);
    }
    (out, pos)
}

/// Inflate a captured `.deflate.bin` stream.
pub fn inflate(name: &str) -> Vec<u8> {
    let mut inf = LinkInflater::new(1 << 20);
    let mut out = BytesMut::new();
    // Feed it in uneven pieces, as a socket would.
    for piece in data(name).chunks(37) {
        inf.inflate(piece, &mut out)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    out.to_vec()
}

/// Walk a stream of request heads (requests carry no body here).
pub fn requests(what: &str, bytes: &[u8]) -> Vec<RequestHead> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let (h, len) = RequestHead::parse(&bytes[pos..])
            .unwrap_or_else(|e| panic!("{what}: request {}: {e}", out.len()))
            .unwrap_or_else(|| panic!("{what}: request {} incomplete", out.len()));
        assert_eq!(
            h.to_bytes(),
            &bytes[pos..pos + len],
            "{what}: request re-encoding"
        );
        pos += len;
        out.push(h);
    }
    out
}

/// Walk a stream of responses, skipping bodies (by `Content-Length`, chunked
/// coding, or none for HEAD); returns each head with its (de-chunked) body.
pub fn responses(what: &str, bytes: &[u8], methods: &[&str]) -> Vec<(ResponseHead, Vec<u8>)> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < bytes.len() {
        let i = out.len();
        let (h, len) = ResponseHead::parse(&bytes[pos..])
            .unwrap_or_else(|e| panic!("{what}: response {i}: {e}"))
            .unwrap_or_else(|| panic!("{what}: response {i} incomplete"));
        assert_eq!(
            h.to_bytes(),
            &bytes[pos..pos + len],
            "{what}: response re-encoding"
        );
        pos += len;
        let body = if methods.get(i) == Some(&"HEAD") {
            Vec::new()
        } else if h.headers.has_token("Transfer-Encoding", "chunked") {
            let (body, used) = dechunk(&bytes[pos..]);
            pos += used;
            body
        } else {
            let n = h.content_length().expect("Content-Length") as usize;
            let body = bytes[pos..pos + n].to_vec();
            pos += n;
            body
        };
        out.push((h, body));
    }
    out
}

fn dechunk(b: &[u8]) -> (Vec<u8>, usize) {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let nl = b[pos..].windows(2).position(|w| w == b"\r\n").unwrap() + pos;
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[pos..nl]).unwrap().trim(), 16).unwrap();
        pos = nl + 2;
        if size == 0 {
            assert_eq!(&b[pos..pos + 2], b"\r\n");
            return (body, pos + 2);
        }
        body.extend_from_slice(&b[pos..pos + size]);
        pos += size;
        assert_eq!(&b[pos..pos + 2], b"\r\n");
        pos += 2;
    }
}

/// A `GIV` line at the start; returns it and its length.
pub fn giv(bytes: &[u8]) -> (Giv, usize) {
    let (g, n) = Giv::parse(bytes).unwrap().unwrap();
    let mut v = Vec::new();
    g.encode(&mut v);
    assert_eq!(v, &bytes[..n], "GIV re-encoding");
    (g, n)
}
