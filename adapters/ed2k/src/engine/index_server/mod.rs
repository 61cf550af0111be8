//! The index-server role: an eD2k server that eMule/aMule (and Junction) clients log into.
//!
//! It assigns HighIDs to clients it can connect back to and LowIDs to the others, indexes what
//! they offer, answers searches (the full expression tree) and source requests, relays
//! callbacks from HighID to LowID clients, and reports its status.

mod index;
mod sources;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use junction_core::accept::{Admitted, MAX_PENDING, accept_loop};
use junction_core::limit::{ConnLimiter, RequestRate};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::engine::bridge::OnDemand;
use crate::engine::net::{ConnError, Counters, FrameReader, spawn_writer};
use crate::wire::server::{FileEntry, IdChange, SearchResults, tcp_flags};
use crate::wire::tag::st;
use crate::wire::{ClientId, Frame, Hash16, SearchExpr, ServerMessage, Tag, TagEncoding};

use index::FileIndex;

/// Runtime statistics of the index server (not to be confused with
/// [`ServerStats`](crate::wire::server_udp::ServerStats), what an eD2k server reports over UDP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexServerStats {
    pub users: u32,
    pub low_id_users: u32,
    pub files: u32,
    /// LowID sources asked to connect to a HighID asker that did not ask for it
    /// (`sources::call_asker_back`), since start.
    pub unasked_callbacks: u64,
}

struct Client {
    id: ClientId,
    port: u16,
    user_hash: Hash16,
    tx: mpsc::Sender<Frame>,
}

struct State {
    clients: HashMap<u64, Client>,
    low_ids: HashMap<u32, u64>,
    next_key: u64,
    next_low: u32,
    index: FileIndex,
    /// When each (asker, LowID source) pair was last called back unasked.
    called_back: HashMap<(u64, u32), Instant>,
    unasked_callbacks: u64,
}

struct Shared {
    cfg: ServerConfig,
    /// What the other networks have, offered with Junction's own client as the source.
    on_demand: Option<Arc<OnDemand>>,
    addr: SocketAddr,
    hash: Hash16,
    state: Mutex<State>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running index server; dropping it does not stop it, [`IndexServer::shutdown`] does.
#[derive(Clone)]
pub struct IndexServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for IndexServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexServer")
            .field("addr", &self.shared.addr)
            .finish()
    }
}

impl IndexServer {
    /// Binds and starts accepting clients.
    pub async fn start(cfg: ServerConfig) -> std::io::Result<Self> {
        Self::start_bridged(cfg, None).await
    }

    /// Starts a server that also answers from the gateway's other networks.
    pub(crate) async fn start_bridged(
        cfg: ServerConfig,
        on_demand: Option<Arc<OnDemand>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            on_demand,
            addr,
            hash: rand::random(),
            state: Mutex::new(State {
                clients: HashMap::new(),
                low_ids: HashMap::new(),
                next_key: 1,
                next_low: 1,
                index: FileIndex::new(cfg.max_files),
                called_back: HashMap::new(),
                unasked_callbacks: 0,
            }),
            counters: Arc::new(Counters::default()),
            cancel: CancellationToken::new(),
        });
        let s = shared.clone();
        let limiter = ConnLimiter::new(cfg.limits.clone());
        let span = tracing::info_span!("ed2k_index_server", %addr);
        let cancel = shared.cancel.clone();
        let client_span = |peer| tracing::debug_span!("ed2k_server_client", %peer);
        let serve = move |stream, peer, admitted| {
            let s = s.clone();
            async move {
                if let Err(e) = serve_client(s, stream, peer, admitted).await {
                    tracing::debug!(%peer, error = %e, "server client ended");
                }
            }
        };
        let accepting = accept_loop(
            listener,
            limiter,
            MAX_PENDING,
            cancel.clone(),
            client_span,
            serve,
        );
        junction_core::task::spawn(span, cancel, accepting);
        tracing::info!(%addr, "eD2k index server listening");
        Ok(Self { shared })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    pub fn stats(&self) -> IndexServerStats {
        let st = self.shared.state();
        IndexServerStats {
            users: st.clients.len() as u32,
            low_id_users: st.low_ids.len() as u32,
            files: st.index.len() as u32,
            unasked_callbacks: st.unasked_callbacks,
        }
    }

    /// Bytes received and sent by the server.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.shared.counters.bytes_in.load(Ordering::Relaxed),
            self.shared.counters.bytes_out.load(Ordering::Relaxed),
        )
    }

    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }
}

