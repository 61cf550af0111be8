//! `kill -9` of `junction serve` in the middle of a download, 20 times at random moments
//! (issue 15). Every restart resumes the transfer by itself; what was verified before a
//! kill is verified after it (the journal of ranges verified since the last save keeps
//! them, gateway/src/transfer/journal.rs), so no verified byte is fetched again; every
//! verified range holds the right bytes; the file completes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Lab;
use common::serve::{Serve, config, free_port, lab_large_file};
use serde_json::Value;

const KILLS: usize = 20;
/// The large file, in MiB, and each of the lab's two BitTorrent seeders' upload limit,
/// in MiB/s.
const LARGE_MIB: u64 = 96;
const SEED_RATE_MIB: u64 = 1;
/// BitTorrent only: the lab's tracker comes with the magnet.
const BITTORRENT_ONLY: &str = "[http]\nenabled = false\n[ed2k]\nenabled = false\n\
    [gnutella]\nenabled = false\n[bittorrent]\nlisten = \"127.0.0.1:0\"\n\
    [bittorrent.dht]\nenabled = false\n";

/// The verified bytes of the `nth` restore the gateway logged ("restored transfer …
/// verified=N").
fn restored(log: &Path, nth: usize) -> u64 {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let values: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("restored transfer"))
        .filter_map(|l| {
            l.rsplit_once("verified=")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(values.len(), nth, "restores logged: {log}");
    values[nth - 1]
}

fn verified(t: &Value) -> u64 {
    t["bytes_verified"].as_u64().unwrap()
}

/// Every range the gateway calls verified holds the source's bytes.
fn verified_ranges_hold(t: &Value, original: &[u8]) {
    let part = std::fs::read(t["path"].as_str().unwrap()).unwrap();
    for r in t["verified"].as_array().unwrap() {
        let (start, end) = (
            r[0].as_u64().unwrap() as usize,
            r[1].as_u64().unwrap() as usize,
        );
        assert!(
            part.get(start..end) == original.get(start..end),
            "junk in the verified range {start}..{end}"
        );
    }
}

/// A small xorshift, seeded from the clock and printed, so a failing run can be replayed
/// with `JUNCTION_CRASH_SEED`.
fn kill_moments() -> impl Iterator<Item = Duration> {
    let seed = std::env::var("JUNCTION_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill moments from JUNCTION_CRASH_SEED={seed}");
    let mut x = seed;
    std::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // 0.2 to 2.2 s after the gateway answers.
        Duration::from_millis(200 + x % 2000)
    })
}

#[test]
fn kill_dash_nine_mid_download_twenty_times_loses_nothing_verified() {
    // 96 MiB from two seeders at 1 MiB/s each: about 48 s of downloading in all, twice
    // the time the kills take, so the transfer is still running at every kill.
    let lab = Lab::start(LARGE_MIB, SEED_RATE_MIB);
    let magnet = lab.large_magnet();
    let original = lab_large_file(&lab.world());
    assert_eq!(original.len() as u64, LARGE_MIB << 20);

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(dir.path(), port, BITTORRENT_ONLY);
    let log = dir.path().join("serve.log");
    let mut gw = Serve::start(&config, port, &log);
    let id = gw.get(&magnet);

    let mut moments = kill_moments();
    let mut resumed_at = Vec::new();
    let mut received_in_runs = 0u64;
    // Verified bytes each kill lost (verified before it, not restored after it).
    let mut lost = Vec::new();
    for kill in 0..KILLS {
        let run_for = moments.next().unwrap();
        let started = Instant::now();
        // What was verified over a second before the kill must survive it.
        let mut saved_by_then = 0;
        let mut last = None;
        while started.elapsed() < run_for {
            if let Some(t) = gw.transfer(&id) {
                if started.elapsed() + Duration::from_millis(1500) < run_for {
                    saved_by_then = verified(&t);
                }
                last = Some(t);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Looked at once more just before the kill, so the bytes counted as lost are those
        // verified up to the moment of the kill, less the one call's time.
        let last = gw
            .transfer(&id)
            .or(last)
            .expect("the transfer is listed while it runs");
        let verified_at_kill = verified(&last);
        assert_ne!(
            last["state"], "complete",
            "finished before kill {kill}: slow the seeders"
        );
        received_in_runs += last["per_network"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["bytes_received"].as_u64().unwrap())
            .sum::<u64>();
        // SIGKILL: no shutdown, no last save.
        drop(gw);

        gw = Serve::start(&config, port, &log);
        let t = gw
            .transfer(&id)
            .expect("the transfer is there after a restart");
        assert!(
            ["active", "queued"].contains(&t["state"].as_str().unwrap()),
            "not resumed after kill {kill}: {t}"
        );
        verified_ranges_hold(&t, &original);
        // What the gateway restored, as it logs it (the API already shows new progress).
        let restored = restored(&log, kill + 1);
        assert!(
            restored >= saved_by_then,
            "kill {kill}: {restored} verified after the restart, {saved_by_then} before"
        );
        // Nor does a restart lose what the one before had restored.
        let before = resumed_at.last().copied().unwrap_or(0);
        assert!(
            restored >= before,
            "kill {kill}: {restored} restored, {before} by the restart before"
        );
        resumed_at.push(restored);
        // Verified before the kill and not restored after it: fetched again.
        lost.push(verified_at_kill.saturating_sub(restored));
    }

    // Left alone, it completes, with the source's bytes.
    let done = gw.completed(&id, Duration::from_secs(180));
    let file = std::fs::read(done["path"].as_str().unwrap()).unwrap();
    assert!(
        file == original,
        "the finished file differs from the source"
    );
    let last_run: u64 = done["per_network"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["bytes_received"].as_u64().unwrap())
        .sum();
    let lost_in_all: u64 = lost.iter().sum();
    eprintln!(
        "{KILLS} kills; verified at each restart (MiB): {:?}; verified before a kill and \
         not after it (KiB per kill): {:?}; received over all runs {:.3}× the size (at \
         least)",
        resumed_at.iter().map(|v| v >> 20).collect::<Vec<_>>(),
        lost.iter().map(|v| v >> 10).collect::<Vec<_>>(),
        (received_in_runs + last_run) as f64 / original.len() as f64
    );
    assert_eq!(
        lost_in_all, 0,
        "verified bytes were lost to kills and fetched again (per kill, bytes: {lost:?})"
    );
    assert!(
        resumed_at.windows(2).filter(|w| w[1] > w[0]).count() >= KILLS / 2,
        "the transfer made progress between kills: {resumed_at:?}"
    );
}
