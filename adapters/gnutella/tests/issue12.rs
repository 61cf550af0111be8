//! Issue 12, "what a live gtk-gnutella saw of Junction": browse host, cached pong
//! hops, "Messages Supported", and the handshake's `X-Try-Ultrapeers` and bound
//! outgoing connections. Golden vectors from gtk-gnutella's captures and its
//! layouts, and Junction servents on loopback.

mod common;
mod net;

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use bytes::BytesMut;
use junction_gnutella::Adapter;
use junction_gnutella::engine::browse::browse_host;
use junction_gnutella::engine::core::SUPPORTED_VENDOR_MESSAGES;
use junction_gnutella::wire::browse::{BrowseDecoder, ChunkedDecoder};
use junction_gnutella::wire::descriptor_header::{Header, kind};
use junction_gnutella::wire::guid::Guid;
use junction_gnutella::wire::http::{HttpHead, ResponseHead};
use junction_gnutella::wire::message::{
    Descriptor, HOPS_FLOW, Message, Ping, TCP_CONNECT_BACK, VendorMessage,
};
use net::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GTK_CONNECT: &[u8] = b"GNUTELLA CONNECT/0.6\r\nUser-Agent: gtk-gnutella/1.2.3 (2024-03-03; Topless; Linux x86_64)\r\nListen-IP: 127.0.0.61:6461\r\nX-Ultrapeer: True\r\nVendor-Message: 0.2\r\nGGEP: 0.5\r\nPong-Caching: 0.1\r\nX-Query-Routing: 0.2\r\nX-Ultrapeer-Query-Routing: 0.1\r\nX-Degree: 32\r\nX-Max-TTL: 4\r\n\r\n";
const FINAL_OK: &[u8] = b"GNUTELLA/0.6 200 OK\r\n\r\n";

// ---------------------------------------------------------------- vendor messages

/// gtk-gnutella's "Messages Supported" and "TCP Connect Back" from the capture decode,
/// and re-encode from the decoded list byte for byte.
#[test]
fn captured_vendor_messages_decode_and_reencode() {
    let bytes = common::data("02f-vendor-messages-from-gtkg.a2b.bin");
    let ds = common::decode_stream("02f", &bytes);
    assert_eq!(ds.len(), 4);
    let Message::Vendor(ms) = &ds[0].message else {
        panic!("not a vendor message: {:?}", ds[0].message)
    };
    assert_eq!(ds[0].header.guid, Guid::ZERO);
    assert_eq!((ds[0].header.ttl, ds[0].header.hops), (1, 0));
    let list = ms.supported_messages().unwrap().unwrap();
    assert_eq!(list.len(), 26);
    assert_eq!(list[0], HOPS_FLOW);
    assert_eq!(list[1], TCP_CONNECT_BACK);
    assert_eq!(list[4], (*b"GTKG", 7, 1));
    assert_eq!(list[25], (*b"LIME", 24, 2));
    let again = Descriptor::new(
        Guid::ZERO,
        1,
        0,
        Message::Vendor(VendorMessage::messages_supported(&list)),
    );
    assert_eq!(again.to_bytes().unwrap(), &bytes[..241]);
    // Not a Messages Supported: no list.
    let Message::Vendor(fs) = &ds[1].message else {
        panic!()
    };
    assert!(fs.supported_messages().is_none());
    let Message::Vendor(cb) = &ds[2].message else {
        panic!()
    };
    assert_eq!(cb.connect_back_port().unwrap().unwrap(), 6461);
    let ours = Descriptor::new(
        Guid::ZERO,
        1,
        0,
        Message::Vendor(VendorMessage::tcp_connect_back(6461)),
    );
    assert_eq!(ours.to_bytes().unwrap(), &bytes[304..337]);
}

/// Ours, built to gtk-gnutella's layout (`vmsg_send_messages_supported`): blank MUID,
/// type 0x31, TTL 1, hops 0; vendor 0, selector 0, version 0; count; the entries.
#[test]
fn our_messages_supported_golden() {
    let d = Descriptor::new(
        Guid::ZERO,
        1,
        0,
        Message::Vendor(VendorMessage::messages_supported(
            &SUPPORTED_VENDOR_MESSAGES,
        )),
    );
    let golden = hex::decode(concat!(
        "00000000000000000000000000000000", // MUID
        "31",
        "01",
        "00",
        "32000000", // vendor, TTL 1, hops 0, 50 bytes
        "00000000",
        "0000",
        "0000", // \0\0\0\0 / 0 v0
        "0500", // 5 entries
        "42454152",
        "0400",
        "0100", // BEAR/4 v1 Hops Flow
        "42454152",
        "0700",
        "0100", // BEAR/7 v1 TCP Connect Back
        "4c494d45",
        "1500",
        "0200", // LIME/21 v2 Push Proxy Request
        "4c494d45",
        "1600",
        "0200", // LIME/22 v2 Push Proxy Acknowledgement
        "4a4e4354",
        "0100",
        "0100", // JNCT/1 v1 Query Done
    ))
    .unwrap();
    assert_eq!(d.to_bytes().unwrap(), golden);
}

