//! Benchmarks (ignored by default; run in release):
//! `cargo test --release -p junction-gnutella --test bench -- --ignored --nocapture --test-threads 1`
//!
//! * a 1 GiB download between two Junction servents on loopback, against
//!   `curl` fetching the same file from the same upload server;
//! * the ultrapeer's routing throughput on one core (current-thread runtime).

mod net;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use junction_core::{
    ContentId, FetchRequest, HashKind, Network, NetworkId, RangeSet, SharedItem, SinkError, Source,
    TransferSink,
};
use junction_gnutella::Sha1Hash;
use junction_gnutella::wire::guid::Guid;
use junction_gnutella::wire::message::{Descriptor, Message, Query};
use junction_gnutella::wire::qrp::QrpTable;
use net::*;

/// Wraps [`FileSink`], remembering when the last byte arrived.
struct TimedSink {
    inner: Arc<FileSink>,
    last_write: Mutex<Option<Instant>>,
}

impl TransferSink for TimedSink {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn wanted(&self) -> RangeSet {
        self.inner.wanted()
    }
    fn priority(&self) -> Option<u64> {
        None
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.write_from(0, offset, data)
    }
    fn write_from(&self, source: u64, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.inner.write_from(source, offset, data)?;
        *self.last_write.lock().unwrap() = Some(Instant::now());
        Ok(())
    }
    fn read(&self, offset: u64, len: usize) -> Result<bytes::Bytes, SinkError> {
        self.inner.read(offset, len)
    }
    fn verified(&self, range: std::ops::Range<u64>, ok: bool) {
        self.inner.verified(range, ok);
    }
    fn written(&self) -> RangeSet {
        self.inner.written()
    }
    fn claim(
        &self,
        source: u64,
        within: std::ops::Range<u64>,
        max: u64,
    ) -> Option<std::ops::Range<u64>> {
        self.inner.claim(source, within, max)
    }
    fn release(&self, source: u64, range: std::ops::Range<u64>) {
        self.inner.release(source, range);
    }
    fn learn(&self, hashes: junction_core::swarm::UnitHashes) -> bool {
        self.inner.learn(hashes)
    }
    fn is_banned(&self, source: u64) -> bool {
        self.inner.is_banned(source)
    }
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

/// `size` bytes at `path`: 1 MiB blocks, each numbered in its first 8 bytes.
fn write_big_file(dir: &std::path::Path, path: &std::path::Path, size: usize) {
    use std::io::Write;
    let (_, block) = make_file(dir, "block", 1 << 20, 11);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..(size >> 20) {
        let mut b = block.clone();
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        f.write_all(&b).unwrap();
    }
}

/// `curl -s -o <out> <url>`: its exit status and how long it took.
async fn curl(out: std::path::PathBuf, url: String) -> (std::process::ExitStatus, Duration) {
    let t = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-s", "-o"])
            .arg(&out)
            .arg(&url)
            .status()
    })
    .await
    .unwrap()
    .unwrap();
    (status, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: 1 GiB on loopback; run in release"]
async fn download_1gib_against_curl() {
    const SIZE: usize = 1 << 30;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    write_big_file(dir.path(), &path, SIZE);
    let up = servent(true, &[]).await;
    let t = Instant::now();
    let id = up
        .share(SharedItem {
            path: path.clone(),
            name: "big.bin".into(),
            size: SIZE as u64,
            id: ContentId::new(None),
            hashes: None,
        })
        .await
        .unwrap();
    eprintln!("hashed 1 GiB for sharing in {:?}", t.elapsed());
    let sha1 = Sha1Hash(id.get(HashKind::Sha1).unwrap().try_into().unwrap());

    let leaf = servent(false, &[up.local_addr()]).await;
    let sink = Arc::new(TimedSink {
        inner: file_sink(SIZE as u64),
        last_write: Mutex::new(None),
    });
    let start = Instant::now();
    let mut ev = leaf
        .fetch(
            FetchRequest {
                id: id.clone(),
                name: "big.bin".into(),
                size: SIZE as u64,
                sources: vec![Source {
                    network: NetworkId::GNUTELLA,
                    address: up.local_addr().into(),
                    detail: None,
                }],
                trackers: vec![],
                torrent: None,
            },
            sink.clone(),
        )
        .await
        .unwrap();
    while ev.next().await.is_some() {}
    let total = start.elapsed();
    let transfer = sink.last_write.lock().unwrap().unwrap() - start;
    assert!(sink.inner.is_verified());
    let ours = mib_per_s(SIZE as u64, transfer);
    eprintln!(
        "junction: 1 GiB transferred in {transfer:?} ({ours:.0} MiB/s), verified after {total:?}"
    );

    let url = format!(
        "http://{}/uri-res/N2R?urn:sha1:{}",
        up.local_addr(),
        sha1.to_base32()
    );
    let out = dir.path().join("curl.out");
    let (status, curl_time) = curl(out.clone(), url).await;
    assert!(status.success());
    assert_eq!(std::fs::metadata(&out).unwrap().len(), SIZE as u64);
    let theirs = mib_per_s(SIZE as u64, curl_time);
    eprintln!("curl:     1 GiB in {curl_time:?} ({theirs:.0} MiB/s)");
    eprintln!("junction / curl = {:.0}%", 100.0 * ours / theirs);
    // For context: curl discarding the body (network and server only).
    let url2 = format!(
        "http://{}/uri-res/N2R?urn:sha1:{}",
        up.local_addr(),
        sha1.to_base32()
    );
    let (_, null) = curl("/dev/null".into(), url2).await;
    eprintln!(
        "curl > /dev/null: 1 GiB in {null:?} ({:.0} MiB/s)",
        mib_per_s(SIZE as u64, null)
    );
    leaf.shutdown().await;
    up.shutdown().await;
}

#[tokio::test]
#[ignore = "benchmark: routing throughput; run in release"]
async fn ultrapeer_routing_throughput_one_core() {
    const N: usize = 200_000;
    let up = servent(true, &[]).await;
    // The receiving leaf: plain link, a table holding the query's words.
    let mut leaf = RawPeer::leaf(up.local_addr()).await;
    let table = QrpTable::from_words(["bench", "query"], 1 << 16, 2).unwrap();
    for m in table.to_messages(4096).unwrap() {
        leaf.send(&Descriptor::new(
            Guid::modern(rand_guid(0)),
            1,
            0,
            Message::RouteTable(m),
        ))
        .await;
    }
    eventually("table", || detail_u64(&up, "leaf_qrp_tables") >= 1).await;
    // The sender: a plain ultrapeer link.
    let mut sender = RawPeer::handshake(
        up.local_addr(),
        b"GNUTELLA CONNECT/0.6\r\nUser-Agent: bench\r\nX-Ultrapeer: True\r\n\r\n",
        b"GNUTELLA/0.6 200 OK\r\n\r\n",
    )
    .await;
    let mut batch = Vec::with_capacity(N * 40);
    for i in 0..N {
        let d = Descriptor::new(
            Guid::modern(rand_guid(i as u64 + 1)),
            2,
            0,
            Message::Query(Query::keywords("bench query")),
        );
        batch.extend_from_slice(&d.to_bytes().unwrap());
    }
    let start = Instant::now();
    let send = async {
        for c in batch.chunks(64 * 1024) {
            sender.send_raw(c).await;
        }
    };
    let recv = async {
        let mut got = 0usize;
        while got < N {
            match leaf.next(3).await {
                Some(d) if matches!(d.message, Message::Query(_)) => got += 1,
                Some(_) => {}
                None => break,
            }
        }
        got
    };
    let ((), got) = tokio::join!(send, recv);
    let elapsed = start.elapsed();
    let routed = detail_u64(&up, "queries_forwarded");
    eprintln!(
        "routed {got} of {N} queries to the leaf in {elapsed:?}: {:.0} queries/s on one core (forwarded counter {routed})",
        got as f64 / elapsed.as_secs_f64()
    );
    up.shutdown().await;
}

fn rand_guid(i: u64) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[..8].copy_from_slice(&i.to_le_bytes());
    g[9..15].copy_from_slice(&[0x4a, 0x4e, 0x43, 0x54, 0x42, 0x4d]);
    g
}
