//! HTTP transfers against gtk-gnutella's captured behaviour: its downloader's
//! request sequences replayed against a Junction upload server, and a
//! Junction download from a server answering the way gtk-gnutella does
//! (its header set, at most 512 KiB per `206` whatever was asked).

mod net;

use std::sync::Arc;

use bytes::BytesMut;
use futures::StreamExt;
use junction_core::{ContentId, FetchRequest, HashKind, Network, NetworkId, SharedItem, Source};
use junction_gnutella::Sha1Hash;
use junction_gnutella::wire::http::{
    HttpHead, RequestExt, RequestHead, ResponseExt, ResponseHead, Target,
};
use net::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn data_path(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The capture files' patterns (shared/peers/gnutella/captures/files/gen_files.py).
fn alpha() -> Vec<u8> {
    (0..1_048_576u32).map(|i| (i & 0xFF) as u8).collect()
}
fn delta() -> Vec<u8> {
    (0..262_144u32).map(|i| ((i / 1024) & 0xFF) as u8).collect()
}
fn echo() -> Vec<u8> {
    (0..262_144u32).flat_map(|k| k.to_be_bytes()).collect()
}

fn requests(name: &str) -> Vec<RequestHead> {
    let b = std::fs::read(data_path(name)).unwrap();
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < b.len() {
        let (h, n) = RequestHead::parse(&b[pos..]).unwrap().unwrap();
        pos += n;
        out.push(h);
    }
    out
}

async fn read_response(s: &mut TcpStream, buf: &mut BytesMut) -> (ResponseHead, Vec<u8>) {
    let head = loop {
        if let Some((h, n)) = ResponseHead::parse(buf).unwrap() {
            let _ = buf.split_to(n);
            break h;
        }
        assert!(within("head", 5, s.read_buf(buf)).await.unwrap() > 0);
    };
    let len = head.content_length().unwrap() as usize;
    while buf.len() < len {
        assert!(within("body", 5, s.read_buf(buf)).await.unwrap() > 0);
    }
    (head, buf.split_to(len).to_vec())
}

#[tokio::test]
async fn gtk_gnutella_downloads_from_junction_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let up = servent(true, &[]).await;
    let mut files = Vec::new();
    for (name, data) in [("gnutcap-delta.bin", delta()), ("gnutcap-echo.bin", echo())] {
        let p = dir.path().join(name);
        std::fs::write(&p, &data).unwrap();
        let id = up
            .share(SharedItem {
                path: p,
                name: name.into(),
                size: data.len() as u64,
                id: ContentId::new(None),
                hashes: None,
            })
            .await
            .unwrap();
        files.push((id, data));
    }
    for capture in [
        "06e-http-gtkg-downloads-conn1.a2b.bin",
        "06i-http-gtkg-partial-download-conn1.a2b.bin",
    ] {
        let reqs = requests(capture);
        assert!(reqs.len() >= 2, "{capture}");
        // One kept-alive connection, as gtk-gnutella used.
        let mut s = TcpStream::connect(up.local_addr()).await.unwrap();
        let mut buf = BytesMut::new();
        for (i, req) in reqs.iter().enumerate() {
            s.write_all(&req.to_bytes()).await.unwrap();
            let Target::N2R(urn) = req.target() else {
                panic!("{capture} #{i}: {}", req.target);
            };
            let sha1 = urn.sha1().unwrap();
            let (_, data) = files
                .iter()
                .find(|(id, _)| id.get(HashKind::Sha1) == Some(&sha1.0[..]))
                .expect("a captured file");
            let (head, body) = read_response(&mut s, &mut buf).await;
            let (start, end) = match req.range() {
                None => {
                    assert_eq!(head.code, 200, "{capture} #{i}: no Range, whole file");
                    (0, data.len() as u64 - 1)
                }
                Some(r) => {
                    let want = r.unwrap()[0].resolve(data.len() as u64).unwrap();
                    assert_eq!(head.code, 206, "{capture} #{i}");
                    let cr = head.content_range().unwrap().unwrap();
                    assert_eq!(
                        (cr.start, cr.end, cr.total),
                        (want.0, want.1, Some(data.len() as u64))
                    );
                    want
                }
            };
            assert_eq!(body, &data[start as usize..=end as usize], "{capture} #{i}");
            assert_eq!(head.content_urn(), Some(urn), "{capture} #{i}");
            // gtk-gnutella's own address (X-Node) is never offered back to it.
            assert!(
                !head
                    .alt_locs()
                    .iter()
                    .any(|a| a.to_string() == "127.0.0.61:6461"),
                "{capture} #{i}"
            );
        }
    }
    up.shutdown().await;
}

