//! A multi-file torrent is saved as its folder of files, as qBittorrent saves it: started
//! from its `.torrent`, from a magnet whose metadata brings the file list, and from a
//! magnet with a size (one file until it completes, then split into the files). A restart
//! finds the finished folder complete.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use junction_core::swarm::{MemStore, Store, Swarm, SwarmSink};
use junction_core::{ContentId, DynNetwork, FetchEvents, FetchRequest, NetworkId, RangeSet};
use proto::v1 as pb;
use proto::v1::transfer::State;
use sha1::Digest;

use crate::harness::{start, start_torrent, wait_until};

mod by_hash;
mod restart_seed;

const PIECE: usize = 32 * 1024;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn bytes(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

/// The torrent's files as (path, bytes); `None` is BEP 47 padding to the next piece.
fn files() -> Vec<(&'static str, Option<Vec<u8>>)> {
    vec![
        ("Season 1/e1.mkv", Some(bytes(300_000, 1))),
        (".pad/27680", None),
        ("Season 1/e2.mkv", Some(bytes(200_001, 2))),
        ("empty.nfo", Some(Vec::new())),
        ("notes.txt", Some(b"shot on a phone".to_vec())),
    ]
}

/// The content's bytes (padding as zeros) and the `.torrent` "Show S1" of `files`.
fn torrent_of(tracker: &str, files: &[(&str, Option<Vec<u8>>)]) -> (Vec<u8>, Vec<u8>) {
    torrent_with(tracker, files, false)
}

/// [`torrent_of`], each file (not padding) also named by its own SHA-1 (BEP 47 `sha1`).
fn torrent_with(
    tracker: &str,
    files: &[(&str, Option<Vec<u8>>)],
    file_sha1: bool,
) -> (Vec<u8>, Vec<u8>) {
    let mut data = Vec::new();
    let mut list = Vec::new();
    for (path, bytes) in files {
        let parts: String = path
            .split('/')
            .map(|p| format!("{}:{p}", p.len()))
            .collect();
        let len = match bytes {
            Some(b) => {
                data.extend_from_slice(b);
                list.extend(format!("d6:lengthi{}e4:pathl{parts}e", b.len()).bytes());
                if file_sha1 {
                    list.extend(b"4:sha120:");
                    list.extend(sha1::Sha1::digest(b));
                }
                list.push(b'e');
                continue;
            }
            None => PIECE - data.len() % PIECE,
        };
        data.resize(data.len() + len, 0);
        list.extend(format!("d4:attr1:p6:lengthi{len}e4:pathl{parts}ee").bytes());
    }
    let pieces: Vec<u8> = data.chunks(PIECE).flat_map(sha1::Sha1::digest).collect();
    let mut t = format!("d8:announce{}:{tracker}4:infod5:filesl", tracker.len()).into_bytes();
    t.extend(list);
    t.extend(
        format!(
            "e4:name7:Show S112:piece lengthi{PIECE}e6:pieces{}:",
            pieces.len()
        )
        .bytes(),
    );
    t.extend(pieces);
    t.extend(b"ee");
    (data, t)
}

/// A BitTorrent peer seeding the content from memory; keep the events alive.
async fn seeder(tracker: &str, data: &[u8], torrent: &[u8]) -> (bittorrent::Adapter, FetchEvents) {
    let peer = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        trackers: vec![tracker.to_owned()],
        ..Default::default()
    })
    .await
    .unwrap();
    let size = data.len() as u64;
    let store = MemStore::new(size);
    store.write_at(data, 0).unwrap();
    let swarm = Arc::new(Swarm::new(store, size, RangeSet::full(size)));
    let req = FetchRequest {
        id: ContentId::new(Some(size)),
        name: "Show S1".into(),
        size,
        sources: Vec::new(),
        trackers: Vec::new(),
        torrent: Some(torrent.to_vec().into()),
    };
    let sink = SwarmSink::new(swarm, NetworkId::BITTORRENT);
    let events = DynNetwork::fetch(&peer, req, sink).await.unwrap();
    (peer, events)
}

