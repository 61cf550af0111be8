//! (cap) With `ED2K_INTEROP_CAPTURE=DIR`: Junction downloads from aMule a compressible file of
//! just over one part, with its AICH root, through a relay that records what each side sent:
//! aMule's hello answer, file status, hashset, AICH recovery data and compressed parts, as
//! test vectors (adapters/ed2k/tests/captures.rs). Junction opened the connection, so
//! `NAME.a2b.bin` is what Junction sent and `NAME.b2a.bin` what aMule sent, each cut after
//! its last whole frame.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, ensure};
use futures::StreamExt;
use junction_core::{ContentId, FetchEvent, FetchRequest, HashKind, Network, NetworkId, Source};
use junction_ed2k::Adapter;
use junction_ed2k::hash::{PART_SIZE, aich_root, ed2k_hash};
use junction_ed2k::wire::Protocol;
use junction_ed2k::wire::peer::emule_op;
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

/// Runs the capture against aMule's TCP port `amule_tcp`, writing into `dir`.
pub async fn capture(j: &Adapter, amule_tcp: u16, dir: &Path) -> Result<()> {
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
            address: relay.to_string(),
            detail: None,
        }],
        trackers: Vec::new(),
        torrent: None,
    };
    let mut ev = j.fetch(req, sink.clone()).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, ev.next()).await {
        if matches!(&e, FetchEvent::Note(n) if n.starts_with("complete")) {
            break;
        }
    }
    ensure!(
        sink.swarm.store().bytes() == data,
        "(cap) the download through the relay did not complete"
    );
    // Junction also asks the server for sources, which lists aMule's own address; when the
    // parts come over a connection of that address instead, the recording holds none and
    // is not written.
    let (_, amule_sent) = sent.frames();
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
