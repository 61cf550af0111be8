//! Framed TCP I/O shared by the server role, the server session and peer connections:
//! a frame reader with a timeout on every wait, and a writer task fed by a bounded channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::error::WireError;
use crate::wire::Frame;
use crate::wire::frame;

/// Frames queued towards one connection's writer.
pub const WRITE_QUEUE: usize = 64;

/// Bytes a frame reader asks the socket for at a time, once the connection is busy.
const READ_CHUNK: usize = 256 * 1024;

/// Bytes a new connection's reader asks for: a flood of idle or handshaking connections
/// must not hold READ_CHUNK each (in the flood test, each eD2k port's 9,000 held
/// connections added 260 MiB of resident memory; 9-26 MiB with this). The chunk grows with
/// what the connection has received, up to READ_CHUNK.
const FIRST_CHUNK: usize = 4 * 1024;

/// Bytes the writer gathers before a write to the socket.
const WRITE_CHUNK: usize = 64 * 1024;

/// Why a connection ended or a wait failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed frame: {0}")]
    Wire(#[from] WireError),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("connection closed")]
    Closed,
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Byte counters shared by every connection of an adapter or server.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// Reads whole frames off a stream.
pub struct FrameReader<R> {
    rd: R,
    buf: BytesMut,
    /// Bytes this connection has received, which sizes the next read.
    received: usize,
    counters: Arc<Counters>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(rd: R, counters: Arc<Counters>) -> Self {
        Self {
            rd,
            buf: BytesMut::new(),
            received: 0,
            counters,
        }
    }

    /// The next frame; `Ok(None)` at a clean end of stream. Cancel-safe: bytes already read
    /// stay buffered.
    pub async fn next(&mut self) -> Result<Option<Frame>, ConnError> {
        loop {
            if let Some(f) = frame::decode(&mut self.buf)? {
                return Ok(Some(f));
            }
            // Read in large chunks once busy: fewer wake-ups, and the partial frame left over
            // is moved to a fresh buffer at most once per chunk (decoded frames keep theirs).
            let chunk = self.received.clamp(FIRST_CHUNK, READ_CHUNK);
            if self.buf.capacity() - self.buf.len() < chunk / 4 {
                self.buf.reserve(chunk);
            }
            let n = self.rd.read_buf(&mut self.buf).await?;
            self.received = self.received.saturating_add(n);
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ConnError::Closed)
                };
            }
            self.counters
                .bytes_in
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The next frame within `limit`; end of stream is [`ConnError::Closed`].
    pub async fn next_within(
        &mut self,
        limit: Duration,
        what: &'static str,
    ) -> Result<Frame, ConnError> {
        match tokio::time::timeout(limit, self.next()).await {
            Err(_) => Err(ConnError::Timeout(what)),
            Ok(Ok(Some(f))) => Ok(f),
            Ok(Ok(None)) => Err(ConnError::Closed),
            Ok(Err(e)) => Err(e),
        }
    }
}

/// Spawns the writer task of a connection; returns the channel that feeds it. The task ends
/// when every sender is dropped or a write fails (or stalls for `stall`).
pub fn spawn_writer<W>(wr: W, counters: Arc<Counters>, stall: Duration) -> mpsc::Sender<Frame>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Frame>(WRITE_QUEUE);
    // Not junction_core::task::spawn: the writer lives as long as its connection holds a
    // sender, and a shutdown token would cut the frames a session is still flushing. It
    // logs in its connection's span.
    let writer = async move {
        // Frames are encoded straight into one buffer (one copy), written when it is full
        // or when no frame is waiting.
        let mut w = wr;
        // Grown by the first frames, not allocated ahead: most connections of a flood
        // never get one.
        let mut buf = BytesMut::new();
        while let Some(f) = rx.recv().await {
            let before = buf.len();
            if let Err(e) = f.encode(&mut buf) {
                tracing::warn!(error = %e, "cannot encode frame");
                buf.truncate(before);
                continue;
            }
            if buf.len() < WRITE_CHUNK && !rx.is_empty() {
                continue;
            }
            let n = buf.len() as u64;
            let res = tokio::time::timeout(stall, async {
                w.write_all(&buf).await?;
                w.flush().await
            })
            .await;
            buf.clear();
            match res {
                Ok(Ok(())) => {
                    counters.bytes_out.fetch_add(n, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "write failed");
                    break;
                }
                Err(_) => {
                    tracing::debug!("write stalled");
                    break;
                }
            }
        }
        let _ = w.shutdown().await;
    };
    tokio::spawn(writer.instrument(tracing::Span::current()));
    tx
}

/// Queues a frame, waiting at most `limit` for room.
pub async fn send(
    tx: &mpsc::Sender<Frame>,
    frame: Frame,
    limit: Duration,
) -> Result<(), ConnError> {
    match tokio::time::timeout(limit, tx.send(frame)).await {
        Err(_) => Err(ConnError::Timeout("room in the write queue")),
        Ok(Err(_)) => Err(ConnError::Closed),
        Ok(Ok(())) => Ok(()),
    }
}