/// Answers like gtk-gnutella's upload server: its header set, `206` chunks of
/// at most 512 KiB whatever the `Range` asked (and with no `Range`).
async fn gtk_like_server(listener: TcpListener, data: Arc<Vec<u8>>, urn: String) {
    while let Ok((mut s, _)) = listener.accept().await {
        let data = data.clone();
        let urn = urn.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            loop {
                let req = loop {
                    if let Some((h, n)) = RequestHead::parse(&buf).unwrap() {
                        let _ = buf.split_to(n);
                        break h;
                    }
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                };
                let size = data.len() as u64;
                let (a, b) = req
                    .range()
                    .and_then(|r| r.ok())
                    .and_then(|r| r[0].resolve(size))
                    .unwrap_or((0, size - 1));
                let b = b.min(a + 512 * 1024 - 1);
                let head = format!(
                    "HTTP/1.1 206 Partial Content\r\nServer: gtk-gnutella/1.2.3 (2024-03-03; Topless; Linux x86_64)\r\nDate: Wed, 25 Nov 2026 09:44:56 GMT\r\nX-Features: browse/1.0, fwalt/0.1, queue/1.1\r\nContent-Range: bytes {a}-{b}/{size}\r\nContent-Length: {}\r\nLast-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\nContent-Type: application/octet-stream\r\nContent-Disposition: inline; filename*=\"utf-8'en'gnutcap-alpha.bin\"\r\nX-Gnutella-Content-URN: {urn}\r\n\r\n",
                    b - a + 1
                );
                s.write_all(head.as_bytes()).await.unwrap();
                s.write_all(&data[a as usize..=b as usize]).await.unwrap();
            }
        });
    }
}

#[tokio::test]
async fn junction_downloads_from_a_gtk_like_server() {
    // The head we imitate is the captured one (06a), minus X-Thex-URI.
    let cap = std::fs::read(data_path("06a-http-get-n2r-range-keepalive.b2a.bin")).unwrap();
    let (h, _) = ResponseHead::parse(&cap).unwrap().unwrap();
    assert_eq!(h.code, 206);
    assert!(
        h.headers
            .get("Server")
            .unwrap()
            .starts_with("gtk-gnutella/")
    );

    let data = Arc::new(alpha());
    let sha1 = Sha1Hash::digest(&data);
    assert_eq!(sha1.to_base32(), "5T6I5BX53A4BD6OMTP2QBGJ3MMDJSI56");
    let urn = format!("urn:sha1:{}", sha1.to_base32());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gtk_like_server(listener, data.clone(), urn));

    let leaf = servent(false, &[]).await;
    let sink = file_sink(data.len() as u64);
    let mut ev = leaf
        .fetch(
            FetchRequest {
                id: ContentId::new(Some(data.len() as u64)).with(HashKind::Sha1, &sha1.0),
                name: "gnutcap-alpha.bin".into(),
                size: data.len() as u64,
                sources: vec![Source {
                    network: NetworkId::GNUTELLA,
                    address: addr.into(),
                    detail: Some("index=1".into()),
                }],
                trackers: vec![],
                torrent: None,
            },
            sink.clone(),
        )
        .await
        .unwrap();
    within("download", 20, async { while ev.next().await.is_some() {} }).await;
    assert!(sink.is_verified());
    assert_eq!(&sink.contents(), &*data);
    leaf.shutdown().await;
}