fn frame(msg: &ServerMessage) -> Option<Frame> {
    match msg.to_frame(TagEncoding::Classic) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode server message");
            None
        }
    }
}

async fn push(tx: &mpsc::Sender<Frame>, msg: &ServerMessage) -> Result<(), ConnError> {
    if let Some(f) = frame(msg) {
        crate::engine::net::send(tx, f, std::time::Duration::from_secs(30)).await?;
    }
    Ok(())
}

async fn serve_client(
    s: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    mut permit: Admitted,
) -> Result<(), ConnError> {
    let SocketAddr::V4(peer4) = peer else {
        return Err(ConnError::Protocol("IPv6 clients are not supported".into()));
    };
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let mut reader = FrameReader::new(rd, s.counters.clone());
    let tx = spawn_writer(
        wr,
        s.counters.clone(),
        s.cfg.idle_timeout.min(std::time::Duration::from_secs(120)),
    );

    // Login first.
    let first = reader
        .next_within(std::time::Duration::from_secs(30), "login request")
        .await?;
    let ServerMessage::LoginRequest(login) = ServerMessage::decode_frame(&first)? else {
        return Err(ConnError::Protocol("first message is not a login".into()));
    };
    permit.handshake_done();
    if s.state().clients.len() >= s.cfg.max_clients {
        push(&tx, &ServerMessage::Message("ERROR: server full".into())).await?;
        push(&tx, &ServerMessage::Reject).await?;
        return Ok(());
    }
    let nick = login
        .tags
        .iter()
        .find(|t| t.name == crate::wire::TagName::Id(crate::wire::tag::ct::NAME))
        .and_then(|t| t.value.as_string())
        .map(|n| n.to_string())
        .unwrap_or_default();
    let high = s.cfg.connect_back
        && login.port != 0
        && !s.cfg.low_id_ports.contains(&login.port)
        && tokio::time::timeout(
            s.cfg.connect_back_timeout,
            TcpStream::connect(SocketAddrV4::new(*peer4.ip(), login.port)),
        )
        .await
        .is_ok_and(|r| r.is_ok());

    let (key, id) = {
        let mut st = s.state();
        let key = st.next_key;
        st.next_key += 1;
        let id = if high {
            ClientId::from_ipv4(*peer4.ip())
        } else {
            let mut low = st.next_low;
            while st.low_ids.contains_key(&low) || low == 0 {
                low = low.wrapping_add(1) % ClientId::LOW_ID_LIMIT;
            }
            st.next_low = low.wrapping_add(1) % ClientId::LOW_ID_LIMIT;
            st.low_ids.insert(low, key);
            ClientId(low)
        };
        st.clients.insert(
            key,
            Client {
                id,
                port: login.port,
                user_hash: login.user_hash,
                tx: tx.clone(),
            },
        );
        (key, id)
    };
    tracing::info!(%peer, %nick, id = id.0, high, "client logged in");
    let who = Who {
        key,
        id,
        peer: peer4,
        port: login.port,
    };
    let requests = permit.conn.request_rate();
    let result = client_loop(&s, &mut reader, &tx, who, requests).await;
    {
        let mut st = s.state();
        st.clients.remove(&key);
        if id.is_low_id() {
            st.low_ids.remove(&id.0);
        }
        st.index.remove_client(key);
    }
    tracing::info!(%peer, id = id.0, "client left");
    result
}

