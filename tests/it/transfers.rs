//! Transfers through real gRPC: pause, resume, restart, and reading while running.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use junction_core::{ContentId, DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::transfer::State;

use crate::harness::{Running, start, wait_until};
use crate::testnet::{Behavior, CHUNK, TestFile, TestNet};

const SIZE: usize = 40 * CHUNK;
const ED2K_HASH: [u8; 16] = [0x42; 16];

fn file() -> TestFile {
    TestFile::new(
        "movie.avi",
        SIZE,
        3,
        ContentId::new(None).with(HashKind::Ed2k, &ED2K_HASH),
    )
}

fn throttled(delay_ms: u64) -> Arc<TestNet> {
    let mut net = TestNet::new(
        "slowpoke",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![file()],
    );
    net.chunk_delay = Duration::from_millis(delay_ms);
    Arc::new(net)
}

fn link() -> String {
    format!("ed2k://|file|movie.avi|{SIZE}|{}|/", hex(&ED2K_HASH))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn link_request(link: String) -> pb::StartTransferRequest {
    pb::StartTransferRequest {
        source: Some(pb::start_transfer_request::Source::Link(link)),
        networks: vec![],
        files: vec![],
    }
}

async fn start_link(
    client: &mut proto::v1::gateway_client::GatewayClient<tonic::transport::Channel>,
) -> pb::Transfer {
    client
        .start_transfer(link_request(link()))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn pause_resume_restart_and_read_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let expected = file().data;

    // 1. Start, let some of it verify, pause: nothing more arrives while paused.
    let net = throttled(15);
    let served = net.served.clone();
    let mut gw = start(dir.path(), vec![net as Arc<dyn DynNetwork>], None).await;
    let t = start_link(&mut gw.client).await;
    assert_eq!(t.state(), State::Active);
    nothing_arrives_while_paused(&mut gw, &t.id, &served).await;

    // 2. Resume, then stop the gateway mid-download.
    let mid_verified = resume_and_stop_mid_download(gw, &t.id).await;

    // 3. A new gateway on the same data directory resumes without re-fetching verified bytes.
    let net = throttled(15);
    let served_after = net.served.clone();
    let mut gw = start(dir.path(), vec![net as Arc<dyn DynNetwork>], None).await;
    let verified_at_restart = verified_ranges_survive_a_restart(&mut gw, &t.id, mid_verified).await;

    // 4. Read the whole content while it is still downloading.
    whole_content_read_while_downloading(&mut gw, &t.id, &expected).await;
    completes_without_refetching(
        &mut gw,
        &t.id,
        &expected,
        &served_after,
        verified_at_restart,
    )
    .await;

    // 5. A read from the middle of the finished file.
    a_read_from_the_middle(&mut gw, &t.id, &expected).await;
    gw.stop().await;
}

/// Lets a quarter of transfer `id` verify, pauses it: nothing more is `served` while
/// paused.
async fn nothing_arrives_while_paused(gw: &mut Running, id: &str, served: &AtomicU64) {
    wait_until(&mut gw.client, id, 20, |t| {
        t.bytes_verified >= (SIZE / 4) as u64
    })
    .await;
    let paused = gw
        .client
        .pause_transfer(pb::TransferRef { id: id.to_owned() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paused.state(), State::Paused);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = served.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        served.load(Ordering::SeqCst),
        before,
        "bytes arrived while paused"
    );
}

/// Resumes transfer `id`, then stops the gateway once half of it (but not all) has
/// verified. Returns the bytes verified then.
async fn resume_and_stop_mid_download(mut gw: Running, id: &str) -> u64 {
    gw.client
        .resume_transfer(pb::TransferRef { id: id.to_owned() })
        .await
        .unwrap();
    let mid = wait_until(&mut gw.client, id, 20, |t| {
        t.bytes_verified >= (SIZE / 2) as u64
    })
    .await;
    assert!(
        mid.bytes_verified < SIZE as u64,
        "finished too early to test a restart"
    );
    gw.stop().await;
    mid.bytes_verified
}

/// The restarted gateway still has at least the `mid_verified` bytes of transfer `id`.
/// Returns the bytes verified at the restart.
async fn verified_ranges_survive_a_restart(gw: &mut Running, id: &str, mid_verified: u64) -> u64 {
    let resumed = gw
        .client
        .get_transfer(pb::TransferRef { id: id.to_owned() })
        .await
        .unwrap()
        .into_inner();
    assert!(
        resumed.bytes_verified >= mid_verified,
        "verified ranges were lost: {resumed:?}"
    );
    resumed.bytes_verified
}

/// Reads the whole content of transfer `id` while it is still downloading: in order,
/// overlapping the download, and `expected` in the end.
async fn whole_content_read_while_downloading(gw: &mut Running, id: &str, expected: &[u8]) {
    let mut stream = gw
        .client
        .read_content(pb::ReadContentRequest {
            transfer_id: id.to_owned(),
            offset: 0,
            length: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut read = Vec::new();
    let mut still_running_while_reading = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert_eq!(chunk.offset as usize, read.len());
        read.extend_from_slice(&chunk.data);
        if (read.len() as u64) < SIZE as u64 && !still_running_while_reading {
            let now = gw
                .client
                .get_transfer(pb::TransferRef { id: id.to_owned() })
                .await
                .unwrap()
                .into_inner();
            still_running_while_reading |=
                now.state() == State::Active && now.bytes_verified < SIZE as u64;
        }
    }
    assert!(
        still_running_while_reading,
        "the read did not overlap the download"
    );
    assert_eq!(read, *expected);
}

/// Transfer `id` completes with `expected`, the restarted network having `served_after`
/// no more than what was missing at the restart.
async fn completes_without_refetching(
    gw: &mut Running,
    id: &str,
    expected: &[u8],
    served_after: &AtomicU64,
    verified_at_restart: u64,
) {
    let done = wait_until(&mut gw.client, id, 20, |t| t.state() == State::Complete).await;
    assert_eq!(std::fs::read(&done.path).unwrap(), *expected);
    let refetched = served_after.load(Ordering::SeqCst);
    assert!(
        refetched <= SIZE as u64 - verified_at_restart,
        "re-fetched {refetched} bytes though only {} were missing",
        SIZE as u64 - verified_at_restart
    );
}

/// A read from the middle of the finished file.
async fn a_read_from_the_middle(gw: &mut Running, id: &str, expected: &[u8]) {
    let mut stream = gw
        .client
        .read_content(pb::ReadContentRequest {
            transfer_id: id.to_owned(),
            offset: 1000,
            length: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let chunk = stream.next().await.unwrap().unwrap();
    assert_eq!(
        (chunk.offset, &chunk.data[..]),
        (1000, &expected[1000..1010])
    );
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn cancel_removes_the_transfer_and_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), vec![throttled(50) as Arc<dyn DynNetwork>], None).await;
    let t = start_link(&mut gw.client).await;
    let cancelled = gw
        .client
        .cancel_transfer(pb::CancelTransferRequest {
            id: t.id.clone(),
            keep_data: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state(), State::Cancelled);
    assert!(!std::path::Path::new(&cancelled.path).exists());
    let list = gw
        .client
        .list_transfers(pb::ListTransfersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(list.transfers.is_empty());
    let err = gw
        .client
        .get_transfer(pb::TransferRef { id: t.id })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    gw.stop().await;
}

#[tokio::test]
async fn watch_transfers_streams_progress_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), vec![throttled(1) as Arc<dyn DynNetwork>], None).await;
    let mut watch = gw
        .client
        .watch_transfers(pb::WatchTransfersRequest { id: String::new() })
        .await
        .unwrap()
        .into_inner();
    let t = start_link(&mut gw.client).await;
    let mut states = Vec::new();
    while let Some(ev) = watch.next().await {
        let tr = ev.unwrap().transfer.unwrap();
        assert_eq!(tr.id, t.id);
        states.push(tr.state());
        if tr.state() == State::Complete {
            break;
        }
    }
    assert_eq!(states.first(), Some(&State::Active));
    assert_eq!(states.last(), Some(&State::Complete));
    gw.stop().await;
}

#[tokio::test]
async fn a_finished_file_deleted_between_runs_is_reported_and_fetched_again_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), vec![throttled(0) as Arc<dyn DynNetwork>], None).await;
    let t = start_link(&mut gw.client).await;
    let done = wait_until(&mut gw.client, &t.id, 20, |t| t.state() == State::Complete).await;
    gw.stop().await;
    std::fs::remove_file(&done.path).unwrap();

    let mut gw = start(dir.path(), vec![throttled(0) as Arc<dyn DynNetwork>], None).await;
    let failed = gw
        .client
        .get_transfer(pb::TransferRef { id: t.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failed.state(), State::Failed);
    assert!(failed.error.contains("missing"), "{}", failed.error);
    gw.client
        .resume_transfer(pb::TransferRef { id: t.id.clone() })
        .await
        .unwrap();
    let again = wait_until(&mut gw.client, &t.id, 20, |t| t.state() == State::Complete).await;
    assert_eq!(again.path, done.path, "it should be back where it was");
    assert_eq!(std::fs::read(&again.path).unwrap(), *file().data);
    gw.stop().await;
}

