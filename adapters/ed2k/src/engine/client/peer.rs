//! Peer connections: the hello handshake, the serving (upload) side of every connection (its
//! queue and slot in `upload.rs`), and forwarding of download answers to a download driver
//! attached to the connection.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use junction_core::limit::{ConnLimiter, ConnPermit, RequestRate};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::identity::emule_version;
use super::upload::{self, Link, PENDING_POLL, Upload};
use super::{PeerGuard, Shared, SharedFile, share};
use crate::engine::net::{ConnError, FrameReader, send, spawn_writer};
use crate::wire::hash::BLOCK_SIZE;
use crate::wire::peer::Hello;
use crate::wire::tag::ct;
use crate::wire::{Frame, PartStatus, PeerMessage, Tag, TagEncoding, TagsExt};

/// Bytes per data packet, as eMule splits blocks.
const PACKET_DATA: usize = 10_240;
/// Largest single range we serve in one request slot (eMule rejects > 3 blocks).
const MAX_SERVED_RANGE: u64 = 3 * BLOCK_SIZE;

/// `CT_EMULE_MISCOPTIONS1`: AICH v1, Unicode, data compression v1; no UDP/SX/ext. requests.
const MISC1: u32 = (1 << 29) | (1 << 28) | (1 << 20);
/// `CT_EMULE_MISCOPTIONS2`: large files.
const MISC2: u32 = 1 << 4;

/// What the other side announced in its hello.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PeerCaps {
    pub emule: bool,
    pub compression: bool,
    pub large_files: bool,
    /// Answers AICH recovery requests (`OP_AICHREQUEST`).
    pub aich: bool,
}

impl PeerCaps {
    fn of(h: &Hello) -> Self {
        let misc1 = h.tags.u64_of(ct::EMULE_MISCOPTIONS1).unwrap_or(0);
        let misc2 = h.tags.u64_of(ct::EMULE_MISCOPTIONS2).unwrap_or(0);
        Self {
            emule: h.tags.get_id(ct::EMULE_VERSION).is_some(),
            compression: (misc1 >> 20) & 0xF > 0,
            large_files: misc2 & (1 << 4) != 0,
            aich: (misc1 >> 29) & 1 != 0,
        }
    }
    pub fn enc(&self) -> TagEncoding {
        if self.emule {
            TagEncoding::Compact
        } else {
            TagEncoding::Classic
        }
    }
}

/// A connection after the hello exchange.
pub(crate) struct PeerConn {
    pub reader: FrameReader<OwnedReadHalf>,
    pub tx: mpsc::Sender<Frame>,
    pub hello: Hello,
    pub caps: PeerCaps,
    pub addr: SocketAddr,
    /// What the peer may ask of us (for one it connected from, breaking it backs its
    /// address off too).
    pub requests: RequestRate,
}

fn our_hello(s: &Shared) -> Hello {
    let info = s.server();
    let server = info
        .addr
        .unwrap_or(SocketAddrV4::new([0, 0, 0, 0].into(), 0));
    Hello {
        user_hash: s.user_hash,
        client_id: info.id,
        port: s.port,
        tags: vec![
            Tag::string(ct::NAME, s.cfg.nick.as_str()),
            Tag::u32(ct::VERSION, ct::EDONKEY_VERSION),
            Tag::u32(ct::EMULE_UDPPORTS, 0),
            Tag::u32(ct::EMULE_VERSION, emule_version()),
            Tag::u32(ct::EMULE_MISCOPTIONS1, MISC1),
            Tag::u32(ct::EMULE_MISCOPTIONS2, MISC2),
        ],
        server,
        trailer: None,
    }
}

async fn pmsg(
    tx: &mpsc::Sender<Frame>,
    m: &PeerMessage,
    enc: TagEncoding,
    limit: Duration,
) -> Result<(), ConnError> {
    send(tx, m.to_frame(enc)?, limit).await
}

fn split(
    s: &Arc<Shared>,
    stream: TcpStream,
) -> Result<(FrameReader<OwnedReadHalf>, mpsc::Sender<Frame>, SocketAddr), ConnError> {
    let addr = stream.peer_addr()?;
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    Ok((
        FrameReader::new(rd, s.counters.clone()),
        spawn_writer(wr, s.counters.clone(), s.cfg.peer_timeout),
        addr,
    ))
}

