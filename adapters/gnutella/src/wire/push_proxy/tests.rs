use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::wire::ggep::Block;
use crate::wire::http::HttpHead;

fn a(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

fn trailer_with(private: Vec<u8>) -> QhdTrailer {
    QhdTrailer {
        vendor: *b"GTKG",
        open_data: Bytes::from_static(&[0x2d, 0x21]),
        private_data: Bytes::from(private),
    }
}

#[test]
fn ggep_push_golden() {
    let e = push_extension(&[a("10.0.0.1:6346"), a("0.0.0.0:1"), a("192.168.1.2:0")]).unwrap();
    let mut b = Vec::new();
    Block::new(vec![e]).encode(&mut b);
    // 0xC3, flags (last | id length 4), "PUSH", length 6 (last byte), 10.0.0.1, 6346 LE.
    assert_eq!(
        b,
        [
            0xc3, 0x84, b'P', b'U', b'S', b'H', 0x46, 10, 0, 0, 1, 0xca, 0x18
        ]
    );
    assert_eq!(trailer_proxies(&trailer_with(b)), vec![a("10.0.0.1:6346")]);
    assert!(push_extension(&[a("0.0.0.0:6346")]).is_none());
    // At most four are announced.
    let many: Vec<_> = (1..=9).map(|i| a(&format!("10.0.0.{i}:6346"))).collect();
    let e = push_extension(&many).unwrap();
    assert_eq!(e.data().unwrap().len(), 6 * MAX_PUSH_PROXIES);
}

#[test]
fn malformed_push_names_no_proxy() {
    // 7 bytes: not a multiple of 6.
    let e = Extension::new(ids::PUSH, vec![10, 0, 0, 1, 0xca, 0x18, 0]).unwrap();
    let mut b = vec![b'x'];
    Block::new(vec![e]).encode(&mut b);
    assert!(trailer_proxies(&trailer_with(b)).is_empty());
    assert!(trailer_proxies(&trailer_with(vec![0xc3, 0x84])).is_empty());
    assert!(trailer_proxies(&trailer_with(Vec::new())).is_empty());
}

#[test]
fn server_id_golden() {
    let g = Guid(core::array::from_fn(|i| i as u8));
    assert_eq!(guid_base32(&g), "AAAQEAYEAUDAOCAJBIFQYDIOB4");
    assert_eq!(guid_from_base32("AAAQEAYEAUDAOCAJBIFQYDIOB4").unwrap(), g);
    assert_eq!(
        guid_from_base32("aaaqeayeaudaocajbifqydiob4======").unwrap(),
        g
    );
    assert!(guid_from_base32("AAAQEAYEAUDAOCAJBIFQYDIOB").is_err());
    assert!(guid_from_base32("AAAQEAYEAUDAOCAJBIFQYDIOB4xxxxxx").is_err());
    assert!(guid_from_base32("1AAQEAYEAUDAOCAJBIFQYDIOB4").is_err());
}

#[test]
fn non_ascii_server_id_is_refused_not_a_panic() {
    // 32 bytes, 'é' over bytes 25-26: slicing at 26 is no char boundary.
    let r = req(
        "GET /gnutella/push-proxy?ServerId=AAAAAAAAAAAAAAAAAAAAAAAAA%C3%A9AAAAA HTTP/1.1\r\n\
         X-Node: 10.0.0.7:6348\r\n\r\n",
    );
    assert!(PushProxyRequest::parse(&r).unwrap().is_err());
    assert!(guid_from_base32("AAAAAAAAAAAAAAAAAAAAAAAAAéAAAAA").is_err());
    assert!(guid_from_base32("AAAAAAAAAAAAAAAAAAAAAAAAé").is_err());
}

fn req(raw: &str) -> RequestHead {
    RequestHead::parse(raw.as_bytes()).unwrap().unwrap().0
}

#[test]
fn requests_as_servents_send_them() {
    let g = Guid(core::array::from_fn(|i| i as u8));
    // gtk-gnutella's form (cproxy_build_request), with its X-Token left out.
    let r = req(
        "GET /gnutella/push-proxy?ServerId=AAAQEAYEAUDAOCAJBIFQYDIOB4 HTTP/1.1\r\n\
         User-Agent: gtk-gnutella/1.2.3\r\nConnection: close\r\nHost: 10.0.0.9:6346\r\n\
         X-Node: 10.0.0.7:6348\r\n\r\n",
    );
    let p = PushProxyRequest::parse(&r).unwrap().unwrap();
    assert_eq!(
        p,
        PushProxyRequest {
            servent: g,
            index: 0,
            node: Some(a("10.0.0.7:6348"))
        }
    );
    // LimeWire's: `ServerID`, padded base32, a file index for firewall-to-firewall.
    let r = req(
        "HEAD /gnutella/push-proxy?ServerID=AAAQEAYEAUDAOCAJBIFQYDIOB4======&file=7 HTTP/1.1\r\n\
         X-Node: 10.238.1.87:6350\r\n\r\n",
    );
    let p = PushProxyRequest::parse(&r).unwrap().unwrap();
    assert_eq!((p.servent, p.index), (g, 7));
    // The hex form, and the legacy path.
    let r = req("GET /gnet/push-proxy?guid=000102030405060708090a0b0c0d0e0f HTTP/1.0\r\n\r\n");
    let p = PushProxyRequest::parse(&r).unwrap().unwrap();
    assert_eq!((p.servent, p.node), (g, None));
    let r = req(
        "GET /gnutella/pushproxy?x=1&ServerId=AAAQEAYEAUDAOCAJBIFQYDIOB4 HTTP/1.1\r\n\
         X-Node: 0.0.0.0:1, 10.1.1.1:77\r\n\r\n",
    );
    let p = PushProxyRequest::parse(&r).unwrap().unwrap();
    assert_eq!(p.node, Some(a("10.1.1.1:77")));
    // Malformed: answered 400 by the server.
    for bad in [
        "GET /gnutella/push-proxy?ServerId=SHORT HTTP/1.1\r\n\r\n",
        "GET /gnutella/push-proxy?file=1 HTTP/1.1\r\n\r\n",
        "GET /gnet/push-proxy?guid=zz0102030405060708090a0b0c0d0e0f HTTP/1.1\r\n\r\n",
    ] {
        assert!(
            PushProxyRequest::parse(&req(bad)).unwrap().is_err(),
            "{bad}"
        );
    }
    // Not a push-proxy request at all.
    assert!(PushProxyRequest::parse(&req("GET /get/1/a HTTP/1.1\r\n\r\n")).is_none());
}

#[test]
fn our_request_golden() {
    let p = PushProxyRequest {
        servent: Guid(core::array::from_fn(|i| i as u8)),
        index: 0,
        node: Some(a("127.0.0.1:6346")),
    };
    assert_eq!(
        String::from_utf8(p.to_head("127.0.0.2:6346", "Junction/0").to_bytes()).unwrap(),
        "GET /gnutella/push-proxy?ServerId=AAAQEAYEAUDAOCAJBIFQYDIOB4 HTTP/1.1\r\n\
         User-Agent: Junction/0\r\nConnection: close\r\nHost: 127.0.0.2:6346\r\n\
         X-Node: 127.0.0.1:6346\r\n\r\n"
    );
}

proptest! {
    #[test]
    fn request_round_trip(g in any::<[u8; 16]>(), index in any::<u32>(),
                          ip in any::<[u8; 4]>(), port in 1u16..) {
        let node = SocketAddrV4::new(ip.into(), port);
        let p = PushProxyRequest { servent: Guid(g), index, node: Some(node) };
        let head = p.to_head("h:1", "ua");
        let back = RequestHead::parse(&head.to_bytes()).unwrap().unwrap().0;
        let mut want = p.clone();
        want.node = usable(&node).then_some(node);
        prop_assert_eq!(PushProxyRequest::parse(&back).unwrap().unwrap(), want);
    }

    #[test]
    fn push_round_trip(list in proptest::collection::vec((any::<[u8; 4]>(), any::<u16>()), 0..12)) {
        let addrs: Vec<SocketAddrV4> =
            list.iter().map(|(ip, p)| SocketAddrV4::new((*ip).into(), *p)).collect();
        let kept: Vec<SocketAddrV4> =
            addrs.iter().filter(|a| usable(a)).take(MAX_PUSH_PROXIES).copied().collect();
        let mut b = Vec::new();
        if let Some(e) = push_extension(&addrs) {
            Block::new(vec![e]).encode(&mut b);
        }
        prop_assert_eq!(trailer_proxies(&trailer_with(b)), kept);
    }

    #[test]
    fn parsing_never_panics(target in "/gnutella/push-proxy\\?[ -~]{0,80}", node in "[ -~]{0,40}") {
        let h = Headers::new().with("X-Node", node);
        let r = RequestHead::new("GET", target, h);
        let _ = PushProxyRequest::parse(&r);
    }

    #[test]
    fn parsing_never_panics_on_non_ascii(id in "[A-Z2-7=é%C3A9\\x{80}-\\x{10FFFF}]{0,40}",
                                         raw in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = guid_from_base32(&id);
        // Percent-encoded arbitrary bytes: the decoder replaces invalid UTF-8 lossily.
        let enc: String = raw.iter().map(|b| format!("%{b:02X}")).collect();
        for key in ["ServerId", "guid"] {
            let path = if key == "guid" { "/gnet/push-proxy" } else { "/gnutella/push-proxy" };
            let r = RequestHead::new("GET", format!("{path}?{key}={id}&{key}={enc}"),
                                     Headers::new());
            let _ = PushProxyRequest::parse(&r);
            let r = RequestHead::new("GET", format!("{path}?{key}={enc}"), Headers::new());
            let _ = PushProxyRequest::parse(&r);
        }
    }

    #[test]
    fn trailer_never_panics(p in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = trailer_proxies(&trailer_with(p));
    }
}
