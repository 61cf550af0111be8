//! Gnutella links: the 0.6 handshake both ways, then a reader and a writer
//! task per link (with deflate when negotiated) talking to the core over
//! bounded channels. The link's types are in [`super::link`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tracing::{debug, debug_span};

use super::Shared;
use super::error::ServentError;
use super::inbox::CoreMsg;
use super::link::{Admission, Link, Out, PeerInfo};
use super::net::{CONNECT_TIMEOUT, WRITE_TIMEOUT, connect_from, read_head};
use super::router::ConnId;
use crate::wire::descriptor_header::DescriptorDecoder;
use crate::wire::guid::Guid;
use crate::wire::handshake::{Handshake, HandshakeProfile};
use crate::wire::link::{LinkDeflater, LinkInflater};
use crate::wire::message::{Bye, Descriptor, Message};
use junction_core::framed::{self, StreamEncoder, WriterOpts};
use junction_core::limit::ConnPermit;

/// Time allowed for each handshake block.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// A link silent this long is dropped (we ping every `core::PING_EVERY`).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(180);
/// Most messages queued towards one peer; more are dropped (flow control).
pub const LINK_QUEUE: usize = 256;
/// Most bytes one inflate call may produce.
const MAX_INFLATE_BURST: usize = 4 << 20;
/// Most bytes written per deflate flush.
const MAX_BATCH: usize = 64 * 1024;

async fn write_with_timeout(
    s: &mut TcpStream,
    data: &[u8],
    what: &'static str,
) -> Result<(), ServentError> {
    timeout(WRITE_TIMEOUT, s.write_all(data))
        .await
        .map_err(|_| ServentError::Timeout(what))??;
    Ok(())
}

fn info_from(addr: SocketAddr, hs: &Handshake, incoming: bool) -> PeerInfo {
    let listen = hs
        .listen_addr()
        .or_else(|| hs.node())
        .and_then(|a| match a {
            SocketAddr::V4(v) => Some(v),
            SocketAddr::V6(_) => None,
        });
    let mut try_hosts = hs.try_ultrapeers();
    try_hosts.extend(hs.try_hosts());
    try_hosts.truncate(64);
    PeerInfo {
        addr,
        ultrapeer: hs.ultrapeer().unwrap_or(false),
        incoming,
        user_agent: hs.user_agent().unwrap_or("").chars().take(128).collect(),
        listen,
        our_ip: hs.remote_ip(),
        try_hosts,
        guid: hs.guid(),
        up_qrp: hs.ultrapeer_query_routing().is_some(),
        vendor_messages: hs.headers.contains("Vendor-Message"),
    }
}

/// Connect to `addr` and run the client side of the 0.6 handshake.
pub async fn dial(
    addr: SocketAddr,
    profile: &HandshakeProfile,
    shared: &Shared,
) -> Result<Link, ServentError> {
    let mut s = connect_from(shared.cfg.listen, addr, CONNECT_TIMEOUT).await?;
    s.set_nodelay(true)?;
    let req = profile.connect_request(Some(addr.ip())).to_bytes();
    write_with_timeout(&mut s, &req, "handshake request").await?;
    let mut buf = BytesMut::with_capacity(4096);
    let resp = read_head(
        &mut s,
        &mut buf,
        "handshake response",
        HANDSHAKE_TIMEOUT,
        Handshake::parse,
    )
    .await?;
    shared
        .stats
        .add_in((req.len() + resp.to_bytes().len()) as u64);
    let info = info_from(addr, &resp, false);
    if !resp.is_ok() {
        let reason = match &resp.start {
            crate::wire::handshake::StartLine::Status { reason, .. } => reason.clone(),
            _ => String::new(),
        };
        return Err(ServentError::Refused {
            code: resp.code().unwrap_or(0),
            reason,
            try_hosts: info.try_hosts,
        });
    }
    if !profile.ultrapeer && !info.ultrapeer {
        let no = profile.reject(503, "Leaf to leaf links are not supported", None, &[]);
        let _ = write_with_timeout(&mut s, &no.to_bytes(), "handshake refusal").await;
        return Err(ServentError::Refused {
            code: 503,
            reason: "peer is a leaf".into(),
            try_hosts: info.try_hosts,
        });
    }
    let fin = profile.final_response(&resp).to_bytes();
    write_with_timeout(&mut s, &fin, "final handshake").await?;
    shared.stats.add_out(fin.len() as u64);
    Ok(Link {
        stream: s,
        buf,
        inflate: resp.content_deflate(),
        deflate: profile.deflate && resp.accepts_deflate(),
        info,
        permit: None,
    })
}