/// After the handshake a Junction ultrapeer sends its "Messages Supported" to a peer
/// that announced `Vendor-Message`, answers its TCP Connect Back, and reads its list.
#[tokio::test]
async fn messages_supported_after_handshake_and_connect_back() {
    let up = servent(true, &[]).await;
    let mut gtk = RawPeer::handshake(up.local_addr(), GTK_CONNECT, FINAL_OK).await;
    let mut seen = None;
    for _ in 0..10 {
        let Some(d) = gtk.next(5).await else { break };
        if let Message::Vendor(v) = &d.message
            && let Some(list) = v.supported_messages()
        {
            seen = Some((d.header, list.unwrap()));
            break;
        }
    }
    let (h, list) = seen.expect("no Messages Supported from Junction");
    assert_eq!(h.guid, Guid::ZERO);
    assert_eq!((h.ttl, h.hops), (1, 0));
    assert_eq!(list, SUPPORTED_VENDOR_MESSAGES.to_vec());

    // gtk-gnutella's own list and its connect-back request, replayed.
    let bytes = common::data("02f-vendor-messages-from-gtkg.a2b.bin");
    gtk.send_raw(&bytes[..241]).await;
    let back = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = back.local_addr().unwrap().port();
    gtk.send(&Descriptor::new(
        Guid::ZERO,
        1,
        0,
        Message::Vendor(VendorMessage::tcp_connect_back(port)),
    ))
    .await;
    let (mut s, _) = within("connect back", 10, back.accept()).await.unwrap();
    let mut got = Vec::new();
    within("connect back bytes", 10, s.read_to_end(&mut got))
        .await
        .unwrap();
    assert_eq!(got, b"\n\n");
    // A vendor message that is not hop-to-hop is dropped, not answered.
    gtk.send(&Descriptor::new(
        Guid::ZERO,
        2,
        0,
        Message::Vendor(VendorMessage::tcp_connect_back(port)),
    ))
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(700), back.accept())
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------- pongs and X-Try

/// A ping answered from the pong cache: our own pong with hops 0, another
/// ultrapeer's with the hops it came with + 1. And `X-Try-Ultrapeers` names
/// that ultrapeer once, and never us.
#[tokio::test]
async fn cached_pongs_keep_their_hops_and_try_list_is_clean() {
    let u1 = servent(true, &[]).await;
    let u2 = servent(true, &[u1.local_addr()]).await;
    linked(&u1, 1).await;
    linked(&u2, 1).await;
    // u1 pinged u2 on connecting (TTL 2): u2's pong (hops 0) is in u1's cache.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut peer = RawPeer::handshake(u1.local_addr(), GTK_CONNECT, FINAL_OK).await;
    let tries = peer
        .response
        .headers
        .get("X-Try-Ultrapeers")
        .unwrap_or("")
        .to_owned();
    let list: Vec<&str> = tries.split(',').filter(|s| !s.is_empty()).collect();
    let me = u1.local_addr().to_string();
    assert!(!list.contains(&me.as_str()), "{tries}");
    assert!(!list.contains(&"127.0.0.61:6461"), "{tries}");
    let mut dedup = list.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), list.len(), "{tries}");
    assert!(
        list.contains(&u2.local_addr().to_string().as_str()),
        "{tries}"
    );

    let guid = Guid::modern([7; 16]);
    peer.send(&Descriptor::new(guid, 2, 0, Message::Ping(Ping::default())))
        .await;
    let (a1, a2) = (u1.local_addr(), u2.local_addr());
    let mut own = None;
    let mut other = None;
    while let Some(d) = peer.next(2).await {
        if let Message::Pong(p) = &d.message
            && d.header.guid == guid
        {
            let at = SocketAddr::V4(SocketAddrV4::new(p.ip, p.port));
            if at == a1 {
                own = Some(d.header.hops);
            } else if at == a2 {
                other = Some(d.header.hops);
            } else {
                assert_ne!(d.header.hops, 0, "hops 0 for another host: {at}");
            }
        }
        if own.is_some() && other.is_some() {
            break;
        }
    }
    assert_eq!(own, Some(0), "our own pong has hops 0");
    assert_eq!(
        other,
        Some(1),
        "a neighbour's cached pong goes out with hops 1"
    );
}