/// Every file of the torrent is in `folder`, byte for byte, and no padding is.
fn assert_folder(folder: &Path) {
    assert!(folder.is_dir(), "{} is not a folder", folder.display());
    assert_eq!(folder.file_name().unwrap(), "Show S1");
    for (path, bytes) in files() {
        match bytes {
            Some(b) => assert!(
                std::fs::read(folder.join(path)).unwrap() == b,
                "{path} differs"
            ),
            None => assert!(!folder.join(".pad").exists(), "padding was written"),
        }
    }
}

/// A gateway's BitTorrent peer and Gnutella ultrapeer (no peers but its leaves).
async fn bittorrent_and_ultrapeer() -> (bittorrent::Adapter, gnutella::Adapter) {
    let bt = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        ..Default::default()
    })
    .await
    .unwrap();
    let ultrapeer = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        ultrapeer: true,
        ..Default::default()
    })
    .await
    .unwrap();
    (bt, ultrapeer)
}

/// A gateway in `dir` with one BitTorrent peer.
async fn gateway(dir: &Path) -> crate::harness::Running {
    let bt = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        ..Default::default()
    })
    .await
    .unwrap();
    start(dir, vec![Arc::new(bt)], None).await
}

/// Starts a gateway in `dir`, fetches from `source` and returns the finished transfer.
async fn fetch(
    dir: &Path,
    source: pb::start_transfer_request::Source,
    files: &[u32],
) -> pb::Transfer {
    let mut gw = gateway(dir).await;
    let t = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(source),
            networks: vec![],
            files: files.to_vec(),
        })
        .await
        .unwrap()
        .into_inner();
    let done = wait_until(&mut gw.client, &t.id, 60, |t| t.state() == State::Complete).await;
    gw.stop().await;
    done
}

