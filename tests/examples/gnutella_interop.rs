//! The bridge to Gnutella with real processes (issue 12, "Interop with real peers", check 4),
//! driven by `tests/interop/gnutella_bridge.sh`.
//!
//! A real libtorrent (python3-libtorrent) seeds a file nobody else has. Junction A, a
//! `junction serve` with BitTorrent and a Gnutella ultrapeer, downloads it by its magnet
//! (btih, size, name and libtorrent's address: no tracker, no DHT). Junction B, a second
//! `junction serve` with Gnutella only, a leaf whose one peer is A, then searches over its
//! gRPC API: it must get an item for the file whose content names its SHA-1
//! (`urn:sha1:`) and its Tiger tree root (`urn:tree:tiger:`, the TTH, as the gateway
//! writes it), both equal to the file's own, and download it through Gnutella alone,
//! byte-identical.
//!
//! Addresses: libtorrent on 127.0.0.61, A on 127.0.0.62, B on 127.0.0.63; both APIs on
//! 127.0.0.1. No DHT, tracker, web cache, eD2k or HTTP front.
//!
//! Environment: `GNUT_DIR` (work dir), `LT_PEER` (bt_lt_peer.py), `JUNCTION_BIN` (the
//! `junction` binary), and optionally `GNUT_KIB` (file size in KiB, default 6144).
//! Prints `PASS gnutella …` lines, or `FAIL gnutella: …` and exits 1.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use junction_core::HashKind;
use junction_core::hashing::{Want, hash_bytes};
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use proto::v1::transfer::State;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

#[path = "common/pseudo_random.rs"]
mod pseudo_random;

const NAME: &str = "Junction Gnutella Bridge Sample.bin";
const QUERY: &str = "gnutella bridge sample";
const LT_IP: &str = "127.0.0.61";
const A_IP: &str = "127.0.0.62";
const B_IP: &str = "127.0.0.63";

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[gnutella] {}", msg.as_ref());
}

