//! Names from the network, in links and in search hits, never leave the downloads folder
//! and never replace a file already there (issue 15).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use junction_core::{ContentId, DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::search_event::Event;
use proto::v1::transfer::State;

use crate::harness::{search_all, start, start_item, wait_until};
use crate::testnet::{Behavior, CHUNK, TestFile, TestNet};

const SIZE: usize = 3 * CHUNK;

fn file(name: &str, n: u8) -> TestFile {
    TestFile::new(
        name,
        SIZE,
        n,
        ContentId::new(None).with(HashKind::Ed2k, &[n; 16]),
    )
}

fn link(name: &str, n: u8) -> String {
    let hex: String = [n; 16].iter().map(|b| format!("{b:02x}")).collect();
    format!("ed2k://|file|{name}|{SIZE}|{hex}|/")
}

/// Where a finished transfer went, after checking that it is a plain file directly in
/// the downloads folder with the bytes the network served.
async fn finished_in(gw: &mut crate::harness::Running, id: &str, downloads: &Path) -> PathBuf {
    let done = wait_until(&mut gw.client, id, 20, |t| t.state() == State::Complete).await;
    let path = PathBuf::from(&done.path);
    assert_eq!(path.parent(), Some(downloads), "{}", done.path);
    assert!(path.is_file(), "{}", done.path);
    path
}

#[tokio::test]
async fn names_from_links_and_hits_stay_in_the_downloads_folder_and_replace_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let downloads = data.join("downloads");
    // The names as a link carries them (percent-encoded), and what must come out.
    let evil = [
        ("..%2F..%2F..%2Fescape.bin", "_.._.._escape.bin"),
        ("%2Fetc%2Fpasswd", "_etc_passwd"),
        ("a%5C..%5C..%5Cb.txt", "a_.._.._b.txt"),
        ("CON.txt", "_CON.txt"),
        ("holiday%E2%80%AEgpj.exe", "holidaygpj.exe"),
        ("..", "unnamed"),
        ("movie.avi", "movie.avi"),
        ("movie.avi", "movie (1).avi"),
    ];
    let mut files: Vec<TestFile> = (0..evil.len())
        .map(|i| file("whatever", i as u8 + 1))
        .collect();
    files.push(file("../../hit/escape\u{202E}4pm.exe", 99));
    let net = Arc::new(TestNet::new(
        "liar",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        files,
    ));
    let mut gw = start(&data, vec![net as Arc<dyn DynNetwork>], None).await;
    for (i, (name, want)) in evil.iter().enumerate() {
        let t = gw
            .client
            .start_transfer(pb::StartTransferRequest {
                source: Some(pb::start_transfer_request::Source::Link(link(
                    name,
                    i as u8 + 1,
                ))),
                networks: vec![],
                files: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        let path = finished_in(&mut gw, &t.id, &downloads).await;
        assert_eq!(path.file_name().unwrap().to_str(), Some(*want), "{name}");
    }
    // The second "movie.avi" is another file: both are there, each with its own bytes.
    let first = std::fs::read(downloads.join("movie.avi")).unwrap();
    let second = std::fs::read(downloads.join("movie (1).avi")).unwrap();
    assert_ne!(first, second);

    // A search hit whose name climbs out of the folder and hides its extension.
    let events = search_all(&mut gw.client, "escape", 1000).await;
    let item = events
        .iter()
        .find_map(|e| match e {
            Event::Item(i) if i.name.contains("escape") => Some(i.clone()),
            _ => None,
        })
        .expect("the hit");
    let t = start_item(&mut gw.client, &item.id).await;
    let path = finished_in(&mut gw, &t.id, &downloads).await;
    assert_eq!(
        path.file_name().unwrap().to_str(),
        Some("_.._hit_escape4pm.exe")
    );
    // Nothing was written anywhere but the data folder.
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("data")]);
    gw.stop().await;
}