/// Connects to a peer and exchanges hellos.
pub(crate) async fn connect(s: &Arc<Shared>, addr: SocketAddrV4) -> Result<PeerConn, ConnError> {
    let stream = tokio::time::timeout(s.cfg.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnError::Timeout("peer connect"))??;
    let (mut reader, tx, addr) = split(s, stream)?;
    pmsg(
        &tx,
        &PeerMessage::Hello(our_hello(s)),
        TagEncoding::Classic,
        s.cfg.peer_timeout,
    )
    .await?;
    loop {
        let f = reader
            .next_within(s.cfg.peer_timeout, "hello answer")
            .await?;
        match PeerMessage::decode_frame(&f)? {
            PeerMessage::HelloAnswer(hello) => {
                tracing::debug!(%addr, id = hello.client_id.0, tags = ?hello.tags, "hello answer");
                let caps = PeerCaps::of(&hello);
                return Ok(PeerConn {
                    reader,
                    tx,
                    hello,
                    caps,
                    addr,
                    requests: s.cfg.limits.request_rate(),
                });
            }
            // Secure-ident and similar chatter before the answer is skipped.
            PeerMessage::Unparsed { .. } | PeerMessage::EmuleInfo(_) => {}
            other => {
                return Err(ConnError::Protocol(format!(
                    "expected a hello answer, got opcode 0x{:02X}",
                    other.opcode()
                )));
            }
        }
    }
}

/// Accepts incoming peer connections until shutdown.
pub(crate) async fn listen(s: Arc<Shared>, listener: tokio::net::TcpListener) {
    let limiter = ConnLimiter::new(s.cfg.limits.clone());
    loop {
        let (stream, addr) = tokio::select! {
            () = s.cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Over its per-IP limits: closed at once.
        let Ok(permit) = limiter.admit(addr.ip()) else {
            continue;
        };
        let s2 = s.clone();
        tokio::spawn(
            async move {
                if let Err(e) = incoming(s2, stream, permit).await {
                    tracing::debug!(error = %e, "incoming peer connection ended");
                }
            }
            .instrument(tracing::debug_span!("ed2k_peer_in", %addr)),
        );
    }
}

async fn incoming(
    s: Arc<Shared>,
    stream: TcpStream,
    mut permit: ConnPermit,
) -> Result<(), ConnError> {
    let (mut reader, tx, addr) = split(&s, stream)?;
    let f = reader.next_within(s.cfg.peer_timeout, "hello").await?;
    let PeerMessage::Hello(hello) = PeerMessage::decode_frame(&f)? else {
        return Err(ConnError::Protocol("first message is not a hello".into()));
    };
    permit.handshake_done();
    pmsg(
        &tx,
        &PeerMessage::HelloAnswer(our_hello(&s)),
        TagEncoding::Classic,
        s.cfg.peer_timeout,
    )
    .await?;
    let caps = PeerCaps::of(&hello);
    let conn = PeerConn {
        reader,
        tx,
        hello,
        caps,
        addr,
        requests: permit.request_rate(),
    };
    // A LowID source calling back for one of our downloads?
    let waiter = {
        let id = conn.hello.client_id;
        let mut cbs = s.callbacks();
        if id.is_low_id() {
            cbs.remove(&id.0)
        } else {
            None
        }
    };
    if let Some(w) = waiter {
        tracing::debug!(low_id = conn.hello.client_id.0, "callback arrived");
        if let Err(conn) = w.send(conn) {
            return run(s, conn, None).await;
        }
        return Ok(());
    }
    run(s, conn, None).await
}

/// The server asked us (a LowID) to connect to a peer that wants something from us.
pub(crate) async fn call_back(s: Arc<Shared>, addr: SocketAddrV4) -> Result<(), ConnError> {
    let conn = connect(&s, addr).await?;
    run(s, conn, None).await
}

/// Runs a connection: serves upload requests, forwards download answers to `dl` (when a
/// download driver is attached), and ends on idle, error or shutdown.
pub(crate) async fn run(
    s: Arc<Shared>,
    mut conn: PeerConn,
    dl: Option<mpsc::Sender<PeerMessage>>,
) -> Result<(), ConnError> {
    let _guard = PeerGuard::new(&s);
    let mut up = Upload::new();
    let enc = conn.caps.enc();
    let link = Link {
        tx: &conn.tx,
        enc,
        emule: conn.caps.emule,
        limit: s.cfg.peer_timeout,
    };
    let long_idle = s.cfg.queue_timeout + s.cfg.peer_timeout;
    let mut rate = conn.requests.clone();
    let res = loop {
        let dl_open = dl.as_ref().is_some_and(|d| !d.is_closed());
        let idle = if dl_open || up.permit.is_some() || up.pending.is_some() {
            long_idle
        } else {
            s.cfg.peer_timeout * 2
        };
        let slots = s.upload_slots.clone();
        tokio::select! {
            () = s.cancel.cancelled() => break Ok(()),
            () = async { if let Some(d) = &dl { d.closed().await } else { std::future::pending().await } }, if dl_open && up.permit.is_none() && !up.waiting => {
                // The download is over and we serve nothing: close.
                break Ok(());
            }
            () = tokio::time::sleep(PENDING_POLL), if up.pending.is_some() => {
                if let Err(e) = up.poll_pending(&s, &link, conn.addr).await {
                    break Err(e);
                }
            }
            p = slots.acquire_owned(), if up.waiting => {
                if let Ok(p) = p
                    && let Err(e) = up.granted(&s, &link, p).await
                {
                    break Err(e);
                }
            }
            f = tokio::time::timeout(idle, conn.reader.next()) => {
                let f = match f {
                    Err(_) => break Err(ConnError::Timeout("peer activity")),
                    Ok(Err(e)) => break Err(e),
                    Ok(Ok(None)) => break Ok(()),
                    Ok(Ok(Some(f))) => f,
                };
                let msg = match PeerMessage::decode_frame(&f) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(peer = %conn.addr, protocol = ?f.protocol, opcode = f.opcode, error = %e, "malformed peer message; closing");
                        break Err(e.into());
                    }
                };
                tracing::trace!(peer = %conn.addr, protocol = ?f.protocol, opcode = f.opcode, len = f.payload.len(), "peer message");
                if is_request(&msg) && !rate.allow() {
                    tracing::debug!(peer = %conn.addr, "too many requests; closing");
                    break Err(ConnError::Protocol("too many requests".into()));
                }
                if let Err(e) = serve(&s, &conn, &mut up, msg, dl.as_ref()).await {
                    break Err(e);
                }
            }
        }
    };
    up.leave(&s);
    res
}