/// Seeds the torrent of `files` announced to `tracker` and fetches all of it with a gateway
/// of its own: the gateway's folder and the finished transfer.
async fn seed_and_fetch(
    tracker: &str,
    files: &[(&str, Option<Vec<u8>>)],
) -> (tempfile::TempDir, pb::Transfer) {
    let (data, torrent) = torrent_of(tracker, files);
    let _seed = seeder(tracker, &data, &torrent).await;
    let dir = tempfile::tempdir().unwrap();
    let source = pb::start_transfer_request::Source::Torrent(torrent);
    let done = fetch(dir.path(), source, &[]).await;
    (dir, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_file_torrent_is_saved_as_its_folder_of_files() {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let (data, torrent) = torrent_of(&url, &files());
    let btih = {
        let link = junction_core::link::parse_torrent(&torrent).unwrap();
        hex::encode(link.id.get(junction_core::HashKind::Btih).unwrap())
    };
    let _seed = seeder(&url, &data, &torrent).await;
    let enc = junction_core::link::percent_encode(&url);
    let sources = [
        pb::start_transfer_request::Source::Torrent(torrent.clone()),
        // The file list comes with the metadata.
        pb::start_transfer_request::Source::Link(format!("magnet:?xt=urn:btih:{btih}&tr={enc}")),
        // Sized: one file until it completes, then split into the files.
        pb::start_transfer_request::Source::Link(format!(
            "magnet:?xt=urn:btih:{btih}&xl={}&dn=Show%20S1&tr={enc}",
            data.len()
        )),
    ];
    for source in sources {
        let dir = tempfile::tempdir().unwrap();
        let done = fetch(dir.path(), source.clone(), &[]).await;
        let folder = Path::new(&done.path);
        assert_eq!(folder.parent().unwrap(), dir.path().join("downloads"));
        assert_folder(folder);
        let left = std::fs::read_dir(dir.path().join("incomplete"))
            .unwrap()
            .count();
        assert_eq!(left, 0, "{source:?} left data behind in incomplete/");
        // A restart finds it complete, from the files.
        let mut gw = gateway(dir.path()).await;
        let again = gw
            .client
            .get_transfer(pb::TransferRef {
                id: done.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.state(), State::Complete, "{again:?}");
        assert_eq!(again.bytes_verified, data.len() as u64);
        gw.stop().await;
    }
}

/// Names a torrent may carry that no file system should see as they are: each file lands
/// inside the folder under a name of its own. A path that climbs out is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_in_a_torrent_stay_inside_its_folder_and_never_collide() {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let long = format!("{}.mkv", "x".repeat(300));
    let evil: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("CON", Some(bytes(1000, 1))),
        ("a:b", Some(bytes(2000, 2))),
        ("a_b", Some(bytes(3000, 3))),
        ("sub/\u{202E}vkm.exe", Some(bytes(4000, 4))),
        (&long, Some(bytes(5000, 5))),
        ("trailing dot.", Some(bytes(6000, 6))),
        ("trailing dot", Some(bytes(7000, 7))),
    ];
    let (_dir, done) = seed_and_fetch(&url, &evil).await;
    let folder = Path::new(&done.path);
    let mut found = Vec::new();
    let mut walk = vec![folder.to_path_buf()];
    while let Some(d) = walk.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            match p.is_dir() {
                true => walk.push(p),
                false => found.push(p),
            }
        }
    }
    assert_eq!(found.len(), evil.len(), "{found:?}");
    for p in &found {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(p.starts_with(folder), "{p:?}");
        assert!(name.len() <= 255, "{name}");
        assert!(
            !name.contains(['\u{202E}', ':']) && !name.ends_with('.'),
            "{name:?}"
        );
        assert!(!name.eq_ignore_ascii_case("con"), "{name:?}");
    }
    // Every file's bytes are somewhere: distinct sizes tell them apart.
    for (path, b) in &evil {
        let b = b.as_ref().unwrap();
        let hit = found
            .iter()
            .find(|p| std::fs::metadata(p).unwrap().len() == b.len() as u64)
            .unwrap_or_else(|| panic!("{path:?} is missing"));
        assert!(std::fs::read(hit).unwrap() == *b, "{path:?} differs");
    }

    // A path that climbs out of the folder: refused, and nothing is made.
    let (_, climbs) = torrent_of(&url, &[("../escaped.txt", Some(bytes(10, 9)))]);
    let dir = tempfile::tempdir().unwrap();
    let mut gw = gateway(dir.path()).await;
    let err = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Torrent(climbs)),
            networks: vec![],
            files: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("\"..\""), "{}", err.message());
    let list = gw
        .client
        .list_transfers(pb::ListTransfersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(list.transfers.is_empty(), "{list:?}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("incomplete"))
            .unwrap()
            .count(),
        0
    );
    assert!(!dir.path().join("escaped.txt").exists());
    gw.stop().await;
}

/// A torrent whose paths make one name both a file and a folder (`a` and `a/b`, and the
/// other way round): the later one gets a numbered name, so every file is made and the
/// transfer completes, each file's bytes in the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_and_a_folder_of_one_name_in_a_torrent_both_land_in_its_folder() {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let clash: Vec<(&str, Option<Vec<u8>>)> = vec![
        ("a", Some(bytes(1000, 1))),
        ("a/b", Some(bytes(2000, 2))),
        ("c/d.txt", Some(bytes(3000, 3))),
        ("c", Some(bytes(4000, 4))),
    ];
    let (dir, done) = seed_and_fetch(&url, &clash).await;
    let folder = Path::new(&done.path);
    assert_eq!(folder.parent().unwrap(), dir.path().join("downloads"));
    // What comes first keeps its name; the later file or folder is numbered.
    for (at, (path, b)) in ["a", "a (1)/b", "c/d.txt", "c (1)"].iter().zip(&clash) {
        let got = std::fs::read(folder.join(at)).unwrap_or_else(|e| panic!("{at}: {e}"));
        assert!(got == *b.as_ref().unwrap(), "{path} (at {at}) differs");
    }
    let mut top: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, ["a", "a (1)", "c", "c (1)"]);
}

