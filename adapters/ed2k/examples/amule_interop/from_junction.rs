//! (b) and (b'): aMule downloads from Junction, a LowID source it reaches through callbacks.

use std::time::{Duration, Instant};

use anyhow::Result;
use junction_ed2k::hash::{ed2k_hash, to_hex};

use super::{
    Ctx, J_EXACT, StallWatch, amule_fetch, amulecmd, dl_summary, fail, file_matches, log,
    part_file_matches,
};

/// (b): aMule searches for Junction's `junctionsrc` files, queues them and has 150 s to
/// complete them, each compared byte for byte (none when `skip_b`). The stall watch it
/// starts goes on watching the later checks.
pub async fn check_b(
    cx: &Ctx<'_>,
    j_files: &[(&str, Vec<u8>)],
    skip_b: bool,
    failures: &mut Vec<String>,
) -> Result<StallWatch> {
    let b_files: Vec<_> = j_files
        .iter()
        .filter(|(n, _)| !skip_b && n.starts_with("junctionsrc"))
        .collect();
    if !skip_b {
        amule_fetch(cx.ec, "junctionsrc", &b_files, failures).await?;
    }
    let t = Instant::now();
    let mut done = vec![false; b_files.len()];
    let mut shown = 0;
    let mut watch = StallWatch::default();
    while t.elapsed() < Duration::from_secs(150) && done.iter().any(|d| !d) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        watch.check(cx.amule, "(b)")?;
        let last = &watch.last;
        for (i, (name, data)) in b_files.iter().enumerate() {
            if !done[i] && file_matches(&cx.incoming.join(name), data) {
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
                failures,
                format!(
                    "(b) {name}: aMule did not complete the download in 150 s ({})",
                    dl_summary(cx.ec)?
                ),
            );
        }
    }
    Ok(watch)
}

/// (b') Known aMule bug: aMule 2.3.x cannot complete a file of exactly 9,728,000 bytes from
/// anyone. With GetPartCount()==1, CPartFile::HashSinglePart (src/PartFile.cpp) compares
/// MD4(part 0) with the FILE hash, which for exactly PARTSIZE bytes is
/// MD4(MD4(part 0) || MD4("")) (the empty-last-part rule); eMule's version of that test
/// also has `|| GetFileSize()==PARTSIZE`. The check: aMule receives every byte identical,
/// then logs part 0 of that file corrupt. Anything else (a transfer that stalls, or wrong
/// bytes) fails; a completed identical file passes (an aMule with the fix).
pub async fn check_exact(
    cx: &Ctx<'_>,
    j_files: &[(&str, Vec<u8>)],
    watch: &mut StallWatch,
    failures: &mut Vec<String>,
) -> Result<()> {
    let exact: Vec<_> = j_files.iter().filter(|(n, _)| *n == J_EXACT).collect();
    amule_fetch(cx.ec, "junctionexact", &exact, failures).await?;
    // aMule asks its server for sources of a newly added file only after a throttle
    // (minutes after its last source request), but for every file right after it logs
    // in: reconnect.
    amulecmd(cx.ec, "disconnect")?;
    amulecmd(cx.ec, "connect")?;
    let (name, data) = exact[0];
    let t = Instant::now();
    let corrupt = || {
        std::fs::read_to_string(cx.logfile)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("is corrupt in file") && l.contains(name))
    };
    let mut outcome = None;
    while outcome.is_none() && t.elapsed() < Duration::from_secs(90) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        watch.check(cx.amule, "(b')")?;
        if file_matches(&cx.incoming.join(name), data) {
            outcome = Some(format!(
                "(b') PASS {name}: aMule completed the exactly-PARTSIZE file, identical (this aMule has the HashSinglePart fix)"
            ));
        } else if corrupt() && part_file_matches(cx.temp, data) {
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
            failures,
            format!(
                "(b') {name}: neither completed nor rejected by aMule's part check in 90 s ({}; corrupt logged: {}, part file identical: {})",
                dl_summary(cx.ec)?,
                corrupt(),
                part_file_matches(cx.temp, data)
            ),
        ),
    }
    // aMule would re-download the part forever: cancel it.
    let h = to_hex(&ed2k_hash(data).root);
    amulecmd(cx.ec, &format!("cancel {h}"))?;
    Ok(())
}
