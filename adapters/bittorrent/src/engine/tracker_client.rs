//! Announcing to trackers: HTTP (BEP 3/7/23) and UDP (BEP 15), grouped in BEP 12 tiers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use tokio::net::UdpSocket;
use tokio::time::timeout;
use tracing::debug;

use super::http::{self, HttpError};
use crate::config::Config;
use crate::error::TrackerError;
use crate::wire::id::{InfoHash, PeerId};
use crate::wire::tracker::http::{AnnounceRequest, AnnounceResponse};
use crate::wire::tracker::udp::{self, Family};
use crate::wire::tracker::{Event, ScrapeStats};

/// What we tell a tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceParams {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    /// Random per-session key (lets a tracker recognise us across address changes).
    pub key: u32,
}

/// What a tracker told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub interval: Duration,
    pub peers: Vec<SocketAddr>,
    pub seeders: Option<u32>,
    pub leechers: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    #[error("unsupported tracker URL {0:?}")]
    BadUrl(String),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    #[error("UDP tracker I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("UDP tracker did not answer after {0} attempts")]
    NoAnswer(u32),
    #[error("no tracker answered ({0} tried)")]
    AllFailed(usize),
}

/// One announce to one tracker URL.
pub async fn announce(
    url: &str,
    p: &AnnounceParams,
    cfg: &Config,
) -> Result<Announced, AnnounceError> {
    if url.starts_with("http://") {
        announce_http(url, p, cfg).await
    } else if let Some(rest) = url.strip_prefix("udp://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        announce_udp(authority, p, cfg).await
    } else {
        Err(AnnounceError::BadUrl(url.to_owned()))
    }
}

async fn announce_http(
    url: &str,
    p: &AnnounceParams,
    cfg: &Config,
) -> Result<Announced, AnnounceError> {
    let req = AnnounceRequest {
        info_hash: p.info_hash,
        peer_id: p.peer_id,
        port: p.port,
        uploaded: p.uploaded,
        downloaded: p.downloaded,
        left: p.left,
        event: p.event,
        compact: true,
        numwant: Some(200),
        key: Some(p.key),
        tracker_id: None,
    };
    let body = http::get(&req.to_url(url), cfg.tracker_timeout, Some(cfg.listen.ip())).await?;
    let r = AnnounceResponse::parse(&body)?;
    if let Some(w) = &r.warning {
        debug!(url, warning = %w, "tracker warning");
    }
    Ok(Announced {
        interval: Duration::from_secs(u64::from(r.interval.max(r.min_interval.unwrap_or(0)))),
        peers: r.peers,
        seeders: r.complete,
        leechers: r.incomplete,
    })
}

/// BEP 15: connect (get a connection id), then announce; each step retried with the
/// `base·2^n` back-off.
async fn announce_udp(
    authority: &str,
    p: &AnnounceParams,
    cfg: &Config,
) -> Result<Announced, AnnounceError> {
    let p = *p;
    let r = udp_exchange(authority, cfg, move |connection_id, transaction_id| {
        udp::Request::Announce(udp::Announce {
            connection_id,
            transaction_id,
            info_hash: p.info_hash,
            peer_id: p.peer_id,
            downloaded: p.downloaded,
            left: p.left,
            uploaded: p.uploaded,
            event: p.event,
            ip: None,
            key: p.key,
            num_want: Some(200),
            port: p.port,
        })
    })
    .await?;
    match r {
        udp::Response::Announce {
            interval,
            leechers,
            seeders,
            peers,
            ..
        } => Ok(Announced {
            interval: Duration::from_secs(u64::from(interval)),
            peers,
            seeders: Some(seeders),
            leechers: Some(leechers),
        }),
        _ => Err(TrackerError::BadField("action").into()),
    }
}

/// Scrapes (BEP 48 over HTTP, BEP 15 over UDP) swarm counts for up to 74 info-hashes.
pub async fn scrape(
    url: &str,
    hashes: &[InfoHash],
    cfg: &Config,
) -> Result<Vec<(InfoHash, ScrapeStats)>, AnnounceError> {
    let hashes = &hashes[..hashes.len().min(udp::MAX_SCRAPE_HASHES)];
    if url.starts_with("http://") {
        let s = crate::wire::tracker::http::scrape_url(url)
            .ok_or_else(|| AnnounceError::BadUrl(format!("{url} (no scrape)")))?;
        let full = crate::wire::tracker::http::scrape_request_url(&s, hashes);
        let body = http::get(&full, cfg.tracker_timeout, Some(cfg.listen.ip())).await?;
        Ok(crate::wire::tracker::http::parse_scrape(&body)?)
    } else if let Some(rest) = url.strip_prefix("udp://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let list = hashes.to_vec();
        let r = udp_exchange(authority, cfg, move |connection_id, transaction_id| {
            udp::Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes: list.clone(),
            }
        })
        .await?;
        match r {
            udp::Response::Scrape { stats, .. } => Ok(hashes.iter().copied().zip(stats).collect()),
            _ => Err(TrackerError::BadField("action").into()),
        }
    } else {
        Err(AnnounceError::BadUrl(url.to_owned()))
    }
}

