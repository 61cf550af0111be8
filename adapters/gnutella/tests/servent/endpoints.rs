//! Endpoints removed while the servent runs (issue 16): the link to the host closes with
//! gtk-gnutella's Bye, the host is not dialled again, the other link stays up; removing it
//! again is `NotFound`, and adding it again dials it at once.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use junction_core::{Network, NetworkError};
use junction_gnutella::wire::message::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::net::*;

/// A hand-driven ultrapeer on `listener`: accepts the leaf's next handshake (plain links,
/// our `Listen-IP` announced so the leaf caches us as a host).
async fn accept_leaf(listener: &TcpListener) -> RawPeer {
    let (mut s, _) = within("the leaf dials", 10, listener.accept())
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    let connect = read_handshake(&mut s, &mut buf).await;
    assert_eq!(connect.ultrapeer(), Some(false), "the leaf dials");
    let me = listener.local_addr().unwrap();
    let ok = format!(
        "GNUTELLA/0.6 200 OK\r\nUser-Agent: raw-up\r\nX-Ultrapeer: True\r\nListen-IP: {me}\r\n\r\n"
    );
    s.write_all(ok.as_bytes()).await.unwrap();
    let fin = read_handshake(&mut s, &mut buf).await;
    assert!(fin.is_ok(), "{:?}", fin.start);
    RawPeer::from_stream(s, buf, fin.content_deflate(), false, fin)
}

#[tokio::test]
async fn removed_host_is_dropped_and_not_dialled_again() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let up_b = servent(true, &[]).await;
    let leaf = servent(false, &[]).await;
    // The raw ultrapeer by name, the Junction one by address.
    leaf.add_endpoint(format!("localhost:{port}"))
        .await
        .unwrap();
    let mut up_a = accept_leaf(&listener).await;
    leaf.add_endpoint(up_b.local_addr().to_string())
        .await
        .unwrap();
    eventually("the leaf linked to both ultrapeers", || {
        detail_u64(&leaf, "ultrapeers") == 2
    })
    .await;
    eventually("B has the leaf", || detail_u64(&up_b, "leaves") == 1).await;
    // Both cached: A announced where it listens, B too (and in its pong).
    eventually("both hosts cached", || {
        detail_u64(&leaf, "hosts_cached") == 2
    })
    .await;

    // Removed by address (it was added by name): gone from the host cache at once.
    leaf.remove_endpoint(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    assert_eq!(detail_u64(&leaf, "hosts_cached"), 1);
    // A hears Bye 201 (gtk-gnutella's for a node its user dropped), then the link closes.
    let bye = within("A's link to end", 5, async {
        loop {
            match up_a.next(5).await.map(|d| d.message) {
                Some(Message::Bye(b)) => break Some(b),
                Some(_) => {}
                None => break None,
            }
        }
    })
    .await
    .expect("a Bye before the link closed");
    assert_eq!(
        (bye.code, bye.reason_line()),
        (201, "User manual removal".to_owned())
    );
    assert!(up_a.closed_within(5).await, "the leaf closes the link");
    eventually("the leaf down to one ultrapeer", || {
        detail_u64(&leaf, "ultrapeers") == 1
    })
    .await;

    // For the next seconds the leaf (which wants three ultrapeers) never dials A again.
    let until = Instant::now() + Duration::from_secs(4);
    while let Ok(Ok((mut s, _))) = tokio::time::timeout_at(until.into(), listener.accept()).await {
        let hs = read_handshake(&mut s, &mut BytesMut::new()).await;
        assert_ne!(hs.ultrapeer(), Some(false), "the leaf dialled A again");
    }
    assert_eq!(detail_u64(&leaf, "ultrapeers"), 1, "B's link stays up");
    assert_eq!(detail_u64(&up_b, "leaves"), 1);

    // Removing it again: NotFound, naming it as given and as resolved.
    let e = leaf
        .remove_endpoint(format!("localhost:{port}"))
        .await
        .unwrap_err();
    match &e {
        NetworkError::NotFound(m) => assert!(
            m.contains(&format!("localhost:{port}")) && m.contains(&format!("127.0.0.1:{port}")),
            "{m}"
        ),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // A host never heard of: NotFound too.
    assert!(matches!(
        leaf.remove_endpoint("127.0.0.9:1".into()).await,
        Err(NetworkError::NotFound(_))
    ));

    // Added again, it is dialled at once (no back-off, no longer blocked).
    leaf.add_endpoint(format!("localhost:{port}"))
        .await
        .unwrap();
    let _up_a = accept_leaf(&listener).await;
    eventually("the leaf linked to A again", || {
        detail_u64(&leaf, "ultrapeers") == 2
    })
    .await;
    leaf.shutdown().await;
    up_b.shutdown().await;
}
