//! (cap) With `ED2K_INTEROP_CAPTURE=DIR`: Junction downloads from aMule a compressible file of
//! just over one part, with its AICH root, through a relay that records what each side sent:
//! aMule's hello answer, file status, hashset, AICH recovery data and compressed parts, as
//! test vectors (adapters/ed2k/tests/captures.rs). Junction opened the connection, so
//! `NAME.a2b.bin` is what Junction sent and `NAME.b2a.bin` what aMule sent, each cut after
//! its last whole frame. Record with `ED2K_INTEROP_SKIP_A=1` (and `ED2K_INTEROP_SKIP_B=1`):
//! after (a) and (r), aMule 2.3.3 answered the relayed connection's hello and then left some
//! of its requests unanswered until it closed it (four runs of four, with either Junction
//! client); a fresh aMule answers.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};
use futures::StreamExt;
use junction_core::{ContentId, FetchEvent, FetchRequest, HashKind, Network, NetworkId, Source};
use junction_ed2k::hash::{PART_SIZE, aich_root, ed2k_hash};
use junction_ed2k::wire::Protocol;
use junction_ed2k::wire::peer::emule_op;
use junction_ed2k::{Adapter, Config};
use tokio::net::TcpListener;

use super::mem_sink;
use super::relay::{self, Recorded};

/// The file aMule shares for the capture.
pub const CAP_FILE: &str = "amulecap text.bin";
/// The capture's name in the data folder.
const CAP_NAME: &str = "01-junction-downloads-from-amule";

/// One part and 5,000 bytes, in runs of 4 KiB of one letter: aMule sends such blocks
/// compressed (`OP_COMPRESSEDPART`), and the capture stays small.
pub fn cap_data() -> Vec<u8> {
    let letters = b"aMule capture";
    (0..PART_SIZE as usize + 5000)
        .map(|i| letters[(i / 4096) % letters.len()])
        .collect()
}

/// Runs the capture against aMule's TCP port `amule_tcp`, writing into `dir`. The download
/// is a second Junction client's, logged into no server: the interop client also asks the
/// index server for sources, is given aMule's own address, and aMule sent the parts over
/// that connection rather than through the relay (in two runs of two).
pub async fn capture(amule_tcp: u16, dir: &Path) -> Result<()> {
    let j = Adapter::start(Config {
        listen: None,
        servers: Vec::new(),
        nick: "junction-interop".into(),
        peer_timeout: Duration::from_secs(60),
        ..Config::default()
    })
    .await?;
    let r = capture_with(&j, amule_tcp, dir).await;
    j.shutdown().await;
    r
}

async fn capture_with(j: &Adapter, amule_tcp: u16, dir: &Path) -> Result<()> {
    let data = cap_data();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let relay = listener.local_addr()?;
    let sent = Recorded::default();
    let to = SocketAddr::from(([127, 0, 0, 1], amule_tcp));
    // One connection: a second one would be a second download, not in the capture.
    tokio::spawn(relay::relay(listener, to, sent.clone(), false));
    let mut id =
        ContentId::new(Some(data.len() as u64)).with(HashKind::Ed2k, &ed2k_hash(&data).root);
    id.set(HashKind::Aich, &aich_root(&data));
    let sink = mem_sink(data.len() as u64);
    let req = FetchRequest {
        id,
        name: CAP_FILE.into(),
        size: data.len() as u64,
        sources: vec![Source {
            network: NetworkId::ED2K,
            address: relay.into(),
            detail: None,
        }],
        trackers: Vec::new(),
        torrent: None,
    };
    let mut ev = j.fetch(req, sink.clone()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut notes = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, ev.next()).await {
        if let FetchEvent::Note(n) = &e {
            notes.push(n.clone());
            if n.starts_with("complete") {
                break;
            }
        }
    }
    let (ours, amule_sent) = sent.frames();
    ensure!(
        sink.swarm.store().bytes() == data,
        "(cap) the download through the relay did not complete (Junction's notes: {notes:?}; through the relay Junction sent {}, aMule {})",
        relay::opcodes(&ours),
        relay::opcodes(&amule_sent)
    );
    // Should the parts come over another connection, the recording is not written.
    ensure!(
        amule_sent
            .iter()
            .any(|f| f.protocol == Protocol::Emule && f.opcode == emule_op::COMPRESSEDPART),
        "(cap) aMule sent no compressed part through the relay (run the capture again)"
    );
    sent.write(dir, CAP_NAME)?;
    drop(ev);
    Ok(())
}
