//! Push proxies (issue 12): a firewalled Junction leaf gets its ultrapeer as push proxy
//! (LIME/21 → LIME/22), its hits carry GGEP `PUSH`, and a servent with no Gnutella link at
//! all downloads from it through the proxy's HTTP push-proxy request and the `GIV`.

use std::time::Duration;

use futures::StreamExt;
use junction_core::query::parse;
use junction_core::{Hit, Network, PeerAddr};
use junction_gnutella::Adapter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::net::*;

/// One HTTP exchange with `addr`: the response's status line and headers.
async fn http(addr: std::net::SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    within("HTTP answer", 10, s.read_to_end(&mut out))
        .await
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// Search from `l` until a hit carries push proxies (the ack may come after the tables).
async fn hit_with_proxies(l: &Adapter, words: &str) -> Hit {
    for _ in 0..20 {
        let mut hits = l.search(parse(words).unwrap()).await.unwrap();
        if let Some(Some(Ok(h))) = tokio::time::timeout(Duration::from_secs(5), hits.next())
            .await
            .ok()
            && matches!(&h.locations[0].address,
                PeerAddr::Push { proxies, .. } if !proxies.is_empty())
        {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no hit with push proxies");
}

#[tokio::test]
async fn firewalled_leaf_is_reached_through_its_push_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = make_file(dir.path(), "kilo proxied.bin", 400_000, 5);
    let up = servent(true, &[]).await;
    // F announces an address nobody listens on and says it is firewalled.
    let f = firewalled_leaf(&[up.local_addr()]).await;
    // L searches (a firewalled F does not answer firewalled queriers).
    let l = reachable_leaf(&[up.local_addr()]).await;
    // D downloads and has no Gnutella link at all: no route for a Push.
    let d = reachable_leaf(&[]).await;
    share(&f, &path, "kilo proxied.bin").await;
    linked(&up, 2).await;

    // The ultrapeer acknowledged: F keeps it as its push proxy, the ultrapeer proxies F.
    let up_addr = up.local_addr().to_string();
    eventually("push proxy ack", || detail(&f, "push_proxies") == up_addr).await;
    assert_eq!(detail_u64(&up, "push_proxied_leaves"), 1);
    assert_eq!(detail(&l, "push_proxies"), "", "L is not firewalled");
    eventually("tables", || detail_u64(&up, "leaf_qrp_tables") >= 2).await;

    // F's hits carry GGEP PUSH naming the ultrapeer.
    let hit = hit_with_proxies(&l, "kilo proxied").await;
    // A push source, with the ultrapeer as its proxy.
    let PeerAddr::Push { addr, proxies, .. } = &hit.locations[0].address else {
        panic!("{:?}", hit.locations[0]);
    };
    assert_eq!(addr.to_string(), "127.0.0.1:9");
    assert_eq!(proxies, &[up.local_addr()]);

    // D downloads it: direct connection refused, no Gnutella route, so the proxy's
    // HTTP push-proxy request, then F's GIV.
    assert_eq!(d.status().peers, 0);
    let (sink, _) = fetch_all(&d, &hit, 40).await;
    assert!(sink.is_verified());
    assert_eq!(sink.contents(), data);
    assert!(detail_u64(&f, "uploads") >= 1);
    assert_eq!(d.status().peers, 0, "D never linked to anyone");

    // F gone: the ultrapeer no longer proxies it, and answers 410.
    let guid = detail(&f, "guid");
    f.shutdown().await;
    eventually("leaf gone", || detail_u64(&up, "push_proxied_leaves") == 0).await;
    let r = http(
        up.local_addr(),
        &format!("GET /gnet/push-proxy?guid={guid} HTTP/1.1\r\nX-Node: 127.0.0.1:1\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 410 "), "{r}");
    for s in [&l, &d, &up] {
        s.shutdown().await;
    }
}

#[tokio::test]
async fn push_proxy_http_forms() {
    let up = servent(true, &[]).await;
    let f = firewalled_leaf(&[up.local_addr()]).await;
    eventually("ack", || detail_u64(&up, "push_proxied_leaves") == 1).await;
    let guid = detail(&f, "guid");
    // The hex form, as gtk-gnutella also serves it: the GIV comes to X-Node.
    let giv_to = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = http(
        up.local_addr(),
        &format!(
            "GET /gnet/push-proxy?guid={guid} HTTP/1.1\r\nX-Node: {}\r\n\r\n",
            giv_to.local_addr().unwrap()
        ),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 202 "), "{r}");
    let (mut s, _) = within("GIV", 10, giv_to.accept()).await.unwrap();
    let mut line = vec![0u8; 64];
    let n = within("GIV line", 10, s.read(&mut line)).await.unwrap();
    let line = String::from_utf8_lossy(&line[..n]).into_owned();
    assert!(line.starts_with(&format!("GIV 0:{guid}/")), "{line}");
    // Unknown GUID: 410; malformed: 400; no X-Node: 400.
    let r = http(
        up.local_addr(),
        "GET /gnutella/push-proxy?ServerId=AAAQEAYEAUDAOCAJBIFQYDIOB4 HTTP/1.1\r\nX-Node: 127.0.0.1:5\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 410 "), "{r}");
    let r = http(
        up.local_addr(),
        "GET /gnutella/push-proxy?ServerId=nope HTTP/1.1\r\nX-Node: 127.0.0.1:5\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    let r = http(
        up.local_addr(),
        &format!("HEAD /gnet/push-proxy?guid={guid} HTTP/1.1\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
    // Naming the ultrapeer itself: a GIV to the requester's own address goes out, none
    // into a network the requester may not reach.
    let me = detail(&up, "guid");
    let r = http(
        up.local_addr(),
        &format!(
            "GET /gnet/push-proxy?guid={me} HTTP/1.1\r\nX-Node: {}\r\n\r\n",
            giv_to.local_addr().unwrap()
        ),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 202 "), "{r}");
    within("GIV from the ultrapeer", 10, giv_to.accept())
        .await
        .unwrap();
    let r = http(
        up.local_addr(),
        &format!("GET /gnet/push-proxy?guid={me} HTTP/1.1\r\nX-Node: 10.0.0.1:22\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 403 "), "{r}");
    f.shutdown().await;
    up.shutdown().await;
}
