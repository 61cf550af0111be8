//! Endpoints and shares managed with the real binary against a real `serve`: host names
//! (a `localhost` listen address too), `endpoint list|remove` across a restart, `unshare`,
//! and `shares` with nothing shared.

mod common;

use common::serve::{Serve, free_port};
use common::{no_panic, text};

fn config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("junction.toml");
    let data = dir.join("data");
    std::fs::write(
        &path,
        format!(
            "[gateway]\nlisten = \"localhost:{port}\"\ndata_dir = {data:?}\n\
             [http]\nenabled = false\n[ed2k]\nenabled = false\n\
             [gnutella]\nlisten = \"localhost:0\"\n\
             [bittorrent]\nlisten = \"127.0.0.1:0\"\n[bittorrent.dht]\nenabled = false\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn endpoints_and_shares_are_managed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port);
    let log = dir.path().join("serve.log");
    let gw = Serve::start(&cfg, port, &log);

    let out = gw.run(&["shares"]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("nothing shared"),
        "{}",
        text(&out.stderr)
    );

    // A name on every network (gnutella dials it: our own gateway port on 127.0.0.1).
    let host = format!("localhost:{port}");
    for network in ["gnutella", "bittorrent"] {
        let out = gw.run(&["endpoint", "add", network, &host]);
        assert!(out.status.success(), "{network}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("kept across restarts"));
    }
    let out = gw.run(&["endpoint", "add", "bittorrent", "nowhere.invalid:6881"]);
    let err = text(&out.stderr);
    no_panic(&err);
    assert!(
        !out.status.success() && err.contains("nowhere.invalid:6881"),
        "{err}"
    );

    drop(gw);
    let gw = Serve::start(&cfg, port, &log);
    let out = gw.run(&["endpoint", "list"]);
    let listed = text(&out.stdout);
    assert!(
        listed.contains(&format!("gnutella    {host}"))
            && listed.contains(&format!("bittorrent  {host}"))
            && !listed.contains("invalid"),
        "{listed}"
    );
    let out = gw.run(&["endpoint", "remove", "gnutella", &host]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Gnutella lets go of a host while it runs.
    assert!(said.contains("gnutella stopped using"), "{said}");
    let out = gw.run(&["endpoint", "remove", "gnutella", &host]);
    assert!(!out.status.success());
    no_panic(&text(&out.stderr));
    let out = gw.run(&["endpoint", "list", "--json"]);
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["network"], "bittorrent");

    // Share, then unshare: each network says what it did.
    let file = dir.path().join("mine.txt");
    std::fs::write(&file, b"shared, then not\n").unwrap();
    let out = gw.run(&["share", file.to_str().unwrap()]);
    assert!(
        text(&out.stdout).contains("magnet:?"),
        "{}",
        text(&out.stderr)
    );
    let out = gw.run(&["unshare", file.to_str().unwrap()]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        said.contains("unshared") && said.contains("gnutella"),
        "{said}"
    );
    let out = gw.run(&["shares"]);
    assert!(text(&out.stderr).contains("nothing shared"));
    let out = gw.run(&["unshare", file.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not shared"),
        "{err}"
    );
}
