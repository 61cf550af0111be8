//! (r) aMule comes back: right after Junction downloaded from it in (a), aMule is given a
//! link to a file only Junction (a LowID) shares, and downloads it through a callback.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use junction_core::Network;
use junction_ed2k::Adapter;
use junction_ed2k::hash::{ed2k_hash, to_hex};

use super::{Amuled, StallWatch, amulecmd, dl_summary, file_matches, log};

/// Runs (r) for `name`; the failure to report, if any.
pub async fn amule_comes_back(
    j: &Adapter,
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
    amulecmd(ec, &format!("add {link}"))?;
    // aMule asks its server for sources of a newly added file only minutes after its last
    // source request, but for every file right after it logs in: reconnect. Its known
    // clients (Junction among them) stay.
    amulecmd(ec, "disconnect")?;
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
            "(r) PASS {name}: aMule, just after uploading to Junction, downloaded {} bytes from Junction in {secs:.1} s (upload started after {:.1} s)",
            data.len(),
            started.unwrap_or(secs)
        ));
        return Ok(None);
    }
    Ok(Some(format!(
        "(r) {name}: aMule did not download Junction's file within {secs:.0} s after uploading to Junction ({})",
        dl_summary(ec)?
    )))
}