/// The pong rule on its own: the cached pong's header keeps the ping's GUID and TTL.
#[test]
fn cached_pong_header_rule() {
    use junction_gnutella::engine::core::cached_pong_header;
    let reply = Header::new(Guid::modern([1; 16]), kind::PONG, 3, 0, 0);
    for (arrived, sent) in [(0u8, 1u8), (1, 2), (5, 6), (255, 255)] {
        let h = cached_pong_header(&reply, arrived);
        assert_eq!(h.hops, sent);
        assert_eq!((h.guid, h.ttl, h.kind), (reply.guid, 3, kind::PONG));
    }
}

/// Outgoing links leave from the configured listen address.
#[tokio::test]
async fn outgoing_connections_bind_the_listen_address() {
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut c = cfg(false, &[fake.local_addr().unwrap()]);
    c.listen = "127.0.0.2:0".parse().unwrap();
    let _leaf = Adapter::start(c).await.unwrap();
    let (_s, from) = within("dial", 10, fake.accept()).await.unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.2");
}

// ---------------------------------------------------------------- browse host

/// gtk-gnutella's captured browse reply decodes: chunked, one QueryHit with a
/// blank MUID, TTL 1, hops 0, three files with urn:sha1 and TT, and `BH` in its trailer.
#[test]
fn captured_gtkg_browse_reply_decodes() {
    let bytes = common::data("06h-http-browse-host.b2a.bin");
    let (head, n) = ResponseHead::parse(&bytes).unwrap().unwrap();
    let mut dec = BrowseDecoder::new(&head).unwrap();
    let mut hits = Vec::new();
    // Fed in uneven pieces, as from a socket.
    for piece in bytes[n..].chunks(29) {
        hits.extend(dec.feed(piece).unwrap());
    }
    assert!(dec.is_done());
    dec.finish().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].header.guid, Guid::ZERO);
    assert_eq!((hits[0].header.ttl, hits[0].header.hops), (1, 0));
    let Message::QueryHit(h) = &hits[0].message else {
        panic!()
    };
    let names: Vec<String> = h.results.iter().map(|r| r.name_str()).collect();
    assert_eq!(
        names,
        [
            "gnutcap charlie.bin",
            "gnutcap-alpha.bin",
            "gnutcap-bravo.txt"
        ]
    );
    assert!(
        h.results
            .iter()
            .all(|r| r.sha1().is_some() && r.ext.tiger().is_some())
    );
    let t = h.trailer.as_ref().unwrap();
    let g = t.ggep().unwrap().unwrap();
    assert!(g.get("BH").is_some());
}

/// Reads a whole HTTP reply to `req` from `addr`: head and raw body (until close).
async fn http(addr: SocketAddr, req: &[u8]) -> (ResponseHead, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req).await.unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some((h, n)) = ResponseHead::parse(&all).unwrap()
            && h.headers.get("Transfer-Encoding") == Some("chunked")
        {
            let mut c = ChunkedDecoder::default();
            if c.decode(&all[n..], &mut BytesMut::new()).is_ok() && c.is_done() {
                return (h, all[n..].to_vec());
            }
        }
        let r = within("http reply", 10, s.read(&mut buf)).await.unwrap();
        if r == 0 {
            let (h, n) = ResponseHead::parse(&all).unwrap().unwrap();
            return (h, all[n..].to_vec());
        }
        all.extend_from_slice(&buf[..r]);
    }
}

