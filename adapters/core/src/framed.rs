//! Framed TCP I/O that every network's long-lived connections share: a reader that grows
//! its reads with the traffic and hands whole frames to the network's pure decoder, and a
//! writer task fed by a bounded channel that batches frames, writes each batch under a
//! stall deadline, and counts what went out. eD2k's sessions and Gnutella's links run on
//! it; what a frame is stays in each network's `wire/`.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{Instrument, Span};

/// Bytes the reader asks the socket for at a time once the connection is busy.
const READ_CHUNK: usize = 256 * 1024;

/// Bytes a new connection's reader asks for: a flood of idle or handshaking connections
/// must not hold `READ_CHUNK` each (in the flood test, each eD2k port's 9,000 held
/// connections added 260 MiB of resident memory; 9-26 MiB with this). The chunk grows with
/// what the connection has received, up to `READ_CHUNK`.
const FIRST_CHUNK: usize = 4 * 1024;

/// Counts bytes as they cross the socket (an adapter's traffic counters).
pub type Count = Box<dyn Fn(u64) + Send + Sync>;

/// Reads a stream into a buffer that frames are decoded from.
pub struct FrameReader<R> {
    rd: R,
    buf: BytesMut,
    /// Bytes this connection has received, which sizes the next read.
    received: usize,
    count: Count,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader that starts with `first` (bytes read during a handshake) in its buffer.
    pub fn new(rd: R, first: BytesMut, count: Count) -> Self {
        Self {
            rd,
            buf: first,
            received: 0,
            count,
        }
    }

    /// What was read and not yet decoded.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Reads once more into the buffer; returns how many bytes came (0 at end of stream).
    /// Cancel-safe: nothing read is lost.
    pub async fn fill(&mut self) -> io::Result<usize> {
        // Large reads once busy: fewer wake-ups, and the partial frame left over is moved
        // to a fresh buffer at most once per chunk (decoded frames keep theirs).
        let chunk = self.received.clamp(FIRST_CHUNK, READ_CHUNK);
        if self.buf.capacity() - self.buf.len() < chunk / 4 {
            self.buf.reserve(chunk);
        }
        let n = self.rd.read_buf(&mut self.buf).await?;
        self.received = self.received.saturating_add(n);
        (self.count)(n as u64);
        Ok(n)
    }

    /// The next frame that `decode` takes off the buffer, reading as needed. `Ok(None)` at
    /// a clean end of stream; an end inside a frame is an `UnexpectedEof` error.
    /// Cancel-safe: bytes already read stay buffered.
    pub async fn next<F, E>(
        &mut self,
        mut decode: impl FnMut(&mut BytesMut) -> Result<Option<F>, E>,
    ) -> Result<Option<F>, E>
    where
        E: From<io::Error>,
    {
        loop {
            if let Some(f) = decode(&mut self.buf)? {
                return Ok(Some(f));
            }
            if self.fill().await? == 0 {
                return match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
                };
            }
        }
    }
}

/// A message a writer task puts on the wire.
pub trait Outgoing: Send + 'static {
    type Error: std::fmt::Display;

    /// Appends the message's bytes to `buf`. On an error the message is dropped (and
    /// logged), not the connection.
    fn encode(&self, buf: &mut BytesMut) -> Result<(), Self::Error>;

    /// The connection's last message (a goodbye): once it is written, the writer ends.
    fn is_last(&self) -> bool {
        false
    }
}

/// A transform of the whole outgoing stream, such as a link's deflate.
pub trait StreamEncoder: Send + 'static {
    /// Appends the encoded form of `plain` to `wire`, flushed so the peer can read it all.
    fn encode(&mut self, plain: &[u8], wire: &mut BytesMut) -> io::Result<()>;
}

/// How a writer task batches and how long it lets a write stall.
#[derive(Debug, Clone, Copy)]
pub struct WriterOpts {
    /// Messages queued towards the writer.
    pub queue: usize,
    /// Bytes gathered from waiting messages before a write.
    pub batch: usize,
    /// A write that makes no progress for this long ends the connection.
    pub stall: Duration,
}

/// Spawns a connection's writer task inside `span`; returns the channel that feeds it.
/// The task ends when every sender is dropped, after a message that [`Outgoing::is_last`],
/// or when a write fails or stalls; it then shuts the stream down.
///
/// Not [`crate::task::spawn`]: the writer must outlive the adapter's shutdown token, to
/// flush what a session queues while it ends (a Gnutella Bye); it ends when its senders do.
pub fn spawn_writer<W, T>(
    wr: W,
    opts: WriterOpts,
    stream: Option<Box<dyn StreamEncoder>>,
    count: Count,
    span: Span,
) -> mpsc::Sender<T>
where
    W: AsyncWrite + Unpin + Send + 'static,
    T: Outgoing,
{
    let (tx, rx) = mpsc::channel::<T>(opts.queue.max(1));
    tokio::spawn(write_loop(wr, rx, opts, stream, count).instrument(span));
    tx
}

