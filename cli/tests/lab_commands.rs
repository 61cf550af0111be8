//! `junction lab` as a newcomer uses it: start it, then run the three commands it prints,
//! exactly as printed (with this build's binary in place of `junction`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_printed(command: &str, cwd: &std::path::Path) -> String {
    let bin = env!("CARGO_BIN_EXE_junction");
    let line = command
        .strip_prefix("junction")
        .unwrap_or_else(|| panic!("not a junction command: {command}"));
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("'{bin}'{line}"))
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn same_bytes(got: &std::path::Path, want: &std::path::Path) {
    let (a, b) = (std::fs::read(got).unwrap(), std::fs::read(want).unwrap());
    let first_difference = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(
        a == b,
        "{} differs from {}: {} vs {} bytes, first difference at {first_difference:?}",
        got.display(),
        want.display(),
        a.len(),
        b.len()
    );
}

#[test]
fn the_three_printed_commands_work_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("lab");
    let mut lab = Killed(
        Command::new(env!("CARGO_BIN_EXE_junction"))
            .args(["lab", "--listen", "127.0.0.1:0", "--large-mib", "12"])
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = lab.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let mut printed = Vec::new();
    while printed.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "lab never printed its commands"
        );
        let line = lines.next().expect("lab exited early").unwrap();
        if let Some(c) = line.trim().strip_prefix("junction ") {
            printed.push(format!("junction {c}"));
        }
    }
    assert!(printed[0].contains(" search "), "{printed:?}");
    assert!(printed[1].contains(" get "), "{printed:?}");
    assert!(printed[2].contains(" cat "), "{printed:?}");

    // The search finds the lab's files (BitTorrent's index may take a moment to fill,
    // eD2k and Gnutella answer at once).
    let out = run_printed(&printed[0], dir.path());
    assert!(out.contains("Lab Sunrise Timelapse 1080p.mkv"), "{out}");

    let out = run_printed(&printed[1], dir.path());
    assert!(out.contains("complete: "), "{out}");
    let got = out
        .lines()
        .find_map(|l| l.strip_prefix("complete: "))
        .unwrap();
    same_bytes(
        got.as_ref(),
        &data.join("world/Lab Sunrise Timelapse 1080p.mkv"),
    );

    run_printed(&printed[2], dir.path());
    same_bytes(
        &dir.path().join("lab-large.mkv"),
        &data.join("world/Lab Deep Space Documentary 2160p.mkv"),
    );
}
