//! (r) aMule comes back: right after Junction downloaded from it in (a), aMule is given a
//! link to a file only Junction (a LowID) shares, and downloads it through a callback.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use junction_core::Network;
use junction_ed2k::hash::{ed2k_hash, to_hex};
use junction_ed2k::{Adapter, IndexServer};

use super::{Amuled, StallWatch, amulecmd, dl_summary, file_matches, log};

/// Runs (r) for `name`; the failure to report, if any.
#[allow(clippy::too_many_arguments)]
pub async fn amule_comes_back(
    j: &Adapter,
    server: &IndexServer,
    amule: &Amuled,
    watch: &mut StallWatch,
    ec: &str,
    incoming: &Path,
    name: &str,
    data: &[u8],
) -> Result<Option<String>> {
    let link = format!(
        "ed2k://|file|{}|{}|{}|/",
        name.replace(' ', "%20"),
        data.len(),
        to_hex(&ed2k_hash(data).root)
    );
    let secs_from = |var: &str| std::env::var(var).ok().and_then(|v| v.parse().ok());
    if let Some(d) = secs_from("ED2K_INTEROP_BACK_DELAY") {
        tokio::time::sleep(Duration::from_secs(d)).await;
    }
    let out0 = j.status().bytes_out;
    let calls0 = server.stats().unasked_callbacks;
    // aMule asks its server for sources of a newly added file only minutes after its last
    // source request, but for every file right after it logs in: the link is added while
    // aMule is disconnected, then it logs in again. Added while connected, the file could
    // be asked for on the old connection just before it closes; the LowID source would be
    // tried with no server to call it back through and put on aMule's dead-source list.
    // Its known clients (Junction among them) stay.
    amulecmd(ec, "disconnect")?;
    amulecmd(ec, &format!("add {link}"))?;
    amulecmd(ec, "connect")?;
    let t = Instant::now();
    let limit = Duration::from_secs(secs_from("ED2K_INTEROP_BACK_SECS").unwrap_or(90));
    let mut started = None;
    let mut shown = 0;
    while t.elapsed() < limit && !file_matches(&incoming.join(name), data) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // A restart before the upload starts would hide the check (a restarted aMule knows
        // Junction no more): the stall watch runs only once it has started.
        let now = if started.is_some() {
            watch.check(amule, "(r)")?;
            watch.last.clone()
        } else {
            dl_summary(ec)?
        };
        if started.is_none() && j.status().bytes_out > out0 + 100_000 {
            started = Some(t.elapsed().as_secs_f64());
            log(format!(
                "(r) Junction's upload to aMule started after {:.1} s",
                t.elapsed().as_secs_f64()
            ));
        }
        if t.elapsed().as_secs() / 20 > shown {
            shown = t.elapsed().as_secs() / 20;
            log(format!("(r) aMule downloads: {now}"));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    if file_matches(&incoming.join(name), data) {
        log(format!(
            "(r) PASS {name}: aMule, just after uploading to Junction, downloaded {} bytes from Junction in {secs:.1} s (upload started after {:.1} s; the index server called aMule back through Junction {} times)",
            data.len(),
            started.unwrap_or(secs),
            server.stats().unasked_callbacks - calls0
        ));
        return Ok(None);
    }
    // What the index server and Junction did, to tell a missed call-back from a call
    // aMule did not follow.
    Ok(Some(format!(
        "(r) {name}: aMule did not download Junction's file within {secs:.0} s after uploading to Junction ({}); the index server called aMule back through Junction {} times, Junction has {} peer connections",
        dl_summary(ec)?,
        server.stats().unasked_callbacks - calls0,
        j.status().peers
    )))
}
