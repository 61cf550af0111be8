//! The server session: one task that owns the connection to an eD2k server, logs in, keeps
//! it alive, reconnects with back-off, offers our files, and multiplexes searches, source
//! requests and callbacks over it.

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use junction_core::Backoff;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument;

use super::Shared;
use super::identity::emule_version;
use crate::engine::net::{ConnError, FrameReader, send, spawn_writer};
use crate::wire::file_info;
use crate::wire::server::{FileEntry, LoginRequest, SourceRequest, offer_magic, tcp_flags};
use crate::wire::tag::{ct, st};
use crate::wire::{ClientId, Frame, Hash16, SearchExpr, ServerMessage, Tag, TagEncoding, TagsExt};

/// Follow-up `OP_QUERY_MORE_RESULT` requests per search (eMule's `MAX_MORE_SEARCH_REQ`).
const MAX_MORE: u8 = 5;
/// Searches waiting for their turn.
const MAX_QUEUED_SEARCHES: usize = 16;

/// Commands the adapter sends to the session task.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// Results arrive as batches; the channel closes when the search ends.
    Search {
        expr: SearchExpr,
        results: mpsc::Sender<Vec<FileEntry>>,
    },
    /// Each `OP_FOUNDSOURCES` for the hash is delivered until the receiver is dropped or the
    /// server timeout passes.
    GetSources {
        hash: Hash16,
        size: u64,
        sources: mpsc::Sender<Vec<(ClientId, u16)>>,
    },
    Callback(ClientId),
    /// Offer these files (or all shared files when empty) again.
    Offer,
    AddServer(String),
    /// Forget a server; the reply says whether it was in the list. The session with it,
    /// if any, ends.
    RemoveServer(String, oneshot::Sender<bool>),
}

/// Applies a change to the server list; any other command is handed back.
fn change_servers(servers: &mut Vec<String>, c: Cmd) -> Option<Cmd> {
    match c {
        Cmd::AddServer(a) => {
            if !servers.contains(&a) {
                servers.push(a);
            }
            None
        }
        Cmd::RemoveServer(a, reply) => {
            let before = servers.len();
            servers.retain(|x| *x != a);
            let _ = reply.send(servers.len() < before);
            None
        }
        c => Some(c),
    }
}

/// Waiters for `OP_FOUNDSOURCES` of one hash, each with its deadline.
type SourceWaiters = Vec<(mpsc::Sender<Vec<(ClientId, u16)>>, Instant)>;

struct Search {
    results: mpsc::Sender<Vec<FileEntry>>,
    deadline: Instant,
    more_left: u8,
}

struct Sess {
    s: Arc<Shared>,
    tx: mpsc::Sender<Frame>,
    addr: SocketAddrV4,
    enc: TagEncoding,
    current: Option<Search>,
    queue: VecDeque<(SearchExpr, mpsc::Sender<Vec<FileEntry>>)>,
    waiters: HashMap<Hash16, SourceWaiters>,
}

