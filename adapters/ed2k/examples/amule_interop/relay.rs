//! The captures' relay: it forwards TCP connections to a target and records what each side
//! of the first one sent. `a2b` is what the side that opened the connection sent, `b2a` the
//! other side; a recording is written cut after its last whole frame.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bytes::BytesMut;
use junction_ed2k::wire::{Frame, frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::log;

/// What each side of the first relayed connection sent.
#[derive(Clone, Default)]
pub struct Recorded {
    a2b: Arc<Mutex<Vec<u8>>>,
    b2a: Arc<Mutex<Vec<u8>>>,
}

impl Recorded {
    /// The whole frames each side has sent so far: `(a2b, b2a)`.
    pub fn frames(&self) -> (Vec<Frame>, Vec<Frame>) {
        (
            decode_all(&snapshot(&self.a2b)),
            decode_all(&snapshot(&self.b2a)),
        )
    }

    /// Writes `NAME.a2b.bin` and `NAME.b2a.bin` into `dir`, each cut after its last whole
    /// frame.
    pub fn write(&self, dir: &Path, name: &str) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        for (side, bytes) in [("a2b", &self.a2b), ("b2a", &self.b2a)] {
            let all = snapshot(bytes);
            let whole = &all[..whole_frames(&all)];
            std::fs::write(dir.join(format!("{name}.{side}.bin")), whole)?;
            log(format!("(cap) {name}.{side}.bin: {} bytes", whole.len()));
        }
        Ok(())
    }
}

fn snapshot(bytes: &Mutex<Vec<u8>>) -> Vec<u8> {
    bytes.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Relays connections from `listener` to `to` and records the first one. Later connections
/// are relayed unrecorded when `later`, left unanswered otherwise.
pub async fn relay(
    listener: TcpListener,
    to: SocketAddr,
    sent: Recorded,
    later: bool,
) -> Result<()> {
    let (from, _) = listener.accept().await?;
    // Unless `later`, the listener is held, accepting nothing more, while the first
    // connection lasts.
    let held = if later {
        tokio::spawn(async move {
            while let Ok((from, _)) = listener.accept().await {
                tokio::spawn(relay_one(from, to, Recorded::default()));
            }
        });
        None
    } else {
        Some(listener)
    };
    let r = relay_one(from, to, sent).await;
    drop(held);
    r
}

async fn relay_one(from: TcpStream, to: SocketAddr, sent: Recorded) -> Result<()> {
    let to = TcpStream::connect(to).await?;
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

/// The whole frames at the start of `bytes`, as the frame decoder reads them.
fn decode_all(bytes: &[u8]) -> Vec<Frame> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Ok(Some(f)) = frame::decode(&mut buf) {
        out.push(f);
    }
    out
}

/// The length of the whole frames at the start of `bytes`.
fn whole_frames(bytes: &[u8]) -> usize {
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(_)) = frame::decode(&mut buf) {}
    bytes.len() - buf.len()
}

/// The frames' opcodes, for the log.
pub fn opcodes(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|f| format!("{:#04x}", f.opcode))
        .collect::<Vec<_>>()
        .join(" ")
}