/// Run the server side of the handshake on an accepted socket whose first
/// bytes (in `buf`) start with `GNUTELLA`, asking the core whether to admit.
pub async fn accept(
    mut s: TcpStream,
    mut buf: BytesMut,
    addr: SocketAddr,
    core: mpsc::Sender<CoreMsg>,
    mut permit: ConnPermit,
) -> Result<Link, ServentError> {
    let req = read_head(
        &mut s,
        &mut buf,
        "handshake request",
        HANDSHAKE_TIMEOUT,
        Handshake::parse,
    )
    .await?;
    if req.is_legacy() {
        return Err(ServentError::Protocol("Gnutella 0.4 handshake".into()));
    }
    let info = info_from(addr, &req, true);
    let (tx, rx) = oneshot::channel();
    core.send(CoreMsg::Admit {
        ultrapeer: info.ultrapeer,
        addr,
        listen: info.listen,
        reply: tx,
    })
    .await
    .map_err(|_| ServentError::Shutdown)?;
    let admission = timeout(HANDSHAKE_TIMEOUT, rx)
        .await
        .map_err(|_| ServentError::Timeout("admission"))?
        .map_err(|_| ServentError::Shutdown)?;
    let profile = match admission {
        Admission::Accept(p, tries) => {
            let mut resp = p.accept_response(&req, Some(addr.ip()));
            if !tries.is_empty() {
                let list: Vec<String> = tries.iter().map(ToString::to_string).collect();
                resp.headers.push("X-Try-Ultrapeers", list.join(","));
            }
            write_with_timeout(&mut s, &resp.to_bytes(), "handshake response").await?;
            p
        }
        Admission::Reject(code, reason, tries) => {
            let no = HandshakeProfile::default().reject(code, &reason, Some(addr.ip()), &tries);
            let _ = write_with_timeout(&mut s, &no.to_bytes(), "handshake refusal").await;
            return Err(ServentError::Refused {
                code,
                reason,
                try_hosts: Vec::new(),
            });
        }
    };
    let fin = read_head(
        &mut s,
        &mut buf,
        "final handshake",
        HANDSHAKE_TIMEOUT,
        Handshake::parse,
    )
    .await?;
    if !fin.is_ok() {
        return Err(ServentError::Refused {
            code: fin.code().unwrap_or(0),
            reason: "final handshake".into(),
            try_hosts: Vec::new(),
        });
    }
    s.set_nodelay(true)?;
    permit.handshake_done();
    Ok(Link {
        stream: s,
        buf,
        inflate: fin.content_deflate(),
        deflate: profile.deflate && req.accepts_deflate(),
        info,
        permit: Some(permit),
    })
}

/// Start the reader and writer tasks of an established link.
pub fn spawn_link(
    id: ConnId,
    link: Link,
    core: mpsc::Sender<CoreMsg>,
    shared: Arc<Shared>,
) -> mpsc::Sender<Out> {
    let Link {
        stream,
        buf,
        info,
        inflate,
        deflate,
        permit,
    } = link;
    let (rd, wr) = stream.into_split();
    let span = debug_span!("gnutella_link", id, peer = %info.addr);
    // Core's writer task outlives the shutdown token, to flush the Bye the core queues
    // when it is cancelled; it ends when its senders drop, or after the Bye.
    let opts = WriterOpts {
        queue: LINK_QUEUE,
        batch: MAX_BATCH,
        stall: WRITE_TIMEOUT,
    };
    let z = deflate.then(|| Box::new(Deflate(LinkDeflater::default())) as Box<dyn StreamEncoder>);
    let stats = shared.clone();
    let count = Box::new(move |n| stats.stats.add_out(n));
    let tx = framed::spawn_writer(wr, opts, z, count, span.clone());
    let out = tx.clone();
    let cancel = shared.cancel.clone();
    junction_core::task::spawn(span, cancel, async move {
        reader(id, rd, buf, inflate, core, out, shared).await;
        drop(permit);
    });
    tx
}