pub(crate) async fn run(s: Arc<Shared>, mut rx: mpsc::Receiver<Cmd>) {
    let mut servers: Vec<String> = s.cfg.servers.clone();
    let mut next = 0usize;
    let mut backoff = Backoff::new(Duration::from_secs(1), s.cfg.max_backoff);
    loop {
        if s.cancel.is_cancelled() {
            return;
        }
        if servers.is_empty() {
            tokio::select! {
                () = s.cancel.cancelled() => return,
                c = rx.recv() => match c {
                    None => return,
                    // Others are dropped: their channels close, the caller sees the end.
                    Some(c) => drop(change_servers(&mut servers, c)),
                },
            }
            continue;
        }
        let host = servers[next % servers.len()].clone();
        next = next.wrapping_add(1);
        let span = tracing::info_span!("ed2k_server_session", server = %host);
        let res = session(&s, &host, &mut rx, &mut servers)
            .instrument(span)
            .await;
        // A server removed while in use: the one after it moved into its place.
        if !servers.contains(&host) {
            next = next.wrapping_sub(1);
        }
        {
            let mut info = s.server();
            let logged_in = info.id.0 != 0;
            info.addr = None;
            info.id = ClientId(0);
            info.users = 0;
            info.files = 0;
            if let Err(e) = &res {
                info.last_error = Some(format!("{host}: {e}"));
            }
            if logged_in {
                backoff.reset();
            }
        }
        match &res {
            Ok(()) => tracing::info!(server = %host, "server session ended"),
            Err(e) => tracing::warn!(server = %host, error = %e, "server session failed"),
        }
        if s.cancel.is_cancelled() {
            return;
        }
        // Back off, still taking commands (new servers; the rest cannot be served now).
        let until = Instant::now() + backoff.next();
        loop {
            tokio::select! {
                () = s.cancel.cancelled() => return,
                () = tokio::time::sleep_until(until) => break,
                c = rx.recv() => match c {
                    None => return,
                    Some(c) => {
                        let known = servers.len();
                        drop(change_servers(&mut servers, c));
                        // A new server is tried at once.
                        if servers.len() > known {
                            next = servers.len() - 1;
                            break;
                        }
                    }
                },
            }
        }
    }
}

async fn resolve(host: &str, limit: Duration) -> Result<SocketAddrV4, ConnError> {
    let addrs = tokio::time::timeout(limit, tokio::net::lookup_host(host))
        .await
        .map_err(|_| ConnError::Timeout("name resolution"))??;
    addrs
        .filter_map(|a| match a {
            SocketAddr::V4(a) => Some(a),
            SocketAddr::V6(_) => None,
        })
        .next()
        .ok_or_else(|| ConnError::Protocol(format!("{host} has no IPv4 address")))
}

fn login_tags(s: &Shared) -> Vec<Tag> {
    vec![
        Tag::string(ct::NAME, s.cfg.nick.as_str()),
        Tag::u32(ct::VERSION, ct::EDONKEY_VERSION),
        Tag::u32(
            ct::SERVER_FLAGS,
            ct::SRVCAP_ZLIB | ct::SRVCAP_NEWTAGS | ct::SRVCAP_UNICODE | ct::SRVCAP_LARGEFILES,
        ),
        Tag::u32(ct::EMULE_VERSION, emule_version()),
    ]
}

async fn session(
    s: &Arc<Shared>,
    host: &str,
    rx: &mut mpsc::Receiver<Cmd>,
    servers: &mut Vec<String>,
) -> Result<(), ConnError> {
    let addr = resolve(host, s.cfg.connect_timeout).await?;
    let stream = tokio::time::timeout(s.cfg.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnError::Timeout("server connect"))??;
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut reader = FrameReader::new(rd, s.counters.clone());
    let tx = spawn_writer(wr, s.counters.clone(), s.cfg.server_timeout);
    let login = ServerMessage::LoginRequest(LoginRequest {
        user_hash: s.user_hash,
        client_id: ClientId(0),
        port: s.port,
        tags: login_tags(s),
    });
    send(
        &tx,
        login.to_frame(TagEncoding::Classic)?,
        s.cfg.server_timeout,
    )
    .await?;

    let mut sess = Sess {
        s: s.clone(),
        tx,
        addr,
        enc: TagEncoding::Classic,
        current: None,
        queue: VecDeque::new(),
        waiters: HashMap::new(),
    };
    // Wait for the ID (the server may connect back to us first).
    let deadline = Instant::now() + s.cfg.server_timeout + s.cfg.connect_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let f = reader
            .next_within(left, "login answer (OP_IDCHANGE)")
            .await?;
        match ServerMessage::decode_frame(&f)? {
            ServerMessage::IdChange(c) if c.client_id.0 == 0 => {
                return Err(ConnError::Protocol("login rejected (ID 0)".into()));
            }
            ServerMessage::Reject => return Err(ConnError::Protocol("login rejected".into())),
            ServerMessage::IdChange(_) => {
                sess.handle(ServerMessage::decode_frame(&f)?).await?;
                break;
            }
            other => sess.handle(other).await?,
        }
    }
    sess.offer_all().await?;

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_keepalive = Instant::now();
    loop {
        tokio::select! {
            () = s.cancel.cancelled() => return Ok(()),
            f = reader.next() => {
                let Some(f) = f? else { return Err(ConnError::Closed) };
                match ServerMessage::decode_frame(&f) {
                    Ok(m) => sess.handle(m).await?,
                    Err(e) => {
                        tracing::warn!(opcode = f.opcode, error = %e, "bad server message");
                        return Err(e.into());
                    }
                }
            }
            c = rx.recv() => match c {
                None => return Ok(()),
                Some(c) => {
                    if let Some(c) = change_servers(servers, c) {
                        sess.command(c).await?;
                    } else if !servers.iter().any(|x| x == host) {
                        tracing::info!("server removed: session ends");
                        return Ok(());
                    }
                }
            },
            _ = tick.tick() => {
                sess.expire().await?;
                if last_keepalive.elapsed() >= s.cfg.keepalive {
                    last_keepalive = Instant::now();
                    // An empty offer is the usual keep-alive.
                    let f = ServerMessage::OfferFiles(Vec::new()).to_frame(sess.enc)?;
                    send(&sess.tx, f, s.cfg.server_timeout).await?;
                }
            }
        }
    }
}

