//! Throughput on 127.0.0.1: ed2k hashing of a shared file, and a transfer between two Junction
//! eD2k peers through Junction's index server with every part MD4-verified.
//!
//! `cargo run --release -p junction-ed2k --example bench_loopback [MiB]` (default 1024).
//! The reference, the MD4 limit of one core, is measured in the same run around each phase
//! with `openssl speed -elapsed md4` (16 KiB blocks; wall clock, like the phases, so a busy
//! machine slows both), and each phase is printed as a ratio of it. Process CPU time is shown
//! next to wall time: a phase whose CPU time is well below its wall time waits, not computes.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use futures::StreamExt;
use junction_core::swarm::{MemStore, Store, Swarm, SwarmSink};
use junction_core::{
    ContentId, FetchEvent, FetchRequest, Network, RangeSet, SharedItem, TransferSink,
};
use junction_ed2k::{Adapter, Config, IndexServer, ServerConfig};

/// `openssl speed -elapsed md4` at 16 KiB blocks, in MB/s (MD4 is in OpenSSL 3's legacy
/// provider).
fn openssl_md4() -> f64 {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-elapsed", "-seconds", "2", "-bytes", "16384"])
        .args(["-provider", "legacy", "-provider", "default", "md4"])
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    let kb: f64 = text
        .lines()
        .filter(|l| l.starts_with("md4"))
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(|v| v.trim_end_matches('k').parse().ok())
        .next()
        .expect("openssl speed md4 output");
    kb * 1000.0 / 1e6
}

/// CPU time (user + system) of this process so far, from /proc (Linux).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// Writes `mib` MiB of xorshift noise (incompressible, so no block is sent packed).
fn write_noise(path: &std::path::Path, mib: u64) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        f.write_all(&buf)?;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let size = mib * 1024 * 1024;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.bin");
    write_noise(&path, mib)?;
    let server = IndexServer::start(ServerConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse()?,
        ..ServerConfig::default()
    })
    .await?;
    let cfg = |nick: &str| Config {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        servers: vec![server.local_addr().to_string()],
        nick: nick.into(),
        ..Config::default()
    };
    let a = Adapter::start(cfg("seed")).await?;
    let b = Adapter::start(cfg("leech")).await?;
    ensure!(
        a.wait_logged_in(Duration::from_secs(10)).await
            && b.wait_logged_in(Duration::from_secs(10)).await
    );

    // Warm the page cache so hashing measures the hasher.
    let _ = std::fs::read(&path)?;
    let ref_hash = openssl_md4();
    let (t, cpu) = (Instant::now(), cpu_secs());
    let id = a
        .share(SharedItem {
            path: path.clone(),
            name: "bench.bin".into(),
            size,
            id: ContentId::new(None),
            hashes: None,
        })
        .await?;
    let hash_secs = t.elapsed().as_secs_f64();
    let hash_cpu = cpu_secs() - cpu;
    let ref_hash = (ref_hash + openssl_md4()) / 2.0;
    let rate = size as f64 / hash_secs / 1e6;
    println!(
        "hash (ed2k + AICH, one pass): {mib} MiB in {hash_secs:.2} s (cpu {hash_cpu:.2} s) = {rate:.0} MB/s; openssl md4 {ref_hash:.0} MB/s; ratio {:.2}",
        rate / ref_hash
    );

    // A sink that checks every part, as the gateway's does. Its buffer is touched up front:
    // it stands for a file already allocated on disk, and first-touch page faults of a
    // fresh 1 GiB buffer are not the adapter's work.
    let store = MemStore::new(size);
    store.write_at(&vec![1; size as usize], 0)?;
    let swarm = std::sync::Arc::new(Swarm::new(store, size, RangeSet::new()));
    let sink = SwarmSink::new(swarm, junction_core::NetworkId::ED2K);
    let src = junction_core::Source {
        network: junction_core::NetworkId::ED2K,
        address: a.peer_addr().unwrap().into(),
        detail: None,
    };
    let ref_xfer = openssl_md4();
    let (t, cpu) = (Instant::now(), cpu_secs());
    let mut ev = b
        .fetch(
            FetchRequest {
                id,
                name: "bench.bin".into(),
                size,
                sources: vec![src],
                trackers: Vec::new(),
                torrent: None,
            },
            sink.clone(),
        )
        .await?;
    while let Some(e) = ev.next().await {
        if matches!(&e, FetchEvent::Note(n) if n.starts_with("complete")) {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let xfer_cpu = cpu_secs() - cpu;
    ensure!(sink.wanted().is_empty(), "transfer incomplete");
    ensure!(
        sink.swarm.store().bytes() == std::fs::read(&path)?,
        "transferred bytes differ"
    );
    let ref_xfer = (ref_xfer + openssl_md4()) / 2.0;
    let rate = size as f64 / secs / 1e6;
    println!(
        "transfer (every part MD4-verified, whole ed2k hash checked): {mib} MiB in {secs:.2} s (cpu {xfer_cpu:.2} s) = {rate:.0} MB/s; openssl md4 {ref_xfer:.0} MB/s; ratio {:.2}",
        rate / ref_xfer
    );
    a.shutdown().await;
    b.shutdown().await;
    server.shutdown();
    Ok(())
}
