//! Junction's whole-process benchmarks (issue 6); prints one table of figures vs goals.
//!
//! `cargo run --release -p junction-bench --bin harness -- [options]`
//!
//!   --only LIST      comma-separated parts: merge,first,download,swarm,hashing,read,rss
//!                    (default: all)
//!   --dl-mib N       size of the file downloaded through each network (default 256)
//!   --swarm-mib N    size of the file on all three networks, for the swarm part (default 128)
//!   --swarm-cap-mib N  each seeder's cap in the capped swarm run, MiB/s (default 4)
//!   --hash-mib N     size of the file hashed in the page cache, hashing part (default 512)
//!   --read-mib N     size of the transfer read back over gRPC (default 1024)
//!   --searches N     searches timed for the first-item delay (default 1000)
//!   --transfers N    transfers started for the loaded RSS figure (default 100)
//!   --junction PATH  the `junction` binary for the RSS part (default: beside this one)
//!   --markdown FILE  also write the table as Markdown to FILE
//!
//! The merge row takes criterion's figure from `target/criterion` when `cargo bench`
//! ran before (bench/run.sh does), and also measures it here on one thread.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use gateway::transfer::StartSpec;
use gateway::{Gateway, GatewayConfig};
use junction_bench::memnet::{FirstHit, MemNet, synthetic_byte};
use junction_bench::proc::{content, cpu_model, free_port, mem_total_mib, rss_kib};
use junction_bench::workload;
use junction_core::{ContentId, DynNetwork, HashKind, SharedItem};
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use proto::v1::search_event::Event;
use proto::v1::transfer::State;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

const MIB: u64 = 1024 * 1024;

#[path = "harness/hashing.rs"]
mod hashing;
#[path = "harness/swarm.rs"]
mod swarm;

struct Opts {
    only: Vec<String>,
    dl_mib: u64,
    read_mib: u64,
    searches: usize,
    transfers: usize,
    junction: Option<PathBuf>,
    markdown: Option<PathBuf>,
    swarm_mib: u64,
    swarm_cap_mib: u64,
    hash_mib: u64,
}

impl Opts {
    fn parse() -> Result<Opts> {
        let mut o = Opts {
            only: Vec::new(),
            dl_mib: 256,
            read_mib: 1024,
            searches: 1000,
            transfers: 100,
            junction: None,
            markdown: None,
            swarm_mib: 128,
            swarm_cap_mib: 4,
            hash_mib: 512,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut val = || args.next().ok_or_else(|| anyhow!("{a} needs a value"));
            match a.as_str() {
                "--only" => o.only = val()?.split(',').map(str::to_owned).collect(),
                "--dl-mib" => o.dl_mib = val()?.parse()?,
                "--swarm-mib" => o.swarm_mib = val()?.parse()?,
                "--swarm-cap-mib" => o.swarm_cap_mib = val()?.parse()?,
                "--hash-mib" => o.hash_mib = val()?.parse()?,
                "--read-mib" => o.read_mib = val()?.parse()?,
                "--searches" => o.searches = val()?.parse()?,
                "--transfers" => o.transfers = val()?.parse()?,
                "--junction" => o.junction = Some(val()?.into()),
                "--markdown" => o.markdown = Some(val()?.into()),
                "-h" | "--help" => {
                    println!("see the top of bench/src/bin/harness.rs for the options");
                    std::process::exit(0);
                }
                other => bail!("unknown option {other:?} (try --help)"),
            }
        }
        Ok(o)
    }

