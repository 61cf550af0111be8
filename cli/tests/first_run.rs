//! What a first run leaves behind and writes: the lab's temporary directory goes on SIGTERM
//! too, and `serve` logs without colour codes when its stderr is not a terminal.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, no_panic, wait_at_most};

fn terminate(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// `junction lab` with a small file, its temporary directory made in `tmp`.
fn lab(tmp: &Path, stderr: Stdio) -> Child {
    Command::new(BIN)
        .args(["lab", "--listen", "127.0.0.1:0", "--large-mib", "4"])
        .env("TMPDIR", tmp)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

#[test]
fn the_lab_removes_its_temporary_directory_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lab = lab(tmp.path(), Stdio::null());
    let mut lines = BufReader::new(lab.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut printed = 0;
    while printed < 3 {
        assert!(started.elapsed() < Duration::from_secs(120), "no commands");
        let line = lines.next().expect("lab exited early").unwrap();
        printed += usize::from(line.trim().starts_with("junction "));
    }
    let made = || {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("junction-lab-"))
            .count()
    };
    assert_eq!(made(), 1, "the lab made no temporary directory in TMPDIR");
    terminate(lab.id());
    let status = wait_at_most(&mut lab, Duration::from_secs(30), "lab after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert_eq!(made(), 0, "the lab left its temporary directory behind");
}

#[test]
fn the_lab_into_head_stops_quietly_and_removes_its_temporary_directory() {
    // As `junction lab | head -1`: the reader takes the first line and leaves.
    let tmp = tempfile::tempdir().unwrap();
    let mut lab = lab(tmp.path(), Stdio::piped());
    let mut first = String::new();
    BufReader::new(lab.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("Junction lab is running"), "{first:?}");
    let status = wait_at_most(
        &mut lab,
        Duration::from_secs(60),
        "lab after its reader left",
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut lab.stderr.take().unwrap(), &mut stderr).unwrap();
    no_panic(&stderr);
    assert!(status.success(), "{status:?}: {stderr}");
    let left = std::fs::read_dir(tmp.path()).unwrap().count();
    assert_eq!(left, 0, "the lab left its temporary directory behind");
}

#[test]
fn serve_logs_without_colour_into_a_pipe_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("junction.toml");
    std::fs::write(
        &config,
        "[ed2k]\nenabled = false\n[gnutella]\nenabled = false\n[bittorrent]\nenabled = false\n",
    )
    .unwrap();
    let mut serve = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stderr.take().unwrap()).lines();
    let mut said = String::new();
    while !said.contains("gRPC API on") {
        let line = lines.next().expect("serve exited early").unwrap();
        said.push_str(&line);
        said.push('\n');
    }
    terminate(serve.id());
    let status = wait_at_most(&mut serve, Duration::from_secs(30), "serve after SIGTERM");
    for line in lines {
        said.push_str(&line.unwrap());
        said.push('\n');
    }
    no_panic(&said);
    assert!(said.contains("gateway listening"), "no log line: {said}");
    assert!(!said.contains('\x1b'), "colour codes in a pipe: {said:?}");
    assert!(status.success(), "{status:?}: {said}");
}

/// On a terminal (script(1) makes one) the log is coloured, unless `NO_COLOR` is set; the
/// start-up summary names the ports and what has nothing to connect to.
#[test]
fn serve_colours_its_log_on_a_terminal_unless_no_color_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("junction.toml");
    std::fs::write(
        &config,
        "[ed2k]\nenabled = false\n[bittorrent]\nenabled = false\n\
         [gnutella]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let on_a_terminal = |no_color: &str| {
        let line = format!(
            "{no_color} RUST_LOG=info timeout -s INT 3 '{BIN}' serve --listen 127.0.0.1:0 \
             --http 127.0.0.1:0 --config '{}' --data-dir '{}'",
            config.display(),
            dir.path().join("data").display()
        );
        let out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let Some(coloured) = on_a_terminal("") else {
        return; // no script(1) here
    };
    no_panic(&coloured);
    assert!(coloured.contains("gateway listening"), "{coloured}");
    assert!(
        coloured.contains('\x1b'),
        "no colour on a terminal: {coloured:?}"
    );
    assert!(
        coloured.contains("nothing to connect to yet on gnutella;"),
        "{coloured}"
    );
    let plain = on_a_terminal("NO_COLOR=1").unwrap();
    assert!(plain.contains("gateway listening"), "{plain}");
    assert!(!plain.contains('\x1b'), "colour with NO_COLOR: {plain:?}");
}

/// What ships beside the binary: the systemd unit starts `serve` with flags it has, and
/// the licenses Cargo.toml names are in the repository.
#[test]
fn the_systemd_unit_runs_serve_with_real_flags_and_the_licenses_are_there() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let unit = std::fs::read_to_string(root.join("dist/junction.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/junction"));
    let args: Vec<&str> = words.collect();
    assert_eq!(args.first(), Some(&"serve"), "{exec}");
    // clap refuses an unknown flag even beside --help.
    let out = Command::new(BIN)
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{exec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needed in [
        "[Install]",
        "WantedBy=multi-user.target",
        "StateDirectory=junction",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    let cargo = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    assert!(cargo.contains("license = \"MIT OR Apache-2.0\""));
    for (file, words) in [
        ("LICENSE-MIT", "Permission is hereby granted"),
        ("LICENSE-APACHE", "Apache License"),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(text.contains(words), "{file}");
    }
}
