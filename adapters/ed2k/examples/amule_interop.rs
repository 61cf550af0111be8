//! Interop with a real aMule daemon, driven by `tests/interop/ed2k_amule.sh`.
//!
//! Starts Junction's index server and a Junction eD2k adapter (firewalled, so it is a LowID:
//! aMule refuses 127.x HighID sources but reaches a LowID through `OP_CALLBACKREQUEST`), starts
//! amuled logged into that server, then checks:
//! (b) aMule finds and downloads Junction's 10 MiB file and its file of exactly 2 parts
//!     (19,456,000 bytes, whose hashset ends with the empty last part's hash), bytes identical;
//! (b') aMule's known bug with a file of exactly 9,728,000 bytes (see there) is reproduced
//!     with Junction as the source: all bytes arrive identical and aMule rejects part 0;
//! (a) Junction finds aMule's 10 MiB file and its exactly-9,728,000-byte file by search and
//!     downloads them from aMule, every part and the ed2k hash verified;
//! (r) right after (a), aMule is given a link to a file only Junction shares and downloads it
//!     from Junction (issue 12: aMule 2.3.3 does not call back a LowID it already knows; the
//!     index server has the LowID call the asker, see adapters/ed2k/README.md).
//! With `ED2K_INTEROP_CONTROL=1` a second aMule measures benchmark (c): Junction and aMule
//! each download the same 10 MiB file from it.
//!
//! Environment: `ED2K_INTEROP_DIR` (work dir), `AMULE_START` (start script), `AMULE_BASE`,
//! `ED2K_SERVER_PORT`, `AMULE_TCP`, `AMULE_UDP`, `AMULE_EC`, `ED2K_INTEROP_CONTROL`,
//! `ED2K_INTEROP_EXACT_UPLOAD` (0 skips (b')), `ED2K_INTEROP_SKIP_A` (also skips (r)),
//! `ED2K_INTEROP_SKIP_B` (skips (b) and (b')), `ED2K_INTEROP_BACK_SECS` ((r)'s wait, 90 s),
//! `ED2K_INTEROP_BACK_DELAY` (seconds between (a) and (r)), `ED2K_INTEROP_CAPTURE` (a folder:
//! records there, as test vectors, a download from aMule and aMule's connection to the index
//! server, see `amule_interop/capture.rs` and `capture_server.rs`; with
//! `ED2K_INTEROP_SKIP_A=1 ED2K_INTEROP_SKIP_B=1`, as `tests/data/README.md` says).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use junction_core::swarm::{MemStore, Swarm, SwarmSink};
use junction_core::{ContentId, HashKind, Network, RangeSet, SharedItem};
use junction_ed2k::hash::{PART_SIZE, ed2k_hash, to_hex};
use junction_ed2k::{Adapter, Config, IndexServer, ServerConfig};

#[path = "../../../tests/examples/common/amule.rs"]
mod amule;
use amule::{Amuled, amulecmd, amulecmd_steps, env, pseudo_random};
#[path = "amule_interop/back.rs"]
mod back;
#[path = "amule_interop/capture.rs"]
mod capture;
#[path = "amule_interop/capture_server.rs"]
mod capture_server;
#[path = "amule_interop/control.rs"]
mod control;
#[path = "amule_interop/from_amule.rs"]
mod from_amule;
#[path = "amule_interop/from_junction.rs"]
mod from_junction;
#[path = "amule_interop/relay.rs"]
mod relay;
#[path = "amule_interop/stall.rs"]
mod stall;
use stall::StallWatch;

/// An in-memory sink that checks parts, as the gateway's does.
fn mem_sink(size: u64) -> Arc<SwarmSink<MemStore>> {
    let swarm = Arc::new(Swarm::new(MemStore::new(size), size, RangeSet::new()));
    SwarmSink::new(swarm, junction_core::NetworkId::ED2K)
}

const J_BIG: &str = "junctionsrc big.bin";
const J_DOUBLE: &str = "junctionsrc double.bin";
const J_EXACT: &str = "junctionexact exact.bin";
const J_BACK: &str = "junctionback back.bin";