/// Pause and resume in every state answer at once, and leave the gateway answering (each
/// of these once hung the whole gateway on a lock held through a `match`).
#[tokio::test]
async fn pause_and_resume_answer_in_every_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start(dir.path(), vec![throttled(30) as Arc<dyn DynNetwork>], None).await;
    let t = start_link(&mut gw.client).await;
    let r = pb::TransferRef { id: t.id.clone() };
    let quick = Duration::from_secs(5);
    type Step = (&'static str, State);
    // (action, state it must leave), starting Active.
    let steps: [Step; 6] = [
        ("resume", State::Active), // active × resume
        ("pause", State::Paused),  // active × pause
        ("pause", State::Paused),  // paused × pause
        ("resume", State::Active), // paused × resume
        ("pause", State::Paused),  // back to paused…
        ("resume", State::Active), // …and on to completion below
    ];
    for (action, want) in steps {
        let mut c = gw.client.clone();
        let call = async {
            match action {
                "pause" => c.pause_transfer(r.clone()).await,
                _ => c.resume_transfer(r.clone()).await,
            }
        };
        let got = tokio::time::timeout(quick, call)
            .await
            .unwrap_or_else(|_| panic!("{action} hung"))
            .unwrap()
            .into_inner();
        assert_eq!(got.state(), want, "after {action}");
    }
    wait_until(&mut gw.client, &t.id, 30, |t| t.state() == State::Complete).await;
    // complete × resume is a no-op; complete × pause is refused; both answer.
    let mut c = gw.client.clone();
    let resumed = tokio::time::timeout(quick, c.resume_transfer(r.clone()))
        .await
        .expect("resume of a complete transfer hung")
        .unwrap()
        .into_inner();
    assert_eq!(resumed.state(), State::Complete);
    let refused = tokio::time::timeout(quick, c.pause_transfer(r.clone()))
        .await
        .expect("pause of a complete transfer hung")
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    // The gateway still answers other calls.
    tokio::time::timeout(quick, c.list_transfers(pb::ListTransfersRequest {}))
        .await
        .expect("the gateway stopped answering")
        .unwrap();
    gw.stop().await;
}

