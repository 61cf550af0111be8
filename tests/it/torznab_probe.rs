//! Torznab's empty `q`, as Prowlarr, Sonarr and Radarr send it to test an indexer and for
//! their RSS feed, on a gateway that has seen nothing yet: a valid RSS feed in every form
//! the apps send, never an error; and once the gateway has a transfer, that transfer.

use std::sync::Arc;
use std::time::Duration;

use junction_core::{ContentId, DynNetwork, HashKind};

use crate::harness::http::{Fronts, Reply};
use crate::harness::{search_all, start, start_item};
use crate::testnet::{Behavior, TestFile, TestNet};

/// The probes the apps send: Prowlarr's test (t=search, no q), Sonarr's and Radarr's RSS
/// (tvsearch and movie with categories, no q), an empty and a blank q, paging past the end.
const PROBES: [&str; 7] = [
    "/torznab/api?t=search",
    "/torznab/api?t=search&q=",
    "/torznab/api?t=search&q=+&cat=2000,5000",
    "/torznab/api?t=tvsearch&cat=5030,5040&extended=1&offset=0&limit=100",
    "/torznab/api?t=movie&cat=2000&extended=1",
    "/torznab/api?t=search&q=&offset=500&limit=0",
    "/torznab/api/?t=search&q=--",
];

fn net() -> Arc<dyn DynNetwork> {
    let file = TestFile::new(
        "Probe Sample 1080p.mkv",
        64 * 1024,
        3,
        ContentId::new(None).with(HashKind::Sha1, &[3; 20]),
    );
    Arc::new(TestNet::new(
        "testnet",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![file],
    ))
}

/// A well-formed, complete RSS document with its channel.
fn assert_feed(path: &str, r: &Reply) {
    let text = r.text();
    assert_eq!(r.status, 200, "{path}: {text}");
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/rss+xml")),
        "{path}: {}",
        r.head
    );
    assert!(text.starts_with("<?xml"), "{path}: {text}");
    assert!(text.contains("<rss version=\"2.0\""), "{path}: {text}");
    assert!(
        text.contains("<channel>") && text.trim_end().ends_with("</channel>\n</rss>"),
        "{path}: {text}"
    );
    assert!(!text.contains("<error"), "{path}: {text}");
    assert_eq!(
        text.matches("<item>").count(),
        text.matches("</item>").count(),
        "{path}: {text}"
    );
}

#[tokio::test]
async fn an_empty_query_on_a_new_gateway_is_a_valid_feed() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), vec![net()], None).await;
    let http = Fronts::serve(&gw, Duration::from_secs(60)).await;

    // Nothing seen yet: one placeholder item, which the apps need to pass their test,
    // in the categories asked for (past the end, nothing); and nothing started.
    for path in PROBES {
        let r = http.get(path, &[]).await;
        assert_feed(path, &r);
        let text = r.text();
        let paged_past = path.contains("offset=500");
        assert_eq!(
            text.matches("<item>").count(),
            usize::from(!paged_past),
            "{path}: {text}"
        );
        if !paged_past {
            assert!(text.contains("<title>Junction is ready"), "{path}: {text}");
            assert!(text.contains("<pubDate>"), "{path}: {text}");
        }
        if path.contains("cat=5030") {
            assert!(
                text.contains(r#"<torznab:attr name="category" value="5000"/>"#),
                "{path}: {text}"
            );
        }
    }
    assert!(gw.gw.transfers.list().is_empty());

    // Once the gateway has a transfer, the probe lists it, as the apps expect of a feed.
    let events = search_all(&mut gw.client, "probe sample", 3000).await;
    let item = events
        .iter()
        .find_map(|e| match e {
            proto::v1::search_event::Event::Item(i) => Some(i.id.clone()),
            _ => None,
        })
        .expect("the test network answers");
    start_item(&mut gw.client, &item).await;
    for path in &PROBES[..5] {
        let r = http.get(path, &[]).await;
        assert_feed(path, &r);
        let text = r.text();
        assert_eq!(text.matches("<item>").count(), 1, "{path}: {text}");
        assert!(text.contains("Probe Sample 1080p.mkv"), "{path}: {text}");
        assert!(text.contains("<pubDate>"), "{path}: {text}");
        assert!(
            text.contains("<torznab:attr name=\"infohash\""),
            "{path}: {text}"
        );
    }
    // Finished and shared, as downloads are: still one item, not one for the transfer and
    // another for its share.
    for _ in 0..200 {
        if !gw.gw.shares.list().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!gw.gw.shares.list().unwrap().is_empty(), "never shared");
    let r = http.get(PROBES[0], &[]).await;
    assert_feed(PROBES[0], &r);
    assert_eq!(r.text().matches("<item>").count(), 1, "{}", r.text());
    // Paging past the end is still a feed, with nothing in it.
    let r = http.get(PROBES[5], &[]).await;
    assert_feed(PROBES[5], &r);
    assert!(!r.text().contains("<item>"), "{}", r.text());

    http.stop().await;
    gw.stop().await;
}

#[tokio::test]
async fn an_empty_query_with_the_api_key_is_a_feed_and_without_it_a_torznab_error() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), vec![net()], Some("s3cret")).await;
    let http = Fronts::serve(&gw, Duration::from_secs(60)).await;

    let path = "/torznab/api?t=search&apikey=s3cret";
    assert_feed(path, &http.get(path, &[]).await);
    let r = http.get("/torznab/api?t=search", &[]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains(r#"<error code="100""#), "{}", r.text());

    http.stop().await;
    gw.stop().await;
}
