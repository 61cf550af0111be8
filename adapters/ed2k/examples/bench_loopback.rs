//! Throughput on 127.0.0.1: ed2k hashing of a shared file, and a transfer between two Junction
//! eD2k peers through Junction's index server with every part MD4-verified.
//!
//! `cargo run --release -p junction-ed2k --example bench_loopback [MiB]` (default 1024).
//! Compare with `openssl speed md4` (the MD4 limit of one core).

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use bytes::Bytes;
use futures::StreamExt;
use junction_core::{
    ContentId, FetchEvent, FetchRequest, Network, RangeSet, SharedItem, SinkError, TransferSink,
};
use junction_ed2k::{Adapter, Config, IndexServer, ServerConfig};

struct Sink {
    data: Mutex<Vec<u8>>,
    size: u64,
    verified: Mutex<RangeSet>,
    written: AtomicU64,
}

impl TransferSink for Sink {
    fn size(&self) -> u64 {
        self.size
    }
    fn wanted(&self) -> RangeSet {
        self.verified.lock().unwrap().gaps(0..self.size)
    }
    fn priority(&self) -> Option<u64> {
        None
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        let end = offset + data.len() as u64;
        if end > self.size {
            return Err(SinkError::OutOfRange {
                start: offset,
                end,
                size: self.size,
            });
        }
        self.data.lock().unwrap()[offset as usize..end as usize].copy_from_slice(data);
        self.written.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn read(&self, offset: u64, len: usize) -> Result<Bytes, SinkError> {
        let end = offset + len as u64;
        if end > self.size {
            return Err(SinkError::OutOfRange {
                start: offset,
                end,
                size: self.size,
            });
        }
        Ok(Bytes::copy_from_slice(
            &self.data.lock().unwrap()[offset as usize..end as usize],
        ))
    }
    fn verified(&self, range: Range<u64>, ok: bool) {
        if ok {
            self.verified.lock().unwrap().insert(range);
        }
    }
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
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
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
    }
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
    let t = Instant::now();
    let id = a
        .share(SharedItem {
            path: path.clone(),
            name: "bench.bin".into(),
            size,
            id: ContentId::new(None),
        })
        .await?;
    let hash_secs = t.elapsed().as_secs_f64();
    println!(
        "hash (ed2k + AICH, one pass): {mib} MiB in {hash_secs:.2} s = {:.0} MB/s",
        size as f64 / hash_secs / 1e6
    );

    let sink = std::sync::Arc::new(Sink {
        data: Mutex::new(vec![0; size as usize]),
        size,
        verified: Mutex::new(RangeSet::new()),
        written: AtomicU64::new(0),
    });
    let src = junction_core::Source {
        network: junction_core::NetworkId::ED2K,
        address: a.peer_addr().unwrap().to_string(),
        detail: None,
    };
    let t = Instant::now();
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
    ensure!(sink.wanted().is_empty(), "transfer incomplete");
    println!(
        "transfer (every part MD4-verified, whole ed2k hash re-checked): {mib} MiB in {secs:.2} s = {:.0} MB/s",
        size as f64 / secs / 1e6
    );
    a.shutdown().await;
    b.shutdown().await;
    server.shutdown();
    Ok(())
}
