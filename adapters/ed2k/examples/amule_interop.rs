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
//! records a download from aMule there as test vectors, see `amule_interop/capture.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use futures::StreamExt;
use junction_core::query::parse;
use junction_core::swarm::{MemStore, Swarm, SwarmSink};
use junction_core::{ContentId, FetchEvent, FetchRequest, HashKind, Network, RangeSet, SharedItem};
use junction_ed2k::hash::{PART_SIZE, aich_root, ed2k_hash, to_hex};
use junction_ed2k::{Adapter, Config, IndexServer, ServerConfig};

#[path = "../../../tests/examples/common/amule.rs"]
mod amule;
use amule::{Amuled, amulecmd, amulecmd_steps, env, pseudo_random};
#[path = "amule_interop/back.rs"]
mod back;
#[path = "amule_interop/capture.rs"]
mod capture;
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
    let capture_dir = std::env::var_os("ED2K_INTEROP_CAPTURE").map(PathBuf::from);
    if capture_dir.is_some() {
        std::fs::write(amule_share.join(capture::CAP_FILE), capture::cap_data())?;
    }
    for (n, d) in &j_files {
        std::fs::write(j_share.join(n), d)?;
    }

    // A second aMule, forced to LowID, is the control for aMule→aMule transfers.
    let tcp_n: u16 = tcp.parse()?;
    let (ctl_tcp, ctl_udp, ctl_ec) = (tcp_n + 20, tcp_n + 21, tcp_n + 22);
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
    for (n, _) in &j_files {
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
            log(amulecmd(&ec, "status")?);
            bail!("aMule did not log in and share within 60 s: {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    log(amulecmd(&ec, "status")?
        .lines()
        .filter(|l| l.contains("eD2k"))
        .collect::<Vec<_>>()
        .join(" | "));

    let mut failures = Vec::new();

    // (b) runs first, with an aMule that has not met Junction; (r) checks the other order.
    // (b) aMule searches, finds and downloads Junction's files (Junction is a LowID source).
    let incoming = amule_base.join("interop").join("Incoming");
    let temp = amule_base.join("interop").join("Temp");
    let logfile = amule_base.join("interop").join("logfile");
    let skip_b = std::env::var("ED2K_INTEROP_SKIP_B").is_ok();
    let b_files: Vec<_> = j_files
        .iter()
        .filter(|(n, _)| !skip_b && n.starts_with("junctionsrc"))
        .collect();
    if !skip_b {
        amule_fetch(&ec, "junctionsrc", &b_files, &mut failures).await?;
    }
    let t = Instant::now();
    let mut done = vec![false; b_files.len()];
    let mut shown = 0;
    let mut watch = StallWatch::default();
    while t.elapsed() < Duration::from_secs(150) && done.iter().any(|d| !d) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        watch.check(&amule, "(b)")?;
        let last = &watch.last;
        for (i, (name, data)) in b_files.iter().enumerate() {
            if !done[i] && file_matches(&incoming.join(name), data) {
                done[i] = true;
                let secs = t.elapsed().as_secs_f64();
                log(format!(
                    "(b) PASS {name}: aMule downloaded {} bytes from Junction, identical ({secs:.1} s since start)",
                    data.len()
                ));
            }
        }
        if t.elapsed().as_secs() / 20 > shown {
            shown = t.elapsed().as_secs() / 20;
            log(format!("(b) aMule downloads: {last}"));
        }
    }
    for (i, (name, _)) in b_files.iter().enumerate() {
        if !done[i] {
            fail(
                &mut failures,
                format!(
                    "(b) {name}: aMule did not complete the download in 150 s ({})",
                    dl_summary(&ec)?
                ),
            );
        }
    }

    // (b') Known aMule bug: aMule 2.3.x cannot complete a file of exactly 9,728,000 bytes from
    // anyone. With GetPartCount()==1, CPartFile::HashSinglePart (src/PartFile.cpp) compares
    // MD4(part 0) with the FILE hash, which for exactly PARTSIZE bytes is
    // MD4(MD4(part 0) || MD4("")) (the empty-last-part rule); eMule's version of that test
    // also has `|| GetFileSize()==PARTSIZE`. The check: aMule receives every byte identical,
    // then logs part 0 of that file corrupt. Anything else (a transfer that stalls, or wrong
    // bytes) fails; a completed identical file passes (an aMule with the fix).
    if !skip_b && std::env::var("ED2K_INTEROP_EXACT_UPLOAD").map_or(true, |v| v != "0") {
        let exact: Vec<_> = j_files.iter().filter(|(n, _)| *n == J_EXACT).collect();
        amule_fetch(&ec, "junctionexact", &exact, &mut failures).await?;
        // aMule asks its server for sources of a newly added file only after a throttle
        // (minutes after its last source request), but for every file right after it logs
        // in: reconnect.
        amulecmd(&ec, "disconnect")?;
        amulecmd(&ec, "connect")?;
        let (name, data) = exact[0];
        let t = Instant::now();
        let corrupt = || {
            std::fs::read_to_string(&logfile)
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains("is corrupt in file") && l.contains(name))
        };
        let mut outcome = None;
        while outcome.is_none() && t.elapsed() < Duration::from_secs(90) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            watch.check(&amule, "(b')")?;
            if file_matches(&incoming.join(name), data) {
                outcome = Some(format!(
                    "(b') PASS {name}: aMule completed the exactly-PARTSIZE file, identical (this aMule has the HashSinglePart fix)"
                ));
            } else if corrupt() && part_file_matches(&temp, data) {
                outcome = Some(format!(
                    "(b') PASS {name}: known aMule bug reproduced in {:.1} s: aMule holds all {} bytes identical and calls part 0 corrupt (CPartFile::HashSinglePart compares against the file hash)",
                    t.elapsed().as_secs_f64(),
                    data.len()
                ));
            }
        }
        match outcome {
            Some(o) => log(o),
            None => fail(
                &mut failures,
                format!(
                    "(b') {name}: neither completed nor rejected by aMule's part check in 90 s ({}; corrupt logged: {}, part file identical: {})",
                    dl_summary(&ec)?,
                    corrupt(),
                    part_file_matches(&temp, data)
                ),
            ),
        }
        // aMule would re-download the part forever: cancel it.
        let h = to_hex(&ed2k_hash(data).root);
        amulecmd(&ec, &format!("cancel {h}"))?;
    }
    // (a) Junction searches, finds and downloads aMule's files.

    // aMule offers its files again after the reconnects above.
    let t0 = Instant::now();
    while server.stats().files < 6 && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut hits = Vec::new();
    let skip_a = std::env::var("ED2K_INTEROP_SKIP_A").is_ok();
    for _ in 0..6 {
        if skip_a {
            break;
        }
        let mut s = j.search(parse("amulesrc")?).await?;
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
            fail(&mut failures, format!("(a) {name}: not found by search"));
            continue;
        };
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
        let mut ev = j.fetch(req, sink.clone()).await?;
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
                &mut failures,
                format!(
                    "(a) {name}: incomplete or wrong after {secs:.0} s (verified {} bytes, AICH block hashes for {aich_parts} of {parts} parts)",
                    sink.swarm.ledger().verified().covered()
                ),
            );
        }
    }

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

    if let Some(dir) = &capture_dir
        && let Err(e) = capture::capture(&j, tcp.parse()?, dir).await
    {
        fail(&mut failures, format!("{e:#}"));
    }

    // Control (ED2K_INTEROP_CONTROL=1): a second aMule, LowID, shares a 10 MiB file and one of
    // exactly 9,728,000 bytes; it measures benchmark (c) and repeats (b') aMule to aMule.
    if std::env::var("ED2K_INTEROP_CONTROL").is_ok_and(|v| v != "0") {
        let ctl_share = dir.join("control-share");
        std::fs::create_dir_all(&ctl_share)?;
        let ctl_data = pseudo_random(PART_SIZE as usize, 303);
        let ctl_name = "controlsrc exact.bin";
        std::fs::write(ctl_share.join(ctl_name), &ctl_data)?;
        let big_data = pseudo_random(10 * 1024 * 1024 + 99, 304);
        let big_name = "controlsrc big.bin";
        std::fs::write(ctl_share.join(big_name), &big_data)?;
        let control = Amuled {
            name: "control".into(),
            tcp: ctl_tcp.to_string(),
            udp: ctl_udp.to_string(),
            ec: ctl_ec.to_string(),
            share: ctl_share.clone(),
            ..amule.clone()
        };
        ensure!(control.start()?.success(), "control amuled did not start");
        let t0 = Instant::now();
        while server.stats().files < 8 && t0.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Throughput reference: Junction and aMule each download the same 10 MiB file from
        // the control aMule (Junction dials its port; aMule goes through a callback).
        let big_hash = ed2k_hash(&big_data).root;
        let big_id = ContentId::new(Some(big_data.len() as u64)).with(HashKind::Ed2k, &big_hash);
        let sink = mem_sink(big_data.len() as u64);
        let src = junction_core::Source {
            network: junction_core::NetworkId::ED2K,
            address: format!("127.0.0.1:{ctl_tcp}"),
            detail: None,
        };
        let t = Instant::now();
        let req = FetchRequest {
            id: big_id,
            name: big_name.into(),
            size: big_data.len() as u64,
            sources: vec![src],
            trackers: Vec::new(),
            torrent: None,
        };
        let mut ev = j.fetch(req, sink.clone()).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, ev.next()).await {
            if matches!(&e, FetchEvent::Note(n) if n.starts_with("complete")) {
                break;
            }
        }
        let j_secs = t.elapsed().as_secs_f64();
        let j_ok = sink.swarm.store().bytes() == big_data;
        log(format!(
            "(bench) Junction <- control aMule, {} bytes: {} in {j_secs:.1} s = {:.2} MB/s",
            big_data.len(),
            if j_ok { "ok" } else { "INCOMPLETE" },
            big_data.len() as f64 / j_secs / 1e6
        ));
        let link = format!(
            "ed2k://|file|{}|{}|{}|/",
            big_name.replace(' ', "%20"),
            big_data.len(),
            to_hex(&big_hash)
        );
        amulecmd(&ec, &format!("add {link}"))?;
        // The 9,728,000-byte control file is queued at the same time, so one source request
        // serves both.
        let ctl_link = format!(
            "ed2k://|file|{}|{}|{}|/",
            ctl_name.replace(' ', "%20"),
            ctl_data.len(),
            to_hex(&ed2k_hash(&ctl_data).root)
        );
        amulecmd(&ec, &format!("add {ctl_link}"))?;
        let t = Instant::now();
        let bp = incoming.join(big_name);
        while t.elapsed() < Duration::from_secs(240) && !file_matches(&bp, &big_data) {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let a_secs = t.elapsed().as_secs_f64();
        if file_matches(&bp, &big_data) {
            log(format!(
                "(bench) aMule <- control aMule, same file: {a_secs:.1} s = {:.2} MB/s; Junction/aMule speed ratio {:.2}",
                big_data.len() as f64 / a_secs / 1e6,
                a_secs / j_secs
            ));
        } else {
            log(format!(
                "(bench) aMule <- control aMule did not finish the 10 MiB file in {a_secs:.0} s"
            ));
        }
        // The aMule→aMule control for (b'): informative only (logged, never a failure).
        let p = incoming.join(ctl_name);
        let t = Instant::now();
        let corrupt = || {
            std::fs::read_to_string(&logfile)
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains("is corrupt in file") && l.contains(ctl_name))
        };
        while t.elapsed() < Duration::from_secs(90) && !file_matches(&p, &ctl_data) && !corrupt() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if file_matches(&p, &ctl_data) {
            log(format!("(control) aMule completed {ctl_name} from aMule"));
        } else if corrupt() && part_file_matches(&temp, &ctl_data) {
            log(format!(
                "(control) aMule received {ctl_name} identical from another aMule and called part 0 corrupt too ({:.0} s)",
                t.elapsed().as_secs_f64()
            ));
        } else {
            log(format!(
                "(control) inconclusive: {ctl_name} from the control aMule in {:.0} s: {}",
                t.elapsed().as_secs_f64(),
                dl_summary(&ec)?
            ));
        }
        control.stop();
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
