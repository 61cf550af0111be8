//! The bridge with real peers (issue 12): what Junction downloads from one network, the
//! other network's own client fetches from Junction.
//!
//! * BitTorrent → eD2k: a file only libtorrent seeds is downloaded by the gateway; the
//!   real aMule then adds the `ed2k://` link `GetLinks` gives, gets Junction (a LowID,
//!   reached by callback) as the source from the index server Junction offers it on, and
//!   downloads it.
//! * eD2k → BitTorrent: a file only aMule shares is downloaded by the gateway; a second
//!   real libtorrent then downloads it from Junction, from the magnet that
//!   `junction links ID` prints, the CLI run as a user would (the magnet names the
//!   tracker Junction announces to, as no DHT serves that seed).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use proto::v1::transfer::State;
use tonic::transport::Channel;

use super::{amulecmd, log, lt_status, percent, pseudo_random, wait_for};

/// A file one network has and the other must get through Junction.
pub struct Bridged {
    pub name: &'static str,
    pub data: Vec<u8>,
}

impl Bridged {
    pub fn new(name: &'static str, mib: u64, seed: u64) -> Bridged {
        let data = pseudo_random((mib * 1024 * 1024 + seed % 4099) as usize, seed);
        Bridged { name, data }
    }
}

/// Whether `path` holds exactly `data`.
fn holds(path: &Path, data: &[u8]) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == data.len() as u64)
        && std::fs::read(path).is_ok_and(|d| d == data)
}