/// Starts `link` and waits for it to complete.
async fn fetch_link(gw: &mut crate::harness::Running, link: String) -> pb::Transfer {
    let t = gw
        .client
        .start_transfer(link_request(link))
        .await
        .unwrap()
        .into_inner();
    wait_until(&mut gw.client, &t.id, 20, |t| t.state() == State::Complete).await
}

/// The peers a link names go to the networks whose capabilities say they fetch by its
/// hash kind, whatever they are called; one that does not is not given them.
#[tokio::test]
async fn a_links_peers_go_to_the_networks_that_fetch_by_its_hash() {
    use junction_core::Capabilities;
    let dir = tempfile::tempdir().unwrap();
    let taker = Arc::new(TestNet::new(
        "taker",
        Capabilities {
            keywords: true,
            fetch_ids: vec![HashKind::Ed2k],
            ..Default::default()
        },
        Behavior::Normal(Duration::ZERO),
        vec![file()],
    ));
    let bystander = Arc::new(TestNet::new(
        "bystander",
        TestNet::keywords_only(),
        Behavior::Normal(Duration::ZERO),
        vec![file()],
    ));
    let nets: Vec<Arc<dyn DynNetwork>> = vec![bystander.clone(), taker.clone()];
    let mut gw = start(dir.path(), nets, None).await;
    let peer = "127.0.0.9:4662";
    let link = format!("{}|sources,{peer}|/", link());
    let done = fetch_link(&mut gw, link).await;
    assert_eq!(done.bytes_verified, SIZE as u64);
    let asked = taker.fetched.lock().unwrap().clone();
    assert!(
        asked.iter().any(|r| r
            .sources
            .iter()
            .any(|s| s.network == taker.id && s.address.to_string() == peer)),
        "the taker was not given the link's peer: {asked:?}"
    );
    let everyone: Vec<_> = asked
        .iter()
        .chain(bystander.fetched.lock().unwrap().iter())
        .flat_map(|r| r.sources.clone())
        .collect();
    assert!(
        everyone.iter().all(|s| s.network != bystander.id),
        "the bystander was given the link's peer: {everyone:?}"
    );
    gw.stop().await;
}

