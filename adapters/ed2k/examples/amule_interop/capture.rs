//! (cap) With `ED2K_INTEROP_CAPTURE=DIR`: Junction downloads from aMule a compressible file of
//! just over one part, with its AICH root, through a relay that records what each side sent:
//! aMule's hello answer, file status, hashset, AICH recovery data and compressed parts, as
//! test vectors (adapters/ed2k/tests/captures.rs). Junction opened the connection, so
//! `NAME.a2b.bin` is what Junction sent and `NAME.b2a.bin` what aMule sent, each cut after
//! its last whole frame.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, ensure};
use bytes::BytesMut;
use futures::StreamExt;
use junction_core::{ContentId, FetchEvent, FetchRequest, HashKind, Network, NetworkId, Source};
use junction_ed2k::Adapter;
use junction_ed2k::hash::{PART_SIZE, aich_root, ed2k_hash};
use junction_ed2k::wire::frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{log, mem_sink};

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
    tokio::spawn(relay_first(listener, amule_tcp, sent.clone()));
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
    std::fs::create_dir_all(dir)?;
    for (side, bytes) in [("a2b", &sent.a2b), ("b2a", &sent.b2a)] {
        let all = bytes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let whole = &all[..whole_frames(&all)];
        std::fs::write(dir.join(format!("{CAP_NAME}.{side}.bin")), whole)?;
        log(format!(
            "(cap) {CAP_NAME}.{side}.bin: {} bytes",
            whole.len()
        ));
    }
    drop(ev);
    Ok(())
}

/// What each side of the first relayed connection sent.
#[derive(Clone, Default)]
struct Recorded {
    a2b: Arc<Mutex<Vec<u8>>>,
    b2a: Arc<Mutex<Vec<u8>>>,
}

/// Relays the first connection to aMule and records it; later ones are refused.
async fn relay_first(listener: TcpListener, amule_tcp: u16, sent: Recorded) -> Result<()> {
    let (from, _) = listener.accept().await?;
    let to = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], amule_tcp))).await?;
    let (fr, fw) = from.into_split();
    let (tr, tw) = to.into_split();
    tokio::select! {
        r = pump(fr, tw, sent.a2b) => r,
        r = pump(tr, fw, sent.b2a) => r,
    }
}

async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    record: Arc<Mutex<Vec<u8>>>,
) -> Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(&buf[..n]);
        to.write_all(&buf[..n]).await?;
    }
}

/// The length of the whole frames at the start of `bytes`, as the frame decoder reads them.
fn whole_frames(bytes: &[u8]) -> usize {
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(_)) = frame::decode(&mut buf) {}
    bytes.len() - buf.len()
}