/// gtk-gnutella's own browse request (the capture's bytes) to a Junction servent:
/// `200`, the packet type, chunked, not deflated (none was asked), every file.
#[tokio::test]
async fn gtkg_request_browses_junction() {
    let dir = tempfile::tempdir().unwrap();
    let server = servent(true, &[]).await;
    for (i, name) in ["alpha one.bin", "bravo-two.txt", "charlie.iso"]
        .iter()
        .enumerate()
    {
        let (p, _) = make_file(dir.path(), name, 3000 + i * 1000, i as u8);
        share(&server, &p, name).await;
    }
    let req = common::data("06h-http-browse-host.a2b.bin");
    let (head, body) = http(server.local_addr(), &req).await;
    assert_eq!(head.code, 200);
    assert_eq!(
        head.headers.get("Content-Type"),
        Some("application/x-gnutella-packets")
    );
    assert_eq!(head.headers.get("Transfer-Encoding"), Some("chunked"));
    assert!(head.headers.get("Content-Encoding").is_none());
    let mut dec = BrowseDecoder::new(&head).unwrap();
    let ds = dec.feed(&body).unwrap();
    assert!(dec.is_done());
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0].header.guid, Guid::ZERO);
    assert_eq!((ds[0].header.ttl, ds[0].header.hops), (1, 0));
    let Message::QueryHit(h) = &ds[0].message else {
        panic!()
    };
    assert_eq!(h.results.len(), 3);
    assert_eq!(
        SocketAddr::V4(SocketAddrV4::new(h.ip, h.port)),
        server.local_addr()
    );
    let t = h.trailer.as_ref().unwrap();
    assert_eq!(&t.vendor, b"JNCT");
    assert_eq!(t.has_ggep(), Some(true));
    assert!(t.ggep().unwrap().unwrap().get("BH").is_some());
    for r in &h.results {
        assert!(r.sha1().is_some(), "{}", r.name_str());
    }
    // An HTTP/1.0 client gets the packets unchunked, and the connection closes.
    let (head, body) = http(
        server.local_addr(),
        b"GET / HTTP/1.0\r\nAccept: application/x-gnutella-packets\r\n\r\n",
    )
    .await;
    assert!(head.headers.get("Transfer-Encoding").is_none());
    let mut dec = BrowseDecoder::new(&head).unwrap();
    assert_eq!(dec.feed(&body).unwrap().len(), 1);
    dec.finish().unwrap();
    // Without the packet type: not 404 any more, but nothing we can offer.
    let (head, _) = http(server.local_addr(), b"GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(head.code, 406);
}

/// One Junction servent browses another on loopback (deflate + chunked, as gtk-gnutella's
/// client asks): every shared file comes back, with its SHA-1 and Tiger tree root,
/// over several hits of at most 3500 bytes.
#[tokio::test]
async fn junction_browses_junction() {
    let dir = tempfile::tempdir().unwrap();
    let server = servent(true, &[]).await;
    let mut want = std::collections::BTreeMap::new();
    for i in 0..130usize {
        let name = format!("browse file number {i:03} with a longish name.bin");
        let (p, data) = make_file(dir.path(), &name, 1500 + i, i as u8);
        share(&server, &p, &name).await;
        let sha1: [u8; 20] = {
            use sha1::Digest;
            sha1::Sha1::digest(&data).into()
        };
        want.insert(name, sha1);
    }
    let hits = within(
        "browse",
        20,
        browse_host(
            server.local_addr(),
            "127.0.0.1:0".parse().unwrap(),
            "test-browser",
            10_000,
            Duration::from_secs(15),
        ),
    )
    .await
    .unwrap();
    assert!(hits.len() > 1, "130 records do not fit one 3500-byte hit");
    let mut got = std::collections::BTreeMap::new();
    for h in &hits {
        let mut len = Vec::new();
        h.encode(&mut len);
        assert!(len.len() <= 3500 || h.results.len() == 1);
        assert_eq!(h.servent, hits[0].servent);
        for r in &h.results {
            assert!(r.ext.tiger().is_some(), "TT for {}", r.name_str());
            got.insert(r.name_str(), r.sha1().unwrap().0);
        }
    }
    assert_eq!(got, want);
}

/// The decoder refuses what is not a browse reply, and never trusts a body cut short.
#[test]
fn browse_decoder_refusals() {
    let bad = [
        &b"HTTP/1.1 404 Not Found\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-gnutella-packets\r\nContent-Encoding: br\r\n\r\n",
    ];
    for b in bad {
        let (h, _) = ResponseHead::parse(b).unwrap().unwrap();
        assert!(BrowseDecoder::new(&h).is_err());
    }
    let bytes = common::data("06h-http-browse-host.b2a.bin");
    let (head, n) = ResponseHead::parse(&bytes).unwrap().unwrap();
    let mut dec = BrowseDecoder::new(&head).unwrap();
    let _ = dec.feed(&bytes[n..bytes.len() - 40]).unwrap();
    assert!(dec.finish().is_err());
}
