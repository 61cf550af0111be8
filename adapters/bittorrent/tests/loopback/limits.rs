//! Per-IP limits (issue 15): a flood from 127.0.0.1 is capped to its pending handshakes
//! and then backed off, while 127.0.0.2 still handshakes and is greeted; a peer that keeps
//! requesting what it may not have (choked) is dropped after its burst.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use junction_bittorrent::wire::{BlockRequest, Handshake, Message, MessageDecoder, Reserved};
use junction_bittorrent::{Adapter, InfoHash, PeerId};
use junction_core::Network;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "../../../core/testing/per_ip.rs"]
mod per_ip;
use per_ip::{connect_from, flood, limits};

use crate::{SIZE, random_bytes, share_file, test_config};

/// Handshakes for `ih` from `from` (its last byte in the peer id); returns the stream and
/// the messages read in 700 ms.
async fn greeted(from: Ipv4Addr, to: SocketAddr, ih: InfoHash) -> (TcpStream, Vec<Message>) {
    let mut c = connect_from(from, to).await;
    let mut id = *b"-TS0001-limitslimit?";
    id[19] = from.octets()[3];
    let hs = Handshake {
        reserved: Reserved::default().with(Reserved::FAST),
        info_hash: ih,
        peer_id: PeerId(id),
    };
    c.write_all(&hs.to_bytes()).await.unwrap();
    let (mut buf, mut dec, mut msgs, mut got_hs) = (
        BytesMut::new(),
        MessageDecoder::default(),
        Vec::new(),
        false,
    );
    let _ = tokio::time::timeout(Duration::from_millis(700), async {
        while c.read_buf(&mut buf).await.unwrap_or(0) > 0 {
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
    assert!(got_hs, "no handshake back");
    (c, msgs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_address_is_capped_and_backed_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limits.bin");
    std::fs::write(&path, random_bytes(SIZE)).unwrap();
    let seeder = Adapter::start(junction_bittorrent::Config {
        limits: limits(),
        ..test_config(vec![])
    })
    .await
    .unwrap();
    let ih = share_file(&seeder, path, "limits.bin").await;
    let addr = seeder.listen_addr();

    flood(addr).await;

    // Another address is greeted as a peer.
    let (_other, msgs) = greeted(Ipv4Addr::new(127, 0, 0, 2), addr, ih).await;
    assert_eq!(msgs.first(), Some(&Message::HaveAll), "{msgs:?}");

    // A third, choked, asks for block after block: 10 are refused, then it is dropped
    // (allowed-fast pieces are served and do not count).
    let (mut fast, _) = greeted(Ipv4Addr::new(127, 0, 0, 3), addr, ih).await;
    let (mut buf, mut dec, mut rejects) = (BytesMut::new(), MessageDecoder::default(), 0);
    'asking: for index in 0..50 {
        let mut out = BytesMut::new();
        Message::Request(BlockRequest {
            index,
            begin: 0,
            length: 16384,
        })
        .encode(&mut out);
        if fast.write_all(&out).await.is_err() {
            break;
        }
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(Message::Reject(_))) => {
                    rejects += 1;
                    break;
                }
                Ok(Some(Message::Piece(_))) => break,
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => panic!("{e}"),
            }
            let read = tokio::time::timeout(Duration::from_secs(5), fast.read_buf(&mut buf));
            match read.await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => break 'asking,
                Err(_) => panic!("no answer to request {index}"),
            }
        }
    }
    assert_eq!(rejects, 10, "requests refused before the drop");
    seeder.shutdown().await;
}