/// Messages that ask us for work (what the per-connection request rate counts).
fn is_request(m: &PeerMessage) -> bool {
    matches!(
        m,
        PeerMessage::RequestFilename { .. }
            | PeerMessage::SetReqFileId(_)
            | PeerMessage::HashsetRequest(_)
            | PeerMessage::AichRequest { .. }
            | PeerMessage::AichFileHashRequest(_)
            | PeerMessage::StartUploadRequest(_)
            | PeerMessage::RequestParts { .. }
            | PeerMessage::PublicIpRequest
            | PeerMessage::AskSharedFiles
            | PeerMessage::AskSharedDirs
    )
}

async fn serve(
    s: &Arc<Shared>,
    conn: &PeerConn,
    up: &mut Upload,
    msg: PeerMessage,
    dl: Option<&mpsc::Sender<PeerMessage>>,
) -> Result<(), ConnError> {
    let enc = conn.caps.enc();
    let t = s.cfg.peer_timeout;
    let tx = &conn.tx;
    let link = Link {
        tx,
        enc,
        emule: conn.caps.emule,
        limit: t,
    };
    match msg {
        PeerMessage::RequestFilename { hash, .. } => match s.file(&hash) {
            Some(f) => {
                pmsg(
                    tx,
                    &PeerMessage::FilenameAnswer {
                        hash,
                        name: f.name.as_str().into(),
                    },
                    enc,
                    t,
                )
                .await?;
                up.file = Some(f);
            }
            None => match s.on_demand.offers.want(&hash) {
                // The other networks have it: the gateway fetches it while this client waits.
                Some(item) => {
                    let name = item.name.as_str().into();
                    pmsg(tx, &PeerMessage::FilenameAnswer { hash, name }, enc, t).await?
                }
                None => pmsg(tx, &PeerMessage::FileNotFound(hash), enc, t).await?,
            },
        },
        PeerMessage::SetReqFileId(hash) => match s.file(&hash) {
            Some(f) => {
                // Count 0 = we have the complete file.
                pmsg(
                    tx,
                    &PeerMessage::FileStatus {
                        hash,
                        parts: PartStatus::new(0),
                    },
                    enc,
                    t,
                )
                .await?;
                up.file = Some(f);
            }
            // A bridged file: offered complete, as a busy peer that queues the asker.
            None if s.on_demand.offers.get(&hash).is_some() => {
                let parts = PartStatus::new(0);
                pmsg(tx, &PeerMessage::FileStatus { hash, parts }, enc, t).await?
            }
            None => pmsg(tx, &PeerMessage::FileNotFound(hash), enc, t).await?,
        },
        PeerMessage::HashsetRequest(hash)
            if s.file(&hash).is_none() && s.on_demand.offers.get(&hash).is_some() =>
        {
            match upload::hold(s, &link, &hash).await? {
                Some(f) if !f.parts.is_empty() => {
                    let parts = f.parts.clone();
                    pmsg(tx, &PeerMessage::HashsetAnswer { hash, parts }, enc, t).await?;
                }
                _ => {
                    tracing::info!(peer = %conn.addr, "bridged file not ready within the hash-set wait")
                }
            }
        }
        PeerMessage::HashsetRequest(hash) => match s.file(&hash) {
            Some(f) if !f.parts.is_empty() => {
                pmsg(
                    tx,
                    &PeerMessage::HashsetAnswer {
                        hash,
                        parts: f.parts.clone(),
                    },
                    enc,
                    t,
                )
                .await?;
            }
            _ => pmsg(tx, &PeerMessage::FileNotFound(hash), enc, t).await?,
        },
        PeerMessage::AichRequest { hash, part, master } => {
            let data = match s.file(&hash) {
                Some(f) => f.aich_recovery(part, &master).await,
                None => None,
            };
            let answer = match data {
                Some(recovery) => PeerMessage::AichAnswer {
                    hash,
                    part,
                    master,
                    recovery: recovery.into(),
                },
                None => PeerMessage::AichAnswerFailed(hash),
            };
            pmsg(tx, &answer, enc, t).await?;
        }
        PeerMessage::AichFileHashRequest(hash) => {
            if let Some(f) = s.file(&hash) {
                let answer = PeerMessage::AichFileHashAnswer { hash, aich: f.aich };
                pmsg(tx, &answer, enc, t).await?;
            }
        }
        PeerMessage::StartUploadRequest(hash) => up.start(s, &link, hash).await?,
        PeerMessage::RequestParts { hash, ranges } => {
            if up.permit.is_none() {
                tracing::info!(peer = %conn.addr, "part request without an upload slot; ignored");
                return Ok(());
            }
            let Some(f) = s.file(&hash) else {
                return pmsg(tx, &PeerMessage::FileNotFound(hash), enc, t).await;
            };
            up.file = Some(f.clone());
            for r in ranges.iter().filter(|r| !r.is_empty()) {
                if r.end > f.size || r.len() > MAX_SERVED_RANGE {
                    return Err(ConnError::Protocol(format!(
                        "bad part request {}..{} for a {} byte file",
                        r.start, r.end, f.size
                    )));
                }
                let key = (hash, r.start, r.end);
                if up.was_served(&key) {
                    tracing::trace!(peer = %conn.addr, start = r.start, end = r.end, "block already sent; re-listed request skipped");
                    continue;
                }
                tracing::trace!(peer = %conn.addr, start = r.start, end = r.end, "serving block");
                send_block(s, conn, &f, r.start, r.end).await?;
                up.mark_served(key);
            }
        }
        PeerMessage::CancelTransfer => {
            up.end_slot();
            if let Some(d) = dl {
                let _ = d.try_send(msg);
            }
        }
        PeerMessage::EndOfDownload(hash) => {
            // Only the end of the file we upload frees the slot: aMule sends it for a file it
            // finished after it may already have asked for the next file on this connection
            // (as eMule's uploader, which compares the hash with its upload file).
            if up.file.as_ref().is_some_and(|f| f.hash == hash) {
                up.end_slot();
            } else {
                tracing::debug!(peer = %conn.addr, "end of download for a file we do not upload now; slot kept");
            }
            if let Some(d) = dl {
                let _ = d.try_send(msg);
            }
        }
        PeerMessage::PublicIpRequest => {
            if let SocketAddr::V4(a) = conn.addr {
                pmsg(tx, &PeerMessage::PublicIpAnswer(*a.ip()), enc, t).await?;
            }
        }
        PeerMessage::AskSharedFiles | PeerMessage::AskSharedDirs => {
            pmsg(tx, &PeerMessage::AskSharedDeniedAnswer, enc, t).await?;
        }
        // Answers for a download driver.
        m @ (PeerMessage::FilenameAnswer { .. }
        | PeerMessage::FileNotFound(_)
        | PeerMessage::FileStatus { .. }
        | PeerMessage::HashsetAnswer { .. }
        | PeerMessage::AcceptUploadRequest
        | PeerMessage::QueueRank(_)
        | PeerMessage::QueueRanking(_)
        | PeerMessage::SendingPart { .. }
        | PeerMessage::CompressedPart { .. }
        | PeerMessage::AichAnswer { .. }
        | PeerMessage::AichAnswerFailed(_)
        | PeerMessage::OutOfPartRequests) => {
            if let Some(d) = dl {
                // Data must not be lost: wait for the driver (bounded by the peer timeout)
                // when its queue is full.
                if let Err(mpsc::error::TrySendError::Full(m)) = d.try_send(m)
                    && tokio::time::timeout(t, d.send(m)).await.is_err()
                {
                    return Err(ConnError::Timeout("download driver"));
                }
            }
        }
        other => tracing::trace!(opcode = other.opcode(), "ignored peer message"),
    }
    Ok(())
}