/// Only the files asked for are fetched (the others are not even made); more can be asked
/// for once it is complete, through the qBittorrent front as its apps do, and it goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_files_chosen_are_fetched_and_more_can_be_chosen_later() {
    use crate::harness::http::Fronts;
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let all = files();
    let (data, torrent) = torrent_of(&url, &all);
    let btih = {
        let link = junction_core::link::parse_torrent(&torrent).unwrap();
        hex::encode(link.id.get(junction_core::HashKind::Btih).unwrap())
    };
    let _seed = seeder(&url, &data, &torrent).await;
    let dir = tempfile::tempdir().unwrap();
    let mut gw = gateway(dir.path()).await;
    let bad = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Torrent(torrent.clone())),
            networks: vec![],
            files: vec![7],
        })
        .await
        .unwrap_err();
    assert!(
        bad.message().contains("numbered 0 to 3"),
        "{}",
        bad.message()
    );
    let t = start_torrent(&mut gw.client, torrent, vec![1]).await;
    let done = wait_until(&mut gw.client, &t.id, 60, |t| t.state() == State::Complete).await;
    let wanted: Vec<bool> = done.files.iter().map(|f| f.wanted).collect();
    assert_eq!(wanted, [false, true, false, false], "{:?}", done.files);
    let folder = Path::new(&done.path);
    let e2 = all[2].1.as_ref().unwrap();
    assert!(std::fs::read(folder.join("Season 1/e2.mkv")).unwrap() == *e2);
    assert!(
        !folder.join("Season 1/e1.mkv").exists(),
        "a file left out was made"
    );
    let received: u64 = done.per_network.iter().map(|n| n.bytes_received).sum();
    assert!(
        received <= e2.len() as u64 + 2 * PIECE as u64,
        "{received} bytes received for a {} byte file",
        e2.len()
    );

    // qBittorrent's apps: the files and their priorities, then every file wanted.
    let fronts = Fronts::serve(&gw, std::time::Duration::from_secs(10)).await;
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let login = fronts
        .request(
            "POST",
            "/api/v2/auth/login",
            &[form, ("Content-Length", "27")],
            b"username=admin&password=any",
            |_| {},
        )
        .await;
    let sid = login.header("set-cookie").unwrap();
    let cookie = ("Cookie", sid.split(';').next().unwrap());
    let listed = fronts
        .get(&format!("/api/v2/torrents/files?hash={btih}"), &[cookie])
        .await
        .json();
    let prio: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["priority"].as_i64().unwrap())
        .collect();
    assert_eq!(prio, [0, 1, 0, 0], "{listed}");
    let post = |body: String| {
        let fronts = &fronts;
        async move {
            let len = body.len().to_string();
            let headers = [form, cookie, ("Content-Length", len.as_str())];
            fronts
                .request(
                    "POST",
                    "/api/v2/torrents/filePrio",
                    &headers,
                    body.as_bytes(),
                    |_| {},
                )
                .await
        }
    };
    let r = post(format!("hash={btih}&id=9&priority=1")).await;
    assert_eq!(r.status, 409, "{}", r.text());
    let r = post(format!("hash={btih}&id=0|2|3&priority=1")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let again = wait_until(&mut gw.client, &t.id, 60, |t| {
        t.state() == State::Complete && t.files.iter().all(|f| f.wanted)
    })
    .await;
    assert_eq!(again.path, done.path, "fetched on in its folder");
    assert_folder(folder);
    fronts.stop().await;
    gw.stop().await;
}

