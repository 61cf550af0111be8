//! Part 5: the resident memory of a real `junction serve`, idle and with many active
//! transfers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use junction_bench::proc::{content, free_port, rss_kib};
use junction_core::HashKind;
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use proto::v1::transfer::State;
use tonic::transport::Channel;

use super::served::{loopback, share};
use super::{MIB, Opts, Row, row};

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

/// Peers the gateway talks to while idle: an eD2k index server and a Gnutella
/// ultrapeer. For the loaded figure: a tracker and a BitTorrent seeder that uploads
/// slowly (1 MiB/s over all its torrents), so every transfer stays active.
struct Peers {
    seeder: bittorrent::Adapter,
    tracker: bittorrent::TrackerServer,
    ultrapeer: gnutella::Adapter,
    server: ed2k::IndexServer,
}

impl Peers {
    async fn start() -> Result<Peers> {
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
        Ok(Peers {
            seeder,
            tracker,
            ultrapeer,
            server,
        })
    }

    /// The slow seeder shares `count` files of 2 MiB, written under `shared`; returns a
    /// magnet for each, naming the tracker.
    async fn share_slow_files(&self, shared: &Path, count: usize) -> Result<Vec<String>> {
        let file_size = 2 * MIB;
        std::fs::create_dir_all(shared)?;
        let mut magnets = Vec::new();
        for i in 0..count {
            let path = shared.join(format!("slow {i}.bin"));
            std::fs::write(&path, content(file_size as usize, 1000 + i as u64))?;
            let id = share(&self.seeder, &path).await?;
            let btih = id
                .get(HashKind::Btih)
                .ok_or_else(|| anyhow!("no btih for {}", path.display()))?;
            magnets.push(format!(
                "magnet:?xt=urn:btih:{}&xl={file_size}&dn=slow{i}.bin&tr={}",
                HashKind::Btih.format(btih),
                self.tracker.announce_url()
            ));
        }
        Ok(magnets)
    }

    /// `junction serve`'s configuration: its API at `api`, its data in `work`, the three
    /// networks on free ports, eD2k and Gnutella pointed at these peers.
    fn serve_config(&self, work: &Path, api: SocketAddr) -> Result<String> {
        Ok(format!(
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
            data = work.join("data").display(),
            ed2k = free_port()?,
            server = self.server.local_addr(),
            gnut = free_port()?,
            ultrapeer = self.ultrapeer.local_addr(),
            bt = free_port()?,
            dht = free_port()?,
        ))
    }
}

/// Starts `bin serve` on `config` (written into `work`, its log too).
fn start_serve(bin: &Path, work: &Path, config: String) -> Result<Child> {
    let cfg_path = work.join("junction.toml");
    std::fs::write(&cfg_path, config)?;
    let log = std::fs::File::create(work.join("serve.log"))?;
    let child = std::process::Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(&cfg_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    Ok(Child { child })
}

/// Connects to the gateway's API at `api` (10 s at most; its log in `work` says why not),
/// and checks it runs the three networks.
async fn connect(api: SocketAddr, work: &Path) -> Result<GatewayClient<Channel>> {
    let mut client = None;
    for _ in 0..200 {
        if let Ok(c) = GatewayClient::connect(format!("http://{api}")).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(mut client) = client else {
        let log = std::fs::read_to_string(work.join("serve.log")).unwrap_or_default();
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
    Ok(client)
}

/// The gateway's memory with the transfers running, and the transfers' states.
struct Loaded {
    transfers: usize,
    /// VmRSS after 15 s, its highest sample, and VmHWM, in KiB.
    rss: u64,
    high: u64,
    peak: u64,
    active: usize,
    flowing: usize,
    complete: usize,
}

/// Starts a BitTorrent transfer of each of `magnets` on the gateway (process `pid`) and
/// measures its memory after 15 s.
async fn load(client: &mut GatewayClient<Channel>, magnets: &[String], pid: u32) -> Result<Loaded> {
    let mut ids = Vec::new();
    for m in magnets {
        let t = client
            .start_transfer(pb::StartTransferRequest {
                source: Some(pb::start_transfer_request::Source::Link(m.clone())),
                networks: vec!["bittorrent".into()],
                files: vec![],
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
    Ok(Loaded {
        transfers: ids.len(),
        rss: loaded,
        high: loaded_high,
        peak,
        active,
        flowing,
        complete,
    })
}

pub(super) async fn rss_rows(opts: &Opts) -> Result<Vec<Row>> {
    let bin = junction_binary(opts)?;
    let work = tempfile::tempdir()?;

    let peers = Peers::start().await?;
    let magnets = peers
        .share_slow_files(&work.path().join("shared"), opts.transfers)
        .await?;

    let api = free_port()?;
    let config = peers.serve_config(work.path(), api)?;
    let child = start_serve(&bin, work.path(), config)?;
    let pid = child.child.id();

    let mut client = connect(api, work.path()).await?;
    let (idle, idle_high) = settle_rss(pid, 10).await?;
    eprintln!(
        "   idle: VmRSS {} (highest sample {})",
        mib(idle),
        mib(idle_high)
    );

    let Loaded {
        transfers,
        rss: loaded,
        high: loaded_high,
        peak,
        active,
        flowing,
        complete,
    } = load(&mut client, &magnets, pid).await?;
    drop(child);
    drop(peers);
    Ok(vec![
        row(
            "gateway RSS idle: `junction serve`, 3 networks on loopback, after 10 s",
            format!("{} (highest sample {})", mib(idle), mib(idle_high)),
            "≤ 25 MB",
            Some(idle as f64 * 1024.0 <= 25e6),
        ),
        row(
            format!(
                "gateway RSS with {transfers} active BitTorrent transfers (seeder at 1 MiB/s), after 15 s"
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
