//! Downloading what this gateway shares completes from the shared file at once, checked by
//! the share's hashes like any network's bytes; a shared file changed since it was hashed
//! is not taken.

use std::sync::Arc;
use std::time::Duration;

use junction_core::HashKind;
use proto::v1 as pb;
use proto::v1::transfer::State;
use sha1::Digest;

use crate::harness::{start, start_link, wait_until};
use crate::testnet::{Behavior, TestNet};

fn magnet(data: &[u8]) -> String {
    let sha1 = sha1::Sha1::digest(data);
    format!(
        "magnet:?xt=urn:sha1:{}&xl={}&dn=clip.bin",
        HashKind::Sha1.format(&sha1),
        data.len()
    )
}

/// A gateway whose one network has nothing: only a local copy can complete a transfer.
async fn gateway_with_nothing(dir: &std::path::Path) -> crate::harness::Running {
    let empty = TestNet::new(
        "empty",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![],
    );
    start(dir, vec![Arc::new(empty)], None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_already_shared_completes_from_the_local_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = gateway_with_nothing(dir.path()).await;
    let shared = dir.path().join("clip.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&shared, &data).unwrap();
    gw.client
        .share(pb::ShareRequest {
            path: shared.to_string_lossy().into(),
        })
        .await
        .unwrap();
    let t = start_link(&mut gw.client, magnet(&data)).await;
    let done = wait_until(&mut gw.client, &t.id, 20, |t| t.state() == State::Complete).await;
    assert!(std::fs::read(&done.path).unwrap() == data);
    let local = done.per_network.iter().find(|n| n.network == "local copy");
    assert_eq!(
        local.map(|n| n.bytes_verified),
        Some(data.len() as u64),
        "{done:?}"
    );

    // The shared file changes after it was hashed: its bytes fail the check.
    let mut changed = data.clone();
    changed[1_000_000] ^= 1;
    std::fs::write(&shared, &changed).unwrap();
    let other: Vec<u8> = data.iter().map(|b| b ^ 0x5a).collect();
    let shared2 = dir.path().join("clip2.bin");
    std::fs::write(&shared2, &other).unwrap();
    gw.client
        .share(pb::ShareRequest {
            path: shared2.to_string_lossy().into(),
        })
        .await
        .unwrap();
    std::fs::write(&shared2, &changed).unwrap();
    let t = start_link(&mut gw.client, magnet(&other)).await;
    let failed = wait_until(&mut gw.client, &t.id, 20, |t| {
        t.per_network
            .iter()
            .any(|n| n.network == "local copy" && n.failed_checks > 0)
    })
    .await;
    assert_ne!(failed.state(), State::Complete);
    assert_eq!(failed.bytes_verified, 0, "{failed:?}");
    gw.stop().await;
}

/// Two shared copies of one content: unsharing one leaves the other to complete from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsharing_one_copy_leaves_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = gateway_with_nothing(dir.path()).await;
    let data: Vec<u8> = (0..500_000u32).map(|i| (i * 11 + i / 97) as u8).collect();
    let copies = [dir.path().join("a.bin"), dir.path().join("b.bin")];
    for p in &copies {
        std::fs::write(p, &data).unwrap();
        gw.client
            .share(pb::ShareRequest {
                path: p.to_string_lossy().into(),
            })
            .await
            .unwrap();
    }
    gw.client
        .unshare(pb::UnshareRequest {
            // The copy shared last: one URN index entry per content lost the first.
            path: copies[1].to_string_lossy().into(),
        })
        .await
        .unwrap();
    let t = start_link(&mut gw.client, magnet(&data)).await;
    let done = wait_until(&mut gw.client, &t.id, 20, |t| t.state() == State::Complete).await;
    assert!(std::fs::read(&done.path).unwrap() == data);
    gw.stop().await;
}
