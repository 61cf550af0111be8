//! Endpoints removed while the adapter runs: a DHT node leaves the routing table.

use std::time::Duration;

use junction_bittorrent::Adapter;
use junction_core::{Network, NetworkError};

use crate::test_config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_dht_node_leaves_the_routing_table() {
    let dht_config = || {
        let mut c = test_config(vec![]);
        c.dht_listen = Some("127.0.0.1:0".parse().unwrap());
        c.dht_index = false;
        c
    };
    let a = Adapter::start(dht_config()).await.unwrap();
    let b = Adapter::start(dht_config()).await.unwrap();
    let node = a.dht_addr().unwrap().to_string();
    b.add_endpoint(node.clone()).await.unwrap();
    let nodes = || b.status().dht_nodes;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while nodes() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(nodes(), 1);
    b.remove_endpoint(node.clone()).await.unwrap();
    assert_eq!(nodes(), 0);
    let again = b.remove_endpoint(node).await.unwrap_err();
    assert!(
        matches!(&again, NetworkError::NotFound(m) if m.contains("not in the routing table")),
        "{again}"
    );
    a.shutdown().await;
    b.shutdown().await;
}