async fn write_loop<W, T>(
    mut w: W,
    mut rx: mpsc::Receiver<T>,
    opts: WriterOpts,
    mut stream: Option<Box<dyn StreamEncoder>>,
    count: Count,
) where
    W: AsyncWrite + Unpin + Send + 'static,
    T: Outgoing,
{
    // Grown by the first messages, not allocated ahead: most connections of a flood
    // never get one.
    let mut plain = BytesMut::new();
    let mut wire = BytesMut::new();
    while let Some(m) = rx.recv().await {
        let before = plain.len();
        if let Err(e) = m.encode(&mut plain) {
            tracing::warn!(error = %e, "cannot encode a message");
            plain.truncate(before);
            continue;
        }
        let last = m.is_last();
        if !last && plain.len() < opts.batch && !rx.is_empty() {
            continue;
        }
        let out: &[u8] = match stream.as_mut() {
            Some(s) => {
                wire.clear();
                if let Err(e) = s.encode(&plain, &mut wire) {
                    tracing::debug!(error = %e, "cannot encode the stream");
                    break;
                }
                &wire
            }
            None => &plain,
        };
        let n = out.len() as u64;
        let res = tokio::time::timeout(opts.stall, async {
            w.write_all(out).await?;
            w.flush().await
        })
        .await;
        plain.clear();
        match res {
            Ok(Ok(())) => count(n),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write failed");
                break;
            }
            Err(_) => {
                tracing::debug!("write stalled");
                break;
            }
        }
        if last {
            break;
        }
    }
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A frame of this test: one length byte, then that many bytes.
    fn decode(buf: &mut BytesMut) -> Result<Option<Vec<u8>>, io::Error> {
        match buf.first() {
            Some(&n) if buf.len() > usize::from(n) => {
                let f = buf.split_to(usize::from(n) + 1);
                Ok(Some(f[1..].to_vec()))
            }
            _ => Ok(None),
        }
    }

    struct Msg(Vec<u8>, bool);

    impl Outgoing for Msg {
        type Error = String;
        fn encode(&self, buf: &mut BytesMut) -> Result<(), String> {
            let n = u8::try_from(self.0.len()).map_err(|_| "too long".to_string())?;
            buf.extend_from_slice(&[n]);
            buf.extend_from_slice(&self.0);
            Ok(())
        }
        fn is_last(&self) -> bool {
            self.1
        }
    }

    fn counter() -> (Arc<AtomicU64>, Count) {
        let c = Arc::new(AtomicU64::new(0));
        let c2 = c.clone();
        (c, Box::new(move |n| _ = c2.fetch_add(n, Ordering::Relaxed)))
    }

    const OPTS: WriterOpts = WriterOpts {
        queue: 8,
        batch: 1024,
        stall: Duration::from_secs(5),
    };

    #[tokio::test]
    async fn frames_cross_whole_and_the_writer_ends_after_the_last() {
        let (a, b) = tokio::io::duplex(64);
        let (out, count_out) = counter();
        let tx = spawn_writer(a, OPTS, None, count_out, Span::none());
        let (inn, count_in) = counter();
        // A frame begun in the handshake's bytes ([3, 'a']) ends in the stream's first.
        let mut rd = FrameReader::new(b, BytesMut::from(&[3u8, b'a'][..]), count_in);
        tx.send(Msg(b"x".to_vec(), false)).await.unwrap();
        assert_eq!(rd.next(decode).await.unwrap(), Some(vec![b'a', 1, b'x']));
        tx.send(Msg(vec![7; 300], false)).await.unwrap(); // refused by encode: dropped alone
        tx.send(Msg(b"y".to_vec(), false)).await.unwrap();
        tx.send(Msg(b"bye".to_vec(), true)).await.unwrap();
        let _ = tx.send(Msg(b"never".to_vec(), false)).await;
        assert_eq!(rd.next(decode).await.unwrap(), Some(b"y".to_vec()));
        assert_eq!(rd.next(decode).await.unwrap(), Some(b"bye".to_vec()));
        assert_eq!(
            rd.next(decode).await.unwrap(),
            None,
            "the writer shut the stream"
        );
        assert_eq!(out.load(Ordering::Relaxed), 2 + 2 + 4);
        assert_eq!(inn.load(Ordering::Relaxed), 2 + 2 + 4);
    }

    #[tokio::test]
    async fn an_end_inside_a_frame_is_an_error() {
        let (a, b) = tokio::io::duplex(64);
        let mut rd = FrameReader::new(b, BytesMut::new(), Box::new(|_| ()));
        let mut a = a;
        a.write_all(&[5, 1, 2]).await.unwrap();
        drop(a);
        let e = rd.next(decode).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// Flips each batch's bits: proves the stream encoder sees every byte, in order.
    struct Xor;
    impl StreamEncoder for Xor {
        fn encode(&mut self, plain: &[u8], wire: &mut BytesMut) -> io::Result<()> {
            wire.extend(plain.iter().map(|b| b ^ 0xff));
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_stream_encoder_sees_every_byte_and_a_stalled_peer_ends_the_writer() {
        let (a, mut b) = tokio::io::duplex(8);
        let opts = WriterOpts {
            stall: Duration::from_millis(200),
            ..OPTS
        };
        let tx = spawn_writer(a, opts, Some(Box::new(Xor)), Box::new(|_| ()), Span::none());
        tx.send(Msg(b"ab".to_vec(), false)).await.unwrap();
        let mut got = [0u8; 3];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [2 ^ 0xff, b'a' ^ 0xff, b'b' ^ 0xff]);
        // Nobody reads b now: a large message stalls, and the writer gives up.
        tx.send(Msg(vec![1; 200], false)).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), tx.closed()).await;
        assert!(closed.is_ok(), "the writer ended after the stall");
    }
}
