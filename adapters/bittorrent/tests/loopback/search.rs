//! The search index: Torznab feed items merged into results, and DHT samples feeding it.

use std::time::{Duration, Instant};

use futures::StreamExt;
use junction_bittorrent::Adapter;
use junction_core::{ContentId, Network, SharedItem};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{random_bytes, test_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_merges_torznab_feed_items() {
    const XML: &str = r#"<?xml version="1.0"?><rss xmlns:torznab="http://torznab.com/schemas/2015/feed"><channel>
<item><title>Big Buck Bunny 1080p</title><size>276134947</size>
<torznab:attr name="seeders" value="7"/><torznab:attr name="peers" value="9"/>
<torznab:attr name="infohash" value="dd8255ecdc7ca55fb0bbf81323d87062db1f6d1c"/></item>
</channel></rss>"#;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let feed = format!("http://{}/api?apikey=test", l.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\n\r\n{XML}",
                XML.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    let mut cfg = test_config(vec![]);
    cfg.torznab = vec![feed];
    let a = Adapter::start(cfg).await.unwrap();
    let hits: Vec<_> = a
        .search(junction_core::query::parse("bunny").unwrap())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    let h = hits[0].as_ref().unwrap();
    assert_eq!(h.name, "Big Buck Bunny 1080p");
    assert_eq!(
        (h.size, h.sources, h.complete_sources),
        (276_134_947, 9, Some(7))
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_samples_feed_the_search_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sampled over the dht.bin");
    std::fs::write(&path, random_bytes(300_000)).unwrap();
    let mut cfg = test_config(vec![]);
    cfg.dht_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.dht_index = false;
    let seeder = Adapter::start(cfg).await.unwrap();
    seeder
        .share(SharedItem {
            path,
            name: String::new(),
            size: 300_000,
            id: ContentId::new(None),
            hashes: None,
        })
        .await
        .unwrap();
    let mut cfg = test_config(vec![]);
    cfg.dht_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.dht_bootstrap = vec![seeder.dht_addr().unwrap().to_string()];
    cfg.dht_sample_interval = Duration::from_secs(1);
    let indexer = Adapter::start(cfg).await.unwrap();
    let q = || junction_core::query::parse("sampled dht").unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut hits = Vec::new();
    while Instant::now() < deadline {
        hits = indexer.search(q()).await.unwrap().collect().await;
        if !hits.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(hits.len(), 1, "the indexer learnt the torrent from the DHT");
    let h = hits[0].as_ref().unwrap();
    assert_eq!(
        (h.name.as_str(), h.size),
        ("sampled over the dht.bin", 300_000)
    );
    indexer.shutdown().await;
    seeder.shutdown().await;
}