/// A logged-in client: its key in the server's tables, its ID, address and port.
#[derive(Debug, Clone, Copy)]
struct Who {
    key: u64,
    id: ClientId,
    peer: SocketAddrV4,
    port: u16,
}

/// Serves a logged-in client's messages. Each counts against the connection's request rate
/// (`[limits] requests_per_sec`, after a burst): a client over it is dropped and its address
/// backed off, since searches and source requests cost the index (and, on demand, the other
/// networks) work.
async fn client_loop(
    s: &Arc<Shared>,
    reader: &mut FrameReader<tokio::net::tcp::OwnedReadHalf>,
    tx: &mpsc::Sender<Frame>,
    who: Who,
    mut requests: RequestRate,
) -> Result<(), ConnError> {
    let Who { key, id, peer, .. } = who;
    welcome(s, tx, id).await?;

    loop {
        let f = tokio::select! {
            () = s.cancel.cancelled() => return Ok(()),
            r = reader.next_within(s.cfg.idle_timeout, "client activity") => r?,
        };
        if !requests.allow() {
            return Err(ConnError::Protocol("too many requests".into()));
        }
        let msg = match ServerMessage::decode_frame(&f) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(opcode = f.opcode, error = %e, "undecodable client message");
                return Err(e.into());
            }
        };
        match msg {
            ServerMessage::OfferFiles(files) => offer(s, tx, who, files).await?,
            ServerMessage::SearchRequest(expr) => search(s, tx, key, expr).await?,
            ServerMessage::QueryMoreResult => {
                push(
                    tx,
                    &ServerMessage::SearchResult(SearchResults {
                        files: Vec::new(),
                        more: Some(false),
                    }),
                )
                .await?;
            }
            ServerMessage::GetSources(reqs) => {
                tracing::debug!(files = reqs.len(), "source request");
                sources::answer(s, tx, who, &reqs, false).await?;
            }
            ServerMessage::GetSourcesObfu(reqs) => {
                tracing::debug!(files = reqs.len(), "source request (obfuscation)");
                sources::answer(s, tx, who, &reqs, true).await?;
            }
            ServerMessage::CallbackRequest { low_id } => {
                sources::callback(s, tx, id, peer, key, low_id).await?;
            }
            ServerMessage::GetServerList => {
                push(tx, &ServerMessage::ServerList(s.cfg.known_servers.clone())).await?;
                push(tx, &ident(s)).await?;
            }
            ServerMessage::Disconnect => return Ok(()),
            ServerMessage::LoginRequest(_) => {
                return Err(ConnError::Protocol("second login".into()));
            }
            other => {
                tracing::debug!(opcode = other.opcode(), "ignored client message");
            }
        }
    }
}

/// What a client hears once logged in: the message of the day, its ID with the server's
/// TCP flags, the server's status and its identity.
async fn welcome(s: &Shared, tx: &mpsc::Sender<Frame>, id: ClientId) -> Result<(), ConnError> {
    let flags =
        tcp_flags::COMPRESSION | tcp_flags::NEWTAGS | tcp_flags::UNICODE | tcp_flags::LARGEFILES;
    let motd = format!("server version 17.15 (Junction)\r\n{}", s.cfg.motd);
    push(tx, &ServerMessage::Message(motd.into())).await?;
    push(
        tx,
        &ServerMessage::IdChange(IdChange {
            client_id: id,
            tcp_flags: Some(flags),
            aux_port: None,
            reported: None,
        }),
    )
    .await?;
    push(tx, &status(s)).await?;
    push(tx, &ident(s)).await
}