impl Sess {
    async fn send(&self, m: &ServerMessage) -> Result<(), ConnError> {
        send(&self.tx, m.to_frame(self.enc)?, self.s.cfg.server_timeout).await
    }

    async fn handle(&mut self, m: ServerMessage) -> Result<(), ConnError> {
        match m {
            ServerMessage::IdChange(c) => {
                let mut info = self.s.server();
                info.addr = Some(self.addr);
                info.id = c.client_id;
                info.flags = c.tcp_flags.unwrap_or(0);
                info.last_error = None;
                self.enc = if info.flags & tcp_flags::NEWTAGS != 0 {
                    TagEncoding::Compact
                } else {
                    TagEncoding::Classic
                };
                tracing::info!(
                    id = c.client_id.0,
                    high = !c.client_id.is_low_id(),
                    flags = info.flags,
                    "logged in"
                );
            }
            ServerMessage::ServerStatus { users, files } => {
                let mut info = self.s.server();
                info.users = users;
                info.files = files;
            }
            ServerMessage::Message(text) => {
                let t = text.to_string();
                tracing::debug!(message = %t, "server message");
                self.s.server().last_message = Some(t);
            }
            ServerMessage::ServerIdent { tags, .. } => {
                if let Some(n) = tags.string_of(st::SERVERNAME) {
                    self.s.server().name = n.to_string();
                }
            }
            ServerMessage::SearchResult(r) => {
                let more = r.more == Some(true);
                if let Some(cur) = &mut self.current {
                    let _ = cur.results.try_send(r.files);
                    if more && cur.more_left > 0 && !cur.results.is_closed() {
                        cur.more_left -= 1;
                        cur.deadline = Instant::now() + self.s.cfg.server_timeout;
                        self.send(&ServerMessage::QueryMoreResult).await?;
                    } else {
                        self.current = None;
                        self.next_search().await?;
                    }
                }
            }
            ServerMessage::FoundSources { hash, sources } => {
                let list = sources.iter().map(|x| (x.client_id, x.port)).collect();
                self.deliver_sources(hash, list);
            }
            ServerMessage::FoundSourcesObfu { hash, sources } => {
                let list = sources.iter().map(|x| (x.client_id, x.port)).collect();
                self.deliver_sources(hash, list);
            }
            ServerMessage::CallbackRequested { addr, .. } => {
                tracing::debug!(%addr, "server asks us to call a peer back");
                let s = self.s.clone();
                let cancel = s.cancel.clone();
                junction_core::task::spawn(
                    tracing::debug_span!("ed2k_callback", %addr),
                    cancel,
                    async move {
                        match super::peer::call_back(s, addr).await {
                            Ok(()) => tracing::debug!(%addr, "callback connection closed"),
                            Err(e) => {
                                tracing::debug!(%addr, error = %e, "callback connection ended")
                            }
                        }
                    },
                );
            }
            ServerMessage::CallbackFailed => tracing::debug!("server: callback failed"),
            ServerMessage::ServerList(list) => tracing::debug!(n = list.len(), "server list"),
            other => tracing::debug!(opcode = other.opcode(), "ignored server message"),
        }
        Ok(())
    }