async fn send_block(
    s: &Arc<Shared>,
    conn: &PeerConn,
    f: &SharedFile,
    start: u64,
    end: u64,
) -> Result<(), ConnError> {
    let len =
        usize::try_from(end - start).map_err(|_| ConnError::Protocol("range too long".into()))?;
    let mut data = share::read_at(f, start, len).await?;
    if s.cfg.corrupt_uploads_from.is_some_and(|o| start >= o) && !data.is_empty() {
        let mut v = data.to_vec();
        v[0] ^= 0xFF;
        data = Bytes::from(v);
    }
    let enc = conn.caps.enc();
    let t = s.cfg.peer_timeout;
    if conn.caps.compression && part_compressible(f, start, &data) {
        let packed = tokio::task::spawn_blocking({
            let d = data.clone();
            move || deflate_fast(&d)
        })
        .await
        .map_err(|e| ConnError::Protocol(e.to_string()))?;
        if packed.len() < data.len() * 9 / 10 {
            let total = u32::try_from(packed.len())
                .map_err(|_| ConnError::Protocol("block too big".into()))?;
            let packed = Bytes::from(packed);
            let mut off = 0;
            while off < packed.len() {
                let n = PACKET_DATA.min(packed.len() - off);
                let m = PeerMessage::CompressedPart {
                    hash: f.hash,
                    start,
                    packed_total: total,
                    data: packed.slice(off..off + n),
                };
                s.upload_limit.take(n as u64).await;
                pmsg(&conn.tx, &m, enc, t).await?;
                off += n;
            }
            return Ok(());
        }
    }
    let mut off = 0usize;
    while off < data.len() {
        let n = PACKET_DATA.min(data.len() - off);
        let a = start + off as u64;
        let range = crate::wire::ByteRange::new(a, a + n as u64)?;
        let m = PeerMessage::SendingPart {
            hash: f.hash,
            range,
            data: data.slice(off..off + n),
        };
        s.upload_limit.take(n as u64).await;
        pmsg(&conn.tx, &m, enc, t).await?;
        off += n;
    }
    Ok(())
}

/// Is compressing blocks of this part likely to pay off? Sampled on the first block served
/// from each part (files are mostly all compressible or all not).
fn part_compressible(f: &SharedFile, start: u64, data: &[u8]) -> bool {
    let part = start / crate::wire::hash::PART_SIZE;
    let known = f
        .compressible
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&part)
        .copied();
    known.unwrap_or_else(|| {
        let c = compressible(data);
        f.compressible
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(part, c);
        c
    })
}

/// A quick sample: is compressing this block likely to pay off?
fn compressible(data: &[u8]) -> bool {
    let sample = &data[..data.len().min(4096)];
    sample.len() >= 256 && deflate_fast(sample).len() < sample.len() * 8 / 10
}

/// zlib at the fastest level (receivers inflate any level).
fn deflate_fast(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let _ = flate2::read::ZlibEncoder::new(data, flate2::Compression::fast()).read_to_end(&mut out);
    out
}