/// `OP_OFFERFILES`: the client's files go into the index (up to its share of it), and a
/// non-empty offer is answered with the server's status.
async fn offer(
    s: &Shared,
    tx: &mpsc::Sender<Frame>,
    who: Who,
    files: Vec<FileEntry>,
) -> Result<(), ConnError> {
    let n = files.len();
    let (added, total) = {
        let mut st = s.state();
        let added = st
            .index
            .offer(who.key, who.id, who.port, files, s.cfg.max_files_per_client);
        (added, st.index.len())
    };
    tracing::debug!(offered = n, added, total, "files offered");
    if n > 0 {
        push(tx, &status(s)).await?;
    }
    Ok(())
}

/// `OP_SEARCHREQUEST`: the index's results, and the other networks' when the server is
/// bridged.
async fn search(
    s: &Arc<Shared>,
    tx: &mpsc::Sender<Frame>,
    key: u64,
    expr: SearchExpr,
) -> Result<(), ConnError> {
    let files = s.state().index.search(&expr, s.cfg.max_results, key);
    tracing::debug!(?expr, results = files.len(), "search");
    match s.on_demand.clone().filter(|o| o.offers.attached()) {
        // The other networks take seconds: the index's own results go at
        // once, theirs follow in a second answer (aMule files every answer
        // under the current search), from a task so that this client's
        // other requests are not held up.
        Some(on_demand) => {
            let room = s.cfg.max_results.saturating_sub(files.len());
            let answered = !files.is_empty();
            if answered {
                answer_search(s, tx, files).await?;
            }
            let (s2, tx2) = (s.clone(), tx.clone());
            let span = tracing::debug_span!("ed2k_bridged_search");
            junction_core::task::spawn(span, s.cancel.clone(), async move {
                let bridged = on_demand.search(&expr).await;
                let files = bridged_results(&s2, &expr, &bridged, room);
                // Every search gets an answer, if only an empty one.
                if !files.is_empty() || !answered {
                    let _ = answer_search(&s2, &tx2, files).await;
                }
            });
        }
        None => answer_search(s, tx, files).await?,
    }
    Ok(())
}

async fn answer_search(
    s: &Shared,
    tx: &mpsc::Sender<Frame>,
    files: Vec<crate::wire::server::FileEntry>,
) -> Result<(), ConnError> {
    let msg = ServerMessage::SearchResult(SearchResults {
        files,
        more: Some(false),
    });
    push(tx, &msg).await?;
    push(tx, &status(s)).await
}

/// The other networks' results that the expression admits, with Junction's own client as
/// the source.
fn bridged_results(
    s: &Shared,
    expr: &crate::wire::SearchExpr,
    bridged: &[(Hash16, junction_core::BridgedItem)],
    room: usize,
) -> Vec<crate::wire::server::FileEntry> {
    let st = s.state();
    let Some(own) = own_client(s, &st) else {
        if !bridged.is_empty() {
            tracing::info!("bridged results dropped: Junction's own client is not logged in here");
        }
        return Vec::new();
    };
    let files = st
        .index
        .bridged(expr, bridged, (own.0, own.1.id, own.1.port), room);
    tracing::info!(
        bridged = files.len(),
        "search answered from the other networks"
    );
    files
}

/// Junction's own client, when it is logged into this server: the source of bridged files.
fn own_client<'a>(s: &Shared, st: &'a State) -> Option<(u64, &'a Client)> {
    let own = s.on_demand.as_ref()?.own_user_hash;
    st.clients
        .iter()
        .find(|(_, c)| c.user_hash == own)
        .map(|(k, c)| (*k, c))
}

fn status(s: &Shared) -> ServerMessage {
    let st = s.state();
    ServerMessage::ServerStatus {
        users: st.clients.len() as u32,
        files: st.index.len() as u32,
    }
}

fn ident(s: &Shared) -> ServerMessage {
    let ip = match s.addr.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    ServerMessage::ServerIdent {
        hash: s.hash,
        addr: SocketAddrV4::new(ip, s.addr.port()),
        tags: vec![
            Tag::string(st::SERVERNAME, s.cfg.name.as_str()),
            Tag::string(st::DESCRIPTION, s.cfg.description.as_str()),
        ],
    }
}
