//! The uploading side as a downloader meets it: `503` when busy (and retried), and the
//! upload rate limit.

use std::time::Duration;

use junction_core::{ContentId, HashKind, Network, NetworkId};
use junction_gnutella::{Adapter, Sha1Hash};

use crate::net::*;

#[tokio::test]
async fn busy_uploader_answers_503_and_is_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = make_file(dir.path(), "foxtrot.bin", 200_000, 4);
    let up = Adapter::start(junction_gnutella::Config {
        upload_slots: 1,
        ..cfg(true, &[])
    })
    .await
    .unwrap();
    let id = share(&up, &path, "foxtrot.bin").await;
    let urn = format!(
        "urn:sha1:{}",
        Sha1Hash(id.get(HashKind::Sha1).unwrap().try_into().unwrap()).to_base32()
    );
    let get = format!("GET /uri-res/N2R?{urn} HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n");
    // The first client takes the only slot and keeps its connection.
    let mut first = tokio::net::TcpStream::connect(up.local_addr())
        .await
        .unwrap();
    first.write_all(get.as_bytes()).await.unwrap();
    let mut b = vec![0u8; 4096];
    let n = within("206", 5, first.read(&mut b)).await.unwrap();
    let head = String::from_utf8_lossy(&b[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(head.contains("Content-Range: bytes 0-0/200000"), "{head}");
    assert!(
        head.contains(&format!("X-Gnutella-Content-URN: {urn}")),
        "{head}"
    );
    // A second one is told to come back later.
    let mut second = tokio::net::TcpStream::connect(up.local_addr())
        .await
        .unwrap();
    second.write_all(get.as_bytes()).await.unwrap();
    let n = within("503", 5, second.read(&mut b)).await.unwrap();
    let head = String::from_utf8_lossy(&b[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("Retry-After: "), "{head}");

    // A download meets the busy slot, waits, and completes once it frees up.
    let leaf = servent(false, &[up.local_addr()]).await;
    linked(&leaf, 1).await;
    let mut hit = junction_core::Hit::new(NetworkId::GNUTELLA, id.clone(), "foxtrot.bin", 200_000);
    hit.locations = vec![junction_core::Source {
        network: NetworkId::GNUTELLA,
        address: up.local_addr().into(),
        detail: None,
    }];
    let release = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(first);
    };
    let ((sink, _), ()) = tokio::join!(fetch_all(&leaf, &hit, 40), release);
    assert!(sink.is_verified());
    assert_eq!(sink.contents(), data);
    leaf.shutdown().await;
    up.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_limit_holds_and_unlimited_is_not_held() {
    const MIB: usize = 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let (slow_p, slow) = make_file(dir.path(), "kilo slow.bin", 3 * MIB, 21);
    let (fast_p, fast) = make_file(dir.path(), "kilo fast.bin", 3 * MIB, 22);
    // An ultrapeer limited to 1 MiB/s, and one without a limit.
    let limited = Adapter::start(junction_gnutella::Config {
        upload_limit: Some(MIB as u64),
        ..cfg(true, &[])
    })
    .await
    .unwrap();
    let free = servent(true, &[]).await;
    let slow_id = share(&limited, &slow_p, "kilo slow.bin").await;
    let fast_id = share(&free, &fast_p, "kilo fast.bin").await;
    let leaf = servent(false, &[limited.local_addr()]).await;
    linked(&leaf, 1).await;
    let hit = |a: &Adapter, id: &ContentId, name: &str| {
        let mut h = junction_core::Hit::new(NetworkId::GNUTELLA, id.clone(), name, 3 * MIB as u64);
        h.locations = vec![junction_core::Source {
            network: NetworkId::GNUTELLA,
            address: a.local_addr().into(),
            detail: None,
        }];
        h
    };

    let t0 = std::time::Instant::now();
    let (sink, _) = fetch_all(&leaf, &hit(&free, &fast_id, "kilo fast.bin"), 30).await;
    let unlimited = t0.elapsed().as_secs_f64();
    assert!(sink.is_verified());
    assert!(sink.contents() == fast, "downloaded bytes differ");

    let out_before = limited.status().bytes_out;
    let t0 = std::time::Instant::now();
    let (sink, _) = fetch_all(&leaf, &hit(&limited, &slow_id, "kilo slow.bin"), 30).await;
    let secs = t0.elapsed().as_secs_f64();
    assert!(sink.is_verified());
    assert!(sink.contents() == slow, "downloaded bytes differ");
    let out = (limited.status().bytes_out - out_before) as f64;
    eprintln!("3 MiB: unlimited {unlimited:.2}s, at 1 MiB/s {secs:.2}s ({out} bytes out)");
    assert!(
        secs >= 2.0,
        "1 MiB/s upload limit: 3 MiB took only {secs:.2}s"
    );
    assert!(secs < 15.0, "1 MiB/s upload limit: 3 MiB took {secs:.2}s");
    assert!(
        out / secs < 1.5 * MIB as f64,
        "the limited servent sent {out} bytes in {secs:.2}s"
    );
    assert!(
        unlimited < 2.0,
        "without a limit, 3 MiB over loopback took {unlimited:.2}s"
    );
    for s in [&leaf, &free, &limited] {
        s.shutdown().await;
    }
}
