//! aMule for the interop drivers, one copy for both: `adapters/ed2k/examples/amule_interop.rs`
//! and `tests/examples/swarm_interop.rs` include this file by `#[path]` (they are examples of
//! two packages), and each uses part of it. amuled is started and stopped by
//! `tests/interop/ed2k_amule_start.sh` and `ed2k_amule_stop.sh`, which write its config;
//! amulecmd talks to it over its EC port. The including file provides `log`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::log;

#[path = "pseudo_random.rs"]
mod pseudo_random;
pub use pseudo_random::pseudo_random;

pub fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

/// One amuled under test: its start script (`AMULE_START`; the stop script is beside it),
/// the base folder of its instances (`AMULE_BASE`), its instance name, its TCP, UDP and EC
/// ports, the folder it shares and the server it logs into.
#[derive(Debug, Clone)]
pub struct Amuled {
    pub start_script: String,
    pub base: PathBuf,
    pub name: String,
    pub tcp: String,
    pub udp: String,
    pub ec: String,
    pub share: PathBuf,
    pub server: String,
    /// More settings for the start script (`MAX_UPLOAD_KBS`, `SLOT_KBS`).
    pub env: Vec<(&'static str, String)>,
}

impl Amuled {
    /// Runs the start script (config written, amuled up, its EC port taking amulecmd).
    pub fn start(&self) -> Result<ExitStatus> {
        Ok(Command::new("bash")
            .args([
                &self.start_script,
                &self.name,
                &self.tcp,
                &self.udp,
                &self.ec,
            ])
            .arg(&self.share)
            .arg(&self.server)
            .env("BASE", &self.base)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status()?)
    }

    /// Runs the stop script; a failure to stop is not an error.
    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(self.start_script.replace("start.sh", "stop.sh"))
            .arg(&self.name)
            .env("BASE", &self.base)
            .status();
    }

    /// Stops and starts amuled; it resumes its part files and asks the server for sources.
    pub fn restart(&self) -> Result<ExitStatus> {
        self.stop();
        self.start()
    }
}

pub fn amulecmd(ec: &str, script: &str) -> Result<String> {
    amulecmd_steps(ec, &[(script, 0)])
}

/// One amulecmd session fed step by step (a search's results and `download N` must share it).
/// amulecmd quits at once when amuled's EC port does not take it yet (seen in a CI run just
/// after amuled came up), and our next write then fails: such a session is tried again.
pub fn amulecmd_steps(ec: &str, steps: &[(&str, u64)]) -> Result<String> {
    let mut attempt = 1;
    loop {
        match amulecmd_session(ec, steps)? {
            Ok(out) => return Ok(out),
            Err(early) if attempt < 3 => {
                let said = early.trim_end().lines().last().unwrap_or("nothing");
                log(format!(
                    "amulecmd quit early (attempt {attempt}), again in 3 s: {said}"
                ));
                std::thread::sleep(Duration::from_secs(3));
                attempt += 1;
            }
            Err(early) => bail!("amulecmd quit early three times: {early}"),
        }
    }
}

/// Runs one session, each step's command followed by its wait in milliseconds: its output,
/// or (inner `Err`) what amulecmd said when it quit before taking every step.
pub fn amulecmd_session(ec: &str, steps: &[(&str, u64)]) -> Result<Result<String, String>> {
    use std::io::Write;
    let mut child = Command::new("amulecmd")
        .args(["-h", "127.0.0.1", "-p", ec, "-P", "secret"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("amulecmd")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut fed = Ok(());
    for (cmd, wait_ms) in steps {
        fed = stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .and_then(|()| stdin.flush());
        if fed.is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(*wait_ms));
    }
    let fed = fed.and_then(|()| stdin.write_all(b"quit\n"));
    drop(stdin);
    let out = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    match fed {
        Ok(()) => Ok(Ok(stdout)),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ))),
        Err(e) => Err(e.into()),
    }
}
