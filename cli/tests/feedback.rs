//! What the commands say while they work: JSON only with --json, a final line from
//! `cat -o`, no half-written file, and what happens to a transfer on Ctrl-C.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, exists, interrupt, no_panic, text, wait_at_most};

/// Runs `junction ARGS` (against the lab) on a pseudo-terminal made by script(1), its
/// output (both streams) captured; `None` where script(1) is missing.
/// `before` goes ahead of the command in the shell line (`COLUMNS=80`, `timeout 3`).
fn on_a_terminal(lab: &Lab, args: &str, before: &str) -> Option<std::process::Output> {
    let line = format!("{before} '{}' --server {} {args}", common::BIN, lab.server);
    std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(lab.dir.path())
        .stdin(Stdio::null())
        .output()
        .ok()
}

/// What a terminal shows of `raw`: each frame's lines as the last redraw left them is too
/// much to model, so this keeps the text between escape sequences, line by line.
fn visible(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // CSI: ESC [ parameters, then one final byte in @..~.
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                for f in chars.by_ref() {
                    if ('@'..='~').contains(&f) {
                        break;
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Ctrl-C ends the command with 130, as shells expect, telling that the transfer goes on.
fn ctrl_c_says_the_transfer_goes_on(mut child: Child, what: &str) {
    interrupt(&child);
    let status = wait_at_most(&mut child, Duration::from_secs(5), what);
    let err = text(&child.wait_with_output().unwrap().stderr);
    no_panic(&err);
    assert_eq!(status.code(), Some(130), "{what}: {err}");
    assert!(err.contains("goes on in the gateway"), "{what}: {err}");
}

#[test]
fn the_commands_say_what_they_do() {
    // Slow seeders, so that a large transfer is still running when interrupted.
    let lab = Lab::start(48, 1);

    a_bare_address_is_accepted(&lab);
    let small_id = get_wait_json_prints_json_only(&lab);
    cat_on_a_terminal_refuses_binary(&lab, &small_id);
    endpoint_errors_say_why(&lab);
    share_prints_the_links(&lab);
    search_in_a_pipe_prints_a_table_and_statuses(&lab);
    search_on_a_terminal_draws_a_live_table(&lab);
    transfers_watch_redraws_in_place(&lab);
    let target = ctrl_c_on_cat_o_leaves_no_file(&lab);
    ctrl_c_on_get_wait_says_the_transfer_goes_on(&lab);
    finished_cat_o_says_what_it_wrote(&lab, &target);
}

/// The address as `serve` prints it, without http://, is accepted.
fn a_bare_address_is_accepted(lab: &Lab) {
    let bare = lab.server.trim_start_matches("http://").to_owned();
    let out = std::process::Command::new(common::BIN)
        .args(["--server", &bare, "networks"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `get --wait --json` prints JSON only, ending with the complete transfer: jq-safe.
/// Returns the transfer's id.
fn get_wait_json_prints_json_only(lab: &Lab) -> String {
    let out = lab.run(&["get", &lab.small_link(), "--wait", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in {stdout}")))
        .collect();
    assert_eq!(lines.last().unwrap()["state"], "complete", "{stdout}");
    lines.last().unwrap()["id"].as_str().unwrap().to_owned()
}

/// On a terminal (script(1) gives it one), `cat` refuses binary bytes and says how to
/// get them; `-o -` prints them anyway.
fn cat_on_a_terminal_refuses_binary(lab: &Lab, small_id: &str) {
    if let Some(out) = on_a_terminal(lab, &format!("cat {small_id}"), "") {
        assert!(!out.status.success(), "{}", text(&out.stdout));
        let said = text(&out.stdout);
        assert!(said.contains("binary") && said.contains("-o -"), "{said}");
        assert!(
            said.len() < 1000,
            "binary went to the terminal: {} bytes",
            said.len()
        );
    }
}

/// An endpoint's error says whether the name did not resolve or is no address at all.
fn endpoint_errors_say_why(lab: &Lab) {
    let out = lab.run(&["endpoint", "add", "gnutella", "no-such-host.invalid:6346"]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot resolve"),
        "{err}"
    );
    let out = lab.run(&["endpoint", "add", "gnutella", "no-port"]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not a host:port"),
        "{err}"
    );
}

/// `share` prints the links to hand out.
fn share_prints_the_links(lab: &Lab) {
    std::fs::write(
        lab.dir.path().join("mine.txt"),
        b"shared by the feedback test\n",
    )
    .unwrap();
    let out = lab.run(&["share", "mine.txt"]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        said.contains("magnet:?") && said.contains("ed2k://"),
        "{said}"
    );
}

/// A human search in a pipe: a sorted table cut to COLUMNS, then one status line per
/// network, in words.
/// It ends when the networks are done (Gnutella once its dynamic query has asked every
/// ultrapeer it could), well before the 10 s deadline.
fn search_in_a_pipe_prints_a_table_and_statuses(lab: &Lab) {
    let searching = Instant::now();
    let out = lab
        .junction(&["search", "lab sunrise"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let took = searching.elapsed();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("ID "), "{stdout}");
    assert!(stdout.lines().all(|l| l.chars().count() < 80), "{stdout}");
    assert!(
        stdout.contains("Lab Sunrise Timelapse 1080p.mkv"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("\n+ ") && !stdout.contains("\n~ "),
        "{stdout}"
    );
    for net in ["ed2k", "gnutella", "bittorrent"] {
        assert_eq!(
            stderr
                .lines()
                .filter(|l| l.trim_start().starts_with(net))
                .count(),
            1,
            "{stderr}"
        );
    }
    assert!(
        !stderr.contains("1 hits") && !stderr.contains("000 ms"),
        "{stderr}"
    );
    assert!(
        took < Duration::from_secs(8),
        "the search took {took:?}: {stderr}"
    );
    assert!(!stderr.contains("timed out"), "{stderr}");
}

/// On an 80-column terminal, `search` draws a live table in place and ends with the
/// sorted one, never wider than the screen.
fn search_on_a_terminal_draws_a_live_table(lab: &Lab) {
    if let Some(out) = on_a_terminal(lab, "search 'lab sunrise'", "COLUMNS=80") {
        let said = text(&out.stdout);
        assert!(out.status.success(), "{said}");
        let shown = visible(&said);
        assert!(shown.contains("Lab Sunrise Timelapse 1080p.mkv"), "{shown}");
        assert!(shown.lines().any(|l| l.starts_with("ID ")), "{shown}");
        assert!(shown.lines().all(|l| l.chars().count() < 80), "{shown}");
    }
}

/// On an 80-column terminal, `transfers --watch` redraws its table in place (cursor up,
/// clear) until Ctrl-C, never wider than the screen.
fn transfers_watch_redraws_in_place(lab: &Lab) {
    if let Some(out) = on_a_terminal(lab, "transfers --watch", "COLUMNS=80 timeout -s INT 3") {
        let said = text(&out.stdout);
        assert!(said.contains("\x1b[J"), "no redraw: {said:?}");
        let shown = visible(&said);
        assert!(
            shown.contains("STATE") && shown.contains("PEERS"),
            "{shown}"
        );
        assert!(shown.contains("complete"), "{shown}");
        assert!(shown.lines().all(|l| l.chars().count() < 80), "{shown}");
        // Redrawn in place: each frame after the first moves the cursor up first.
        let frames = said.matches("\x1b[J").count();
        assert!(frames >= 2, "one frame in 3 s: {said:?}");
        assert_eq!(said.matches("F\x1b[J").count(), frames - 1, "{said:?}");
    }
}

/// Ctrl-C on `cat -o` leaves no file, and says the transfer goes on. Returns the path
/// `cat -o` was writing.
fn ctrl_c_on_cat_o_leaves_no_file(lab: &Lab) -> PathBuf {
    let target = lab.dir.path().join("large.mkv");
    let cat = lab
        .junction(&["cat", &lab.large_magnet(), "-o", "large.mkv"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let part = lab.dir.path().join(".large.mkv.part");
    let started = Instant::now();
    while !exists(&part) {
        assert!(started.elapsed() < Duration::from_secs(30), "no .part file");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    ctrl_c_says_the_transfer_goes_on(cat, "cat -o");
    assert!(
        !exists(&target),
        "an interrupted cat -o left {}",
        target.display()
    );
    assert!(
        !exists(&part),
        "an interrupted cat -o left {}",
        part.display()
    );
    target
}

/// Ctrl-C on `get --wait` says so too.
fn ctrl_c_on_get_wait_says_the_transfer_goes_on(lab: &Lab) {
    let get = lab
        .junction(&["get", &lab.large_magnet(), "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    ctrl_c_says_the_transfer_goes_on(get, "get --wait");
}

/// Finished, `cat -o` says what it wrote, and the file is whole.
fn finished_cat_o_says_what_it_wrote(lab: &Lab, target: &Path) {
    let out = lab.run(&["cat", &lab.large_magnet(), "-o", "large.mkv"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("wrote 48.0 MiB to large.mkv"), "{err}");
    assert_eq!(
        std::fs::read(target).unwrap(),
        std::fs::read(lab.world().join("Lab Deep Space Documentary 2160p.mkv")).unwrap()
    );
}
