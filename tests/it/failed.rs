//! Transfers that end: no source on any network for the gateway's give-up time makes a
//! transfer FAILED, with a reason, kept across a restart, until a resume tries again; and
//! `error` holds only errors while the networks' notes go to `notes`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use junction_core::{ContentId, DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::transfer::State;

use crate::harness::http::Fronts;
use crate::harness::{Running, start_with, wait_until};
use crate::testnet::{Behavior, CHUNK, Serving, TestFile, TestNet};

const SIZE: usize = 12 * CHUNK;
const GIVE_UP_SECS: u64 = 2;

/// A network whose sources for each file come and go as its `serving` says, and whose
/// fetches note that they are searching for sources.
fn hunt(files: Vec<TestFile>) -> Arc<TestNet> {
    let mut net = TestNet::new(
        "hunt",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        files,
    );
    net.chunk_delay = Duration::from_millis(5);
    net.fetch_note = Some("searching for sources");
    Arc::new(net)
}

/// `f`, with its sources doing what `serving` says.
fn served_as(f: &TestFile, serving: Serving) -> TestFile {
    TestFile {
        serving,
        ..f.clone()
    }
}

fn file(name: &str, seed: u8) -> TestFile {
    TestFile::new(
        name,
        SIZE,
        seed,
        ContentId::new(None).with(HashKind::Ed2k, &[seed; 16]),
    )
}

fn link(f: &TestFile) -> String {
    let hash = f.id.get(HashKind::Ed2k).unwrap();
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("ed2k://|file|{}|{}|{hex}|/", f.name, f.data.len())
}

async fn gateway(dir: &Path, nets: Vec<Arc<dyn DynNetwork>>, give_up: u64) -> Running {
    start_with(dir, nets, |c| c.transfer_give_up_secs = give_up).await
}

async fn start_link(gw: &mut Running, f: &TestFile) -> pb::Transfer {
    gw.client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(link(f))),
            networks: vec![],
            files: vec![],
        })
        .await
        .unwrap()
        .into_inner()
}

