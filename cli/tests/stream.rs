//! `junction stream`: the player URL of a transfer, against a lab's gateway and its HTTP
//! fronts, and `--play` with a stand-in player and with none installed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Lab, no_panic, text};

/// A raw HTTP/1.1 GET of a URL, as a player sends it: the status line, and the body.
fn get(url: &str, range: &str) -> (String, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect(url);
    let (authority, path) = rest.split_at(rest.find('/').expect(url));
    let mut s = TcpStream::connect(authority).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nRange: {range}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = text(&all[..split]);
    (
        head.lines().next().unwrap().to_owned(),
        all[split + 4..].to_vec(),
    )
}

fn lines(out: &std::process::Output) -> Vec<String> {
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn stream_prints_urls_that_serve_the_transfer_and_plays_them() {
    let lab = Lab::start(12, 8);
    assert!(lab.http.starts_with("http://"), "{}", lab.http);
    let magnet = lab.large_magnet();

    // A link: its transfer starts through the API, and the URL names it by its id.
    let out = lab.run(&["stream", &magnet, "--http", &lab.http]);
    no_panic(&text(&out.stderr));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = lines(&out);
    assert_eq!(printed.len(), 2, "{printed:?}");
    let (url, playlist) = (&printed[0], &printed[1]);
    let prefix = format!("{}/content/", lab.http);
    let id = url.strip_prefix(&prefix).expect(url).to_owned();
    assert_eq!(playlist, &format!("{url}.m3u"));
    let listed = text(&lab.run(&["transfers", "--json"]).stdout);
    assert!(listed.contains(&format!("\"id\":\"{id}\"")), "{listed}");

    // The URL serves the file's bytes, the playlist names the URL.
    let (status, body) = get(url, "bytes=0-99");
    assert!(status.contains("206"), "{status}");
    let want = std::fs::read(lab.world().join("Lab Deep Space Documentary 2160p.mkv")).unwrap();
    assert_eq!(body, want[..100]);
    let (status, body) = get(playlist, "bytes=0-");
    assert!(status.contains(" 20"), "{status}");
    assert!(
        text(&body).contains(&format!("/content/{id}")),
        "{}",
        text(&body)
    );

    // The transfer id gives the same URL; --json names the transfer; the default --http
    // is the server's host on port 4480.
    let again = lab.run(&["stream", &id, "--http", &lab.http, "--json"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["url"], url.as_str());
    assert_eq!(v["transfer_id"], id.as_str());
    assert_eq!(v["name"], "Lab Deep Space Documentary 2160p.mkv");

    // --play runs $PLAYER (with its own arguments) on the URL and waits for it.
    let bin = lab.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let player = bin.join("player");
    std::fs::write(
        &player,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/played\"\n",
    )
    .unwrap();
    make_executable(&player);
    let out = lab
        .junction(&["stream", &id, "--http", &lab.http, "--play"])
        .env("PLAYER", format!("{} --fs", player.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let played = std::fs::read_to_string(bin.join("played")).unwrap();
    assert_eq!(played, format!("--fs\n{url}\n"));

    // No player installed: one line that says what to do.
    let out = lab
        .junction(&["stream", &id, "--http", &lab.http, "--play"])
        .env_remove("PLAYER")
        .env("PATH", bin.join("empty"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    no_panic(&err);
    assert!(err.contains("mpv is not installed"), "{err}");
    assert!(err.contains("PLAYER"), "{err}");
    let out = lab
        .junction(&["stream", &id, "--http", &lab.http, "--play"])
        .env("PLAYER", "/nonexistent/player")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("\"/nonexistent/player\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn stream_names_what_is_wrong() {
    let lab = Lab::start(1, 0);
    // Neither a transfer, an item, a link nor a hash.
    let out = lab.run(&["stream", "no-such-thing", "--http", &lab.http]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    no_panic(&err);
    assert!(
        err.contains("\"no-such-thing\" is not a transfer id"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // Nothing listens where the fronts should be.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = lab.run(&[
        "stream",
        &lab.small_link(),
        "--http",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("HTTP fronts do not answer"), "{err}");
    assert!(err.contains("--http"), "{err}");
    assert!(out.stdout.is_empty());
}

fn make_executable(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut perm = std::fs::metadata(p).unwrap().permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(p, perm).unwrap();
}
