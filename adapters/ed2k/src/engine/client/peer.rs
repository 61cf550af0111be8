//! Peer connections: the hello handshake, the serving (upload) side of every connection (its
//! queue, slot and blocks in `upload.rs`), and forwarding of download answers to a download
//! driver attached to the connection.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use junction_core::accept::{Admitted, MAX_PENDING, accept_loop};
use junction_core::limit::{ConnLimiter, RequestRate};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;

use super::identity::emule_version;
use super::upload::{self, Link, PENDING_POLL, Upload};
use super::{PeerGuard, Shared};
use crate::engine::net::{ConnError, FrameReader, send, spawn_writer};
use crate::wire::hash::AichHash;
use crate::wire::peer::Hello;
use crate::wire::tag::ct;
use crate::wire::{Frame, Hash16, PartStatus, PeerMessage, Tag, TagEncoding, TagsExt};

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
    let span = |addr| tracing::debug_span!("ed2k_peer_in", %addr);
    let cancel = s.cancel.clone();
    accept_loop(
        listener,
        limiter,
        MAX_PENDING,
        cancel,
        span,
        |stream, _, admitted| {
            let s = s.clone();
            async move {
                if let Err(e) = incoming(s, stream, admitted).await {
                    tracing::debug!(error = %e, "incoming peer connection ended");
                }
            }
        },
    )
    .await;
}

async fn incoming(
    s: Arc<Shared>,
    stream: TcpStream,
    mut permit: Admitted,
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
        requests: permit.conn.request_rate(),
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

/// Answers one message of the peer: its requests for our files and upload slot, and the
/// answers a download driver on this connection waits for.
async fn serve(
    s: &Arc<Shared>,
    conn: &PeerConn,
    up: &mut Upload,
    msg: PeerMessage,
    dl: Option<&mpsc::Sender<PeerMessage>>,
) -> Result<(), ConnError> {
    let t = s.cfg.peer_timeout;
    let link = Link {
        tx: &conn.tx,
        enc: conn.caps.enc(),
        emule: conn.caps.emule,
        limit: t,
    };
    match msg {
        PeerMessage::RequestFilename { hash, .. } => answer_filename(s, up, &link, hash).await?,
        PeerMessage::SetReqFileId(hash) => answer_file_status(s, up, &link, hash).await?,
        PeerMessage::HashsetRequest(hash) => answer_hashset(s, conn.addr, &link, hash).await?,
        PeerMessage::AichRequest { hash, part, master } => {
            answer_aich(s, &link, hash, part, master).await?;
        }
        PeerMessage::AichFileHashRequest(hash) => {
            if let Some(f) = s.file(&hash) {
                let answer = PeerMessage::AichFileHashAnswer { hash, aich: f.aich };
                link.send(&answer).await?;
            }
        }
        PeerMessage::StartUploadRequest(hash) => up.start(s, &link, hash).await?,
        PeerMessage::RequestParts { hash, ranges } => {
            let compression = conn.caps.compression;
            up.send_parts(s, &link, compression, conn.addr, hash, &ranges)
                .await?;
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
                link.send(&PeerMessage::PublicIpAnswer(*a.ip())).await?;
            }
        }
        PeerMessage::AskSharedFiles | PeerMessage::AskSharedDirs => {
            link.send(&PeerMessage::AskSharedDeniedAnswer).await?;
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
                to_driver(d, m, t).await?;
            }
        }
        other => tracing::trace!(opcode = other.opcode(), "ignored peer message"),
    }
    Ok(())
}

/// `OP_REQUESTFILENAME`: the name of a file we share, or of one the other networks have
/// (the gateway then fetches it while this client waits).
async fn answer_filename(
    s: &Shared,
    up: &mut Upload,
    link: &Link<'_>,
    hash: Hash16,
) -> Result<(), ConnError> {
    match s.file(&hash) {
        Some(f) => {
            link.send(&PeerMessage::FilenameAnswer {
                hash,
                name: f.name.as_str().into(),
            })
            .await?;
            up.file = Some(f);
        }
        None => match s.on_demand.offers.want(&hash) {
            // The other networks have it: the gateway fetches it while this client waits.
            Some(item) => {
                let name = item.name.as_str().into();
                link.send(&PeerMessage::FilenameAnswer { hash, name })
                    .await?;
            }
            None => link.send(&PeerMessage::FileNotFound(hash)).await?,
        },
    }
    Ok(())
}

/// `OP_SETREQFILEID`: the file's part status (complete, for ours and for bridged ones).
async fn answer_file_status(
    s: &Shared,
    up: &mut Upload,
    link: &Link<'_>,
    hash: Hash16,
) -> Result<(), ConnError> {
    match s.file(&hash) {
        Some(f) => {
            // Count 0 = we have the complete file.
            link.send(&PeerMessage::FileStatus {
                hash,
                parts: PartStatus::new(0),
            })
            .await?;
            up.file = Some(f);
        }
        // A bridged file: offered complete, as a busy peer that queues the asker.
        None if s.on_demand.offers.get(&hash).is_some() => {
            let parts = PartStatus::new(0);
            link.send(&PeerMessage::FileStatus { hash, parts }).await?;
        }
        None => link.send(&PeerMessage::FileNotFound(hash)).await?,
    }
    Ok(())
}

/// `OP_HASHSETREQUEST`: a shared file's part hashes; for a bridged file, once the gateway
/// has it (the request is held meanwhile, see [`upload::hold`]).
async fn answer_hashset(
    s: &Arc<Shared>,
    peer: SocketAddr,
    link: &Link<'_>,
    hash: Hash16,
) -> Result<(), ConnError> {
    if s.file(&hash).is_none() && s.on_demand.offers.get(&hash).is_some() {
        match upload::hold(s, link, &hash).await? {
            Some(f) if !f.parts.is_empty() => {
                let parts = f.parts.clone();
                link.send(&PeerMessage::HashsetAnswer { hash, parts })
                    .await?;
            }
            _ => {
                tracing::info!(peer = %peer, "bridged file not ready within the hash-set wait")
            }
        }
        return Ok(());
    }
    match s.file(&hash) {
        Some(f) if !f.parts.is_empty() => {
            link.send(&PeerMessage::HashsetAnswer {
                hash,
                parts: f.parts.clone(),
            })
            .await?;
        }
        _ => link.send(&PeerMessage::FileNotFound(hash)).await?,
    }
    Ok(())
}

/// `OP_AICHREQUEST`: the recovery data of one part of a shared file, or a refusal.
async fn answer_aich(
    s: &Shared,
    link: &Link<'_>,
    hash: Hash16,
    part: u16,
    master: AichHash,
) -> Result<(), ConnError> {
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
    link.send(&answer).await
}

/// Hands an answer to the download driver attached to the connection. Data must not be
/// lost: when its queue is full, this waits for the driver (bounded by the peer timeout).
async fn to_driver(
    d: &mpsc::Sender<PeerMessage>,
    m: PeerMessage,
    t: Duration,
) -> Result<(), ConnError> {
    if let Err(mpsc::error::TrySendError::Full(m)) = d.try_send(m)
        && tokio::time::timeout(t, d.send(m)).await.is_err()
    {
        return Err(ConnError::Timeout("download driver"));
    }
    Ok(())
}
