//! The peer wire against hand-driven peers: one sending corrupt pieces is banned, malformed
//! input closes only that peer, and the fast extension's allowed-fast and reject.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use junction_bittorrent::wire::{Handshake, Message, MessageDecoder, PieceBlock, Reserved};
use junction_bittorrent::{Adapter, InfoHash, PeerId};
use junction_core::{Network, NetworkId, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{PIECE, SIZE, local_tracker, request, run_fetch, seed, test_config};
use junction_core::testing::MemSink;

/// A peer that claims every piece and answers every request with garbage.
async fn evil_peer(ih: InfoHash) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut hb = [0u8; 68];
                if s.read_exact(&mut hb).await.is_err() {
                    return;
                }
                let hs = Handshake {
                    reserved: Reserved::default().with(Reserved::FAST),
                    info_hash: ih,
                    peer_id: PeerId(*b"-EV0001-evilevilevil"),
                };
                let mut out = BytesMut::new();
                hs.encode(&mut out);
                Message::HaveAll.encode(&mut out);
                Message::Unchoke.encode(&mut out);
                if s.write_all(&out).await.is_err() {
                    return;
                }
                let mut buf = BytesMut::new();
                let mut dec = MessageDecoder::default();
                loop {
                    match s.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    while let Ok(Some(m)) = dec.decode(&mut buf) {
                        if let Message::Request(r) = m {
                            let msg = Message::Piece(PieceBlock {
                                index: r.index,
                                begin: r.begin,
                                data: Bytes::from(vec![0xEE; r.length as usize]),
                            });
                            if s.write_all(&msg.to_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_peer_is_banned_and_piece_refetched() {
    let tracker = local_tracker().await;
    let s = seed(&tracker).await;
    let evil = evil_peer(s.ih).await;
    let leech = Adapter::start(test_config(vec![])).await.unwrap();
    let sink = Arc::new(MemSink::new(SIZE as u64));
    let mut req = request(&s.ih, Some(s.torrent.clone()), vec![]);
    // The evil peer first; the good one comes from the tracker in the .torrent.
    req.sources = vec![Source {
        network: NetworkId::BITTORRENT,
        address: evil.into(),
        detail: None,
    }];
    run_fetch(&leech, req, sink.clone()).await;
    assert!(sink.data() == s.data, "bytes differ after a corrupt peer");
    let st = leech.torrent_stats(&s.ih).unwrap();
    assert!(
        st.failed_pieces >= 1,
        "the evil peer's pieces were checked: {st:?}"
    );
    assert!(st.banned >= 1, "the evil peer was banned: {st:?}");
    assert!(sink.failures() >= 1);
    leech.shutdown().await;
    s.seeder.shutdown().await;
}

/// Connects to `addr`, handshakes for `ih`, sends `bytes`, and reports whether the
/// remote closed the connection within a few seconds (reading whatever it sent first).
async fn closed_after(addr: std::net::SocketAddr, ih: InfoHash, bytes: &[u8]) -> bool {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let hs = Handshake {
        reserved: Reserved::default().with(Reserved::FAST),
        info_hash: ih,
        peer_id: PeerId(*b"-TS0001-malformed000"),
    };
    s.write_all(&hs.to_bytes()).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    r.unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_closes_only_that_peer() {
    let tracker = local_tracker().await;
    let s = seed(&tracker).await;
    let addr = s.seeder.listen_addr();
    // A piece index out of range.
    let mut bad = BytesMut::new();
    Message::Request(junction_bittorrent::wire::BlockRequest {
        index: 1_000_000,
        begin: 0,
        length: 16384,
    })
    .encode(&mut bad);
    assert!(closed_after(addr, s.ih, &bad).await, "out-of-range request");
    // A block larger than 16 KiB.
    let mut big = BytesMut::new();
    Message::Request(junction_bittorrent::wire::BlockRequest {
        index: 0,
        begin: 0,
        length: 65536,
    })
    .encode(&mut big);
    assert!(closed_after(addr, s.ih, &big).await, "oversized block");
    // An oversized length prefix.
    assert!(
        closed_after(addr, s.ih, &[0xFF, 0xFF, 0xFF, 0xF0, 7]).await,
        "huge frame"
    );
    // A 2 GB length prefix.
    assert!(
        closed_after(addr, s.ih, &[0x80, 0, 0, 0, 7]).await,
        "2 GB frame"
    );
    // An extended handshake of bencode nested 100,000 deep.
    let mut deep = BytesMut::new();
    let mut payload = vec![b'l'; 100_000];
    payload.extend(std::iter::repeat_n(b'e', 100_000));
    Message::Extended {
        id: 0,
        payload: Bytes::from(payload),
    }
    .encode(&mut deep);
    assert!(closed_after(addr, s.ih, &deep).await, "deep bencode");
    // A handshake for a torrent it does not have.
    assert!(
        closed_after(addr, InfoHash([9; 20]), &[]).await,
        "unknown info-hash"
    );
    // A valid request, after all that, is still served.
    let mut ok = BytesMut::new();
    Message::Interested.encode(&mut ok);
    assert!(
        !closed_after(addr, s.ih, &ok).await,
        "a well-behaved peer stays connected"
    );
    let sink = Arc::new(MemSink::new(SIZE as u64));
    let leech = Adapter::start(test_config(vec![])).await.unwrap();
    run_fetch(
        &leech,
        request(&s.ih, Some(s.torrent.clone()), vec![]),
        sink.clone(),
    )
    .await;
    assert!(sink.data() == s.data);
    leech.shutdown().await;
    s.seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_extension_allowed_fast_and_reject_while_choked() {
    let tracker = local_tracker().await;
    let s = seed(&tracker).await;
    let mut c = tokio::net::TcpStream::connect(s.seeder.listen_addr())
        .await
        .unwrap();
    let hs = Handshake {
        reserved: Reserved::default().with(Reserved::FAST),
        info_hash: s.ih,
        peer_id: PeerId(*b"-TS0001-fastfastfast"),
    };
    c.write_all(&hs.to_bytes()).await.unwrap();
    let mut buf = BytesMut::new();
    let mut dec = MessageDecoder::default();
    let mut got_hs = false;
    let mut msgs = Vec::new();
    // Read the greeting (handshake, have-all, allowed-fast set).
    let _ = tokio::time::timeout(Duration::from_millis(700), async {
        loop {
            if c.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
            if !got_hs {
                if Handshake::decode(&mut buf).unwrap().is_none() {
                    continue;
                }
                got_hs = true;
            }
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                msgs.push(m);
            }
        }
    })
    .await;
    assert_eq!(msgs.first(), Some(&Message::HaveAll), "{msgs:?}");
    let allowed: Vec<u32> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::AllowedFast(i) => Some(*i),
            _ => None,
        })
        .collect();
    assert_eq!(allowed.len(), 10, "{msgs:?}");
    let other = (0..96).find(|i| !allowed.contains(i)).unwrap();
    // Still choked: an allowed piece is served, another is rejected.
    let mut out = BytesMut::new();
    for index in [allowed[0], other] {
        Message::Request(junction_bittorrent::wire::BlockRequest {
            index,
            begin: 0,
            length: 16384,
        })
        .encode(&mut out);
    }
    c.write_all(&out).await.unwrap();
    let mut answers = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while answers.len() < 2 {
            if c.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
            while let Some(m) = dec.decode(&mut buf).unwrap() {
                match m {
                    Message::Piece(p) => answers.push((p.index, true, p.data)),
                    Message::Reject(r) => answers.push((r.index, false, Bytes::new())),
                    _ => {}
                }
            }
        }
    })
    .await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    let served = answers.iter().find(|a| a.1).unwrap();
    assert_eq!(served.0, allowed[0]);
    let off = allowed[0] as usize * PIECE as usize;
    assert_eq!(&served.2[..], &s.data[off..off + 16384]);
    assert!(answers.iter().any(|a| !a.1 && a.0 == other));
    s.seeder.shutdown().await;
}

/// Whether `addr` answers a handshake for `ih` with its own within a few seconds.
async fn answers_handshake(addr: std::net::SocketAddr, ih: InfoHash) -> bool {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let hs = Handshake {
        reserved: Reserved::default(),
        info_hash: ih,
        peer_id: PeerId(*b"-TS0001-unshare00000"),
    };
    s.write_all(&hs.to_bytes()).await.unwrap();
    let mut reply = [0u8; 68];
    let read = tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut reply)).await;
    matches!(read, Ok(Ok(_))) && reply[28..48] == ih.0
}

/// A share withdrawn while the adapter runs is no longer served nor listed; withdrawing it
/// twice says it is not shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unshared_file_is_no_longer_served() {
    let tracker = local_tracker().await;
    let s = seed(&tracker).await;
    let addr = s.seeder.listen_addr();
    assert!(answers_handshake(addr, s.ih).await, "the share is served");
    let id = junction_core::ContentId::new(None).with(junction_core::HashKind::Btih, &s.ih.0);
    s.seeder.unshare(id.clone()).await.unwrap();
    assert!(s.seeder.index_entry(&s.ih).is_none(), "still listed");
    assert!(!answers_handshake(addr, s.ih).await, "still served");
    let again = s.seeder.unshare(id).await.unwrap_err();
    assert!(
        matches!(again, junction_core::NetworkError::NotFound(_)),
        "{again}"
    );
}