    fn wants(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

/// One line of the table.
struct Row {
    what: String,
    figure: String,
    goal: String,
    verdict: &'static str,
}

fn row(what: impl Into<String>, figure: impl Into<String>, goal: &str, met: Option<bool>) -> Row {
    Row {
        what: what.into(),
        figure: figure.into(),
        goal: goal.into(),
        verdict: match met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "-",
        },
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let opts = Opts::parse()?;
    let mut rows = Vec::new();
    let parts: [(&str, &str); 7] = [
        ("merge", "search merge throughput"),
        ("first", "time to first merged item"),
        ("download", "download throughput per network"),
        ("swarm", "one transfer over three networks"),
        ("hashing", "hash on download: every hash in one read"),
        ("read", "ReadContent throughput"),
        ("rss", "gateway RSS"),
    ];
    for (part, title) in parts {
        if !opts.wants(part) {
            continue;
        }
        eprintln!("== {title} (load average {})", load_average());
        let r = match part {
            "merge" => merge_rows().await,
            "first" => first_item_rows(opts.searches).await,
            "download" => download_rows(opts.dl_mib * MIB).await,
            "swarm" => swarm::swarm_rows(opts.swarm_mib, opts.swarm_cap_mib).await,
            "hashing" => hashing::hashing_rows(opts.hash_mib).await,
            "read" => read_rows(opts.read_mib * MIB).await,
            _ => rss_rows(&opts).await,
        };
        match r {
            Ok(mut r) => rows.append(&mut r),
            Err(e) => {
                eprintln!("{title} failed: {e:#}");
                rows.push(row(title, format!("FAILED: {e}"), "", Some(false)));
            }
        }
    }
    let table = render(&rows);
    println!("\n{}", machine_line());
    println!("{table}");
    if let Some(path) = &opts.markdown {
        std::fs::write(path, format!("{}\n\n{table}", machine_line()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn machine_line() -> String {
    format!(
        "{} cores ({}), {} MiB RAM; load average at the end: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        mem_total_mib(),
        load_average()
    )
}

/// The 1, 5 and 15 minute load averages: how busy the machine was besides us.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn render(rows: &[Row]) -> String {
    let mut out = String::from("| benchmark | measured | goal | |\n|---|---|---|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.what, r.figure, r.goal, r.verdict
        ));
    }
    out
}

// ------------------------------------------------------------------ 1. merge

const MERGE_HITS: usize = 10_000;
const MERGE_GOAL: f64 = 200_000.0;

async fn merge_rows() -> Result<Vec<Row>> {
    // On its own thread: one core, nothing else of ours running.
    let (add, add_item) = tokio::task::spawn_blocking(|| {
        let hits = workload::hits(MERGE_HITS, 42, "movie");
        let terms = vec!["movie".to_owned()];
        (
            workload::merge_rate(&hits, &terms, false, 21),
            workload::merge_rate(&hits, &terms, true, 21),
        )
    })
    .await?;
    let criterion = |name| criterion_rate(name).map(|r| format!("{} (criterion)", per_sec(r)));
    let (c_add, c_item) = (criterion("add"), criterion("add+item"));
    let best = criterion_rate("add").unwrap_or(add);
    Ok(vec![
        row(
            "merge: Merger::add, 10k hits, ~1/3 merging, 1 core",
            c_add.unwrap_or_else(|| format!("{} (harness, median of 21)", per_sec(add))),
            "≥ 200k hits/s",
            Some(best >= MERGE_GOAL),
        ),
        row(
            "merge + item snapshot per hit (as the hub sends)",
            c_item.unwrap_or_else(|| format!("{} (harness, median of 21)", per_sec(add_item))),
            "-",
            None,
        ),
    ])
}

fn per_sec(r: f64) -> String {
    format!("{:.0}k hits/s", r / 1000.0)
}

/// Hits/s from criterion's last `cargo bench` of `merge/<name>`, if it ran.
fn criterion_rate(name: &str) -> Option<f64> {
    let target = std::env::current_exe()
        .ok()?
        .parent()?
        .parent()?
        .to_path_buf();
    let path = target.join(format!("criterion/merge/{name}/new/estimates.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let ns = v["median"]["point_estimate"].as_f64()?;
    Some(MERGE_HITS as f64 / (ns / 1e9))
}

// ------------------------------------------------------------------ gateway helpers

struct Served {
    gw: Gateway,
    client: GatewayClient<Channel>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

/// Serves a gateway on a fresh loopback port, as `junction serve` does. With `nodelay`,
/// the listening socket has TCP_NODELAY, which Linux hands down to accepted connections:
/// the diagnostic for the first-item delay (the gateway itself does not set it).
async fn serve(dir: &Path, networks: Vec<Arc<dyn DynNetwork>>, nodelay: bool) -> Result<Served> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_nodelay(nodelay)?;
    socket.bind(loopback())?;
    let listener = socket.listen(1024)?;
    let addr = listener.local_addr()?;
    let config = GatewayConfig {
        listen: addr,
        data_dir: dir.to_path_buf(),
        search_timeout_secs: 5,
        ..Default::default()
    };
    let gw = Gateway::open(config, networks).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = gw.clone();
    let server = tokio::spawn(async move {
        let done = async {
            let _ = stopped.await;
        };
        if let Err(e) = gateway::api::serve(served, listener, done).await {
            eprintln!("gateway API: {e}");
        }
    });
    let client = GatewayClient::connect(format!("http://{addr}")).await?;
    Ok(Served {
        gw,
        client,
        stop,
        server,
    })
}

impl Served {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.gw.shutdown().await;
    }
}

/// Polls a transfer until it completes; fails on FAILED/CANCELLED or after `limit`.
async fn wait_complete(
    client: &mut GatewayClient<Channel>,
    id: &str,
    limit: Duration,
) -> Result<pb::Transfer> {
    let deadline = Instant::now() + limit;
    loop {
        let t = client
            .get_transfer(pb::TransferRef { id: id.into() })
            .await?
            .into_inner();
        match t.state() {
            State::Complete => return Ok(t),
            State::Failed | State::Cancelled => bail!("transfer {id} ended: {t:?}"),
            _ if Instant::now() > deadline => bail!("transfer {id} not done after {limit:?}"),
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

// ------------------------------------------------------------------ 2. first item

/// Delays before each in-memory network's first hit: the fastest answers first.
const FIRST_DELAYS_MS: [u64; 3] = [2, 5, 9];

async fn first_item_rows(searches: usize) -> Result<Vec<Row>> {
    let goal = Duration::from_millis(1);
    let mut rows = Vec::new();
    for nodelay in [false, true] {
        let mut delays = first_item_delays(searches, nodelay).await?;
        delays.sort();
        let (median, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
        let how = if nodelay {
            "diagnostic: same, API socket with TCP_NODELAY"
        } else {
            "first merged item after the fastest network's first hit (gRPC as served, 3 networks)"
        };
        rows.push(row(
            format!("{how}, {} searches", delays.len()),
            format!(
                "median {}, p99 {}, max {}",
                ms(median),
                ms(p99),
                ms(*delays.last().unwrap_or(&Duration::ZERO))
            ),
            "≤ 1 ms",
            Some(median <= goal && p99 <= goal),
        ));
    }
    Ok(rows)
}

/// Per search: from the moment the fastest in-memory network hands out its first hit to
/// the moment the gRPC client holds the first `Item` event.
async fn first_item_delays(searches: usize, nodelay: bool) -> Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let first = Arc::new(FirstHit::default());
    // 30 hits per network; contents repeat across networks, so updates flow too.
    let hits = workload::hits(90, 9, "movie");
    let nets: Vec<Arc<dyn DynNetwork>> = ["fast", "middle", "slow"]
        .into_iter()
        .zip(FIRST_DELAYS_MS)
        .zip(hits.chunks(30))
        .map(|((id, delay), hits)| {
            Arc::new(MemNet::searching(
                id,
                hits.to_vec(),
                Duration::from_millis(delay),
                first.clone(),
            )) as Arc<dyn DynNetwork>
        })
        .collect();
    let mut s = serve(dir.path(), nets, nodelay).await?;
    let warmup = 20;
    let mut delays = Vec::with_capacity(searches);
    for n in 0..searches + warmup {
        first.take();
        let req = pb::SearchRequest {
            query: "movie".into(),
            timeout_ms: 2000,
            ..Default::default()
        };
        let mut stream = s.client.search(req).await?.into_inner();
        let mut got = None;
        let mut items = 0;
        while let Some(ev) = stream.next().await {
            match ev?.event {
                Some(Event::Item(_)) => {
                    got.get_or_insert_with(Instant::now);
                    items += 1;
                }
                Some(Event::Finished(_)) => break,
                _ => {}
            }
        }
        let got = got.ok_or_else(|| anyhow!("search {n} returned no item"))?;
        let hit = first
            .take()
            .ok_or_else(|| anyhow!("search {n}: no network noted a first hit"))?;
        if items < 30 {
            bail!("search {n} returned only {items} items");
        }
        if n >= warmup {
            delays.push(got.saturating_duration_since(hit));
        }
    }
    s.stop().await;
    Ok(delays)
}

// ------------------------------------------------------------------ 3. downloads

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn share(net: &dyn DynNetwork, path: &Path) -> Result<ContentId> {
    Ok(net
        .share(SharedItem {
            path: path.to_path_buf(),
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size: std::fs::metadata(path)?.len(),
            id: ContentId::new(None),
            hashes: None,
        })
        .await?)
}

/// Raw loopback copy rate: one TCP connection, 256 KiB writes and reads, in MB/s.
async fn loopback_copy(bytes: u64) -> Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = sock.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        anyhow::Ok(got)
    });
    let buf = content(256 * 1024, 5);
    let started = Instant::now();
    let mut sock = tokio::net::TcpStream::connect(addr).await?;
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(buf.len() as u64) as usize;
        sock.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    sock.shutdown().await?;
    let got = reader.await??;
    let secs = started.elapsed().as_secs_f64();
    if got != bytes {
        bail!("loopback copy moved {got} of {bytes} bytes");
    }
    Ok(bytes as f64 / secs / 1e6)
}

/// Searches `query` on one network until an item of `size` bytes is found there.
async fn find(
    client: &mut GatewayClient<Channel>,
    net: &str,
    query: &str,
    size: u64,
) -> Result<pb::Item> {
    for _ in 0..30 {
        let req = pb::SearchRequest {
            query: query.into(),
            networks: vec![net.into()],
            timeout_ms: 3000,
            ..Default::default()
        };
        let mut stream = client.search(req).await?.into_inner();
        let mut found = None;
        while let Some(ev) = stream.next().await {
            if let Some(Event::Item(i) | Event::Update(i)) = ev?.event
                && i.size == size
                && i.availability.iter().any(|a| a.network == net)
            {
                found = Some(i);
            }
        }
        if let Some(i) = found {
            return Ok(i);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    bail!("{query:?} never found on {net}")
}

async fn download_rows(size: u64) -> Result<Vec<Row>> {
    let files = tempfile::tempdir()?;
    let names = ["ed2k", "gnutella", "bittorrent"];
    let mut paths = Vec::new();
    for (i, net) in names.iter().enumerate() {
        let path = files.path().join(format!("benchdl {net} payload.bin"));
        // Seeds two apart: content() sets the low bit, so 100 and 101 would be one file.
        std::fs::write(&path, content(size as usize, 100 + 2 * i as u64))?;
        paths.push(path);
    }

    // eD2k: an index server, a seeding peer, and the gateway's peer.
    let server = ed2k::IndexServer::start(ed2k::ServerConfig {
        enabled: true,
        listen: loopback(),
        ..Default::default()
    })
    .await?;
    let ed2k_cfg = || ed2k::Config {
        listen: Some(loopback()),
        servers: vec![server.local_addr().to_string()],
        source_requery: Duration::from_secs(2),
        ..Default::default()
    };
    let ed2k_seed = ed2k::Adapter::start(ed2k_cfg()).await?;
    if !ed2k_seed.wait_logged_in(Duration::from_secs(15)).await {
        bail!("the eD2k seeder never logged in");
    }
    let ed2k_gw = ed2k::Adapter::start(ed2k_cfg()).await?;
    if !ed2k_gw.wait_logged_in(Duration::from_secs(15)).await {
        bail!("the gateway's eD2k peer never logged in");
    }
    // Gnutella: a seeding ultrapeer, and the gateway's leaf.
    let ultrapeer = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        ultrapeer: true,
        ..Default::default()
    })
    .await?;
    let leaf = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        peers: vec![ultrapeer.local_addr().to_string()],
        ..Default::default()
    })
    .await?;
    // BitTorrent: a tracker, a seeder, and the gateway's peer.
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2).await?;
    let bt_seed = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        trackers: vec![tracker.announce_url()],
        ..Default::default()
    })
    .await?;
    let bt_gw = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        ..Default::default()
    })
    .await?;

    let t = Instant::now();
    share(&ed2k_seed, &paths[0]).await?;
    share(&ultrapeer, &paths[1]).await?;
    let btih = share(&bt_seed, &paths[2]).await?;
    eprintln!(
        "   seeders hashed 3 x {} MiB in {:?}",
        size / MIB,
        t.elapsed()
    );

    let dir = tempfile::tempdir()?;
    let nets: Vec<Arc<dyn DynNetwork>> = vec![Arc::new(ed2k_gw), Arc::new(leaf), Arc::new(bt_gw)];
    let mut s = serve(dir.path(), nets, false).await?;

    let reference = loopback_copy(size).await?;
    eprintln!("   raw loopback TCP copy: {reference:.0} MB/s");
    let mut rows = Vec::new();
    for (i, net) in names.iter().enumerate() {
        let source = if *net == "bittorrent" {
            let btih = btih
                .get(HashKind::Btih)
                .ok_or_else(|| anyhow!("the seeder returned no btih"))?;
            pb::start_transfer_request::Source::Link(format!(
                "magnet:?xt=urn:btih:{}&xl={size}&dn=bt.bin&tr={}",
                HashKind::Btih.format(btih),
                tracker.announce_url()
            ))
        } else {
            let item = find(&mut s.client, net, &format!("benchdl {net}"), size).await?;
            pb::start_transfer_request::Source::ItemId(item.id)
        };
        let started = Instant::now();
        let t = s
            .client
            .start_transfer(pb::StartTransferRequest {
                source: Some(source),
                networks: vec![(*net).into()],
            })
            .await?
            .into_inner();
        let done = wait_complete(&mut s.client, &t.id, Duration::from_secs(600)).await?;
        let secs = started.elapsed().as_secs_f64();
        let rate = size as f64 / secs / 1e6;
        let same = std::fs::read(&done.path)? == std::fs::read(&paths[i])?;
        if !same {
            bail!("{net}: the downloaded file differs from the shared one");
        }
        eprintln!("   {net}: {} MiB in {secs:.2} s, verified", size / MIB);
        rows.push(row(
            format!(
                "download over loopback: {net} ({} MiB, 1 seeder)",
                size / MIB
            ),
            format!(
                "{rate:.0} MB/s = {:.3} x raw loopback copy ({reference:.0} MB/s)",
                rate / reference
            ),
            "- (reference: raw copy)",
            None,
        ));
    }
    s.stop().await;
    drop((ed2k_seed, ultrapeer, bt_seed, server, tracker));
    Ok(rows)
}