async fn get(gw: &mut Running, id: &str) -> pb::Transfer {
    gw.client
        .get_transfer(pb::TransferRef { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

async fn resume(gw: &mut Running, id: &str) -> pb::Transfer {
    gw.client
        .resume_transfer(pb::TransferRef { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

/// Waits until no fetch stream of `net` is alive.
async fn fetches_stop(net: &TestNet) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while net.live_fetches.load(Ordering::SeqCst) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failed transfer still fetches"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_failed_for_no_source(t: &pb::Transfer) {
    assert_eq!(t.state(), State::Failed, "{t:?}");
    assert!(
        t.error
            .contains("no source on any network for 2 seconds; the file may be gone"),
        "{}",
        t.error
    );
    assert!(
        t.error.contains(&format!("junction resume {}", t.id)),
        "{}",
        t.error
    );
    assert_eq!(t.peers, 0);
}

#[tokio::test]
async fn no_source_for_the_give_up_time_fails_survives_a_restart_and_resume_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let f = file("gone.bin", 0x15);
    let kept = 3 * CHUNK as u64;

    // 1. Three chunks come, then every source is gone: FAILED within the give-up time
    //    and a tick, with a reason; the fetch stops, the verified bytes stay.
    let net = hunt(vec![served_as(&f, Serving::Vanish(kept))]);
    let mut gw = gateway(
        dir.path(),
        vec![net.clone() as Arc<dyn DynNetwork>],
        GIVE_UP_SECS,
    )
    .await;
    let t = start_link(&mut gw, &f).await;
    let id = t.id.clone();
    let searching = wait_until(&mut gw.client, &id, 5, |t| t.bytes_verified == kept).await;
    assert_eq!(searching.state(), State::Active);
    assert!(
        searching.error.is_empty(),
        "a note is not an error: {searching:?}"
    );
    assert_eq!(searching.notes, ["hunt: searching for sources"]);
    let gone_at = tokio::time::Instant::now();
    let failed = wait_until(&mut gw.client, &id, 10, |t| t.state() != State::Active).await;
    let took = gone_at.elapsed();
    assert_failed_for_no_source(&failed);
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_secs(GIVE_UP_SECS + 3),
        "failed after {took:?}, not about {GIVE_UP_SECS} s"
    );
    assert_eq!(failed.bytes_verified, kept, "verified bytes were dropped");
    fetches_stop(&net).await;

    // 2. A resume starts the clock over: it is active again, past the next tick, and
    //    fails again only after another give-up time with no source.
    let again = resume(&mut gw, &id).await;
    assert_eq!(again.state(), State::Active);
    assert!(again.error.is_empty(), "{again:?}");
    let resumed_at = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let still = get(&mut gw, &id).await;
    assert_eq!(
        still.state(),
        State::Active,
        "failed at once after a resume: the clock did not start over: {still:?}"
    );
    let failed = wait_until(&mut gw.client, &id, 10, |t| t.state() != State::Active).await;
    assert_failed_for_no_source(&failed);
    assert!(resumed_at.elapsed() >= Duration::from_millis(1500));
    fetches_stop(&net).await;
    gw.stop().await;

    // 3. After a restart it is still FAILED, with its bytes and reason, and fetches
    //    nothing, although a source has turned up.
    let net = hunt(vec![f.clone()]);
    let mut gw = gateway(
        dir.path(),
        vec![net.clone() as Arc<dyn DynNetwork>],
        GIVE_UP_SECS,
    )
    .await;
    let restored = get(&mut gw, &id).await;
    assert_failed_for_no_source(&restored);
    assert_eq!(restored.bytes_verified, kept);
    let listed = gw
        .client
        .list_transfers(pb::ListTransfersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.transfers[0].state(), State::Failed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        net.served.load(Ordering::SeqCst),
        0,
        "a failed transfer fetched"
    );
    assert_eq!(net.live_fetches.load(Ordering::SeqCst), 0);

    // 4. The qBittorrent front shows it as `error`, under the `errored` filter only.
    let front = Front::serve(&gw).await;
    let errored = front.torrents("filter=errored").await;
    assert_eq!(errored.len(), 1, "{errored:?}");
    assert_eq!(errored[0]["state"], "error");
    for filter in ["downloading", "stalled"] {
        let listed = front.torrents(&format!("filter={filter}")).await;
        assert!(
            listed.is_empty(),
            "a failed transfer under {filter}: {listed:?}"
        );
    }

    // 5. Resume brings it back: it downloads only what it lacked, and completes.
    let back = resume(&mut gw, &id).await;
    assert_eq!(back.state(), State::Active);
    let done = wait_until(&mut gw.client, &id, 20, |t| t.state() == State::Complete).await;
    assert!(done.error.is_empty(), "{done:?}");
    assert_eq!(
        net.served.load(Ordering::SeqCst),
        SIZE as u64 - kept,
        "verified bytes were fetched again"
    );
    assert_eq!(std::fs::read(&done.path).unwrap(), *f.data);
    front.stop().await;
    gw.stop().await;
}

#[tokio::test]
async fn a_transfer_with_a_source_or_complete_never_fails() {
    let dir = tempfile::tempdir().unwrap();
    let silent = file("slow.bin", 0x21);
    let nobody = file("nobody.bin", 0x22);
    let whole = file("whole.bin", 0x23);
    let net = hunt(vec![
        served_as(&silent, Serving::Silent),
        served_as(&nobody, Serving::Vanish(0)),
        whole.clone(),
    ]);
    let mut gw = gateway(
        dir.path(),
        vec![net.clone() as Arc<dyn DynNetwork>],
        GIVE_UP_SECS,
    )
    .await;
    let done = start_link(&mut gw, &whole).await;
    wait_until(&mut gw.client, &done.id, 10, |t| {
        t.state() == State::Complete
    })
    .await;
    let with_peer = start_link(&mut gw, &silent).await;
    let without = start_link(&mut gw, &nobody).await;

    // The one without a source fails; by then the others have run the give-up time too.
    let failed = wait_until(&mut gw.client, &without.id, 10, |t| {
        t.state() != State::Active
    })
    .await;
    assert_failed_for_no_source(&failed);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let t = get(&mut gw, &with_peer.id).await;
    assert_eq!(t.state(), State::Active, "failed with a peer: {t:?}");
    assert_eq!(t.peers, 1);
    assert_eq!(t.bytes_verified, 0);
    assert!(t.error.is_empty(), "{t:?}");
    let t = get(&mut gw, &done.id).await;
    assert_eq!(
        t.state(),
        State::Complete,
        "a complete transfer failed: {t:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn error_holds_errors_and_notes_hold_the_networks_notes() {
    let dir = tempfile::tempdir().unwrap();
    let f = file("healthy.bin", 0x31);
    let mut has = TestNet::new(
        "has",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![f.clone()],
    );
    has.chunk_delay = Duration::from_millis(200);
    let lacks = TestNet::new(
        "lacks",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![],
    );
    let nets = vec![
        Arc::new(has) as Arc<dyn DynNetwork>,
        Arc::new(lacks) as Arc<dyn DynNetwork>,
    ];
    // The default give-up time (7 days): nothing here may fail.
    let mut gw = start_with(dir.path(), nets, |_| {}).await;

    // A healthy transfer on one network: no error; the other network's "cannot" is a note.
    let t = start_link(&mut gw, &f).await;
    let running = wait_until(&mut gw.client, &t.id, 10, |t| t.bytes_verified > 0).await;
    assert_eq!(running.state(), State::Active);
    assert_eq!(running.error, "", "{running:?}");
    assert_eq!(
        running.notes,
        ["lacks: not supported: no such file here"],
        "{running:?}"
    );
    let lacks = running.per_network.iter().find(|n| n.network == "lacks");
    assert_eq!(lacks.map(|n| n.state.as_str()), Some("not applicable"));

    // Content no network can fetch: that is an error, and the notes say why for each.
    let orphan = file("orphan.bin", 0x32);
    let t = start_link(&mut gw, &orphan).await;
    let stuck = wait_until(&mut gw.client, &t.id, 5, |t| !t.error.is_empty()).await;
    assert_eq!(stuck.state(), State::Active);
    assert!(
        stuck
            .error
            .starts_with("no network can fetch this content now"),
        "{}",
        stuck.error
    );
    assert!(
        !stuck.error.contains("no such file here"),
        "{}",
        stuck.error
    );
    assert_eq!(
        stuck.notes,
        [
            "has: not supported: no such file here",
            "lacks: not supported: no such file here"
        ]
    );
    gw.stop().await;
}

/// The qBittorrent front of a gateway, logged in (any login on a tokenless loopback one).
struct Front {
    fronts: Fronts,
    cookie: String,
}

impl Front {
    async fn serve(gw: &Running) -> Front {
        let fronts = Fronts::serve(gw, Duration::from_secs(10)).await;
        let body = b"username=admin&password=any";
        let length = body.len().to_string();
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", length.as_str()),
        ];
        let reply = fronts
            .request("POST", "/api/v2/auth/login", &headers, body, |_| {})
            .await;
        let sid = reply
            .header("set-cookie")
            .and_then(|c| Some(c.strip_prefix("SID=")?.split(';').next()?.to_owned()))
            .unwrap_or_else(|| panic!("no SID cookie: {}", reply.head));
        Front {
            fronts,
            cookie: format!("SID={sid}"),
        }
    }

    async fn torrents(&self, query: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v2/torrents/info?{query}");
        let reply = self.fronts.get(&path, &[("Cookie", &self.cookie)]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json().as_array().unwrap().clone()
    }

    async fn stop(self) {
        self.fronts.stop().await;
    }
}
