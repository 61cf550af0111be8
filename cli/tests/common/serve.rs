//! A `junction serve` of this build in a directory of its own, driven through the CLI as a
//! user would, and killed with SIGKILL when dropped (no shutdown, no last save).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BIN, text};

pub struct Serve {
    child: Child,
    pub config: PathBuf,
    pub log: PathBuf,
    /// The gRPC API, e.g. `http://127.0.0.1:40123`.
    pub server: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a config for a gateway in `dir` whose API is on `port`, with `more` TOML after
/// the `[gateway]` table (networks, HTTP), and returns its path.
pub fn config(dir: &Path, port: u16, more: &str) -> PathBuf {
    let path = dir.join("junction.toml");
    let data = dir.join("data");
    std::fs::write(
        &path,
        format!("[gateway]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\n{more}"),
    )
    .unwrap();
    path
}

impl Serve {
    /// Starts `junction serve --config CONFIG` (its API on `port`), logging to `log`, and
    /// waits until the API answers.
    pub fn start(config: &Path, port: u16, log: &Path) -> Serve {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut s = Serve {
            child,
            config: config.to_path_buf(),
            log: log.to_path_buf(),
            server: format!("http://127.0.0.1:{port}"),
        };
        s.wait_answering();
        s
    }

    fn wait_answering(&mut self) {
        let started = Instant::now();
        while !self.run(&["transfers", "--json"]).status.success() {
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "serve exited: {}",
                self.log_text()
            );
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// This build's binary against this gateway.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("--server")
            .arg(&self.server)
            .args(args)
            .output()
            .unwrap()
    }

    /// `junction get LINK`: the new transfer's id.
    pub fn get(&self, link: &str) -> String {
        let got = self.run(&["get", link, "--json"]);
        assert!(got.status.success(), "{}", text(&got.stderr));
        let first = text(&got.stdout).lines().next().unwrap().to_owned();
        serde_json::from_str::<Value>(&first).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The transfer as `junction transfers --json` shows it, if the gateway answers.
    pub fn transfer(&self, id: &str) -> Option<Value> {
        let out = self.run(&["transfers", "--json"]);
        if !out.status.success() {
            return None;
        }
        text(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|t| t["id"] == id)
    }

    /// Waits for the transfer to complete, at most `limit`; returns it.
    pub fn completed(&self, id: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            if let Some(t) = self.transfer(id)
                && t["state"] == "complete"
            {
                return t;
            }
            assert!(
                started.elapsed() < limit,
                "never completed: {:?}",
                self.transfer(id)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The bytes of the lab's large file, its biggest sample.
pub fn lab_large_file(world: &Path) -> Vec<u8> {
    let large = std::fs::read_dir(world)
        .unwrap()
        .filter_map(Result::ok)
        .max_by_key(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .unwrap();
    std::fs::read(large.path()).unwrap()
}