/// aMule searches the server for `words` and queues `files` from the results (by link when
/// `download N` did not queue one, which is then also a failure).
async fn amule_fetch(
    ec: &str,
    words: &str,
    files: &[&(&str, Vec<u8>)],
    failures: &mut Vec<String>,
) -> Result<()> {
    let mut steps = vec![
        (format!("search local {words}"), 4000),
        ("results".to_string(), 1000),
    ];
    for i in 0..files.len() {
        steps.push((format!("download {i}"), 500));
    }
    let out = tokio::task::spawn_blocking({
        let ec = ec.to_string();
        move || {
            let steps: Vec<(&str, u64)> = steps.iter().map(|(c, w)| (c.as_str(), *w)).collect();
            amulecmd_steps(&ec, &steps)
        }
    })
    .await??;
    let found = files.iter().filter(|(n, _)| out.contains(n)).count();
    log(format!(
        "aMule search '{words}' listed {found} of {} files",
        files.len()
    ));
    if found < files.len() {
        fail(
            failures,
            format!(
                "aMule search '{words}' listed {found} of {} Junction files:\n{out}",
                files.len()
            ),
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dl = amulecmd(ec, "show dl")?;
    for (name, data) in files {
        if dl.contains(name) {
            continue;
        }
        let link = format!(
            "ed2k://|file|{}|{}|{}|/",
            name.replace(' ', "%20"),
            data.len(),
            to_hex(&ed2k_hash(data).root)
        );
        fail(
            failures,
            format!("{name}: `download N` after the search did not queue it; added by link"),
        );
        amulecmd(ec, &format!("add {link}"))?;
    }
    Ok(())
}

/// aMule's download list, one line per file with its progress.
fn dl_summary(ec: &str) -> Result<String> {
    Ok(amulecmd(ec, "show dl")?
        .lines()
        .filter(|l| l.contains('%') || l.contains("src"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" | "))
}

/// What the checks share: Junction's adapter and index server, the aMule under test, and
/// where that aMule keeps its files and its log.
struct Ctx<'a> {
    j: &'a Adapter,
    server: &'a IndexServer,
    amule: &'a Amuled,
    ec: &'a str,
    incoming: &'a Path,
    temp: &'a Path,
    logfile: &'a Path,
}

/// Starts Junction's index server (the control aMule's port always a LowID) and Junction's
/// adapter, firewalled, logged into it and sharing `j_files`.
async fn start_junction(
    port: u16,
    ctl_tcp: u16,
    j_share: &Path,
    j_files: &[(&str, Vec<u8>)],
) -> Result<(IndexServer, Adapter)> {
    let server = IndexServer::start(ServerConfig {
        enabled: true,
        listen: format!("127.0.0.1:{port}").parse()?,
        low_id_ports: vec![ctl_tcp],
        ..ServerConfig::default()
    })
    .await?;
    log(format!("index server on {}", server.local_addr()));
    let j = Adapter::start(Config {
        listen: None, // firewalled: LowID, uploads through callbacks
        servers: vec![format!("127.0.0.1:{port}")],
        nick: "junction-interop".into(),
        peer_timeout: Duration::from_secs(60),
        fetch_idle_timeout: Duration::from_secs(240),
        source_requery: Duration::from_secs(20),
        ..Config::default()
    })
    .await?;
    ensure!(
        j.wait_logged_in(Duration::from_secs(20)).await,
        "Junction did not log in"
    );
    log(format!("Junction logged in: {}", j.status().reachability));
    for (n, _) in j_files {
        let id = j
            .share(SharedItem {
                path: j_share.join(n),
                name: (*n).into(),
                size: 0,
                id: ContentId::new(None),
                hashes: None,
            })
            .await?;
        log(format!(
            "Junction shares {n} ed2k {}",
            to_hex(id.get(HashKind::Ed2k).unwrap())
        ));
    }

    Ok((server, j))
}

/// Waits for aMule to log in and offer its files (60 s at most).
async fn wait_for_amule(server: &IndexServer, ec: &str) -> Result<()> {
    // Wait for aMule to log in and offer its files.
    let t0 = Instant::now();
    loop {
        let stats = server.stats();
        if stats.users >= 2 && stats.files >= 6 {
            log(format!(
                "server: {} users ({} LowID), {} files",
                stats.users, stats.low_id_users, stats.files
            ));
            break;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            log(amulecmd(ec, "status")?);
            bail!("aMule did not log in and share within 60 s: {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    log(amulecmd(ec, "status")?
        .lines()
        .filter(|l| l.contains("eD2k"))
        .collect::<Vec<_>>()
        .join(" | "));

    Ok(())
}

/// A shared file: its name and its bytes.
type SharedFile = (&'static str, Vec<u8>);

/// The files each side shares, written to its share folder (and the capture's file to
/// aMule's when `capture`).
fn write_shares(
    amule_share: &Path,
    j_share: &Path,
    capture: bool,
) -> Result<([SharedFile; 2], [SharedFile; 4])> {
    let amule_files = [
        (
            "amulesrc big.bin",
            pseudo_random(10 * 1024 * 1024 + 4321, 101),
        ),
        ("amulesrc exact.bin", pseudo_random(PART_SIZE as usize, 102)),
    ];
    // aMule downloads the 10 MiB file and one of exactly two parts (19,456,000 bytes: aMule asks
    // for the hashset and checks three part hashes, the last one of the empty part); the
    // exactly-one-part file is the known-aMule-bug check (b').
    let j_files = [
        (J_BIG, pseudo_random(10 * 1024 * 1024 + 777, 201)),
        (J_DOUBLE, pseudo_random(2 * PART_SIZE as usize, 203)),
        (J_EXACT, pseudo_random(PART_SIZE as usize, 202)),
        (J_BACK, pseudo_random(3 * 1024 * 1024 + 55, 204)),
    ];
    for (n, d) in &amule_files {
        std::fs::write(amule_share.join(n), d)?;
    }
    if capture {
        std::fs::write(amule_share.join(capture::CAP_FILE), capture::cap_data())?;
    }
    for (n, d) in &j_files {
        std::fs::write(j_share.join(n), d)?;
    }
    Ok((amule_files, j_files))
}

/// (cap) Records a download from aMule and aMule's connection to the index server into `dir`
/// (see `amule_interop/capture.rs` and `capture_server.rs`).
async fn captures(
    cx: &Ctx<'_>,
    amule_tcp: u16,
    j_share: &Path,
    dir: &Path,
    failures: &mut Vec<String>,
) {
    if let Err(e) = capture::capture(amule_tcp, dir).await {
        fail(failures, format!("{e:#}"));
    }
    if let Err(e) = capture_server::capture_server(cx, j_share, dir).await {
        fail(failures, format!("{e:#}"));
    }
}

/// Records a failed check and prints it at once.
fn fail(failures: &mut Vec<String>, msg: String) {
    log(format!("FAIL {msg}"));
    failures.push(msg);
}

fn log(msg: impl AsRef<str>) {
    eprintln!("[ed2k-amule] {}", msg.as_ref());
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "junction_ed2k=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let dir = PathBuf::from(env("ED2K_INTEROP_DIR")?);
    let start = env("AMULE_START")?;
    let port: u16 = env("ED2K_SERVER_PORT")?.parse()?;
    let (tcp, udp, ec) = (env("AMULE_TCP")?, env("AMULE_UDP")?, env("AMULE_EC")?);
    let amule_base = PathBuf::from(env("AMULE_BASE")?);

    // Files: aMule shares two, Junction shares two; one > 1 part, one exactly PARTSIZE.
    let amule_share = dir.join("amule-share");
    let j_share = dir.join("junction-share");
    std::fs::create_dir_all(&amule_share)?;
    std::fs::create_dir_all(&j_share)?;
    let capture_dir = std::env::var_os("ED2K_INTEROP_CAPTURE").map(PathBuf::from);
    let (amule_files, j_files) = write_shares(&amule_share, &j_share, capture_dir.is_some())?;

    // A second aMule, forced to LowID, is the control for aMule→aMule transfers.
    let tcp_n: u16 = tcp.parse()?;
    let (ctl_tcp, ctl_udp, ctl_ec) = (tcp_n + 20, tcp_n + 21, tcp_n + 22);
    let (server, j) = start_junction(port, ctl_tcp, &j_share, &j_files).await?;

    let amule = Amuled {
        start_script: start.clone(),
        base: amule_base.clone(),
        name: "interop".into(),
        tcp: tcp.clone(),
        udp: udp.clone(),
        ec: ec.clone(),
        share: amule_share.clone(),
        server: format!("localhost:{port}"),
        env: Vec::new(),
    };
    ensure!(amule.start()?.success(), "amuled did not start");

    wait_for_amule(&server, &ec).await?;

    let mut failures = Vec::new();

    // (b) runs first, with an aMule that has not met Junction; (r) checks the other order.
    // (b) aMule searches, finds and downloads Junction's files (Junction is a LowID source).
    let incoming = amule_base.join("interop").join("Incoming");
    let temp = amule_base.join("interop").join("Temp");
    let logfile = amule_base.join("interop").join("logfile");
    let skip_b = std::env::var("ED2K_INTEROP_SKIP_B").is_ok();
    let cx = Ctx {
        j: &j,
        server: &server,
        amule: &amule,
        ec: &ec,
        incoming: &incoming,
        temp: &temp,
        logfile: &logfile,
    };
    let mut watch = from_junction::check_b(&cx, &j_files, skip_b, &mut failures).await?;

    // (b') Known aMule bug (see from_junction::check_exact).
    if !skip_b && std::env::var("ED2K_INTEROP_EXACT_UPLOAD").map_or(true, |v| v != "0") {
        from_junction::check_exact(&cx, &j_files, &mut watch, &mut failures).await?;
    }
    // (a) Junction searches, finds and downloads aMule's files.

    let skip_a = std::env::var("ED2K_INTEROP_SKIP_A").is_ok();
    from_amule::check_a(&cx, &amule_files, skip_a, &mut failures).await?;

    // (r) aMule comes back: right after Junction downloaded from it in (a).
    if !skip_a {
        let (name, data) = j_files.iter().find(|(n, _)| *n == J_BACK).expect("J_BACK");
        if let Some(why) =
            back::amule_comes_back(&j, &server, &amule, &mut watch, &ec, &incoming, name, data)
                .await?
        {
            fail(&mut failures, why);
        }
    }

    watch.report(&mut failures);

    if let Some(dir) = &capture_dir {
        captures(&cx, tcp.parse()?, &j_share, dir, &mut failures).await;
    }

    // Control (ED2K_INTEROP_CONTROL=1): a second aMule, LowID, shares a 10 MiB file and one of
    // exactly 9,728,000 bytes; it measures benchmark (c) and repeats (b') aMule to aMule.
    if std::env::var("ED2K_INTEROP_CONTROL").is_ok_and(|v| v != "0") {
        control::run(&cx, &dir, (ctl_tcp, ctl_udp, ctl_ec)).await?;
    }

    let st = j.status();
    log(format!(
        "Junction status: {} peers={} in={} out={}",
        st.reachability, st.peers, st.bytes_in, st.bytes_out
    ));
    j.shutdown().await;
    server.shutdown();
    if failures.is_empty() {
        log("all aMule interop checks passed");
        Ok(())
    } else {
        bail!("{} aMule interop checks failed", failures.len())
    }
}

/// Is any `*.part` file in aMule's temp dir byte-identical to `data`?
fn part_file_matches(temp: &Path, data: &[u8]) -> bool {
    std::fs::read_dir(temp).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            e.path().extension().is_some_and(|x| x == "part") && file_matches(&e.path(), data)
        })
    })
}

fn file_matches(p: &Path, data: &[u8]) -> bool {
    std::fs::read(p).is_ok_and(|d| d == data)
}
