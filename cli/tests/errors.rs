//! Errors name what is wrong and what to type instead, once, with no backtrace.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, no_panic, text};

fn junction(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("JUNCTION_SERVER")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    no_panic(&stderr);
    (out.status.success(), stderr)
}

#[test]
fn an_unreachable_gateway_is_named_once_with_what_to_do() {
    // A port nothing listens on: bound, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Without http://, as people type an address.
    let (ok, err) = junction(&["--server", &format!("127.0.0.1:{port}"), "networks"]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("http://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains("junction serve"), "{err}");
    assert_eq!(err.matches("junction serve").count(), 1, "{err}");
}

#[test]
fn a_server_that_is_no_address_says_what_to_type() {
    let (ok, err) = junction(&["--server", "http://exa mple:1", "networks"]);
    assert!(!ok);
    assert!(err.contains("http://127.0.0.1:4470"), "{err}");
}

#[test]
fn a_data_dir_that_cannot_be_made_is_named_before_the_networks_start() {
    let started = Instant::now();
    let (ok, err) = junction(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        "/proc/junction-cannot-be-here",
    ]);
    assert!(!ok);
    assert!(err.contains("/proc/junction-cannot-be-here"), "{err}");
    assert!(err.contains("--data-dir"), "{err}");
    // Checked first: no network got to start (they log as they do).
    assert!(!err.contains("servent started"), "{err}");
    assert!(!err.contains("listening"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_port_in_use_is_named_with_the_flag_that_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap().to_string();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (ok, err) = junction(&["serve", "--listen", &at, "--data-dir", data]);
    assert!(!ok);
    assert!(err.contains(&at) && err.contains("--listen ADDR"), "{err}");
    let (ok, err) = junction(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--http",
        &at,
        "--data-dir",
        data,
    ]);
    assert!(!ok);
    assert!(err.contains(&at) && err.contains("--http ADDR"), "{err}");
}