/// A magnet without a size is identified by the network that says it can learn one from
/// its hashes (`identify`, not a fetch of size 0), and only by it; with no such network
/// the start is refused with what to do.
#[tokio::test]
async fn a_magnet_without_a_size_is_identified_by_the_network_that_says_it_can() {
    use junction_core::Capabilities;
    const BTIH: [u8; 20] = [0x77; 20];
    let clip = || {
        TestFile::new(
            "clip.mkv",
            SIZE,
            5,
            ContentId::new(None).with(HashKind::Btih, &BTIH),
        )
    };
    let learner = Arc::new(TestNet::new(
        "learner",
        Capabilities {
            keywords: true,
            identify_ids: vec![HashKind::Btih],
            ..Default::default()
        },
        Behavior::Normal(Duration::ZERO),
        vec![clip()],
    ));
    let mute = || {
        Arc::new(TestNet::new(
            "mute",
            TestNet::everything(),
            Behavior::Normal(Duration::ZERO),
            vec![clip()],
        ))
    };
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=clip.mkv", hex(&BTIH));

    let dir = tempfile::tempdir().unwrap();
    let silent = mute();
    let nets: Vec<Arc<dyn DynNetwork>> = vec![silent.clone(), learner.clone()];
    let mut gw = start(dir.path(), nets, None).await;
    let done = fetch_link(&mut gw, magnet.clone()).await;
    assert_eq!(done.size, SIZE as u64);
    assert_eq!(done.bytes_verified, SIZE as u64);
    assert!(learner.identified.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        silent.identified.load(Ordering::SeqCst),
        0,
        "mute was asked"
    );
    // Every fetch was of the bytes, at the size learnt.
    for net in [&learner, &silent] {
        let asked = net.fetched.lock().unwrap().clone();
        assert!(asked.iter().all(|r| r.size == SIZE as u64), "{asked:?}");
    }
    gw.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let silent = mute();
    let mut gw = start(
        dir.path(),
        vec![silent.clone() as Arc<dyn DynNetwork>],
        None,
    )
    .await;
    let refused = gw
        .client
        .start_transfer(link_request(magnet))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("xl=SIZE"),
        "{}",
        refused.message()
    );
    assert_eq!(silent.identified.load(Ordering::SeqCst), 0);
    gw.stop().await;
}
