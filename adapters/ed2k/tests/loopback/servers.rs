//! The client's server list and the index server's callbacks: a server removed while in
//! use is left for the next, and a LowID source is asked to call a HighID asker back.

use super::*;

/// A server removed while the adapter runs is left at once, and the next server in the
/// list is used; removing it again says it is not in the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_server_is_left_for_the_next() {
    let (first, second) = (index_server().await, index_server().await);
    let third = index_server().await;
    let a = start(&first, "mover", false).await;
    let there = first.local_addr().to_string();
    // [first, second, third]: the next after the removed first is the second.
    for s in [&second, &third] {
        a.add_endpoint(s.local_addr().to_string()).await.unwrap();
    }
    a.remove_endpoint(format!(
        "ed2k://|server|127.0.0.1|{}|/",
        first.local_addr().port()
    ))
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline {
        let moved =
            a.server_info().addr.map(|x| x.to_string()) == Some(second.local_addr().to_string());
        if moved && first.stats().users == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        first.stats().users,
        0,
        "still logged into the removed server"
    );
    assert_eq!(second.stats().users, 1, "{:?}", a.server_info());
    let e = a.remove_endpoint(there).await.unwrap_err();
    assert!(matches!(e, junction_core::NetworkError::NotFound(_)), "{e}");
    a.shutdown().await;
    first.shutdown();
    second.shutdown();
    third.shutdown();
}

/// A HighID client that asks the server for the sources of a LowID's file is called back by
/// that LowID without sending `OP_CALLBACKREQUEST`: aMule 2.3.3 sends none for a LowID it
/// already knows, e.g. Junction right after downloading from it (adapters/ed2k/README.md).
/// Once per asker and source in five minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowid_source_calls_a_highid_asker_back_unasked() {
    use bytes::BytesMut;
    use junction_ed2k::wire::server::{LoginRequest, SourceRequest};
    use junction_ed2k::wire::{ClientId, PeerMessage, ServerMessage, TagEncoding, frame};

    async fn write(s: &mut tokio::net::TcpStream, m: ServerMessage) {
        let mut buf = BytesMut::new();
        m.to_frame(TagEncoding::Classic)
            .unwrap()
            .encode(&mut buf)
            .unwrap();
        s.write_all(&buf).await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(300_000, 5);
    let p = write_file(dir.path(), "epsilon back.bin", &data);
    let server = index_server().await;
    let low = start(&server, "firewalled", false).await;
    let id = share(&low, &p).await;
    let hash: [u8; 16] = id.get(HashKind::Ed2k).unwrap().try_into().unwrap();
    let t = tokio::time::Instant::now();
    while server.stats().files < 1 {
        assert!(t.elapsed() < Duration::from_secs(10), "file not offered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A raw HighID client: its listener takes the server's connect-back check, then the
    // LowID's call; the first message of each connection is reported.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (hello_tx, mut hellos) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            let tx = hello_tx.clone();
            tokio::spawn(async move {
                let mut buf = BytesMut::new();
                loop {
                    if let Ok(Some(f)) = frame::decode(&mut buf) {
                        let _ = tx.send(PeerMessage::decode_frame(&f).ok()).await;
                        return;
                    }
                    match c.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    let mut srv = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let login = LoginRequest {
        user_hash: [7; 16],
        client_id: ClientId(0),
        port,
        tags: Vec::new(),
    };
    write(&mut srv, ServerMessage::LoginRequest(login)).await;
    let ask = || {
        ServerMessage::GetSources(vec![SourceRequest {
            hash,
            size: data.len() as u64,
        }])
    };
    let t = tokio::time::Instant::now();
    while server.stats().users < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "raw client not logged in"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    write(&mut srv, ask()).await;
    let hello = tokio::time::timeout(Duration::from_secs(10), hellos.recv())
        .await
        .expect("the LowID did not call the asker back")
        .unwrap();
    match hello {
        Some(PeerMessage::Hello(h)) => assert!(h.client_id.is_low_id(), "{h:?}"),
        other => panic!("expected a hello, got {other:?}"),
    }
    // Asked again at once: no second call.
    write(&mut srv, ask()).await;
    let again = tokio::time::timeout(Duration::from_secs(3), hellos.recv()).await;
    assert!(again.is_err(), "called back twice: {again:?}");
    assert_eq!(server.stats().unasked_callbacks, 1);
    low.shutdown().await;
    server.shutdown();
}
