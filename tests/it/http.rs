//! The HTTP fronts through real HTTP/1.1 on 127.0.0.1: streaming for players (ranges,
//! HEAD, a playlist, a file read while it downloads) and the Torznab indexer, on the lab;
//! and the token rules, which refuse and change nothing.

use std::time::Duration;

use junction_core::link::percent_encode;
use junction_core::{HashKind, NetworkId};
use lab::World;

use crate::harness::http::Fronts;
use crate::harness::{Running, start_with};
use crate::lab::{MIB, gateway, search_until_complete, world};

/// Longest any one request may take, body included.
const REQUEST_TIME: Duration = Duration::from_secs(120);

/// The `<item>`s of a Torznab feed.
fn items(feed: &str) -> Vec<&str> {
    feed.split("<item>")
        .skip(1)
        .map(|i| i.split("</item>").next().unwrap())
        .collect()
}

fn tag<'a>(item: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let rest = &item[item.find(&open)? + open.len()..];
    Some(&rest[..rest.find(&format!("</{name}>"))?])
}

fn attr(item: &str, name: &str) -> Option<String> {
    let key = format!("name=\"{name}\" value=\"");
    let rest = &item[item.find(&key)? + key.len()..];
    Some(unescape(&rest[..rest.find('"')?]))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn btih_of_magnet(magnet: &str) -> Option<String> {
    let at = magnet.find("urn:btih:")? + "urn:btih:".len();
    Some(magnet[at..at + 40].to_ascii_lowercase())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_streams_ranges_and_playlists_and_indexes_the_lab() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), 16, Some(2 * MIB)).await;
    let mut gw = gateway(&world, &dir.path().join("gw")).await;
    let http = Fronts::serve(&gw, REQUEST_TIME).await;
    // Every network has indexed the lab's files before Torznab searches them.
    search_until_complete(&mut gw, &world, "lab").await;

    torznab(&http, &world).await;
    let ocean = world
        .files
        .iter()
        .find(|f| f.name == "Lab Ocean Waves.mp3")
        .unwrap();
    let id = ranges(&http, &gw, ocean).await;
    bad_input_changes_nothing(&http, &gw, &id).await;
    stream_while_downloading(&http, &gw, &world).await;

    http.stop().await;
    gw.stop().await;
    world.shutdown().await;
}

/// Caps, a search whose items all carry what the apps read, the RSS probe, tvsearch, and
/// Torznab's error form.
async fn torznab(http: &Fronts, world: &World) {
    torznab_caps(http).await;
    torznab_search(http, world).await;
    torznab_tvsearch_and_errors(http).await;
}

