//! The tracker role: a small open HTTP (BEP 3/23/48) and UDP (BEP 15) tracker for the lab
//! and tests. Swarms live in memory, bounded, and peers expire after three intervals.
//!
//! Per-IP limits ([`PeerLimits`]): HTTP connections go through a [`ConnLimiter`] (each
//! carries one announce or scrape, so its new-connection rate is the request rate), and
//! UDP requests through an [`IpRates`]; what is over them is closed or dropped unanswered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use junction_core::accept::{Admitted, MAX_PENDING, accept_loop};
use junction_core::limit::{ConnLimiter, IpRates, PeerLimits};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::{debug, debug_span, info_span};

use super::http;
use crate::wire::id::{InfoHash, PeerId};
use crate::wire::percent;
use crate::wire::tracker::http::{
    AnnounceRequest, AnnounceResponse, encode_failure, encode_scrape,
};
use crate::wire::tracker::udp::{self, Family};
use crate::wire::tracker::{Event, ScrapeStats};

/// Most swarms and peers per swarm kept.
const MAX_SWARMS: usize = 10_000;
const MAX_PEERS: usize = 2_000;
/// Most peers returned by one announce.
const MAX_NUMWANT: usize = 200;

#[derive(Debug, Clone)]
struct PeerRec {
    addr: SocketAddr,
    left: u64,
    seen: Instant,
}

#[derive(Debug, Default)]
struct Swarm {
    peers: HashMap<PeerId, PeerRec>,
    completed: u32,
}

#[derive(Debug)]
struct Swarms {
    map: Mutex<HashMap<InfoHash, Swarm>>,
    interval: u32,
}

/// One announce, from either front end.
struct Ann {
    info_hash: InfoHash,
    peer_id: PeerId,
    addr: SocketAddr,
    left: u64,
    event: Event,
    numwant: usize,
}

impl Swarms {
    fn announce(&self, a: Ann) -> (Vec<SocketAddr>, ScrapeStats) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let expiry = Duration::from_secs(u64::from(self.interval) * 3 + 5);
        if !map.contains_key(&a.info_hash) && map.len() >= MAX_SWARMS {
            map.retain(|_, s| !s.peers.is_empty());
        }
        if !map.contains_key(&a.info_hash) && map.len() >= MAX_SWARMS {
            return (Vec::new(), ScrapeStats::default());
        }
        let swarm = map.entry(a.info_hash).or_default();
        swarm.peers.retain(|_, p| p.seen.elapsed() < expiry);
        if a.event == Event::Stopped {
            swarm.peers.remove(&a.peer_id);
        } else if swarm.peers.len() < MAX_PEERS || swarm.peers.contains_key(&a.peer_id) {
            swarm.peers.insert(
                a.peer_id,
                PeerRec {
                    addr: a.addr,
                    left: a.left,
                    seen: Instant::now(),
                },
            );
        }
        if a.event == Event::Completed {
            swarm.completed = swarm.completed.saturating_add(1);
        }
        let peers = swarm
            .peers
            .iter()
            .filter(|(id, p)| **id != a.peer_id && p.addr != a.addr)
            .filter(|(_, p)| a.left > 0 || p.left > 0) // seeds need only leechers
            .map(|(_, p)| p.addr)
            .take(a.numwant.min(MAX_NUMWANT))
            .collect();
        (peers, stats(swarm))
    }

    fn scrape(&self, hashes: &[InfoHash]) -> Vec<(InfoHash, ScrapeStats)> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        hashes
            .iter()
            .map(|h| (*h, map.get(h).map(stats).unwrap_or_default()))
            .collect()
    }
}

fn stats(s: &Swarm) -> ScrapeStats {
    let seeds = s.peers.values().filter(|p| p.left == 0).count() as u32;
    ScrapeStats {
        complete: seeds,
        downloaded: s.completed,
        incomplete: s.peers.len() as u32 - seeds,
    }
}

/// A running tracker; dropping it (or [`shutdown`](Self::shutdown)) stops it.
#[derive(Debug)]
pub struct TrackerServer {
    http_addr: SocketAddr,
    udp_addr: Option<SocketAddr>,
    cancel: CancellationToken,
}

impl Drop for TrackerServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl TrackerServer {
    /// Binds the HTTP tracker on `http` and, if given, the UDP tracker on `udp`, telling
    /// peers to re-announce every `interval` seconds; with the default per-IP limits.
    pub async fn bind(
        http: SocketAddr,
        udp: Option<SocketAddr>,
        interval: u32,
    ) -> std::io::Result<Self> {
        Self::bind_with_limits(http, udp, interval, &PeerLimits::default()).await
    }