/// One BEP 15 exchange: a connect (unless a connection id is fresh), then the request
/// `make(connection_id, transaction_id)` builds, each retried after `base·2^n`.
async fn udp_exchange(
    authority: &str,
    cfg: &Config,
    make: impl Fn(u64, u32) -> udp::Request,
) -> Result<udp::Response, AnnounceError> {
    let addr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| AnnounceError::BadUrl(authority.to_owned()))?;
    let local = cfg.listen.ip();
    let bind: SocketAddr = if !local.is_unspecified() && local.is_ipv4() == addr.is_ipv4() {
        SocketAddr::new(local, 0)
    } else if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let family = if addr.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(addr).await?;
    let mut attempt = 0u32;
    // Connect replies are counted too: a tracker that only ever answers with a new
    // connection id must not keep us here.
    let mut connects = 0u32;
    let mut conn: Option<(u64, Instant)> = None;
    // An IPv6 announce reply for 200 peers is 3,620 bytes.
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let limit = cfg.udp_tracker_attempts.min(9);
        if attempt >= limit || connects > limit {
            return Err(AnnounceError::NoAnswer(attempt));
        }
        let wait = cfg.udp_retry_base.saturating_mul(1 << attempt.min(8));
        let tid: u32 = rand::random();
        let request = match conn {
            Some((id, at)) if at.elapsed() < Duration::from_secs(60) => make(id, tid),
            _ => udp::Request::Connect {
                transaction_id: tid,
            },
        };
        let deadline = Instant::now() + wait;
        let refused = |e: &std::io::Error| e.kind() == std::io::ErrorKind::ConnectionRefused;
        if let Err(e) = sock.send(&request.to_vec()).await
            && !refused(&e)
        {
            return Err(e.into());
        }
        // Wait for the answer with this transaction id; ignore strays. An ICMP "port
        // unreachable" counts as no answer: the attempt's full back-off is still waited.
        let answer = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, sock.recv(&mut buf)).await {
                Err(_) => break None,
                Ok(Err(e)) if refused(&e) => {
                    tokio::time::sleep_until(deadline.into()).await;
                    break None;
                }
                Ok(Err(e)) => return Err(e.into()),
                Ok(Ok(n)) => match udp::Response::decode(&buf[..n], family) {
                    Ok(r) if r.transaction_id() == tid => break Some(r),
                    Ok(_) => continue,
                    Err(e) => {
                        debug!(error = %e, "bad UDP tracker packet");
                        continue;
                    }
                },
            }
        };
        match answer {
            None => attempt += 1,
            Some(udp::Response::Connect { connection_id, .. }) => {
                connects += 1;
                conn = Some((connection_id, Instant::now()));
            }
            Some(udp::Response::Error { message, .. }) => {
                return Err(TrackerError::Failure(message).into());
            }
            Some(r) => return Ok(r),
        }
    }
}

/// BEP 12 tiers: each tier shuffled once; tiers tried in order, trackers within a tier in
/// order; the tracker that answers moves to the front of its tier.
#[derive(Debug, Clone, Default)]
pub struct Tiers {
    tiers: Vec<Vec<String>>,
}

impl Tiers {
    /// The tiers in order, each shuffled (BEP 12). A URL is kept in the first tier that
    /// lists it only: a `.torrent`'s tracker also comes in the request's trackers, and
    /// twice in a round it doubled the wait on a dead tracker.
    pub fn new(tiers: Vec<Vec<String>>) -> Self {
        let mut rng = rand::rng();
        let mut seen = std::collections::HashSet::new();
        let mut tiers: Vec<Vec<String>> = tiers
            .into_iter()
            .map(|t| t.into_iter().filter(|u| seen.insert(u.clone())).collect())
            .collect();
        tiers.retain(|t| !t.is_empty());
        for t in &mut tiers {
            t.shuffle(&mut rng);
        }
        Self { tiers }
    }

    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    pub fn add(&mut self, url: String) {
        if !self.tiers.iter().flatten().any(|u| *u == url) {
            self.tiers.push(vec![url]);
        }
    }

    pub fn urls(&self) -> impl Iterator<Item = &String> {
        self.tiers.iter().flatten()
    }

    /// Announces to the first tracker that answers.
    pub async fn announce(
        &mut self,
        p: &AnnounceParams,
        cfg: &Config,
    ) -> Result<(String, Announced), AnnounceError> {
        let mut tried = 0;
        for t in 0..self.tiers.len() {
            for i in 0..self.tiers[t].len() {
                let url = self.tiers[t][i].clone();
                tried += 1;
                match announce(&url, p, cfg).await {
                    Ok(a) => {
                        let u = self.tiers[t].remove(i);
                        self.tiers[t].insert(0, u);
                        return Ok((url, a));
                    }
                    Err(e) => debug!(url, error = %e, "announce failed"),
                }
            }
        }
        Err(AnnounceError::AllFailed(tried))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_in_several_tiers_is_tried_once() {
        let a = "http://198.18.1.1:6969/announce".to_owned();
        let b = "udp://198.18.1.1:6969".to_owned();
        let t = Tiers::new(vec![
            vec![a.clone(), a.clone()],
            vec![a.clone()],
            vec![b.clone(), a.clone()],
        ]);
        let urls: Vec<&String> = t.urls().collect();
        assert_eq!(urls, [&a, &b]);
    }
}
