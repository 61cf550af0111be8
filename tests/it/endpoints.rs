//! Endpoints and shares managed through real gRPC: added endpoints (host names too) are
//! kept and added again after a restart, listed and removed; unshare withdraws a share
//! and forgets it; a finished transfer reads rate 0.

use std::sync::Arc;
use std::time::Duration;

use junction_core::{ContentId, DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::transfer::State;
use tonic::Code;

use crate::harness::{start, wait_until};
use crate::testnet::{Behavior, CHUNK, TestFile, TestNet};

fn net() -> Arc<TestNet> {
    let file = TestFile::new(
        "a.bin",
        8 * CHUNK,
        1,
        ContentId::new(None).with(HashKind::Ed2k, &[7; 16]),
    );
    Arc::new(TestNet::new(
        "testnet",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![file],
    ))
}

fn dyn_net(n: &Arc<TestNet>) -> Arc<dyn DynNetwork> {
    n.clone()
}

async fn listed(
    c: &mut proto::v1::gateway_client::GatewayClient<tonic::transport::Channel>,
) -> Vec<(String, String)> {
    c.list_endpoints(pb::ListEndpointsRequest {})
        .await
        .unwrap()
        .into_inner()
        .endpoints
        .into_iter()
        .map(|e| (e.network, e.address))
        .collect()
}

/// Waits until the network was handed `want` (re-adding runs in the background).
async fn handed(n: &TestNet, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = n.endpoints.lock().unwrap().clone();
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{got:?} != {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn endpoints_persist_are_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let first = net();
    let mut gw = start(dir.path(), vec![dyn_net(&first)], None).await;
    let c = &mut gw.client;
    for a in ["localhost:6346", " 127.0.0.1:7 "] {
        c.add_endpoint(pb::AddEndpointRequest {
            network: "testnet".into(),
            address: a.into(),
        })
        .await
        .unwrap();
    }
    // Refused input keeps nothing.
    for (network, address, code) in [
        ("testnet", "nocolon", Code::InvalidArgument),
        ("testnet", "  ", Code::InvalidArgument),
        ("gopher", "127.0.0.1:1", Code::InvalidArgument),
    ] {
        let e = c
            .add_endpoint(pb::AddEndpointRequest {
                network: network.into(),
                address: address.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
    }
    let both = vec![
        ("testnet".to_owned(), "127.0.0.1:7".to_owned()),
        ("testnet".to_owned(), "localhost:6346".to_owned()),
    ];
    assert_eq!(listed(c).await, both);
    gw.stop().await;

    // A restart hands the network every kept endpoint again.
    let second = net();
    let mut gw = start(dir.path(), vec![dyn_net(&second)], None).await;
    handed(&second, &["127.0.0.1:7", "localhost:6346"]).await;
    let c = &mut gw.client;
    assert_eq!(listed(c).await, both);

    // The test network cannot drop one while it runs: the reply says so, and it is
    // forgotten all the same.
    let r = c
        .remove_endpoint(pb::RemoveEndpointRequest {
            network: "testnet".into(),
            address: "localhost:6346".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.stopped, "{r:?}");
    assert!(
        r.note.contains("until the gateway restarts") && r.note.contains("not added again"),
        "{r:?}"
    );
    let e = c
        .remove_endpoint(pb::RemoveEndpointRequest {
            network: "testnet".into(),
            address: "localhost:6346".into(),
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::NotFound && e.message().contains("127.0.0.1:7"),
        "{e:?}"
    );
    assert_eq!(listed(c).await, both[..1].to_vec());
    gw.stop().await;

    let third = net();
    let gw = start(dir.path(), vec![dyn_net(&third)], None).await;
    handed(&third, &["127.0.0.1:7"]).await;
    gw.stop().await;
}

#[tokio::test]
async fn unshare_withdraws_and_forgets_a_share() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (one, two) = (files.path().join("one.txt"), files.path().join("two.txt"));
    std::fs::write(&one, b"one").unwrap();
    std::fs::write(&two, b"two").unwrap();
    let mut gw = start(dir.path(), vec![dyn_net(&net())], None).await;
    let c = &mut gw.client;
    c.share(pb::ShareRequest {
        path: files.path().to_string_lossy().into(),
    })
    .await
    .unwrap();
    let r = c
        .unshare(pb::UnshareRequest {
            path: one.to_string_lossy().into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.files.len(), 1);
    let f = &r.files[0];
    assert!(f.path.ends_with("one.txt"), "{f:?}");
    // The test network cannot withdraw an offer: it says what happens instead.
    assert!(f.withdrawn.is_empty(), "{f:?}");
    assert!(
        f.notes.len() == 1 && f.notes[0].contains("testnet") && f.notes[0].contains("restarts"),
        "{f:?}"
    );
    let e = c
        .unshare(pb::UnshareRequest {
            path: one.to_string_lossy().into(),
        })
        .await
        .unwrap_err();
    assert!(
        e.code() == Code::NotFound && e.message().contains("is not shared"),
        "{e:?}"
    );
    let left = c
        .list_shares(pb::ListSharesRequest {})
        .await
        .unwrap()
        .into_inner()
        .files;
    assert_eq!(left.len(), 1);
    assert!(left[0].path.ends_with("two.txt"));
    gw.stop().await;

    // Not offered again after a restart; the folder takes the rest.
    let mut gw = start(dir.path(), vec![dyn_net(&net())], None).await;
    let c = &mut gw.client;
    let r = c
        .unshare(pb::UnshareRequest {
            path: files.path().to_string_lossy().into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.files.len(), 1);
    assert!(
        c.list_shares(pb::ListSharesRequest {})
            .await
            .unwrap()
            .into_inner()
            .files
            .is_empty()
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_finished_transfer_reads_rate_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), vec![dyn_net(&net())], None).await;
    let link = format!("ed2k://|file|a.bin|{}|{}|/", 8 * CHUNK, "07".repeat(16));
    let t = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(link)),
            networks: vec![],
            files: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let done = wait_until(&mut gw.client, &t.id, 20, |t| t.state() == State::Complete).await;
    assert_eq!(done.rate_bytes_per_sec, 0, "{done:?}");
    assert!(
        !done.per_network.is_empty() && done.per_network.iter().all(|n| n.rate_bytes_per_sec == 0),
        "{done:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn every_real_network_takes_a_host_name() {
    let loopback = || "127.0.0.1:0".parse().unwrap();
    // Something listening on 127.0.0.1 for the networks that dial at once.
    let server = ed2k::IndexServer::start(ed2k::ServerConfig {
        enabled: true,
        listen: loopback(),
        ..Default::default()
    })
    .await
    .unwrap();
    let ed2k = ed2k::Adapter::start(ed2k::Config {
        listen: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let gnutella = gnutella::Adapter::start(gnutella::Config {
        listen: loopback(),
        ..Default::default()
    })
    .await
    .unwrap();
    let bittorrent = bittorrent::Adapter::start(bittorrent::Config {
        listen: loopback(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nets: Vec<Arc<dyn DynNetwork>> =
        vec![Arc::new(ed2k), Arc::new(gnutella), Arc::new(bittorrent)];
    let mut gw = start(dir.path(), nets, None).await;
    let port = server.local_addr().port();
    for network in ["ed2k", "gnutella", "bittorrent"] {
        let address = format!("localhost:{port}");
        gw.client
            .add_endpoint(pb::AddEndpointRequest {
                network: network.into(),
                address: address.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("{network} {address}: {e:?}"));
        // A name that does not resolve is refused, naming it (`.invalid` never leaves
        // the host), and is not kept.
        let e = gw
            .client
            .add_endpoint(pb::AddEndpointRequest {
                network: network.into(),
                address: "nowhere.invalid:4661".into(),
            })
            .await
            .unwrap_err();
        assert!(
            e.code() == Code::InvalidArgument
                && e.message()
                    .contains("cannot resolve \"nowhere.invalid:4661\""),
            "{network}: {e:?}"
        );
    }
    let kept = listed(&mut gw.client).await;
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(kept.iter().all(|(_, a)| a == &format!("localhost:{port}")));
    gw.stop().await;
}
