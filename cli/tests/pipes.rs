//! A reader that goes away (`| head -c 1`) ends every command at once and quietly: status 0
//! (or 141, killed by SIGPIPE, as other tools end), nothing on stderr, no backtrace.

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Lab, no_panic, text, wait_at_most};

/// As `junction ARGS | head -c 1`: reads the first byte, closes the pipe, and expects the
/// command to end within `limit` of that, with nothing on stderr.
fn into_head(lab: &Lab, args: &[&str], limit: Duration) {
    into_head_saying(lab, args, limit, |_| false);
}

/// The same, where stderr may carry the lines `expected` accepts (a search's status lines).
fn into_head_saying(lab: &Lab, args: &[&str], limit: Duration, expected: fn(&str) -> bool) {
    let what = format!("junction {}", args.join(" "));
    let mut child = lab
        .junction(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let n = stdout.read(&mut byte).unwrap_or(0);
        let _ = tx.send(n);
        // `stdout` is dropped here: the pipe's only reader is gone.
    });
    let n = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what} printed nothing in 60 s"));
    if n == 0 {
        let out = child.wait_with_output().unwrap();
        panic!(
            "{what} printed nothing: {:?} {}",
            out.status,
            text(&out.stderr)
        );
    }
    let closed = Instant::now();
    let status = wait_at_most(&mut child, limit, &what);
    let mut stderr = Vec::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    let stderr = text(&stderr);
    no_panic(&stderr);
    assert!(
        status.code() == Some(0) || status.signal() == Some(13),
        "{what} ended with {status:?} after its reader left: {stderr}"
    );
    assert!(stderr.lines().all(expected), "{what} said: {stderr}");
    assert!(
        closed.elapsed() <= limit,
        "{what} took {:?}",
        closed.elapsed()
    );
}

#[test]
fn every_command_ends_quietly_into_head() {
    // Slow seeders: the large file is still downloading while `cat` streams it.
    let lab = Lab::start(48, 1);
    let magnet = lab.large_magnet();
    let started = lab.run(&["get", &magnet]);
    assert!(started.status.success(), "{}", text(&started.stderr));

    let prompt = Duration::from_secs(3);
    into_head(&lab, &["completions", "bash"], prompt);
    into_head(&lab, &["man"], prompt);
    into_head(&lab, &["networks"], prompt);
    into_head(&lab, &["networks", "--json"], prompt);
    into_head(&lab, &["transfers"], prompt);
    // These two print again and again, or wait for news between lines.
    into_head(&lab, &["transfers", "--watch", "--json"], prompt);
    into_head(&lab, &["transfers", "--watch"], prompt);
    into_head(&lab, &["search", "lab", "--json"], prompt);
    // Its status lines go to stderr, the table to the pipe: the status is no error.
    let status = |l: &str| l.starts_with("  ") || l.ends_with(" s") || l.ends_with(" ms");
    into_head_saying(&lab, &["search", "lab", "--timeout", "2"], prompt, status);
    // `cat` waits for bytes not yet fetched: it must notice the closed pipe meanwhile.
    into_head(&lab, &["cat", &magnet], prompt);

    // `cat -o FILE` writes no stdout, so a closed one does not end it half-way (which left
    // its .part behind); Ctrl-C still removes the part.
    let mut to_file = lab
        .junction(&["cat", &magnet, "-o", "piped.mkv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(to_file.stdout.take());
    std::thread::sleep(Duration::from_secs(2));
    let (part, whole) = (
        lab.dir.path().join(".piped.mkv.part"),
        lab.dir.path().join("piped.mkv"),
    );
    match to_file.try_wait().unwrap() {
        // The transfer may have finished meanwhile: then the file is whole.
        Some(status) => {
            assert!(status.success(), "{status:?}");
            assert!(common::exists(&whole) && !common::exists(&part));
        }
        None => {
            common::interrupt(&to_file);
            let status = wait_at_most(&mut to_file, Duration::from_secs(5), "cat -o after Ctrl-C");
            // Interrupted, no part is left; finished just before the signal, the file is whole.
            assert!(!common::exists(&part));
            assert_eq!(common::exists(&whole), status.success(), "{status:?}");
        }
    }
}