/// A port free on `ip` right now.
fn free_port(ip: &str) -> Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A child process this run owns: stopped with SIGINT (then killed) on every way out.
struct Owned {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Owned {
    fn stop(&mut self) {
        let _ = std::fs::remove_file(self.log.with_file_name(format!("{}.pid", self.name)));
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last `n` lines of its log.
    fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Spawns `cmd` with both streams to `log`.
fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Result<Owned> {
    let out = std::fs::File::create(&log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    // For the script to stop it should this driver be killed.
    if let Some(dir) = log.parent() {
        std::fs::write(dir.join(format!("{name}.pid")), child.id().to_string())?;
    }
    Ok(Owned { name, child, log })
}

/// Polls `ok` every 250 ms until it gives a value or `secs` pass.
async fn wait_for<T, F: Future<Output = Result<Option<T>>>>(
    what: &str,
    secs: u64,
    mut ok: impl FnMut() -> F,
) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = ok().await? {
            return Ok(v);
        }
        ensure!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One `junction serve` and a client of its API.
struct Junction {
    process: Owned,
    client: GatewayClient<Channel>,
}

/// Starts `junction serve` with `networks` (TOML tables) after its `[gateway]` and
/// `[http]` tables, and waits until its API answers.
async fn serve(bin: &str, dir: &Path, name: &'static str, networks: &str) -> Result<Junction> {
    let api: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1")?).parse()?;
    let config = dir.join(format!("{name}.toml"));
    let data = dir.join(format!("{name}-data"));
    std::fs::write(
        &config,
        format!(
            "[gateway]\nlisten = \"{api}\"\ndata_dir = {data:?}\nsearch_timeout_secs = 8\n\
             [http]\nenabled = false\n{networks}"
        ),
    )?;
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--config"]).arg(&config);
    for var in [
        "JUNCTION_LISTEN",
        "JUNCTION_HTTP_LISTEN",
        "JUNCTION_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info");
    let mut process = spawn(name, cmd, dir.join(format!("{name}.log")))?;
    let url = format!("http://{api}");
    let started = Instant::now();
    let client = loop {
        if let Ok(ch) = Channel::from_shared(url.clone())?.connect().await {
            let mut c = GatewayClient::new(ch);
            if c.list_networks(pb::ListNetworksRequest::default())
                .await
                .is_ok()
            {
                break c;
            }
        }
        if let Ok(Some(st)) = process.child.try_wait() {
            bail!("{name} exited ({st}): {}", process.tail(20));
        }
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "{name}'s API never answered on {api}: {}",
            process.tail(20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    log(format!(
        "{name}: junction serve up in {:.1} s, API {api}",
        started.elapsed().as_secs_f64()
    ));
    Ok(Junction { process, client })
}

impl Junction {
    async fn network(&mut self, id: &str) -> Result<pb::Network> {
        self.client
            .list_networks(pb::ListNetworksRequest::default())
            .await?
            .into_inner()
            .networks
            .into_iter()
            .find(|n| n.id == id)
            .with_context(|| format!("{} runs no {id}", self.process.name))
    }

    /// Waits for the transfer to complete, at most `secs`.
    async fn completed(&mut self, id: &str, secs: u64) -> Result<pb::Transfer> {
        let name = self.process.name;
        let client = self.client.clone();
        wait_for(&format!("{name}'s transfer to complete"), secs, || {
            let mut c = client.clone();
            let id = id.to_owned();
            async move {
                let t = c.get_transfer(pb::TransferRef { id }).await?.into_inner();
                match t.state() {
                    State::Complete => Ok(Some(t)),
                    State::Failed | State::Cancelled => {
                        bail!("{name}'s transfer ended {:?}: {}", t.state(), t.error)
                    }
                    _ => Ok(None),
                }
            }
        })
        .await
    }
}

fn urns(c: &Option<pb::ContentId>) -> Vec<String> {
    c.as_ref().map(|c| c.urns.clone()).unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if let Err(e) = run().await {
        println!("FAIL gnutella: {e:#}");
        std::process::exit(1);
    }
}

/// The file, libtorrent's torrent of it and its info-hash.
struct Seeded {
    data: Vec<u8>,
    btih: String,
    lt: Owned,
    lt_addr: String,
}

/// Writes the file, has libtorrent make a v1 torrent of it (no tracker) and seed it.
fn seed(dir: &Path, lt_peer: &str) -> Result<Seeded> {
    let kib: usize = std::env::var("GNUT_KIB").map_or(Ok(6144), |v| v.parse())?;
    let data = pseudo_random::pseudo_random(kib * 1024 + 4321, 0x6e75_7465);
    let seed_dir = dir.join("seed");
    std::fs::create_dir_all(&seed_dir)?;
    let file = seed_dir.join(NAME);
    std::fs::write(&file, &data)?;
    let torrent = dir.join("seed.torrent");
    let out = Command::new("/usr/bin/python3")
        .arg(lt_peer)
        .arg("create")
        .arg(&file)
        .arg(&torrent)
        .output()?;
    ensure!(out.status.success(), "bt_lt_peer.py create failed");
    let btih = String::from_utf8(out.stdout)?.trim().to_owned();
    ensure!(btih.len() == 40, "libtorrent's info-hash: {btih:?}");
    let port = free_port(LT_IP)?;
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(lt_peer)
        .args(["run", "--ip", LT_IP, "--port", &port.to_string()])
        .arg("--seed")
        .arg(format!("{}:{}", torrent.display(), seed_dir.display()))
        .arg("--status-file")
        .arg(dir.join("lt.json"));
    let lt = spawn("libtorrent", cmd, dir.join("lt.log"))?;
    log(format!(
        "libtorrent seeds {NAME} ({} bytes, btih {btih}) on {LT_IP}:{port}",
        data.len()
    ));
    Ok(Seeded {
        data,
        btih,
        lt,
        lt_addr: format!("{LT_IP}:{port}"),
    })
}

/// A downloads the file from libtorrent over BitTorrent and offers it on Gnutella.
async fn a_fetches_from_libtorrent(a: &mut Junction, s: &Seeded) -> Result<()> {
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&xl={}&dn={}&x.pe={}",
        s.btih,
        s.data.len(),
        percent(NAME),
        s.lt_addr
    );
    let started = Instant::now();
    let t = a
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(magnet)),
            networks: vec![],
            files: vec![],
        })
        .await?
        .into_inner();
    let done = a.completed(&t.id, 60).await?;
    let bt = done
        .per_network
        .iter()
        .find(|n| n.network == "bittorrent")
        .map_or(0, |n| n.bytes_verified);
    ensure!(
        bt == s.data.len() as u64,
        "A verified {bt} bytes over BitTorrent, not the {} of the file: {:?}",
        s.data.len(),
        done.per_network
    );
    ensure!(
        std::fs::read(&done.path)? == s.data,
        "A's copy at {} differs from libtorrent's",
        done.path
    );
    log(format!(
        "A fetched it from libtorrent in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    // The bridge hashes the finished download for Gnutella and offers it there.
    let offered = wait_for("A to offer the file on Gnutella", 30, || {
        let mut c = a.client.clone();
        async move {
            let n = c
                .list_networks(pb::ListNetworksRequest::default())
                .await?
                .into_inner()
                .networks;
            Ok(n.into_iter()
                .find(|n| n.id == "gnutella" && n.files_offered >= 1))
        }
    })
    .await?;
    println!(
        "PASS gnutella A: junction serve fetched {NAME} from libtorrent alone ({} bytes over BitTorrent, identical) and offers {} file(s) on Gnutella, {:.1} s after the start",
        s.data.len(),
        offered.files_offered,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Searches B until an item named `NAME` comes back; the item.
async fn b_finds_it(b: &mut Junction) -> Result<pb::Item> {
    let started = Instant::now();
    let mut searches = 0;
    loop {
        searches += 1;
        let mut stream = b
            .client
            .search(pb::SearchRequest {
                query: QUERY.into(),
                networks: vec!["gnutella".into()],
                timeout_ms: 5000,
                max_items: 0,
            })
            .await?
            .into_inner();
        let mut found: Option<pb::Item> = None;
        let mut progress = Vec::new();
        let each = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(ev) = stream.next().await {
                use pb::search_event::Event;
                match ev?.event {
                    Some(Event::Item(i) | Event::Update(i)) if i.name == NAME => found = Some(i),
                    Some(Event::Progress(p)) => progress.push(format!(
                        "{} {:?} {} hits {}",
                        p.network,
                        p.state(),
                        p.hits,
                        p.error
                    )),
                    _ => {}
                }
            }
            Ok::<_, tonic::Status>(())
        })
        .await;
        ensure!(each.is_ok(), "B's search {searches} did not end in 15 s");
        each.unwrap_or(Ok(()))?;
        if let Some(i) = found {
            log(format!(
                "B's search {searches} found it after {:.1} s: {:?}",
                started.elapsed().as_secs_f64(),
                i.availability
            ));
            return Ok(i);
        }
        ensure!(
            started.elapsed() < Duration::from_secs(40),
            "B's {searches} searches for {QUERY:?} never listed {NAME}; last progress: {progress:?}"
        );
        log(format!(
            "B's search {searches} found nothing yet ({progress:?})"
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The hit must name the file by its own SHA-1 and TTH.
fn check_hashes(item: &pb::Item, data: &[u8]) -> Result<()> {
    let want = hash_bytes(
        data,
        Want {
            sha1: true,
            tth: true,
            ..Want::default()
        },
    );
    let sha1 = want.sha1.context("no SHA-1 computed")?;
    let tth = want.tth.context("no TTH computed")?;
    let sha1 = format!("urn:sha1:{}", HashKind::Sha1.format(&sha1));
    let tth = format!("urn:tree:tiger:{}", HashKind::Tth.format(&tth));
    let got = urns(&item.content);
    let mut missing = Vec::new();
    for (what, urn) in [("urn:sha1", &sha1), ("the TTH", &tth)] {
        if !got.iter().any(|u| u.eq_ignore_ascii_case(urn)) {
            missing.push(format!("{what} ({urn})"));
        }
    }
    ensure!(
        missing.is_empty(),
        "B's hit lacks {}: its urns are {got:?}",
        missing.join(" and ")
    );
    ensure!(
        item.size == data.len() as u64,
        "B's hit says {} bytes, the file has {}",
        item.size,
        data.len()
    );
    let others: Vec<&String> = got
        .iter()
        .filter(|u| !u.eq_ignore_ascii_case(&sha1) && !u.eq_ignore_ascii_case(&tth))
        .collect();
    println!(
        "PASS gnutella hit: B's Gnutella search hit carries {sha1} and {tth}, the file's own (and {others:?})"
    );
    Ok(())
}

/// B downloads the item through Gnutella (its only network) from A.
async fn b_downloads_it(b: &mut Junction, item: &pb::Item, data: &[u8]) -> Result<()> {
    let started = Instant::now();
    let t = b
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::ItemId(item.id.clone())),
            networks: vec![],
            files: vec![],
        })
        .await?
        .into_inner();
    let done = b.completed(&t.id, 60).await?;
    let got = std::fs::read(&done.path).with_context(|| format!("reading {}", done.path))?;
    if got != data {
        let first = got.iter().zip(data).position(|(x, y)| x != y);
        bail!(
            "B's copy {} differs from the original ({} bytes for {}, first difference at {first:?})",
            done.path,
            got.len(),
            data.len()
        );
    }
    let nets: Vec<(&str, u64)> = done
        .per_network
        .iter()
        .map(|n| (n.network.as_str(), n.bytes_verified))
        .collect();
    ensure!(
        nets.iter().all(|(n, v)| *n == "gnutella" || *v == 0)
            && nets.contains(&("gnutella", data.len() as u64)),
        "B's bytes did not all come over Gnutella: {nets:?}"
    );
    println!(
        "PASS gnutella fetch: B downloaded {NAME} from A over Gnutella in {:.1} s, {} bytes identical",
        started.elapsed().as_secs_f64(),
        data.len()
    );
    Ok(())
}

async fn run() -> Result<()> {
    let t0 = Instant::now();
    let dir = PathBuf::from(env("GNUT_DIR")?);
    let lt_peer = env("LT_PEER")?;
    let bin = env("JUNCTION_BIN")?;
    let mut s = seed(&dir, &lt_peer)?;
    let a_gnut = format!("{A_IP}:{}", free_port(A_IP)?);
    let mut a = serve(
        &bin,
        &dir,
        "A",
        &format!(
            "[ed2k]\nenabled = false\n\
             [gnutella]\nlisten = \"{a_gnut}\"\nultrapeer = true\n\
             [bittorrent]\nlisten = \"{A_IP}:{}\"\n[bittorrent.dht]\nenabled = false\n",
            free_port(A_IP)?
        ),
    )
    .await?;
    let fetched = a_fetches_from_libtorrent(&mut a, &s).await;
    if fetched.is_err() {
        log(format!("A's log:\n{}", a.process.tail(30)));
        log(format!("libtorrent's log:\n{}", s.lt.tail(10)));
    }
    fetched?;
    // From here on, only A has the file.
    s.lt.stop();
    let mut b = serve(
        &bin,
        &dir,
        "B",
        &format!(
            "[ed2k]\nenabled = false\n[bittorrent]\nenabled = false\n\
             [gnutella]\nlisten = \"{B_IP}:{}\"\nultrapeer = false\npeers = [\"{a_gnut}\"]\n",
            free_port(B_IP)?
        ),
    )
    .await?;
    let result = async {
        let ids: Vec<String> = b
            .client
            .list_networks(pb::ListNetworksRequest::default())
            .await?
            .into_inner()
            .networks
            .into_iter()
            .map(|n| n.id)
            .collect();
        ensure!(ids == ["gnutella"], "B runs {ids:?}, not Gnutella alone");
        let connected = wait_for("B, a leaf, to connect to A", 30, || {
            let mut c = b.client.clone();
            async move {
                let n = c
                    .list_networks(pb::ListNetworksRequest::default())
                    .await?
                    .into_inner()
                    .networks;
                Ok(n.into_iter().find(|n| n.id == "gnutella" && n.peers >= 1))
            }
        })
        .await?;
        log(format!(
            "B: Gnutella {} peer(s), {}",
            connected.peers, connected.reachability
        ));
        let item = b_finds_it(&mut b).await?;
        check_hashes(&item, &s.data)?;
        b_downloads_it(&mut b, &item, &s.data).await
    }
    .await;
    if result.is_err() {
        log(format!("A's log:\n{}", a.process.tail(30)));
        log(format!("B's log:\n{}", b.process.tail(30)));
        if let Ok(n) = b.network("gnutella").await {
            log(format!("B's Gnutella: {n:?}"));
        }
    }
    result?;
    println!(
        "PASS gnutella: check 4 done in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    b.process.stop();
    a.process.stop();
    Ok(())
}
