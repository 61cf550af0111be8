//! When a search is done (issue 16): once its dynamic query has asked every ultrapeer and
//! the last probe's wait expired, at once when there is nobody to ask, and never while
//! results are still coming in. The old rule was "no hit for 4 s" ([`OLD_QUIET`]).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use junction_core::query::parse;
use junction_core::{Hit, HitStream, Network, NetworkError};
use junction_gnutella::engine::hits::{RecordHashes, hit_record, trailer};
use junction_gnutella::wire::guid::Guid;
use junction_gnutella::wire::message::{Descriptor, Message, QueryHit};
use junction_gnutella::wire::urn::Sha1Hash;

use crate::net::*;

/// A search used to end only after this long without a hit.
const OLD_QUIET: Duration = Duration::from_secs(4);

/// Every hit of `s` until it ends by itself (within `secs`), and when it ended.
async fn drain(s: HitStream, secs: u64) -> (Vec<Hit>, Duration) {
    let start = Instant::now();
    let hits: Vec<Hit> = within("the search to end by itself", secs, s.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|h| h.unwrap())
        .collect();
    (hits, start.elapsed())
}

/// The lab's shape: the searching leaf's ultrapeer has no other ultrapeer, two leaves
/// answer. Its dynamic query has nobody to widen to, so the search ends once the
/// leaves' answers are in and their short wait expired.
#[tokio::test]
async fn search_ends_once_the_leaves_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, _) = make_file(dir.path(), "echo-done-one.bin", 3000, 11);
    let (p2, _) = make_file(dir.path(), "echo-done-two.bin", 3000, 12);
    let up = servent(true, &[]).await;
    let ua = up.local_addr();
    let a = servent(false, &[ua]).await;
    let c = servent(false, &[ua]).await;
    let d = servent(false, &[ua]).await;
    share(&c, &p1, "echo-done-one.bin").await;
    share(&d, &p2, "echo-done-two.bin").await;
    linked(&up, 3).await;
    eventually("both tables at the ultrapeer", || {
        detail_u64(&up, "leaf_qrp_tables") >= 3
    })
    .await;
    settle_vendor_lists().await;

    let s = a.search(parse("echo done").unwrap()).await.unwrap();
    let (hits, took) = drain(s, 15).await;
    eprintln!(
        "lab-shaped search: {} hits, ended after {took:?}",
        hits.len()
    );
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(
        took < OLD_QUIET - Duration::from_millis(1500),
        "ended after {took:?}: not well before the old quiet timeout"
    );
    for s in [&a, &c, &d, &up] {
        s.shutdown().await;
    }
}

/// Widening: the leaf's ultrapeer asks its other ultrapeer (TTL 2), whose leaf answers;
/// with nobody left to ask and the last probe's wait over, the search ends.
#[tokio::test]
async fn widened_search_ends_once_every_ultrapeer_was_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = make_file(dir.path(), "foxtrot-done.bin", 2000, 13);
    let up1 = servent(true, &[]).await;
    let up2 = servent(true, &[up1.local_addr()]).await;
    let a = servent(false, &[up1.local_addr()]).await;
    let c = servent(false, &[up2.local_addr()]).await;
    share(&c, &path, "foxtrot-done.bin").await;
    linked(&up1, 2).await;
    linked(&up2, 2).await;
    eventually("C's table at UP2", || {
        detail_u64(&up2, "leaf_qrp_tables") >= 1
    })
    .await;
    settle_vendor_lists().await;

    let s = a.search(parse("foxtrot done").unwrap()).await.unwrap();
    let (hits, took) = drain(s, 15).await;
    eprintln!("widened search: {} hits, ended after {took:?}", hits.len());
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].name, "foxtrot-done.bin");
    assert!(
        took < OLD_QUIET - Duration::from_millis(500),
        "ended after {took:?}: not before the old quiet timeout"
    );
    for s in [&a, &c, &up2, &up1] {
        s.shutdown().await;
    }
}

