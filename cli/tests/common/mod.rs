//! A lab started with this build's binary, and the binary run against it with its output
//! captured, as a newcomer would run it.
#![allow(dead_code)] // each test binary uses its own part of this

pub mod serve;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_junction");

pub struct Lab {
    child: Child,
    /// Kept open: the lab's stdout must not become a closed pipe under it.
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
    pub dir: tempfile::TempDir,
    /// The gateway's address as printed, e.g. `http://127.0.0.1:40123`.
    pub server: String,
    /// The HTTP fronts' address as printed, e.g. `http://127.0.0.1:4480`.
    pub http: String,
    /// The commands it prints, `junction …` each.
    pub commands: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Lab {
    /// A lab whose large file has `large_mib` MiB, each seeder sending at most
    /// `seed_rate_mib` MiB/s: slow enough that a transfer is still running when looked at.
    pub fn start(large_mib: u64, seed_rate_mib: u64) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["lab", "--listen", "127.0.0.1:0"])
            .args(["--large-mib", &large_mib.to_string()])
            .args(["--seed-rate-mib", &seed_rate_mib.to_string()])
            .arg("--data-dir")
            .arg(dir.path().join("lab"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = Instant::now();
        let mut lab = Lab {
            child,
            _stdout: lines,
            dir,
            server: String::new(),
            http: String::new(),
            commands: Vec::new(),
        };
        while lab.commands.len() < 3 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "lab never printed its commands"
            );
            let line = lab._stdout.next().expect("lab exited early").unwrap();
            if let Some(s) = line.trim().strip_prefix("gateway gRPC API: ") {
                lab.server = s.to_owned();
            }
            if let Some(h) = line.trim().strip_prefix("HTTP fronts:") {
                lab.http = h.split_whitespace().next().unwrap_or("").to_owned();
            }
            if let Some(c) = line.trim().strip_prefix("junction ") {
                lab.commands.push(format!("junction {c}"));
            }
        }
        assert!(lab.server.starts_with("http://"), "{}", lab.server);
        lab
    }

    /// The link in the printed `cat` command: the large file's magnet.
    pub fn large_magnet(&self) -> String {
        quoted(&self.commands[2], "magnet:")
    }

    /// The link in the printed `get` command: the small file's ed2k link.
    pub fn small_link(&self) -> String {
        quoted(&self.commands[1], "ed2k://")
    }

    pub fn world(&self) -> PathBuf {
        self.dir.path().join("lab/world")
    }

    /// This build's binary, pointed at the lab, run in the lab's directory.
    pub fn junction(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--server")
            .arg(&self.server)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("COLUMNS");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.junction(args).output().unwrap()
    }
}

fn quoted(command: &str, prefix: &str) -> String {
    let start = command.find(&format!("'{prefix}")).expect(command) + 1;
    let end = start + command[start..].find('\'').unwrap();
    command[start..end].to_owned()
}

/// Waits for a child, at most `limit`; kills it and fails past that.
pub fn wait_at_most(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{what} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGINT, as Ctrl-C does, through kill(1): tests may not use unsafe code.
pub fn interrupt(child: &Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -INT failed");
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// No expected error may show a panic or a backtrace.
pub fn no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

pub fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}
