//! Targets for `junction-gnutella`: descriptors, GGEP, handshakes and HTTP heads, browse
//! host replies, THEX/DIME, QRP tables, deflate links and HTTP header values.

use bytes::{Bytes, BytesMut};
use junction_gnutella::TigerHash;
use junction_gnutella::wire::addr_list::{parse_addr_v4, parse_socket_addr};
use junction_gnutella::wire::browse::{BrowseDecoder, ChunkedDecoder, LAST_CHUNK, put_chunk};
use junction_gnutella::wire::cobs;
use junction_gnutella::wire::descriptor_header::DescriptorDecoder;
use junction_gnutella::wire::ext::ExtArea;
use junction_gnutella::wire::ggep::{self, Block};
use junction_gnutella::wire::handshake::{Handshake, MAX_HANDSHAKE_LEN};
use junction_gnutella::wire::http::{
    ByteRange, ContentRange, Giv, HttpHead, Queued, RequestExt, RequestHead, ResponseExt,
    ResponseHead, percent_decode,
};
use junction_gnutella::wire::link::{LinkDeflater, LinkInflater};
use junction_gnutella::wire::message::{Descriptor, Message, RouteTableUpdate};
use junction_gnutella::wire::push_proxy::{self, PushProxyRequest};
use junction_gnutella::wire::qrp::QrpReceiver;
use junction_gnutella::wire::urn::Urn;
use junction_gnutella::wire::{dime, thex};

/// The two pieces the input is fed in, split where its first byte says.
fn halves(data: &[u8]) -> (&[u8], &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    data.split_at(split)
}

/// Browse host replies (`GET /`, `application/x-gnutella-packets`): the chunked
/// decoder and the whole reply decoder (head, chunks, deflate, descriptors) never
/// panic and stay bounded, whatever the split of the input.
pub fn browse(data: &[u8]) {
    let (a, b) = halves(data);
    let mut c = ChunkedDecoder::default();
    let mut out = BytesMut::new();
    if c.decode(a, &mut out).is_ok() {
        let _ = c.decode(b, &mut out);
    }
    assert!(out.len() <= data.len());
    // What was decoded, chunked again (in two chunks), decodes to itself.
    let mut body = Vec::new();
    let cut = out.len() / 2;
    put_chunk(&out[..cut], &mut body);
    put_chunk(&out[cut..], &mut body);
    body.extend_from_slice(LAST_CHUNK);
    let (mut again, mut back) = (ChunkedDecoder::default(), BytesMut::new());
    assert!(again.decode(&body, &mut back).is_ok() && again.is_done());
    assert_eq!(back, out);
    // A head of our choosing, then the input as body (plain, chunked, deflated).
    for head in [
        &b"HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\nTransfer-Encoding: chunked\r\nContent-Encoding: deflate\r\n\r\n",
    ] {
        let (h, _) = ResponseHead::parse(head).unwrap().unwrap();
        let mut dec = BrowseDecoder::new(&h).unwrap();
        for piece in [a, b] {
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
}

/// Descriptor framing and every payload decoder: no panic, bounded buffers,
/// and a decoded message re-encodes to the bytes it came from.
pub fn descriptor(data: &[u8]) {
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
                    let _ = (t.push(), t.ggep(), push_proxy::trailer_proxies(t));
                }
            }
            Message::Query(q) => {
                let _ = q.urns();
            }
            Message::Vendor(v) => {
                let link = std::net::Ipv4Addr::new(198, 18, 0, 1);
                let _ = (v.push_proxy_ack_addr(link), v.connect_back_port());
            }
            _ => {}
        }
    }
}

/// GGEP blocks, COBS and extension areas: no panic, bounded inflation, exact
/// re-encoding of whatever decodes.
pub fn ggep(data: &[u8]) {
    if let Ok(block) = Block::parse(data) {
        let mut v = Vec::new();
        block.encode(&mut v);
        assert_eq!(v, data);
        for e in &block.extensions {
            let _ = e.data();
        }
        let _ = (
            block.hash(),
            block.alt_locs(),
            block.large_file_size(),
            block.scp(),
            block.push_proxies(),
        );
    }
    if let Ok(d) = cobs::decode(data) {
        assert_eq!(cobs::decode(&cobs::encode(&d)).ok(), Some(d));
    }
    if let Ok(area) = ExtArea::decode_to_end(Bytes::copy_from_slice(data)) {
        let mut v = Vec::new();
        area.encode(&mut v);
        assert_eq!(v, data);
        let _ = area.urns();
    }
    let mut b = Bytes::copy_from_slice(data);
    let _ = ExtArea::decode_nul_terminated(&mut b);
}

/// Gnutella handshake blocks, HTTP heads and GIV lines: streaming parsers
/// must never panic; whatever parses must re-encode and parse again.
pub fn handshake(data: &[u8]) {
    if let Ok(Some((hs, n))) = Handshake::parse(data) {
        assert!(n <= data.len());
        // Re-encoding normalises `Name:value` to `Name: value`, so it may
        // grow; within the bound it must parse back to the same block.
        let wire = hs.to_bytes();
        if wire.len() <= MAX_HANDSHAKE_LEN {
            let again = Handshake::parse(&wire).ok().flatten().map(|(h, _)| h);
            assert_eq!(again.as_ref(), Some(&hs));
        }
        let _ = (
            hs.try_ultrapeers(),
            hs.listen_addr(),
            hs.guid(),
            hs.degree(),
        );
    }
    if let Ok(Some((req, _))) = RequestHead::parse(data) {
        let _ = (req.target(), req.range(), req.alt_locs(), req.content_urn());
        // A push-proxy request: its servent id back to base32 parses to the same id.
        if let Some(Ok(p)) = PushProxyRequest::parse(&req) {
            let id = push_proxy::guid_base32(&p.servent);
            assert_eq!(push_proxy::guid_from_base32(&id).ok(), Some(p.servent));
        }
    }
    if let Ok(Some((resp, _))) = ResponseHead::parse(data) {
        let _ = (resp.content_range(), resp.queued(), resp.available_ranges());
    }
    let _ = Giv::parse(data);
}