/// Nobody to ask, as a leaf or as an ultrapeer: the search ends at once, and says why.
#[tokio::test]
async fn search_without_neighbours_ends_at_once() {
    for ultrapeer in [false, true] {
        let lone = servent(ultrapeer, &[]).await;
        let start = Instant::now();
        let r = lone.search(parse("golf nobody").unwrap()).await;
        let took = match r {
            Err(e) => {
                let took = start.elapsed();
                assert!(
                    matches!(e, NetworkError::Unreachable(_)),
                    "ultrapeer={ultrapeer}: {e}"
                );
                assert!(e.to_string().contains("no Gnutella peer"), "{e}");
                took
            }
            Ok(s) => {
                let (hits, _) = drain(s, 15).await;
                assert!(hits.is_empty());
                start.elapsed()
            }
        };
        eprintln!("lone servent (ultrapeer={ultrapeer}): search ended after {took:?}");
        assert!(
            took < Duration::from_millis(500),
            "ultrapeer={ultrapeer}: ended after {took:?}"
        );
        lone.shutdown().await;
    }
}

/// An ultrapeer (driven by hand, no "done" signal of its own) that answers slowly: one
/// hit every 800 ms, for longer than any probe's wait. The search goes on while they
/// arrive, and still ends by itself after the last one.
#[tokio::test]
async fn search_with_results_still_arriving_is_not_cut_short() {
    const HITS: usize = 6;
    const EVERY: Duration = Duration::from_millis(800);
    let up = servent(true, &[]).await;
    let ua = up.local_addr();
    let a = servent(false, &[ua]).await;
    let mut slow = RawPeer::handshake(
        ua,
        b"GNUTELLA CONNECT/0.6\r\nUser-Agent: slow-test\r\nX-Ultrapeer: True\r\n\r\n",
        b"GNUTELLA/0.6 200 OK\r\n\r\n",
    )
    .await;
    linked(&up, 2).await;
    eventually("the leaf's link", || a.status().peers >= 1).await;
    settle_vendor_lists().await;

    let s = a.search(parse("hotel slow").unwrap()).await.unwrap();
    let start = Instant::now();
    let guid = loop {
        let d = slow
            .next(5)
            .await
            .expect("the query reached the slow ultrapeer");
        if let Message::Query(q) = &d.message {
            assert_eq!(q.text(), "hotel slow");
            break d.header.guid;
        }
    };
    let answer = async {
        for i in 0..HITS {
            let name = format!("hotel-slow-{i}.bin");
            let hashes = RecordHashes {
                sha1: Sha1Hash::digest(name.as_bytes()),
                ed2k: None,
                tth: None,
                btih: None,
            };
            let rec = hit_record(i as u32 + 1, &name, 1000, &hashes);
            let hit = QueryHit {
                port: 6346,
                ip: Ipv4Addr::new(127, 0, 0, 9),
                speed: 1000,
                results: vec![rec],
                trailer: Some(trailer(false, &[], false, false)),
                servent: Guid::modern(rand_bytes()),
            };
            slow.send(&Descriptor::new(guid, 5, 0, Message::QueryHit(hit)))
                .await;
            tokio::time::sleep(EVERY).await;
        }
        start.elapsed()
    };
    let (last_sent, (hits, _)) = tokio::join!(answer, drain(s, 15));
    let took = start.elapsed();
    eprintln!(
        "slow answers: {} hits, the last sent after {last_sent:?}, the search ended after {took:?}",
        hits.len()
    );
    assert_eq!(hits.len(), HITS, "cut short: {hits:?}");
    assert!(
        took < Duration::from_secs(9),
        "ended after {took:?}: only the deadline stopped it"
    );
    a.shutdown().await;
    up.shutdown().await;
}

/// Links exchange "Messages Supported" right after the handshake.
async fn settle_vendor_lists() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}
