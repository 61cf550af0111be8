//! (a): Junction finds aMule's files by search and downloads them from aMule, every part,
//! the AICH block hashes and the ed2k hash verified.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use futures::StreamExt;
use junction_core::query::parse;
use junction_core::{FetchEvent, FetchRequest, HashKind, Hit, Network};
use junction_ed2k::hash::{PART_SIZE, aich_root, ed2k_hash, to_hex};

use super::{Ctx, fail, log, mem_sink};

/// (a) for each of `amule_files` (none when `skip_a`).
pub async fn check_a(
    cx: &Ctx<'_>,
    amule_files: &[(&str, Vec<u8>)],
    skip_a: bool,
    failures: &mut Vec<String>,
) -> Result<()> {
    // aMule offers its files again after the reconnects above.
    let t0 = Instant::now();
    while cx.server.stats().files < 6 && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut hits = Vec::new();
    for _ in 0..6 {
        if skip_a {
            break;
        }
        let mut s = cx.j.search(parse("amulesrc")?).await?;
        hits.clear();
        while let Ok(Some(h)) = tokio::time::timeout(Duration::from_secs(5), s.next()).await {
            hits.push(h?);
        }
        if hits.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    log(format!("(a) Junction search found {} hits", hits.len()));
    for (name, data) in amule_files.iter().filter(|_| !skip_a) {
        let Some(h) = hits.iter().find(|h| h.name == *name) else {
            fail(failures, format!("(a) {name}: not found by search"));
            continue;
        };
        fetch_one(cx, h, name, data, failures).await?;
    }
    Ok(())
}

/// Downloads one of aMule's files from its search hit `h` and checks what arrived.
async fn fetch_one(
    cx: &Ctx<'_>,
    h: &Hit,
    name: &str,
    data: &[u8],
    failures: &mut Vec<String>,
) -> Result<()> {
    let expect = ed2k_hash(data).root;
    ensure!(
        h.id.get(HashKind::Ed2k) == Some(&expect[..]),
        "(a) {name}: hash in result differs"
    );
    let sink = mem_sink(h.size);
    let t = Instant::now();
    // The AICH root, as an ed2k link's h= gives it: Junction then asks aMule for each
    // part's block hashes and checks them against it.
    let mut id = h.id.clone();
    let aich = aich_root(data);
    id.set(HashKind::Aich, &aich);
    let req = FetchRequest {
        id,
        name: h.name.clone(),
        size: h.size,
        sources: h.locations.clone(),
        trackers: Vec::new(),
        torrent: None,
    };
    let mut ev = cx.j.fetch(req, sink.clone()).await?;
    // aMule uploads at about 0.3 MB/s here (its own pace; see benchmark (c)).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut complete = false;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, ev.next()).await {
        if let FetchEvent::Note(n) = &e {
            log(format!("(a) {name}: {n}"));
            if n.starts_with("complete") {
                complete = true;
                break;
            }
        }
    }
    let got = sink.swarm.store().bytes();
    let secs = t.elapsed().as_secs_f64();
    // Parts whose AICH block hashes aMule sent and the root proved.
    let aich_parts = sink
        .swarm
        .ledger()
        .grids()
        .iter()
        .find(|g| g.part_len.is_some())
        .map_or(0, |g| {
            g.digests
                .iter()
                .step_by(junction_ed2k::aich::BLOCKS_PER_PART as usize)
                .filter(|d| !d.is_empty())
                .count()
        });
    // eMule sends no recovery data for a last part of one block or less.
    let parts = (0..data.len() as u64)
        .step_by(PART_SIZE as usize)
        .filter(|p| data.len() as u64 - p > junction_ed2k::hash::BLOCK_SIZE)
        .count();
    if complete && ed2k_hash(&got).root == expect && got == *data && aich_parts == parts {
        log(format!(
            "(a) PASS {name}: {} bytes from aMule in {secs:.1} s ({:.2} MB/s), ed2k {} verified, AICH block hashes from aMule for {aich_parts} of {parts} parts",
            got.len(),
            got.len() as f64 / secs / 1e6,
            to_hex(&expect)
        ));
    } else {
        fail(
            failures,
            format!(
                "(a) {name}: incomplete or wrong after {secs:.0} s (verified {} bytes, AICH block hashes for {aich_parts} of {parts} parts)",
                sink.swarm.ledger().verified().covered()
            ),
        );
    }
    Ok(())
}