/// A link's deflate (`Content-Encoding: deflate`), as core's writer applies it.
struct Deflate(LinkDeflater);

impl StreamEncoder for Deflate {
    fn encode(&mut self, plain: &[u8], wire: &mut BytesMut) -> std::io::Result<()> {
        self.0
            .deflate_flush(plain, wire)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

impl framed::Outgoing for Out {
    type Error = crate::error::Error;

    fn encode(&self, buf: &mut BytesMut) -> Result<(), Self::Error> {
        match self {
            Out::Msg(b) => buf.extend_from_slice(b),
            Out::Bye(bye) => {
                let d = Descriptor::new(
                    Guid::modern(rand::random()),
                    1,
                    0,
                    Message::Bye(bye.clone()),
                );
                buf.extend_from_slice(&d.to_bytes()?);
            }
        }
        Ok(())
    }

    fn is_last(&self) -> bool {
        matches!(self, Out::Bye(_))
    }
}

async fn reader(
    id: ConnId,
    rd: tokio::net::tcp::OwnedReadHalf,
    first: BytesMut,
    inflate: bool,
    core: mpsc::Sender<CoreMsg>,
    out: mpsc::Sender<Out>,
    shared: Arc<Shared>,
) {
    let mut z = inflate.then(|| LinkInflater::new(MAX_INFLATE_BURST));
    let dec = DescriptorDecoder::default();
    let stats = shared.clone();
    let mut rd = framed::FrameReader::new(rd, first, Box::new(move |n| stats.stats.add_in(n)));
    let mut plain = BytesMut::new();
    let reason: Result<&'static str, ServentError> = async {
        loop {
            let raw = rd.buffer();
            if !raw.is_empty() {
                match z.as_mut() {
                    Some(z) => {
                        z.inflate(raw, &mut plain)?;
                        raw.clear();
                    }
                    None => plain.extend_from_slice(&raw.split()),
                }
            }
            while let Some(d) = dec.decode(&mut plain)? {
                let desc = Descriptor::from_raw(&d)?;
                let bye = matches!(desc.message, Message::Bye(_));
                if core.send(CoreMsg::Message { id, desc }).await.is_err() {
                    return Ok("shutdown");
                }
                if bye {
                    return Ok("bye");
                }
            }
            let n = tokio::select! {
                () = shared.cancel.cancelled() => return Ok("shutdown"),
                // The writer is done (it sent our Bye, or cannot write): the socket closes.
                () = out.closed() => return Ok("closed by us"),
                r = timeout(IDLE_TIMEOUT, rd.fill()) => match r {
                    Ok(r) => r?,
                    Err(_) => return Err(ServentError::Timeout("traffic")),
                },
            };
            if n == 0 {
                return Ok("eof");
            }
        }
    }
    .await;
    let why = match reason {
        Ok(r) => r.to_owned(),
        Err(e) => {
            let (code, text) = match &e {
                ServentError::Timeout(_) => (405, "Activity timeout".to_owned()),
                ServentError::Io(_) => (0, String::new()),
                other => (400, format!("Malformed descriptor: {other}")),
            };
            if code != 0 {
                debug!(%e, "closing link with Bye {code}");
                let text: String = text.chars().take(200).collect();
                let _ = timeout(
                    Duration::from_secs(2),
                    out.send(Out::Bye(Bye::new(code, &text))),
                )
                .await;
            }
            e.to_string()
        }
    };
    let _ = core.send(CoreMsg::Down { id, why }).await;
}