    fn deliver_sources(&mut self, hash: Hash16, list: Vec<(ClientId, u16)>) {
        if let Some(ws) = self.waiters.get_mut(&hash) {
            ws.retain(|(tx, _)| tx.try_send(list.clone()).is_ok());
            if ws.is_empty() {
                self.waiters.remove(&hash);
            }
        }
    }

    async fn command(&mut self, c: Cmd) -> Result<(), ConnError> {
        match c {
            Cmd::Search { expr, results } => {
                if self.queue.len() >= MAX_QUEUED_SEARCHES {
                    return Ok(()); // dropping `results` ends that search empty
                }
                self.queue.push_back((expr, results));
                if self.current.is_none() {
                    self.next_search().await?;
                }
            }
            Cmd::GetSources {
                hash,
                size,
                sources,
            } => {
                let deadline = Instant::now() + self.s.cfg.server_timeout;
                self.waiters
                    .entry(hash)
                    .or_default()
                    .push((sources, deadline));
                let large = self.s.server().flags & tcp_flags::LARGEFILES != 0;
                if size > u64::from(u32::MAX) && !large {
                    return Ok(());
                }
                self.send(&ServerMessage::GetSources(vec![SourceRequest {
                    hash,
                    size,
                }]))
                .await?;
            }
            Cmd::Callback(low) => {
                self.send(&ServerMessage::CallbackRequest { low_id: low })
                    .await?;
            }
            Cmd::Offer => self.offer_all().await?,
            Cmd::AddServer(_) | Cmd::RemoveServer(..) => {}
        }
        Ok(())
    }

    async fn next_search(&mut self) -> Result<(), ConnError> {
        while let Some((expr, results)) = self.queue.pop_front() {
            if results.is_closed() {
                continue;
            }
            self.send(&ServerMessage::SearchRequest(expr)).await?;
            self.current = Some(Search {
                results,
                deadline: Instant::now() + self.s.cfg.server_timeout,
                more_left: MAX_MORE,
            });
            break;
        }
        Ok(())
    }

    async fn expire(&mut self) -> Result<(), ConnError> {
        let now = Instant::now();
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.deadline <= now || c.results.is_closed())
        {
            self.current = None;
            self.next_search().await?;
        }
        self.waiters.retain(|_, ws| {
            ws.retain(|(tx, d)| *d > now && !tx.is_closed());
            !ws.is_empty()
        });
        Ok(())
    }

    async fn offer_all(&mut self) -> Result<(), ConnError> {
        let files = self.s.shared_files();
        if files.is_empty() {
            return Ok(());
        }
        let (id, flags) = {
            let i = self.s.server();
            (i.id, i.flags)
        };
        let (cid, port) = if flags & tcp_flags::COMPRESSION != 0 {
            (
                ClientId(offer_magic::COMPLETE_ID),
                offer_magic::COMPLETE_PORT,
            )
        } else if !id.is_low_id() {
            (id, self.s.port)
        } else {
            (ClientId(0), 0)
        };
        let large = flags & tcp_flags::LARGEFILES != 0;
        let entries: Vec<FileEntry> = files
            .iter()
            .filter(|f| large || f.size <= crate::wire::hash::OLD_MAX_FILE_SIZE)
            .map(|f| FileEntry {
                hash: f.hash,
                client_id: cid,
                port,
                tags: file_info::file_tags(&f.name, f.size),
            })
            .collect();
        // Keep each frame well under the frame limit.
        for chunk in entries.chunks(200) {
            self.send(&ServerMessage::OfferFiles(chunk.to_vec()))
                .await?;
        }
        tracing::debug!(n = entries.len(), "offered files");
        Ok(())
    }
}
