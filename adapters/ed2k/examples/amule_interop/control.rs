//! The control run (`ED2K_INTEROP_CONTROL=1`): a second aMule, LowID, shares a 10 MiB file
//! and one of exactly 9,728,000 bytes; it measures benchmark (c) and repeats (b') aMule to
//! aMule. Everything here is logged, never a failure.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use futures::StreamExt;
use junction_core::{ContentId, FetchEvent, FetchRequest, HashKind, Network};
use junction_ed2k::hash::{PART_SIZE, ed2k_hash, to_hex};

use super::{
    Amuled, Ctx, amulecmd, dl_summary, file_matches, log, mem_sink, part_file_matches,
    pseudo_random,
};

/// Starts the control aMule on the given TCP, UDP and EC ports, runs the benchmark and the
/// (b') control, and stops it.
pub async fn run(
    cx: &Ctx<'_>,
    dir: &Path,
    (ctl_tcp, ctl_udp, ctl_ec): (u16, u16, u16),
) -> Result<()> {
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
        ..cx.amule.clone()
    };
    ensure!(control.start()?.success(), "control amuled did not start");
    let t0 = Instant::now();
    while cx.server.stats().files < 8 && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let big_hash = ed2k_hash(&big_data).root;
    let j_secs = junction_from_control(cx, ctl_tcp, (big_name, &big_data), &big_hash).await?;
    amule_from_control(
        cx,
        (big_name, &big_data),
        &big_hash,
        (ctl_name, &ctl_data),
        j_secs,
    )
    .await?;
    exact_from_control(cx, ctl_name, &ctl_data).await?;
    control.stop();
    Ok(())
}

/// Benchmark (c), Junction's half: Junction downloads the 10 MiB file from the control
/// aMule, dialling its port. The seconds it took.
async fn junction_from_control(
    cx: &Ctx<'_>,
    ctl_tcp: u16,
    (big_name, big_data): (&str, &[u8]),
    big_hash: &[u8; 16],
) -> Result<f64> {
    // Throughput reference: Junction and aMule each download the same 10 MiB file from
    // the control aMule (Junction dials its port; aMule goes through a callback).
    let big_id = ContentId::new(Some(big_data.len() as u64)).with(HashKind::Ed2k, big_hash);
    let sink = mem_sink(big_data.len() as u64);
    let src = junction_core::Source {
        network: junction_core::NetworkId::ED2K,
        address: std::net::SocketAddr::from(([127, 0, 0, 1], ctl_tcp)).into(),
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
    let mut ev = cx.j.fetch(req, sink.clone()).await?;
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
    Ok(j_secs)
}

/// Benchmark (c), aMule's half: aMule downloads the same file from the control aMule
/// (through a callback); the exactly-one-part control file is queued with it.
async fn amule_from_control(
    cx: &Ctx<'_>,
    (big_name, big_data): (&str, &[u8]),
    big_hash: &[u8; 16],
    (ctl_name, ctl_data): (&str, &[u8]),
    j_secs: f64,
) -> Result<()> {
    let link = format!(
        "ed2k://|file|{}|{}|{}|/",
        big_name.replace(' ', "%20"),
        big_data.len(),
        to_hex(big_hash)
    );
    amulecmd(cx.ec, &format!("add {link}"))?;
    // The 9,728,000-byte control file is queued at the same time, so one source request
    // serves both.
    let ctl_link = format!(
        "ed2k://|file|{}|{}|{}|/",
        ctl_name.replace(' ', "%20"),
        ctl_data.len(),
        to_hex(&ed2k_hash(ctl_data).root)
    );
    amulecmd(cx.ec, &format!("add {ctl_link}"))?;
    let t = Instant::now();
    let bp = cx.incoming.join(big_name);
    while t.elapsed() < Duration::from_secs(240) && !file_matches(&bp, big_data) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let a_secs = t.elapsed().as_secs_f64();
    if file_matches(&bp, big_data) {
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
    Ok(())
}

/// (b') aMule to aMule: does aMule complete the exactly-one-part file from another aMule,
/// or call part 0 corrupt too?
async fn exact_from_control(cx: &Ctx<'_>, ctl_name: &str, ctl_data: &[u8]) -> Result<()> {
    // The aMule→aMule control for (b'): informative only (logged, never a failure).
    let p = cx.incoming.join(ctl_name);
    let t = Instant::now();
    let corrupt = || {
        std::fs::read_to_string(cx.logfile)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("is corrupt in file") && l.contains(ctl_name))
    };
    while t.elapsed() < Duration::from_secs(90) && !file_matches(&p, ctl_data) && !corrupt() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if file_matches(&p, ctl_data) {
        log(format!("(control) aMule completed {ctl_name} from aMule"));
    } else if corrupt() && part_file_matches(cx.temp, ctl_data) {
        log(format!(
            "(control) aMule received {ctl_name} identical from another aMule and called part 0 corrupt too ({:.0} s)",
            t.elapsed().as_secs_f64()
        ));
    } else {
        log(format!(
            "(control) inconclusive: {ctl_name} from the control aMule in {:.0} s: {}",
            t.elapsed().as_secs_f64(),
            dl_summary(cx.ec)?
        ));
    }
    Ok(())
}
