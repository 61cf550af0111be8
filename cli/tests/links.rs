//! `junction links ID`: the links a user hands out for a finished download, as the
//! bridge's interop has libtorrent take them (issue 12, check 2).

mod common;

use std::time::{Duration, Instant};

use common::{Lab, text};

/// The value of `key=` in a magnet, if any.
fn param<'a>(magnet: &'a str, key: &str) -> Vec<&'a str> {
    magnet
        .trim_start_matches("magnet:?")
        .split('&')
        .filter_map(|p| p.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_base32(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
}

#[test]
fn links_of_a_bittorrent_download_name_it_on_ed2k_and_bittorrent() {
    // 12 MiB: two eD2k parts, so the link carries its part hashes. No rate cap.
    let lab = Lab::start(12, 0);
    let from = lab.large_magnet();
    let (btih, size, name) = (
        param(&from, "xt")[0].to_owned(),
        param(&from, "xl")[0].to_owned(),
        param(&from, "dn")[0].to_owned(),
    );
    assert_eq!(size, (12u64 << 20).to_string(), "{from}");

    let got = lab.run(&["get", &from, "--wait", "--json"]);
    assert!(got.status.success(), "{}", text(&got.stderr));
    let last = text(&got.stdout).lines().last().unwrap().to_owned();
    let id = serde_json::from_str::<serde_json::Value>(&last).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The magnet names only the info-hash: the ed2k link appears once the gateway has
    // hashed the finished file for every network. (For a moment after the transfer
    // completes it may show the ed2k hash without the part hashes and AICH root: waited
    // out here.)
    let started = Instant::now();
    let said = loop {
        let out = lab.run(&["links", &id]);
        let said = text(&out.stdout);
        assert!(out.status.success(), "{}", text(&out.stderr));
        if said.contains("ed2k://") && said.contains("|h=") {
            break said;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no ed2k link in 30 s: {said}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "{said}");
    let (ed2k, magnet) = (lines[0], lines[1]);

    // ed2k://|file|NAME|SIZE|HASH|p=PART:PART|h=AICH|/
    let fields: Vec<&str> = ed2k.split('|').collect();
    assert_eq!(fields.len(), 8, "{ed2k}");
    assert_eq!(&fields[..2], ["ed2k://", "file"], "{ed2k}");
    assert!(!fields[2].is_empty(), "{ed2k}");
    assert_eq!(fields[3], size, "{ed2k}");
    assert!(is_hex(fields[4], 32), "{ed2k}");
    let parts: Vec<&str> = fields[5]
        .strip_prefix("p=")
        .unwrap_or_else(|| panic!("no part hashes: {ed2k}"))
        .split(':')
        .collect();
    assert_eq!(parts.len(), 2, "{ed2k}");
    assert!(parts.iter().all(|p| is_hex(p, 32)), "{ed2k}");
    let aich = fields[6]
        .strip_prefix("h=")
        .unwrap_or_else(|| panic!("no AICH root: {ed2k}"));
    assert!(is_base32(aich, 32), "{ed2k}");
    assert_eq!(fields[7], "/", "{ed2k}");

    // magnet:?xt=urn:btih:…(first)&xt=…&xl=SIZE&dn=NAME
    assert!(magnet.starts_with("magnet:?xt=urn:btih:"), "{magnet}");
    let xt = param(magnet, "xt");
    assert_eq!(xt[0].to_ascii_lowercase(), btih.to_ascii_lowercase());
    let ed2k_urn = format!("urn:ed2k:{}", fields[4].to_ascii_lowercase());
    assert!(
        xt.iter().any(|u| u.to_ascii_lowercase() == ed2k_urn),
        "{magnet}"
    );
    for kind in ["urn:sha1:", "urn:tree:tiger:", "urn:aich:"] {
        assert!(xt.iter().any(|u| u.starts_with(kind)), "{kind}: {magnet}");
    }
    assert_eq!(param(magnet, "xl"), [size.as_str()], "{magnet}");
    assert_eq!(param(magnet, "dn"), [name.as_str()], "{magnet}");

    // --json gives the same links; --torrent writes the .torrent.
    let out = lab.run(&["links", &id, "--json", "--torrent", "got.torrent"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["ed2k"], ed2k);
    assert_eq!(json["magnet"], magnet);
    assert_eq!(json["torrent"], true);
    let torrent = std::fs::read(lab.dir.path().join("got.torrent")).unwrap();
    assert!(
        torrent.starts_with(b"d") && torrent.windows(6).any(|w| w == b"4:info"),
        "not a .torrent: {} bytes",
        torrent.len()
    );

    // An unknown id is an error that says so, not an empty link.
    let out = lab.run(&["links", "no-such-transfer"]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    common::no_panic(&text(&out.stderr));
}