/// A magnet's files are learnt with its metadata: the files asked for with it are fetched,
/// the others never made, also when its bytes went into one file first (a sized magnet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_keeps_the_files_chosen_until_its_metadata_lists_them() {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let all = files();
    let (data, torrent) = torrent_of(&url, &all);
    let btih = {
        let link = junction_core::link::parse_torrent(&torrent).unwrap();
        hex::encode(link.id.get(junction_core::HashKind::Btih).unwrap())
    };
    let _seed = seeder(&url, &data, &torrent).await;
    let enc = junction_core::link::percent_encode(&url);
    for xl in ["", &format!("&xl={}", data.len())] {
        let magnet = format!("magnet:?xt=urn:btih:{btih}{xl}&dn=Show%20S1&tr={enc}");
        let dir = tempfile::tempdir().unwrap();
        let source = pb::start_transfer_request::Source::Link(magnet);
        let done = fetch(dir.path(), source, &[1]).await;
        let wanted: Vec<bool> = done.files.iter().map(|f| f.wanted).collect();
        assert_eq!(
            wanted,
            [false, true, false, false],
            "{xl}: {:?}",
            done.files
        );
        let folder = Path::new(&done.path);
        let e2 = all[2].1.as_ref().unwrap();
        assert!(
            std::fs::read(folder.join("Season 1/e2.mkv")).unwrap() == *e2,
            "{xl}"
        );
        // With xl= the bytes flow before the metadata's file list is applied, so pieces of
        // a file left out may have come already (and are kept); without, none does.
        assert!(
            !xl.is_empty() || !folder.join("Season 1/e1.mkv").exists(),
            "{xl}: a file left out was made"
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("incomplete"))
                .unwrap()
                .count(),
            0
        );
    }
}

/// Each file of a finished folder is hashed and offered on its own, as the other networks
/// know files one by one: a Gnutella user fetches one by its SHA-1 from the gateway. A file
/// left out, and an empty one, are not offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_file_of_a_finished_folder_is_offered_on_the_other_networks() {
    let tracker = bittorrent::TrackerServer::bind(loopback(), None, 2)
        .await
        .unwrap();
    let url = tracker.announce_url();
    let all = files();
    let (data, torrent) = torrent_of(&url, &all);
    let _seed = seeder(&url, &data, &torrent).await;
    let dir = tempfile::tempdir().unwrap();
    let (bt, ultrapeer) = bittorrent_and_ultrapeer().await;
    let up = ultrapeer.local_addr();
    let mut gw = start(dir.path(), vec![Arc::new(bt), Arc::new(ultrapeer)], None).await;
    // e2.mkv, empty.nfo and notes.txt; e1.mkv is left out.
    let t = start_torrent(&mut gw.client, torrent, vec![1, 2, 3]).await;
    let done = wait_until(&mut gw.client, &t.id, 60, |t| t.state() == State::Complete).await;
    let folder = Path::new(&done.path);
    let mut shared = Vec::new();
    for _ in 0..300 {
        shared = gw
            .client
            .list_shares(pb::ListSharesRequest {})
            .await
            .unwrap()
            .into_inner()
            .files;
        if shared.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let paths: Vec<&str> = shared.iter().map(|f| f.path.as_str()).collect();
    let expect = [folder.join("Season 1/e2.mkv"), folder.join("notes.txt")];
    assert_eq!(
        paths,
        expect
            .iter()
            .map(|p| p.to_str().unwrap())
            .collect::<Vec<_>>()
    );
    for f in &shared {
        assert!(f.networks.iter().any(|n| n == "gnutella"), "{f:?}");
    }
    // A Gnutella user asks the gateway for each file by its SHA-1.
    let by_sha1 = |bytes: &[u8]| {
        let sha1 = sha1::Sha1::digest(bytes);
        format!(
            "/uri-res/N2R?urn:sha1:{}",
            junction_core::HashKind::Sha1.format(&sha1)
        )
    };
    let wait = std::time::Duration::from_secs(20);
    for i in [2, 4] {
        let bytes = all[i].1.as_ref().unwrap();
        let r = crate::harness::http::get(up, &by_sha1(bytes), &[], wait).await;
        assert_eq!(r.status, 200, "{}: {}", all[i].0, r.head);
        assert!(r.body == *bytes, "{} served wrong bytes", all[i].0);
    }
    let left_out = all[0].1.as_ref().unwrap();
    let r = crate::harness::http::get(up, &by_sha1(left_out), &[], wait).await;
    assert_eq!(r.status, 404, "a file left out is offered: {}", r.head);
    gw.stop().await;
}