/// DIME messages and THEX answers (`/uri-res/N2X`): no panic, no allocation beyond
/// what the input holds; whatever DIME decodes re-encodes to the same records.
pub fn thex(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    if let Ok(records) = dime::decode_message(&body) {
        let mut v = Vec::new();
        if dime::encode_message(&records, &mut v).is_ok() {
            assert_eq!(
                dime::decode_message(&Bytes::from(v)).ok(),
                Some(records.clone())
            );
        }
        for r in &records {
            let _ = thex::parse_xml(&r.data);
        }
    }
    // The file size and root come from the input too, so both sides of every check
    // (size, depth, root, level) are reached.
    let (size, root) = match data.get(..32) {
        Some(head) => {
            let mut s = [0u8; 8];
            s.copy_from_slice(&head[..8]);
            let mut r = [0u8; 24];
            r.copy_from_slice(&head[8..]);
            (u64::from_le_bytes(s) >> (head[0] % 64), r)
        }
        None => (65536, [0u8; 24]),
    };
    if let Ok(level) = thex::decode_answer(&body, size, &TigerHash(root)) {
        assert_eq!(level.root(), Some(TigerHash(root)));
        assert!(level.unit_len >= 1024 && (level.unit_len / 1024).is_power_of_two());
    }
    for body in [body.slice(32.min(body.len())..), body] {
        let _ = thex::decode_answer(&body, 65536, &TigerHash(root));
    }
}

/// QRP (route table update) sequences as a peer sends them: the input is a run of
/// `[u16 LE length][RESET or PATCH payload]`, applied in order to one receiver. Bounded
/// tables, no panic; a table a receiver ends with (up to 2^16 slots), sent again as RESET
/// and PATCH messages, rebuilds the same table.
pub fn qrp(data: &[u8]) {
    let mut rx = QrpReceiver::new();
    let mut rest = data;
    while let [lo, hi, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let Ok(update) = RouteTableUpdate::decode(Bytes::copy_from_slice(payload)) else {
            continue;
        };
        let mut wire = Vec::new();
        update.encode(&mut wire);
        assert_eq!(wire, payload);
        let _ = rx.apply(&update);
    }
    // The round trip re-sends the whole table; above 2^16 slots it only slows the fuzzer.
    let Some(table) = rx.table().filter(|t| t.len() <= 1 << 16) else {
        return;
    };
    let Ok(messages) = table.to_messages(4096) else {
        return;
    };
    let mut again = QrpReceiver::new();
    for m in &messages {
        again.apply(m).expect("our own QRP messages apply");
    }
    let rebuilt = again.table().expect("a RESET was sent");
    assert_eq!(rebuilt.slots(), table.slots());
}

/// Deflate link compression (`Content-Encoding: deflate` after the handshake): a
/// peer's stream inflates within the per-call bound, in any split, and what we deflate
/// inflates back to the same bytes.
pub fn deflate_link(data: &[u8]) {
    const MAX_OUT: usize = 64 * 1024;
    let (a, b) = halves(data);
    let mut z = LinkInflater::new(MAX_OUT);
    for piece in [a, b] {
        let mut out = BytesMut::new();
        if z.inflate(piece, &mut out).is_err() {
            break;
        }
        // One call yields at most the bound plus one inflate chunk.
        assert!(out.len() <= MAX_OUT + 8192);
    }
    let mut d = LinkDeflater::default();
    let mut wire = BytesMut::new();
    d.deflate_flush(a, &mut wire).unwrap();
    let cut = wire.len();
    d.deflate_flush(b, &mut wire).unwrap();
    let mut z = LinkInflater::new(usize::MAX);
    let mut out = BytesMut::new();
    z.inflate(&wire[..cut], &mut out).unwrap();
    assert_eq!(&out[..], a);
    z.inflate(&wire[cut..], &mut out).unwrap();
    assert_eq!(&out[..], data);
}

/// HTTP header values of Gnutella transfers (`Range`, `Content-Range`, `X-Queued`,
/// `X-Gnutella-Content-URN`, alt-locs, `X-Node`) and GGEP payloads (`H`, `IPP`,
/// `LF`-style vlints): no panic; what prints back parses to the same value.
pub fn http_fields(data: &[u8]) {
    let _ = ggep::Hash::parse(data);
    let _ = ggep::parse_ip_ports(data, "fuzz");
    if let Ok(n) = ggep::parse_vlint(data, "fuzz") {
        let v = ggep::encode_vlint(n);
        assert_eq!(ggep::parse_vlint(&v, "fuzz").ok(), Some(n));
    }
    let Some(text) = super::text(data) else {
        return;
    };
    let _ = ByteRange::parse_header(text, 64);
    if let Ok(r) = ContentRange::parse(text) {
        assert_eq!(ContentRange::parse(&r.to_string()).ok(), Some(r));
    }
    let q = Queued::parse(text);
    let _ = Queued::parse(&q.to_string());
    if let Ok(u) = Urn::parse(text) {
        assert_eq!(Urn::parse(&u.to_string()).ok(), Some(u));
    }
    let _ = (parse_addr_v4(text), parse_socket_addr(text));
    let _ = percent_decode(text);
}