/// Caps: XML naming search and tv-search with their parameters, and the categories.
async fn torznab_caps(http: &Fronts) {
    let caps = http.get("/torznab/api?t=caps", &[]).await;
    assert_eq!(caps.status, 200, "{}", caps.text());
    let caps = caps.text();
    assert!(
        caps.starts_with("<?xml") && caps.contains("<caps>"),
        "{caps}"
    );
    assert!(
        caps.contains(r#"<search available="yes" supportedParams="q"/>"#),
        "{caps}"
    );
    assert!(
        caps.contains(r#"<tv-search available="yes" supportedParams="q,season,ep"/>"#),
        "{caps}"
    );
    for cat in ["2000", "3000", "5000", "7000", "8000"] {
        assert!(
            caps.contains(&format!("<category id=\"{cat}\"")),
            "{cat}: {caps}"
        );
    }
}

/// A search whose items all carry what the apps read, every lab file among them, each
/// with its info-hash and category.
async fn torznab_search(http: &Fronts, world: &World) {
    let feed = http
        .get("/torznab/api?t=search&q=Lab&cat=2000,3000,7000,8000", &[])
        .await;
    assert_eq!(feed.status, 200, "{}", feed.text());
    assert!(feed.header("content-type").unwrap().contains("xml"));
    let feed = feed.text();
    let found = items(&feed);
    for f in &world.files {
        assert!(
            found
                .iter()
                .any(|i| tag(i, "title") == Some(f.name.as_str())),
            "{} missing from {feed}",
            f.name
        );
    }
    for i in &found {
        assert!(tag(i, "pubDate").is_some_and(|d| d.ends_with("GMT")), "{i}");
        let magnet = attr(i, "magneturl").unwrap();
        let infohash = attr(i, "infohash").unwrap();
        assert_eq!(
            btih_of_magnet(&magnet).as_deref(),
            Some(infohash.as_str()),
            "{i}"
        );
        assert!(i.contains("type=\"application/x-bittorrent\""), "{i}");
        assert!(attr(i, "size").unwrap().parse::<u64>().unwrap() > 0, "{i}");
        assert!(
            attr(i, "seeders").unwrap().parse::<u32>().unwrap() > 0,
            "{i}"
        );
        assert!(
            attr(i, "peers").is_some() && attr(i, "category").is_some(),
            "{i}"
        );
    }
    hashes_and_categories(&found, world);
}

/// A torrent keeps its own info-hash; eD2k-only content gets a synthetic one next to its
/// real hash. And each kind of file has its category.
fn hashes_and_categories(found: &[&str], world: &World) {
    let item_of = |name: &str| {
        *found
            .iter()
            .find(|i| tag(i, "title") == Some(name))
            .unwrap()
    };
    let on_bt = world
        .files
        .iter()
        .find(|f| f.is_on(NetworkId::BITTORRENT))
        .unwrap();
    let real = hex::encode(on_bt.id.get(HashKind::Btih).unwrap());
    assert_eq!(attr(item_of(&on_bt.name), "infohash").unwrap(), real);
    let ocean = item_of("Lab Ocean Waves.mp3");
    let magnet = attr(ocean, "magneturl").unwrap();
    assert!(magnet.contains("xt=urn:ed2k:"), "{magnet}");
    assert_eq!(attr(ocean, "category").as_deref(), Some("3000"));
    assert_eq!(
        attr(item_of("Lab City Atlas.pdf"), "category").as_deref(),
        Some("7000")
    );
    assert_eq!(
        attr(item_of("Lab Sunrise Timelapse 1080p.mkv"), "category").as_deref(),
        Some("2000")
    );
}

/// The apps' RSS probe (no query, still items), a tvsearch that finds no episode, and
/// Torznab's error form.
async fn torznab_tvsearch_and_errors(http: &Fronts) {
    // The apps' RSS probe: no query, still items.
    let probe = http
        .get("/torznab/api?t=tvsearch&cat=5030,5040&extended=1", &[])
        .await;
    assert_eq!(probe.status, 200);
    assert!(!items(&probe.text()).is_empty(), "{}", probe.text());
    // No lab file is an episode.
    let tv = http
        .get("/torznab/api?t=tvsearch&q=lab&season=1&ep=2", &[])
        .await;
    assert_eq!(tv.status, 200);
    assert!(items(&tv.text()).is_empty(), "{}", tv.text());

    let bad = http.get("/torznab/api?t=nothing", &[]).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.text().contains(r#"<error code="202""#),
        "{}",
        bad.text()
    );
    let bad = http
        .get("/torznab/api?t=tvsearch&q=lab&season=one", &[])
        .await;
    assert!(
        bad.text().contains(r#"<error code="201""#),
        "{}",
        bad.text()
    );
}

/// An eD2k-only file through its synthetic-btih magnet from Torznab, then the ranges
/// players send. Returns its transfer id.
async fn ranges(http: &Fronts, gw: &Running, file: &lab::LabFile) -> String {
    let feed = http
        .get("/torznab/api?t=search&q=ocean+waves", &[])
        .await
        .text();
    let item = *items(&feed).first().expect("no item for ocean waves");
    let magnet = attr(item, "magneturl").unwrap();
    let data = std::fs::read(&file.path).unwrap();
    let size = data.len() as u64;

    let whole = http
        .get(&format!("/content/{}", percent_encode(&magnet)), &[])
        .await;
    assert_eq!(whole.status, 200, "{}", whole.head);
    assert_eq!(whole.header("content-length"), Some(size.to_string()));
    assert_eq!(whole.header("accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(whole.header("content-type").as_deref(), Some("audio/mpeg"));
    assert!(whole.body == data, "the streamed file differs");
    let transfers = gw.gw.transfers.list();
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    let id = transfers[0].id.clone();
    assert!(
        transfers[0].content.get(HashKind::Btih).is_none(),
        "the synthetic info-hash went into the transfer: {:?}",
        transfers[0].content
    );
    // The bare synthetic info-hash names the same transfer.
    let infohash = attr(item, "infohash").unwrap();
    let again = http
        .get(
            &format!("/content/btih:{infohash}"),
            &[("Range", "bytes=0-1")],
        )
        .await;
    assert_eq!(again.status, 206, "{}", again.text());
    assert_eq!(gw.gw.transfers.list().len(), 1);

    let path = format!("/content/{id}");
    let r = http.get(&path, &[("Range", "bytes=0-1")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some(format!("bytes 0-1/{size}")));
    assert_eq!(r.header("content-length").as_deref(), Some("2"));
    assert_eq!(r.body, data[..2]);

    let r = http.get(&path, &[("Range", "bytes=-1000")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes {}-{}/{size}", size - 1000, size - 1))
    );
    assert_eq!(r.body, data[data.len() - 1000..]);

    let r = http.get(&path, &[("Range", "bytes=1000000-")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[1_000_000..]);

    let r = http
        .get(&path, &[("Range", &format!("bytes={size}-"))])
        .await;
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(r.header("content-range"), Some(format!("bytes */{size}")));

    let r = http.request("HEAD", &path, &[], b"", |_| {}).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(size.to_string()));
    assert_eq!(r.header("accept-ranges").as_deref(), Some("bytes"));
    assert!(r.body.is_empty());
    let r = http
        .request("HEAD", &path, &[("Range", "bytes=-10")], b"", |_| {})
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-length").as_deref(), Some("10"));

    let m3u = http.get(&format!("{path}.m3u"), &[]).await;
    assert_eq!(m3u.status, 200);
    let text = m3u.text();
    assert!(text.starts_with("#EXTM3U\n"), "{text}");
    assert!(
        text.contains(&format!("http://{}{path}\n", http.addr)),
        "{text}"
    );
    assert!(text.contains("Lab Ocean Waves.mp3"), "{text}");
    id
}

/// Bad ranges and ids get their 4xx with a message, and no transfer appears or changes.
async fn bad_input_changes_nothing(http: &Fronts, gw: &Running, id: &str) {
    let before = gw.gw.transfers.list();
    let path = format!("/content/{id}");
    for (range, status) in [
        ("bytes=5-2", 400),
        ("bytes=abc", 400),
        ("bytes=0-1,4-5", 400),
        ("lines=0-1", 400),
        ("bytes=-0", 416),
    ] {
        let r = http.get(&path, &[("Range", range)]).await;
        assert_eq!(r.status, status, "{range}: {}", r.text());
        assert!(
            r.text().contains("range") || r.text().contains("Range"),
            "{}",
            r.text()
        );
    }
    for unknown in ["0123456789abcdef", "not-a-thing", "magnet%3A%3Fdn%3Dx"] {
        let r = http.get(&format!("/content/{unknown}"), &[]).await;
        assert!(
            matches!(r.status, 400 | 404),
            "{unknown}: {} {}",
            r.status,
            r.text()
        );
        assert!(r.text().len() > 10, "no message: {}", r.text());
    }
    let r = http.get("/nowhere", &[]).await;
    assert_eq!(r.status, 404);
    let after = gw.gw.transfers.list();
    assert_eq!(
        before.iter().map(|t| (&t.id, t.state)).collect::<Vec<_>>(),
        after.iter().map(|t| (&t.id, t.state)).collect::<Vec<_>>()
    );
}

/// The large file, seeded at 2 MiB/s per seeder: its tail (which players probe first), then,
/// paused, all of it from the start, the first bytes arriving before the download completes.
async fn stream_while_downloading(http: &Fronts, gw: &Running, world: &World) {
    let large = world.files.iter().find(|f| f.large).unwrap();
    let data = std::fs::read(&large.path).unwrap();
    let magnet = large.magnet(world.tracker_url()).unwrap();
    let path = format!("/content/{}", percent_encode(&magnet));

    let tail = http.get(&path, &[("Range", "bytes=-65536")]).await;
    assert_eq!(tail.status, 206, "{}", tail.head);
    assert_eq!(tail.body, data[data.len() - 65536..]);

    let t = gw
        .gw
        .transfers
        .list()
        .into_iter()
        .find(|t| t.name == large.name)
        .unwrap();
    // A paused transfer starts again when a player reads it.
    let paused = gw.gw.transfers.pause(&t.id).unwrap();
    assert_eq!(paused.state, gateway::transfer::State::Paused);
    let mut early = None;
    let whole = http
        .request("GET", &path, &[], b"", |got| {
            if got > 0 && early.is_none() {
                let now = gw.gw.transfers.get(&t.id).unwrap();
                early = Some(now.state != gateway::transfer::State::Complete);
            }
        })
        .await;
    assert_eq!(whole.status, 200);
    assert_eq!(
        early,
        Some(true),
        "the body only began once the download was complete"
    );
    assert!(whole.body == data, "streamed bytes differ");
}

#[tokio::test]
async fn http_needs_the_token_when_set_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_with(dir.path(), vec![], |c| c.token = Some("s3cret".into())).await;
    let http = Fronts::serve(&gw, REQUEST_TIME).await;

    let r = http.get("/content/abc", &[]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
    assert!(r.text().contains("token"), "{}", r.text());
    let r = http
        .get("/content/abc", &[("Authorization", "Bearer nope")])
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = http.get("/content/abc?apikey=nope", &[]).await;
    assert_eq!(r.status, 403);

    let r = http.get("/torznab/api?t=caps", &[]).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains(r#"<error code="100""#), "{}", r.text());
    let r = http.get("/torznab/api?t=caps&apikey=wrong", &[]).await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains(r#"<error code="100""#), "{}", r.text());

    let r = http.get("/torznab/api?t=caps&apikey=s3cret", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http
        .get("/content/abc", &[("Authorization", "Bearer s3cret")])
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = http
        .get(
            "/content/ed2k%3A%2F%2F%7Cfile%7Cx%7Cnotasize%7C00%7C%2F",
            &[("Authorization", "Bearer s3cret")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("size"), "{}", r.text());

    assert!(gw.gw.transfers.list().is_empty());
    http.stop().await;
    gw.stop().await;
}
