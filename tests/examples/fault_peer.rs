//! Junction eD2k and Gnutella peers for the fault bed (`tests/interop/faults.sh`, issue 15):
//! one side seeds a file, the other fetches it from that seed's address over a link the
//! script delays, drops packets on, or cuts. BitTorrent uses `bt_interop` of
//! junction-bittorrent instead.
//!
//! ```text
//! fault_peer ed2k-seed LISTEN FILE INFO_OUT        share FILE; INFO_OUT gets "ED2K_HEX SIZE"
//! fault_peer gnutella-seed LISTEN FILE INFO_OUT    an ultrapeer sharing FILE; "SHA1_HEX SIZE"
//! fault_peer ed2k-hash FILE                        print "ED2K_HEX SIZE" of FILE (aMule's file)
//! fault_peer ed2k-fetch LISTEN SOURCE ED2K_HEX SIZE OUT TIMEOUT_S
//! fault_peer gnutella-fetch LISTEN SOURCE SHA1_HEX SIZE OUT TIMEOUT_S
//! ```
//! A fetch writes OUT through the same checking sink the gateway uses (eD2k parts, the
//! Gnutella SHA-1), prints progress every 2 s (bytes verified, and written) and
//! `RESULT … in S s`, and exits 0 only when
//! every byte is verified. The Gnutella fetcher is a leaf of the seed (its only ultrapeer)
//! and is also given the seed's address as a source. Seeds run until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use junction_core::swarm::{Swarm, SwarmSink};
use junction_core::{
    ContentId, FetchEvent, FetchRequest, HashKind, Network, NetworkId, RangeSet, SharedItem, Source,
};

fn usage() -> ! {
    eprintln!(
        "usage: fault_peer (ed2k-seed|gnutella-seed) LISTEN FILE INFO_OUT | ed2k-hash FILE | \
         (ed2k-fetch|gnutella-fetch) LISTEN SOURCE HASH_HEX SIZE OUT TIMEOUT_S"
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match (a.first().map(String::as_str), &a[1.min(a.len())..]) {
        (Some("ed2k-seed"), [listen, file, out]) => {
            let a = ed2k::Adapter::start(ed2k_config(listen.parse()?)).await?;
            seed(a, file, out, HashKind::Ed2k).await
        }
        (Some("gnutella-seed"), [listen, file, out]) => {
            let a = gnutella::Adapter::start(gnutella_config(listen.parse()?, true, Vec::new()))
                .await?;
            seed(a, file, out, HashKind::Sha1).await
        }
        (Some("ed2k-hash"), [file]) => {
            let data = std::fs::read(file)?;
            println!(
                "{} {}",
                ed2k::hash::to_hex(&ed2k::hash::ed2k_hash(&data).root),
                data.len()
            );
            Ok(())
        }
        (
            Some(net @ ("ed2k-fetch" | "gnutella-fetch")),
            [listen, source, hash, size, out, secs],
        ) => {
            fetch(
                net == "ed2k-fetch",
                listen.parse()?,
                source,
                &hex::decode(hash)?,
                size.parse()?,
                out.into(),
                Duration::from_secs(secs.parse()?),
            )
            .await
        }
        _ => usage(),
    }
}

/// Until SIGINT or SIGTERM.
async fn until_stopped() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

fn item(file: &str) -> Result<SharedItem> {
    let size = std::fs::metadata(file)
        .with_context(|| file.to_string())?
        .len();
    Ok(SharedItem {
        path: file.into(),
        name: String::new(),
        size,
        id: ContentId::new(Some(size)),
        hashes: None,
    })
}

fn ed2k_config(listen: SocketAddr) -> ed2k::Config {
    // No server: the fetcher is handed the seed's address, as an ed2k link's sources give it.
    ed2k::Config {
        listen: Some(listen),
        ..ed2k::Config::default()
    }
}

/// Shares `file` and writes "HASH_HEX SIZE" (its `kind` hash) to `out`; seeds until stopped.
async fn seed(adapter: impl Network, file: &str, out: &str, kind: HashKind) -> Result<()> {
    let it = item(file)?;
    let size = it.size;
    let id = adapter.share(it).await?;
    let h = hex::encode(id.get(kind).context("no hash of that kind")?);
    std::fs::write(out, format!("{h} {size}\n"))?;
    println!("{:?} seed: {h} {size}", adapter.id());
    until_stopped().await?;
    adapter.shutdown().await;
    Ok(())
}

fn gnutella_config(listen: SocketAddr, ultrapeer: bool, peers: Vec<String>) -> gnutella::Config {
    gnutella::Config {
        listen,
        ultrapeer,
        peers,
        ..gnutella::Config::default()
    }
}

async fn fetch(
    is_ed2k: bool,
    listen: SocketAddr,
    source: &str,
    hash: &[u8],
    size: u64,
    out: PathBuf,
    limit: Duration,
) -> Result<()> {
    let (network, kind) = if is_ed2k {
        (NetworkId::ED2K, HashKind::Ed2k)
    } else {
        (NetworkId::GNUTELLA, HashKind::Sha1)
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&out)
        .with_context(|| out.display().to_string())?;
    file.set_len(size)?;
    let swarm = Arc::new(Swarm::new(file, size, RangeSet::new()));
    let sink = SwarmSink::new(swarm.clone(), network);
    let req = FetchRequest {
        id: ContentId::new(Some(size)).with(kind, hash),
        name: out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size,
        sources: vec![Source {
            network,
            address: source
                .parse()
                .with_context(|| format!("source {source:?}"))?,
            detail: None,
        }],
        trackers: Vec::new(),
        torrent: None,
    };
    let t0 = Instant::now();
    let verified = || swarm.ledger().verified().covered();
    // Hold the adapter until the end: dropping it would stop the fetch.
    let (mut events, _ed2k, _gnutella) = if is_ed2k {
        let a = ed2k::Adapter::start(ed2k_config(listen)).await?;
        (a.fetch(req, sink.clone()).await?, Some(a), None)
    } else {
        let a = gnutella::Adapter::start(gnutella_config(listen, false, vec![source.to_string()]))
            .await?;
        (a.fetch(req, sink.clone()).await?, None, Some(a))
    };
    let deadline = tokio::time::Instant::now() + limit;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last_print = Instant::now();
    let mut ended = false;
    while verified() < size {
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "timed out after {}s: {} of {size} bytes verified",
                limit.as_secs(),
                verified()
            );
        }
        tokio::select! {
            e = events.next(), if !ended => match e {
                Some(FetchEvent::Note(n)) => println!("{:7.2}s note: {n}", t0.elapsed().as_secs_f64()),
                Some(e) => println!("{:7.2}s {e:?}", t0.elapsed().as_secs_f64()),
                None => {
                    println!("{:7.2}s the fetch ended", t0.elapsed().as_secs_f64());
                    ended = true;
                }
            },
            _ = tick.tick() => {}
        }
        if ended && verified() < size {
            bail!(
                "the fetch ended with {} of {size} bytes verified",
                verified()
            );
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            // Written counts bytes not yet checked too (an eD2k part, Gnutella's whole-file
            // SHA-1): the fault bed's partition waits for them.
            let written = verified() + swarm.ledger().unverified_written().covered();
            println!(
                "{:7.2}s verified {} of {size} bytes, written {written}",
                t0.elapsed().as_secs_f64(),
                verified()
            );
        }
    }
    println!(
        "RESULT {size} bytes verified in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
