//! (cap) With `ED2K_INTEROP_CAPTURE=DIR`, after the client capture: aMule's connection to
//! Junction's index server, recorded as test vectors (adapters/ed2k/tests/captures.rs).
//! Junction shares a small file; amuled is restarted with a relay in front of the index
//! server as its server, so the recorded connection starts with its login: login request,
//! the server's message, ID change, status and ident, aMule's offer of its shared files.
//! aMule then searches for Junction's file (`search local`), downloads it from the results
//! (`download 0`) and asks the server for its sources: a fresh aMule without part files has
//! sent no source request at login, so the new file's goes out at once. aMule opened the
//! connection: `NAME.a2b.bin` is what aMule sent, `NAME.b2a.bin` what the server sent.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use junction_core::{ContentId, Network, SharedItem};
use junction_ed2k::wire::Frame;
use junction_ed2k::wire::server::op;
use tokio::net::TcpListener;

use super::relay::{Recorded, opcodes, relay};
use super::{Amuled, Ctx, amule_fetch, log, pseudo_random};

/// The file Junction shares for aMule to find.
const CAP_FILE: &str = "junctioncap small.bin";
/// The capture's name in the data folder.
const CAP_NAME: &str = "02-amule-logs-into-junction-server";

/// Runs the capture; Junction's shared files are in `j_share`, the recording goes to `dir`.
pub async fn capture_server(cx: &Ctx<'_>, j_share: &Path, dir: &Path) -> Result<()> {
    let data = pseudo_random(300_000, 205);
    std::fs::write(j_share.join(CAP_FILE), &data)?;
    let files0 = cx.server.stats().files;
    cx.j.share(SharedItem {
        path: j_share.join(CAP_FILE),
        name: CAP_FILE.into(),
        size: 0,
        id: ContentId::new(None),
        hashes: None,
    })
    .await?;
    // The server has Junction's offer before aMule searches.
    wait_until(
        Duration::from_secs(20),
        "Junction's offer of the file",
        || cx.server.stats().files > files0,
    )
    .await?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let sent = Recorded::default();
    // aMule's reconnects after the capture go through too, unrecorded.
    tokio::spawn(relay(listener, cx.server.local_addr(), sent.clone(), true));
    let amule = Amuled {
        server: format!("localhost:{port}"),
        ..cx.amule.clone()
    };
    ensure!(
        amule.restart()?.success(),
        "(cap) amuled did not start again"
    );
    let seen = |a2b: &[u8], b2a: &[u8]| {
        let (ours, theirs) = sent.frames();
        a2b.iter().all(|o| has(&ours, *o)) && b2a.iter().all(|o| has(&theirs, *o))
    };
    wait_until(Duration::from_secs(60), "aMule's login and offer", || {
        seen(&[op::LOGINREQUEST, op::OFFERFILES], &[op::IDCHANGE])
    })
    .await?;

    let mut failures = Vec::new();
    let file = (CAP_FILE, data);
    amule_fetch(cx.ec, "junctioncap", &[&file], &mut failures).await?;
    if let Some(f) = failures.first() {
        bail!("(cap) {f}");
    }
    wait_until(Duration::from_secs(60), "aMule's source request", || {
        seen(
            &[op::SEARCHREQUEST, op::GETSOURCES],
            &[op::SEARCHRESULT, op::FOUNDSOURCES],
        )
    })
    .await?;
    // The callback request aMule may send for the LowID source, and the status after it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    sent.write(dir, CAP_NAME)?;
    let (ours, theirs) = sent.frames();
    log(format!(
        "(cap) {CAP_NAME}: aMule sent opcodes {}; the server sent {}",
        opcodes(&ours),
        opcodes(&theirs)
    ));
    Ok(())
}

fn has(frames: &[Frame], opcode: u8) -> bool {
    frames.iter().any(|f| f.opcode == opcode)
}

/// Polls `done` every 500 ms for up to `limit`.
async fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let t0 = Instant::now();
    while !done() {
        if t0.elapsed() > limit {
            bail!("(cap) no {what} within {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