// ------------------------------------------------------------------ 4. ReadContent

async fn read_rows(size: u64) -> Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let id = ContentId::new(Some(size)).with(HashKind::Sha1, &[7u8; 20]);
    let net = MemNet::serving("mem", vec![id.clone()]);
    let mut s = serve(dir.path(), vec![Arc::new(net)], false).await?;
    let t = Instant::now();
    let info = s.gw.transfers.start(StartSpec {
        name: "synthetic.bin".into(),
        size: Some(size),
        content: id,
        networks: vec!["mem".into()],
        ..Default::default()
    })?;
    wait_complete(&mut s.client, &info.id, Duration::from_secs(600)).await?;
    eprintln!(
        "   {} MiB transfer written in {:?}",
        size / MIB,
        t.elapsed()
    );
    // The same stream in-process, without gRPC: what the transfer layer alone delivers.
    let mut inproc = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let mut rx = s.gw.transfers.read(&info.id, 0, 0).await?;
        let mut got = 0u64;
        while let Some(chunk) = rx.recv().await {
            got += chunk?.1.len() as u64;
        }
        if got != size {
            bail!("in-process read got {got} of {size} bytes");
        }
        inproc.push(size as f64 / started.elapsed().as_secs_f64() / 1e9);
    }
    inproc.sort_by(f64::total_cmp);
    let mut rates = Vec::new();
    let cpu_before = cpu_secs();
    for _ in 0..3 {
        let started = Instant::now();
        let mut stream = s
            .client
            .read_content(pb::ReadContentRequest {
                transfer_id: info.id.clone(),
                offset: 0,
                length: 0,
            })
            .await?
            .into_inner();
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            let c = chunk?;
            if c.offset != got {
                bail!("chunk at {} where {got} was expected", c.offset);
            }
            // Spot-check the bytes (a full compare would time the checker, not the read).
            for i in (0..c.data.len()).step_by(4093) {
                if c.data[i] != synthetic_byte(c.offset + i as u64) {
                    bail!("wrong byte at {}", c.offset + i as u64);
                }
            }
            got += c.data.len() as u64;
        }
        let secs = started.elapsed().as_secs_f64();
        if got != size {
            bail!("read {got} of {size} bytes");
        }
        rates.push(size as f64 / secs / 1e9);
    }
    // CPU spent by the whole process (server and client) per GB read: unlike the rate,
    // it does not depend on what else the machine is doing.
    let cpu_per_gb = (cpu_secs() - cpu_before) / (3.0 * size as f64 / 1e9);
    s.stop().await;
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    Ok(vec![
        row(
            format!(
                "ReadContent over gRPC, completed {} MiB transfer, client in-process",
                size / MIB
            ),
            format!(
                "{median:.2} GB/s (median of 3; {}); {cpu_per_gb:.2} CPU-s per GB (server + client)",
                rates
                    .iter()
                    .map(|r| format!("{r:.2}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "≥ 1 GB/s",
            Some(median >= 1.0),
        ),
        row(
            "diagnostic: same stream in-process (TransferManager::read, no gRPC)",
            format!("{:.2} GB/s (median of 3)", inproc[1]),
            "-",
            None,
        ),
    ])
}

/// CPU time (user + system) this process has used, in seconds.
fn cpu_secs() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks (100 per second on Linux).
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

// ------------------------------------------------------------------ 5. RSS

/// The real `junction serve` as a child process; stopped with SIGINT (as Ctrl-C) on drop.
struct Child {
    child: std::process::Child,
}

impl Drop for Child {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn junction_binary(opts: &Opts) -> Result<PathBuf> {
    let path = match &opts.junction {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("no parent of the harness binary"))?
            .join("junction"),
    };
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p junction` or pass --junction",
            path.display()
        );
    }
    Ok(path)
}

/// RSS samples once a second for `secs`: (last, highest) in KiB.
async fn settle_rss(pid: u32, secs: u64) -> Result<(u64, u64)> {
    let mut high = 0;
    let mut last = 0;
    for _ in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        last = rss_kib(pid)?.0;
        high = high.max(last);
    }
    Ok((last, high))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn rss_rows(opts: &Opts) -> Result<Vec<Row>> {
    let bin = junction_binary(opts)?;
    let work = tempfile::tempdir()?;

    // Peers the gateway talks to while idle: an eD2k index server and a Gnutella
    // ultrapeer. For the loaded figure: a tracker and a BitTorrent seeder that uploads
    // slowly (1 MiB/s over all its torrents), so every transfer stays active.
    let server = ed2k::IndexServer::start(ed2k::ServerConfig {
        enabled: true,
        listen: loopback(),
        ..Default::default()
    })
    .await?;
    let ultrapeer = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        ultrapeer: true,
        ..Default::default()
    })
    .await?;
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 5).await?;
    let seeder = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        trackers: vec![tracker.announce_url()],
        upload_rate_limit: Some(MIB),
        ..Default::default()
    })
    .await?;
    let file_size = 2 * MIB;
    let shared = work.path().join("shared");
    std::fs::create_dir_all(&shared)?;
    let mut magnets = Vec::new();
    for i in 0..opts.transfers {
        let path = shared.join(format!("slow {i}.bin"));
        std::fs::write(&path, content(file_size as usize, 1000 + i as u64))?;
        let id = share(&seeder, &path).await?;
        let btih = id
            .get(HashKind::Btih)
            .ok_or_else(|| anyhow!("no btih for {}", path.display()))?;
        magnets.push(format!(
            "magnet:?xt=urn:btih:{}&xl={file_size}&dn=slow{i}.bin&tr={}",
            HashKind::Btih.format(btih),
            tracker.announce_url()
        ));
    }

    let api = free_port()?;
    let config = format!(
        r#"[gateway]
listen = "{api}"
data_dir = "{data}"

[ed2k]
listen = "{ed2k}"
servers = ["{server}"]

[gnutella]
listen = "{gnut}"
peers = ["{ultrapeer}"]

[bittorrent]
listen = "{bt}"

[bittorrent.dht]
enabled = true
listen = "{dht}"
bootstrap = []
"#,
        data = work.path().join("data").display(),
        ed2k = free_port()?,
        server = server.local_addr(),
        gnut = free_port()?,
        ultrapeer = ultrapeer.local_addr(),
        bt = free_port()?,
        dht = free_port()?,
    );
    let cfg_path = work.path().join("junction.toml");
    std::fs::write(&cfg_path, config)?;
    let log = std::fs::File::create(work.path().join("serve.log"))?;
    let child = std::process::Command::new(&bin)
        .arg("serve")
        .arg("--config")
        .arg(&cfg_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let child = Child { child };
    let pid = child.child.id();

    let mut client = None;
    for _ in 0..200 {
        if let Ok(c) = GatewayClient::connect(format!("http://{api}")).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(mut client) = client else {
        let log = std::fs::read_to_string(work.path().join("serve.log")).unwrap_or_default();
        bail!("junction serve never answered on {api}; its log:\n{log}");
    };
    let networks = client
        .list_networks(pb::ListNetworksRequest {})
        .await?
        .into_inner()
        .networks;
    let running: Vec<String> = networks.iter().map(|n| n.id.clone()).collect();
    if running.len() != 3 {
        bail!("junction serve runs {running:?}, not the three networks");
    }
    let (idle, idle_high) = settle_rss(pid, 10).await?;
    eprintln!(
        "   idle: VmRSS {} (highest sample {})",
        mib(idle),
        mib(idle_high)
    );

    let mut ids = Vec::new();
    for m in &magnets {
        let t = client
            .start_transfer(pb::StartTransferRequest {
                source: Some(pb::start_transfer_request::Source::Link(m.clone())),
                networks: vec!["bittorrent".into()],
            })
            .await?
            .into_inner();
        ids.push(t.id);
    }
    let (loaded, loaded_high) = settle_rss(pid, 15).await?;
    let list = client
        .list_transfers(pb::ListTransfersRequest {})
        .await?
        .into_inner()
        .transfers;
    let active = list.iter().filter(|t| t.state() == State::Active).count();
    let flowing = list
        .iter()
        .filter(|t| t.state() == State::Active && t.bytes_written > 0)
        .count();
    let complete = list.iter().filter(|t| t.state() == State::Complete).count();
    let (_, peak) = rss_kib(pid)?;
    eprintln!(
        "   {} transfers: {active} active ({flowing} receiving bytes), {complete} complete; VmRSS {} (peak {})",
        ids.len(),
        mib(loaded),
        mib(peak)
    );
    drop(child);
    drop((seeder, tracker, ultrapeer, server));
    Ok(vec![
        row(
            "gateway RSS idle: `junction serve`, 3 networks on loopback, after 10 s",
            format!("{} (highest sample {})", mib(idle), mib(idle_high)),
            "≤ 25 MB",
            Some(idle as f64 * 1024.0 <= 25e6),
        ),
        row(
            format!(
                "gateway RSS with {} active BitTorrent transfers (seeder at 1 MiB/s), after 15 s",
                ids.len()
            ),
            format!(
                "{} (highest sample {}, peak VmHWM {}); {active} active, {flowing} receiving, {complete} complete",
                mib(loaded),
                mib(loaded_high),
                mib(peak)
            ),
            "-",
            None,
        ),
    ])
}
