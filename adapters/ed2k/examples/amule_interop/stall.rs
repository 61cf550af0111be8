//! The stall watch: aMule 2.3.3 sometimes stops reading a fast download connection (see
//! tests/interop/ed2k_amule.sh); a transfer that stops moving is logged with `ss` as
//! evidence and amuled is restarted.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};

use super::{Amuled, dl_summary, fail, log};

/// Watches aMule's download list for a transfer that stops moving.
pub struct StallWatch {
    pub last: String,
    since: Instant,
    /// Bytes left unread at aMule, per stall explained by aMule's lost read event.
    known: Vec<u64>,
    /// Stalls with a connection open and nothing unread at aMule.
    unexplained: u32,
}

impl Default for StallWatch {
    fn default() -> Self {
        Self {
            last: String::new(),
            since: Instant::now(),
            known: Vec::new(),
            unexplained: 0,
        }
    }
}

impl StallWatch {
    /// After 20 s without progress: logs `ss` for aMule's port, classifies the stall and
    /// restarts amuled. If aMule's end of a connection holds bytes it has not read
    /// (Recv-Q), Junction delivered what was asked and aMule stopped reading (see
    /// ed2k_amule.sh); an open connection with nothing unread is not explained by that.
    pub fn check(&mut self, amule: &Amuled, phase: &str) -> Result<()> {
        let now = dl_summary(&amule.ec)?;
        if now != self.last {
            (self.last, self.since) = (now, Instant::now());
            return Ok(());
        }
        if self.since.elapsed() < Duration::from_secs(20) {
            return Ok(());
        }
        let (unread, conns, ss) = amule_unread(&amule.tcp);
        log(format!(
            "{phase} STALL for 20 s: {}\nsockets to aMule:\n{ss}",
            self.last
        ));
        if unread > 0 {
            self.known.push(unread);
        } else if conns > 0 {
            self.unexplained += 1;
        }
        ensure!(amule.restart()?.success(), "amuled did not restart");
        log(format!("{phase} amuled restarted"));
        self.since = Instant::now();
        Ok(())
    }

    pub fn report(&self, failures: &mut Vec<String>) {
        if self.unexplained > 0 {
            fail(
                failures,
                format!(
                    "aMule's transfer stalled {} times with a connection open and no bytes unread at aMule (see STALL)",
                    self.unexplained
                ),
            );
        }
        if !self.known.is_empty() {
            log(format!(
                "KNOWN aMule receive stall {} times (aMule left {:?} bytes unread in its socket; amuled restarted)",
                self.known.len(),
                self.known
            ));
        }
    }
}

/// Bytes waiting unread in aMule's end of TCP connections on its port `tcp` (Recv-Q), how
/// many such connections there are, and `ss`'s report of them.
fn amule_unread(tcp: &str) -> (u64, usize, String) {
    let out = Command::new("ss")
        .args(["-tn", &format!("( sport = :{tcp} or dport = :{tcp} )")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let queues: Vec<u64> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let local = f.get(3)?;
            (f.first() == Some(&"ESTAB") && local.ends_with(&format!(":{tcp}")))
                .then(|| f.get(1)?.parse::<u64>().ok())?
        })
        .collect();
    (queues.iter().sum(), queues.len(), out)
}