/// Starts a transfer from a link on one network and waits for it to complete, then for
/// the bridge to have hashed it for every network; returns its id and its links.
async fn fetch_and_link(
    client: &mut GatewayClient<Channel>,
    link: String,
    network: &str,
    secs: u64,
) -> Result<(String, pb::Links)> {
    let t = client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(link)),
            networks: vec![network.into()],
            files: vec![],
        })
        .await?
        .into_inner();
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = client
            .get_transfer(pb::TransferRef { id: t.id.clone() })
            .await?
            .into_inner();
        match now.state() {
            State::Complete => break,
            State::Failed | State::Cancelled => bail!("transfer ended: {}", now.error),
            _ if started.elapsed() > Duration::from_secs(secs) => bail!(
                "not complete after {secs} s: {} of {} bytes verified ({})",
                now.bytes_verified,
                now.size,
                super::summary(&now)
            ),
            _ => {}
        }
    }
    log(format!(
        "bridge: the gateway fetched it over {network} in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    // The bridge hashes it for every network once it is complete.
    for _ in 0..60 {
        let l = client
            .get_links(pb::GetLinksRequest {
                target: Some(pb::get_links_request::Target::TransferId(t.id.clone())),
            })
            .await?
            .into_inner();
        if !l.ed2k.is_empty() && !l.torrent.is_empty() {
            return Ok((t.id, l));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!("the finished download was never hashed for every network")
}

/// BitTorrent → eD2k. `magnet` names the file by its info-hash only.
pub async fn bt_to_ed2k(
    client: &mut GatewayClient<Channel>,
    file: &Bridged,
    magnet: String,
    ec: &str,
    incoming: &Path,
    restart_amule: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let (_, links) = fetch_and_link(client, magnet, "bittorrent", 120).await?;
    log(format!("bridge: links {} | {}", links.ed2k, links.magnet));
    let started = Instant::now();
    amulecmd(ec, &format!("add {}", links.ed2k));
    amule_completes(ec, &incoming.join(file.name), &file.data, restart_amule).await?;
    println!(
        "PASS bridge bittorrent->ed2k: aMule downloaded {} ({} bytes, only libtorrent seeds it) from Junction in {:.1} s, identical",
        file.name,
        file.data.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Several amulecmd commands in one session (fed on its standard input); its output.
fn amulecmd_session(ec: &str, cmds: &[&str]) -> Result<String> {
    let steps: Vec<(&str, u64)> = cmds.iter().map(|c| (*c, 0)).collect();
    super::amule::amulecmd_session(ec, &steps)?
        .map_err(|early| anyhow::anyhow!("amulecmd quit before taking every command: {early}"))
}

/// aMule restarts one download may take. On a loaded machine aMule stalled three times in
/// one download (at 2.6%, 11.6% and 57.1%, fetching at 53–185 kB/s) and the third, with no
/// restart left, used up the 240 s; unloaded, it stalls once or not at all.
const MAX_RESTARTS: u32 = 4;

/// Waits for aMule to hold `data` at `target`. aMule's download list is polled:
/// unchanged for 20 s is aMule's known read stall, and aMule is restarted (at most
/// `MAX_RESTARTS` times), as tests/interop/ed2k_amule.sh does.
async fn amule_completes(
    ec: &str,
    target: &Path,
    data: &[u8],
    restart_amule: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let started = Instant::now();
    let (mut last, mut since, mut restarts) = (String::new(), Instant::now(), 0);
    while !holds(target, data) {
        ensure!(
            started.elapsed() < Duration::from_secs(240),
            "aMule did not download the file from Junction in 240 s; its downloads: {last}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = super::amule_said(ec, "show dl");
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_secs(20) && restarts < MAX_RESTARTS {
            log(format!("bridge: aMule stalled at {last}; restarting it"));
            restart_amule()?;
            (restarts, since) = (restarts + 1, Instant::now());
        }
    }
    Ok(())
}

/// Starts a libtorrent on 127.0.0.5 that is on the DHT only (bootstrapped from the
/// gateway's node) and seeds `file` under a torrent whose info dict carries the file's
/// `sha1` and `ed2k` keys, as some torrent makers write them.
pub fn seed_on_dht(
    file: &Bridged,
    lt_peer: &str,
    lt_port: u16,
    dht: std::net::SocketAddr,
    dir: &Path,
) -> Result<std::process::Child> {
    let seed_dir = dir.join("on-demand");
    std::fs::create_dir_all(&seed_dir)?;
    let path = seed_dir.join(file.name);
    std::fs::write(&path, &file.data)?;
    let torrent = dir.join("on-demand.torrent");
    let sha1 = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(&file.data))
    };
    let ed2k = hex::encode(ed2k::hash::ed2k_hash(&file.data).root);
    let st = Command::new("/usr/bin/python3")
        .arg(lt_peer)
        .arg("create")
        .arg(&path)
        .arg(&torrent)
        .arg(format!("info:sha1={sha1}"))
        .arg(format!("info:ed2k={ed2k}"))
        .stdout(Stdio::null())
        .status()?;
    ensure!(st.success(), "bt_lt_peer.py create failed");
    let log_file = std::fs::File::create(dir.join("lt-dht.log"))?;
    let child = Command::new("/usr/bin/python3")
        .arg(lt_peer)
        .args(["run", "--ip", "127.0.0.5", "--port", &lt_port.to_string()])
        .args(["--dht", "--bootstrap", &dht.to_string(), "--dht-every", "3"])
        .arg("--seed")
        .arg(format!("{}:{}", torrent.display(), seed_dir.display()))
        .arg("--status-file")
        .arg(dir.join("lt-dht.json"))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("starting the DHT libtorrent")?;
    std::fs::write(dir.join("lt-dht.pid"), child.id().to_string())?;
    log(format!(
        "bridge: libtorrent on 127.0.0.5:{lt_port} seeds {} on the DHT only (info dict with sha1 {sha1}, ed2k {ed2k})",
        file.name
    ));
    Ok(child)
}

/// On demand: aMule searches Junction's index server for a file only the DHT libtorrent
/// has, with no Junction transfer running, and downloads it from Junction, which fetches
/// it from libtorrent while aMule waits in its queue.
pub async fn on_demand(
    client: &mut GatewayClient<Channel>,
    file: &Bridged,
    ec: &str,
    incoming: &Path,
    restart_amule: &dyn Fn() -> Result<()>,
) -> Result<()> {
    let started = Instant::now();
    // The gateway learns the torrent over the DHT first: a search that finds nothing is
    // made again.
    let mut found = None;
    let mut said = String::new();
    while found.is_none() {
        ensure!(
            started.elapsed() < Duration::from_secs(120),
            "aMule's searches on Junction's index server never listed {}; last results: {said}",
            file.name
        );
        amulecmd(ec, "search local bridge demand");
        // The server answers after the gateway's bridged search (5 s).
        tokio::time::sleep(Duration::from_secs(7)).await;
        said = amulecmd(ec, "results");
        found = said
            .lines()
            .map(|l| l.trim_start_matches("> ").trim())
            .find(|l| l.contains(file.name))
            .and_then(|l| l.split('.').next()?.trim().parse::<u32>().ok());
    }
    let n = found.unwrap_or_default();
    log(format!(
        "bridge: aMule's search listed {} as result {n} after {:.1} s",
        file.name,
        started.elapsed().as_secs_f64()
    ));
    let transfers = client
        .list_transfers(pb::ListTransfersRequest::default())
        .await?
        .into_inner()
        .transfers;
    ensure!(
        !transfers.iter().any(|t| t.name == file.name),
        "a transfer of {} ran before aMule asked for it",
        file.name
    );
    let asked = Instant::now();
    // amulecmd numbers the results it listed itself: list and download in one session.
    let said = amulecmd_session(ec, &["results", &format!("download {n}")])?;
    log(format!(
        "bridge: aMule: {}",
        said.trim().replace('\n', " | ")
    ));
    // The gateway fetches it meanwhile, and aMule waits in Junction's queue: no restart of
    // aMule counts as a stall until then.
    let fetched = loop {
        ensure!(
            asked.elapsed() < Duration::from_secs(180),
            "the gateway did not fetch the file in 180 s"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let transfers = client
            .list_transfers(pb::ListTransfersRequest::default())
            .await?
            .into_inner()
            .transfers;
        if let Some(t) = transfers.iter().find(|t| t.name == file.name) {
            ensure!(
                !matches!(t.state(), State::Failed | State::Cancelled),
                "the gateway's transfer ended: {}",
                t.error
            );
            if t.state() == State::Complete {
                break asked.elapsed();
            }
        }
    };
    log(format!(
        "bridge: the gateway had the file {:.1} s after aMule asked; aMule: {}",
        fetched.as_secs_f64(),
        super::amule_said(ec, "show dl")
    ));
    amule_completes(ec, &incoming.join(file.name), &file.data, restart_amule).await?;
    println!(
        "PASS bridge on demand: aMule found {} ({} bytes, only a libtorrent on the DHT seeds it) on Junction's index server with no transfer running, and downloaded it from Junction {:.1} s after asking (the gateway had it after {:.1} s, aMule waiting in Junction's queue meanwhile), identical",
        file.name,
        file.data.len(),
        asked.elapsed().as_secs_f64(),
        fetched.as_secs_f64()
    );
    Ok(())
}

/// What `junction --server SERVER links ID` prints: its ed2k:// and magnet lines.
fn cli_links(junction: &str, server: &str, id: &str) -> Result<(String, String)> {
    let out = Command::new(junction)
        .args(["--server", server, "links", id])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {junction}"))?;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "junction links {id} failed: {}{said}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| {
        said.lines()
            .find(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .with_context(|| format!("junction links printed no {prefix} line: {said}"))
    };
    Ok((line("ed2k://")?, line("magnet:?")?))
}

/// eD2k → BitTorrent. `ed2k` is the file's `ed2k://` link; a second libtorrent on
/// 127.0.0.4 fetches it from the gateway (whose API is at `server`), by the magnet
/// `junction links` prints.
pub async fn ed2k_to_bt(
    client: &mut GatewayClient<Channel>,
    file: &Bridged,
    ed2k: String,
    s: &super::Settings,
    tracker_url: &str,
    server: &str,
) -> Result<()> {
    let (lt_peer, lt_port, dir) = (&s.lt_peer, s.lt_port + 1, &s.dir);
    // aMule queues the gateway for about two minutes after the swarm's transfer.
    let (id, links) = fetch_and_link(client, ed2k, "ed2k", 300).await?;
    // The user's way: the CLI prints the links; they must be GetLinks' own.
    let (ed2k_line, magnet) = cli_links(&s.junction, server, &id)?;
    ensure!(
        ed2k_line == links.ed2k && magnet == links.magnet,
        "junction links printed {ed2k_line} and {magnet}, GetLinks gives {} and {}",
        links.ed2k,
        links.magnet
    );
    // The magnet names the tracker the gateway's BitTorrent announces to (no DHT here).
    ensure!(
        magnet.contains(&format!("tr={}", percent(tracker_url))),
        "junction links' magnet names no tracker: {magnet}"
    );
    log(format!("bridge: libtorrent gets {magnet}"));
    let save: PathBuf = dir.join("lt-get");
    std::fs::create_dir_all(&save)?;
    let status = dir.join("lt-get.json");
    let log_file = std::fs::File::create(dir.join("lt-get.log"))?;
    let started = Instant::now();
    let mut child = Command::new("/usr/bin/python3")
        .arg(lt_peer)
        .args(["run", "--ip", "127.0.0.4", "--port", &lt_port.to_string()])
        .arg("--get")
        .arg(format!("{magnet}:{}", save.display()))
        .arg("--status-file")
        .arg(&status)
        .arg("--exit-when-done")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("starting the second libtorrent")?;
    let target = save.join(file.name);
    let got = wait_for("libtorrent to download the file from Junction", 120, || {
        holds(&target, &file.data)
    })
    .await;
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    got.with_context(|| {
        format!(
            "libtorrent progress {:?}; its log: {}",
            lt_status(&status, "progress"),
            std::fs::read_to_string(dir.join("lt-get.log")).unwrap_or_default()
        )
    })?;
    ensure!(
        holds(&target, &file.data),
        "libtorrent's copy differs from the original"
    );
    println!(
        "PASS bridge ed2k->bittorrent: libtorrent downloaded {} ({} bytes, only aMule shares it) from Junction by the magnet `junction links` printed, in {:.1} s, identical",
        file.name,
        file.data.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
