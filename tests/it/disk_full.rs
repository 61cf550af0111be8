//! A full disk (issue 15): the data dir on a small tmpfs. The transfer pauses with an
//! error that says so, keeps what it verified, and goes on by itself once there is room.
//! Mounting needs root, as the namespace tests do; CI runs as root.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use junction_core::{ContentId, DynNetwork, HashKind};
use proto::v1 as pb;
use proto::v1::transfer::State;

use crate::harness::{start, wait_until};
use crate::testnet::{Behavior, CHUNK, TestFile, TestNet};

/// 24 MiB, on a file system of 12 MiB.
const SIZE: usize = 384 * CHUNK;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount(8)");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs, which needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount of the tmpfs");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_pauses_the_transfer_which_goes_on_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let disk = Tmpfs::mount(&data, "12m");
    let file = TestFile::new(
        "big.iso",
        SIZE,
        7,
        ContentId::new(None).with(HashKind::Ed2k, &[0x77; 16]),
    );
    let bytes = file.data.clone();
    let hex: String = [0x77u8; 16].iter().map(|b| format!("{b:02x}")).collect();
    let net = Arc::new(TestNet::new(
        "plenty",
        TestNet::everything(),
        Behavior::Normal(Duration::ZERO),
        vec![file],
    ));
    let mut gw = start(&data, vec![net.clone() as Arc<dyn DynNetwork>], None).await;
    let t = gw
        .client
        .start_transfer(pb::StartTransferRequest {
            source: Some(pb::start_transfer_request::Source::Link(format!(
                "ed2k://|file|big.iso|{SIZE}|{hex}|/"
            ))),
            networks: vec![],
            files: vec![],
        })
        .await
        .unwrap()
        .into_inner();

    let paused = wait_until(&mut gw.client, &t.id, 30, |t| t.state() == State::Paused).await;
    assert!(
        paused.error.contains("is full") && paused.error.contains("goes on by itself"),
        "{}",
        paused.error
    );
    assert!(paused.bytes_verified > 0 && paused.bytes_verified < SIZE as u64);
    // What it calls verified is on the disk, right.
    let part = std::fs::read(&paused.path).unwrap();
    for r in &paused.verified {
        let (s, e) = (r.start as usize, r.end as usize);
        assert!(part[s..e] == bytes[s..e], "junk in the verified {s}..{e}");
    }
    // It stays paused while the disk is full.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = gw
        .client
        .get_transfer(pb::TransferRef { id: t.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.state(), State::Paused);
    assert!(still.bytes_verified >= paused.bytes_verified);
    // A restart meanwhile: still waiting for room, and still going on by itself after.
    gw.stop().await;
    let mut gw = start(&data, vec![net as Arc<dyn DynNetwork>], None).await;
    let restarted = wait_until(&mut gw.client, &t.id, 10, |t| t.state() == State::Paused).await;
    assert!(restarted.error.contains("is full"), "{}", restarted.error);

    disk.resize("64m");
    let done = wait_until(&mut gw.client, &t.id, 30, |t| t.state() == State::Complete).await;
    assert!(done.error.is_empty(), "{}", done.error);
    assert!(std::fs::read(&done.path).unwrap() == *bytes);
    gw.stop().await;
    drop(disk);
}
