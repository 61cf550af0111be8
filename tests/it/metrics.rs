//! `/metrics` counts the gRPC API's calls by service, method and status code: answered,
//! failed, refused for the token, and streams the client dropped; and promtool (when
//! installed, as Debian's `prometheus` ships it) accepts the document.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use junction_core::{ContentId, DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::gateway_client::GatewayClient;
use tonic::Code;

use crate::harness::http::Fronts;
use crate::harness::{channel, start};
use crate::testnet::{Behavior, TestFile, TestNet};

const GRPC: &str = "junction_grpc_requests_total";
const GATEWAY: &str = "junction.v1.Gateway";
const BEARER: (&str, &str) = ("Authorization", "Bearer s3cret");

fn net() -> Arc<dyn DynNetwork> {
    let file = TestFile::new(
        "metrics sample.txt",
        100,
        1,
        ContentId::new(None).with(HashKind::Sha1, &[7; 20]),
    );
    Arc::new(TestNet::new(
        "testnet",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![file],
    ))
}

fn calls(text: &str, method: &str, code: &str) -> f64 {
    metric(
        text,
        GRPC,
        &[("service", GATEWAY), ("method", method), ("code", code)],
    )
}

#[tokio::test]
async fn grpc_calls_are_counted_by_method_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path(), vec![net()], Some("s3cret")).await;
    let http = Fronts::serve(&gw, Duration::from_secs(60)).await;
    let scrape = || async {
        let r = http.get("/metrics", &[BEARER]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    };
    // The counters are the process's, and other tests call too: only growth is checked.
    let before = scrape().await;
    assert!(
        before.contains("# HELP junction_hash_failures_total "),
        "failed hash checks are a metric: {before}"
    );

    let ch = channel(gw.addr).await;
    // Without the token: refused, and counted as such.
    let refused = GatewayClient::new(ch.clone())
        .list_networks(pb::ListNetworksRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut c = GatewayClient::with_interceptor(ch, |mut req: tonic::Request<()>| {
        req.metadata_mut()
            .insert("authorization", "Bearer s3cret".parse().unwrap());
        Ok(req)
    });
    c.list_networks(pb::ListNetworksRequest {}).await.unwrap();
    c.list_networks(pb::ListNetworksRequest {}).await.unwrap();
    let missing = c
        .get_transfer(pb::TransferRef {
            id: "no-such-transfer".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    // A stream counts when it ends, with the status in its trailers.
    let mut search = c
        .search(pb::SearchRequest {
            query: "metrics sample".into(),
            timeout_ms: 2000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(ev) = search.next().await {
        ev.unwrap();
    }
    // An endless stream the client drops: Cancelled.
    let watch = c
        .watch_transfers(pb::WatchTransfersRequest { id: String::new() })
        .await
        .unwrap()
        .into_inner();
    drop(watch);

    let grew = |after: &str, method: &str, code: &str| {
        calls(after, method, code) - calls(&before, method, code)
    };
    let mut after = scrape().await;
    for _ in 0..100 {
        if grew(&after, "WatchTransfers", "Cancelled") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = scrape().await;
    }
    assert!(grew(&after, "ListNetworks", "OK") >= 2.0, "{after}");
    // An answered call counts once, by its trailers, not again as it is dropped.
    assert_eq!(grew(&after, "ListNetworks", "Cancelled"), 0.0, "{after}");
    assert!(
        grew(&after, "ListNetworks", "Unauthenticated") >= 1.0,
        "{after}"
    );
    assert!(grew(&after, "GetTransfer", "NotFound") >= 1.0, "{after}");
    assert!(grew(&after, "Search", "OK") >= 1.0, "{after}");
    assert!(
        grew(&after, "WatchTransfers", "Cancelled") >= 1.0,
        "{after}"
    );
    assert!(
        after.contains(&format!("# TYPE {GRPC} counter\n")),
        "{after}"
    );
    // The labels come from the served services only.
    for line in after.lines().filter(|l| l.starts_with(GRPC)) {
        assert!(
            [
                "service=\"junction.v1.Gateway\"",
                "service=\"grpc.health.v1.Health\"",
                "service=\"grpc.reflection.v1.ServerReflection\"",
                "service=\"grpc.reflection.v1alpha.ServerReflection\"",
                "service=\"unknown\"",
            ]
            .iter()
            .any(|s| line.contains(s)),
            "{line}"
        );
    }
    promtool_accepts(&after);

    http.stop().await;
    gw.stop().await;
}

/// The sum of the samples of `name` whose labels contain every `label="value"` given.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// `promtool check metrics` on the text, when promtool is installed (Debian: prometheus).
fn promtool_accepts(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("promtool is not installed (Debian: prometheus); its check is skipped");
            return;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
