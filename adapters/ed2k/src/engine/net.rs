//! Framed TCP I/O shared by the server role, the server session and peer connections:
//! core's framed reader and writer task (`junction_core::framed`) with eD2k's frames, and a
//! timeout on every wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use junction_core::framed;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::error::WireError;
use crate::wire::Frame;
use crate::wire::frame;

/// Frames queued towards one connection's writer.
pub const WRITE_QUEUE: usize = 64;

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

/// Reads whole frames off a stream (core's framed reader with eD2k's frame decoder).
pub struct FrameReader<R> {
    inner: framed::FrameReader<R>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(rd: R, counters: Arc<Counters>) -> Self {
        let count = Box::new(move |n| _ = counters.bytes_in.fetch_add(n, Ordering::Relaxed));
        Self {
            inner: framed::FrameReader::new(rd, BytesMut::new(), count),
        }
    }

    /// The next frame; `Ok(None)` at a clean end of stream. Cancel-safe: bytes already read
    /// stay buffered.
    pub async fn next(&mut self) -> Result<Option<Frame>, ConnError> {
        let decode = |b: &mut BytesMut| frame::decode(b).map_err(ConnError::from);
        match self.inner.next(decode).await {
            Err(ConnError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(ConnError::Closed)
            }
            r => r,
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

impl framed::Outgoing for Frame {
    type Error = WireError;

    fn encode(&self, buf: &mut BytesMut) -> Result<(), WireError> {
        Frame::encode(self, buf)
    }
}

/// Spawns the writer task of a connection (core's, in the current span); returns the
/// channel that feeds it. The task ends when every sender is dropped or a write fails (or
/// stalls for `stall`).
pub fn spawn_writer<W>(wr: W, counters: Arc<Counters>, stall: Duration) -> mpsc::Sender<Frame>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let opts = framed::WriterOpts {
        queue: WRITE_QUEUE,
        batch: WRITE_CHUNK,
        stall,
    };
    let count = Box::new(move |n| _ = counters.bytes_out.fetch_add(n, Ordering::Relaxed));
    framed::spawn_writer(wr, opts, None, count, tracing::Span::current())
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