    /// [`bind`](Self::bind) with the per-IP `limits` of both front ends.
    pub async fn bind_with_limits(
        http: SocketAddr,
        udp: Option<SocketAddr>,
        interval: u32,
        limits: &PeerLimits,
    ) -> std::io::Result<Self> {
        let swarms = Arc::new(Swarms {
            map: Mutex::new(HashMap::new()),
            interval: interval.max(1),
        });
        let cancel = CancellationToken::new();
        let listener = TcpListener::bind(http).await?;
        let http_addr = listener.local_addr()?;
        let limiter = ConnLimiter::new(limits.clone());
        let serve = serve_http(listener, limiter, swarms.clone(), cancel.clone());
        let span = info_span!("bt_tracker_http", %http_addr);
        junction_core::task::spawn(span, cancel.clone(), serve);
        let udp_addr = match udp {
            Some(a) => {
                let sock = UdpSocket::bind(a).await?;
                let addr = sock.local_addr()?;
                let serve = serve_udp(sock, limits.ip_rates(), swarms, cancel.clone());
                let span = info_span!("bt_tracker_udp", %addr);
                junction_core::task::spawn(span, cancel.clone(), serve);
                Some(addr)
            }
            None => None,
        };
        Ok(Self {
            http_addr,
            udp_addr,
            cancel,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.http_addr)
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    pub fn udp_url(&self) -> Option<String> {
        self.udp_addr.map(|a| format!("udp://{a}/announce"))
    }

    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

async fn serve_http(
    listener: TcpListener,
    limiter: ConnLimiter,
    swarms: Arc<Swarms>,
    cancel: CancellationToken,
) {
    let span = |peer| debug_span!("bt_tracker_request", %peer);
    accept_loop(
        listener,
        limiter,
        MAX_PENDING,
        cancel,
        span,
        |s, peer, permit| request(s, peer, permit, swarms.clone()),
    )
    .await;
}

/// One HTTP request to the tracker: an announce or a scrape.
async fn request(mut s: TcpStream, peer: SocketAddr, mut permit: Admitted, swarms: Arc<Swarms>) {
    let Some(target) = http::read_request_target(&mut s, Duration::from_secs(10)).await else {
        return;
    };
    permit.handshake_done();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let body = if path.ends_with("/announce") || path == "/announce" {
        http_announce(&swarms, query, peer)
    } else if path.ends_with("/scrape") {
        let hashes: Vec<InfoHash> = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("info_hash="))
            .filter_map(|v| percent::decode(v, false))
            .filter_map(|b| InfoHash::from_slice(&b))
            .take(udp::MAX_SCRAPE_HASHES)
            .collect();
        encode_scrape(&swarms.scrape(&hashes))
    } else {
        http::respond(&mut s, "404 Not Found", "text/plain", b"not found").await;
        return;
    };
    http::respond(&mut s, "200 OK", "text/plain", &body).await;
}

fn http_announce(swarms: &Swarms, query: &str, peer: SocketAddr) -> Vec<u8> {
    let req = match AnnounceRequest::from_query(query) {
        Ok(r) => r,
        Err(e) => return encode_failure(&e.to_string()),
    };
    if req.port == 0 {
        return encode_failure("port 0");
    }
    let (peers, st) = swarms.announce(Ann {
        info_hash: req.info_hash,
        peer_id: req.peer_id,
        addr: SocketAddr::new(peer.ip(), req.port),
        left: req.left,
        event: req.event,
        numwant: req.numwant.map_or(50, |n| n as usize),
    });
    debug!(info_hash = %req.info_hash, %peer, n = peers.len(), "http announce");
    AnnounceResponse {
        interval: swarms.interval,
        min_interval: Some(swarms.interval.min(5)),
        complete: Some(st.complete),
        incomplete: Some(st.incomplete),
        peers,
        ..AnnounceResponse::default()
    }
    .encode()
}

async fn serve_udp(
    sock: UdpSocket,
    mut rates: IpRates,
    swarms: Arc<Swarms>,
    cancel: CancellationToken,
) {
    let secret: u64 = rand::random();
    // Connection ids are a keyed function of the address and a 2-minute epoch, so nothing
    // has to be stored per client.
    let conn_id = |addr: &SocketAddr, epoch: u64| {
        use sha1::{Digest, Sha1};
        let mut h = Sha1::new();
        h.update(secret.to_be_bytes());
        h.update(epoch.to_be_bytes());
        h.update(addr.to_string().as_bytes());
        let d = h.finalize();
        u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    };
    let start = Instant::now();
    let epoch = || start.elapsed().as_secs() / 120;
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r { Ok(x) => x, Err(_) => continue },
        };
        if !rates.allow(from.ip()) {
            continue;
        }
        let family = if from.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        };
        let Ok(req) = udp::Request::decode(&buf[..n]) else {
            continue;
        };
        let valid = |id: u64| {
            id == conn_id(&from, epoch()) || id == conn_id(&from, epoch().wrapping_sub(1))
        };
        let resp = match req {
            udp::Request::Connect { transaction_id } => udp::Response::Connect {
                transaction_id,
                connection_id: conn_id(&from, epoch()),
            },
            udp::Request::Announce(a) if valid(a.connection_id) => {
                let (peers, st) = swarms.announce(Ann {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    addr: SocketAddr::new(from.ip(), a.port),
                    left: a.left,
                    event: a.event,
                    numwant: a.num_want.map_or(50, |n| n as usize),
                });
                let peers = peers
                    .into_iter()
                    .filter(|p| p.is_ipv4() == from.is_ipv4())
                    .collect();
                udp::Response::Announce {
                    transaction_id: a.transaction_id,
                    interval: swarms.interval,
                    leechers: st.incomplete,
                    seeders: st.complete,
                    peers,
                }
            }
            udp::Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } if valid(connection_id) => udp::Response::Scrape {
                transaction_id,
                stats: swarms
                    .scrape(&info_hashes)
                    .into_iter()
                    .map(|(_, s)| s)
                    .collect(),
            },
            other => udp::Response::Error {
                transaction_id: other.transaction_id(),
                message: "unknown connection id".into(),
            },
        };
        let _ = sock.send_to(&resp.to_vec(family), from).await;
    }
}
