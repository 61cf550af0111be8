//! `GET /metrics`: Prometheus metrics in the classic text format (0.0.4).
//!
//! Per network: bytes in and out and peers (from its status), searches, hits and failures
//! (counted as they happen, see [`counted`]), sources banned for bad data and bytes
//! discarded (from the transfers' figures); transfers by state; the HTTP fronts' calls by
//! front, method and status; the gRPC API's calls by service, method and status code (counted
//! by `api::calls`).
//!
//! prometheus-client writes OpenMetrics text, where a counter's `# HELP`/`# TYPE` lines name
//! it without `_total` and a `# EOF` line ends the document. The classic format (what older
//! Prometheus servers ask for and Debian's promtool 2.42 checks) names the sample itself, so
//! those lines are rewritten with the `_total` name and `# EOF` is dropped.

pub mod counted;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{LazyLock, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{AppState, HttpError};
use crate::transfer::{State as TransferState, TransferInfo};

pub use counted::instrument;

type Labels = Vec<(&'static str, String)>;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn get(State(s): State<AppState>) -> Result<Response, HttpError> {
    let text = render(&s.gw)
        .map_err(|e| HttpError::BadRequest(format!("cannot write the metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Counts every call to the HTTP fronts, refused ones included.
pub(super) async fn count_calls(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let front = if path.starts_with("/content/") {
        if path.ends_with(".m3u") {
            "playlist"
        } else {
            "content"
        }
    } else if path.starts_with("/torznab") {
        "torznab"
    } else if path.starts_with("/api/v2/") {
        "qbittorrent"
    } else if path == "/metrics" {
        "metrics"
    } else {
        "other"
    };
    let method = match *req.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let resp = next.run(req).await;
    counted::call(front, method, resp.status().as_u16());
    resp
}

fn family<M>(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, M>
where
    M: prometheus_client::metrics::TypedMetric
        + prometheus_client::encoding::EncodeMetric
        + Default
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let f = Family::<Labels, M>::default();
    reg.register(name, help, f.clone());
    f
}

fn net(n: &str) -> Labels {
    vec![("network", n.to_owned())]
}

/// The whole document.
fn render(gw: &crate::Gateway) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::with_prefix("junction");
    network_status(&mut reg, gw);
    let list = gw.transfers.list();
    network_transfer_figures(&mut reg, gw, &list);
    transfer_states(&mut reg, &list);
    api_calls(&mut reg);
    let mut out = String::new();
    encode_registry(&mut out, &reg)?;
    Ok(classic(&out))
}

/// What each network reports of itself, and what the gateway counted of its searches.
fn network_status(reg: &mut Registry, gw: &crate::Gateway) {
    let bytes_in = family::<Counter>(
        reg,
        "network_received_bytes",
        "Bytes received from the network's peers since start",
    );
    let bytes_out = family::<Counter>(
        reg,
        "network_sent_bytes",
        "Bytes sent to the network's peers since start",
    );
    let peers = family::<Gauge>(reg, "network_peers", "Peers connected now");
    let up = family::<Gauge>(
        reg,
        "network_up",
        "1 when the network is online or degraded, 0 when offline",
    );
    let searches = family::<Counter>(reg, "network_searches", "Searches sent to the network");
    let hits = family::<Counter>(reg, "network_hits", "Search hits the network returned");
    let failures = family::<Counter>(
        reg,
        "network_failures",
        "Network operations that failed, by operation (search, locate, fetch, share)",
    );
    for n in gw.networks.iter() {
        let id = n.id().as_str();
        let st = n.status();
        bytes_in.get_or_create(&net(id)).inc_by(st.bytes_in);
        bytes_out.get_or_create(&net(id)).inc_by(st.bytes_out);
        peers.get_or_create(&net(id)).set(i64::from(st.peers));
        let online = !matches!(st.state, junction_core::NetworkState::Offline);
        up.get_or_create(&net(id)).set(i64::from(online));
    }
    for (id, c) in counted::networks() {
        searches
            .get_or_create(&net(id))
            .inc_by(c.searches.load(Ordering::Relaxed));
        hits.get_or_create(&net(id))
            .inc_by(c.hits.load(Ordering::Relaxed));
        for (op, n) in counted::OPERATIONS.iter().zip(&c.failures) {
            let mut l = net(id);
            l.push(("operation", (*op).to_owned()));
            failures.get_or_create(&l).inc_by(n.load(Ordering::Relaxed));
        }
    }
}

/// What the transfers got from each network: verified, discarded, failed checks, bans.
fn network_transfer_figures(reg: &mut Registry, gw: &crate::Gateway, list: &[TransferInfo]) {
    let bans = family::<Counter>(
        reg,
        "network_bans",
        "Sources dropped because the bytes they sent failed a hash check",
    );
    let failed_checks = family::<Counter>(
        reg,
        "hash_failures",
        "Hash checks that bytes from the network failed (a piece, a part, a block)",
    );
    let discarded = family::<Counter>(
        reg,
        "network_discarded_bytes",
        "Bytes received and thrown away: they failed verification or arrived twice",
    );
    let verified = family::<Counter>(
        reg,
        "network_verified_bytes",
        "Bytes received from the network that passed verification",
    );
    // Every network's transfer counters exist from the start, at 0, so rate() and
    // alerts work before the first transfer.
    for n in gw.networks.iter() {
        for f in [&bans, &failed_checks, &discarded, &verified] {
            let _ = f.get_or_create(&net(n.id().as_str()));
        }
    }
    for (id, t) in figures(list) {
        bans.get_or_create(&net(&id)).inc_by(t.dropped);
        failed_checks
            .get_or_create(&net(&id))
            .inc_by(t.failed_checks);
        discarded.get_or_create(&net(&id)).inc_by(t.discarded);
        verified.get_or_create(&net(&id)).inc_by(t.verified);
    }
}

fn transfer_states(reg: &mut Registry, list: &[TransferInfo]) {
    let transfers = family::<Gauge>(reg, "transfers", "Transfers by state");
    for state in [
        TransferState::Queued,
        TransferState::Active,
        TransferState::Paused,
        TransferState::Complete,
        TransferState::Failed,
    ] {
        let n = list.iter().filter(|t| t.state == state).count();
        transfers
            .get_or_create(&vec![("state", format!("{state:?}").to_ascii_lowercase())])
            .set(n as i64);
    }
}

/// Calls to the HTTP fronts and the gRPC API.
fn api_calls(reg: &mut Registry) {
    let calls = family::<Counter>(
        reg,
        "http_requests",
        "Calls to the HTTP fronts by front, method and status",
    );
    let grpc = family::<Counter>(
        reg,
        "grpc_requests",
        "gRPC calls by service, method and status code (Cancelled: the client left before the end)",
    );
    for ((service, method, code), n) in counted::grpc_calls() {
        grpc.get_or_create(&vec![
            ("service", service.to_owned()),
            ("method", method.to_owned()),
            ("code", code.to_owned()),
        ])
        .inc_by(n);
    }
    for ((front, method, status), n) in counted::calls() {
        calls
            .get_or_create(&vec![
                ("front", front.to_owned()),
                ("method", method.to_owned()),
                ("code", status.to_string()),
            ])
            .inc_by(n);
    }
}

/// Running totals per network of figures each transfer keeps for its current run only.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    dropped: u64,
    failed_checks: u64,
    discarded: u64,
    verified: u64,
}

#[derive(Debug, Default)]
struct Accumulated {
    /// What each (transfer, network) showed at the last scrape.
    seen: HashMap<(String, String), Totals>,
    totals: BTreeMap<String, Totals>,
}

static ACCUMULATED: LazyLock<Mutex<Accumulated>> = LazyLock::new(Default::default);

/// Adds what each transfer's figures grew by since it was last seen (all of it when they
/// restarted, as they do with each run) to running totals, so the counters only go up
/// even as transfers come and go.
fn observe(acc: &mut Accumulated, t: &TransferInfo) {
    for n in &t.per_network {
        let now = Totals {
            dropped: u64::from(n.sources_dropped),
            failed_checks: u64::from(n.failed_checks),
            discarded: n.bytes_discarded,
            verified: n.bytes_verified,
        };
        let key = (t.id.clone(), n.network.clone());
        let before = acc.seen.get(&key).copied().unwrap_or_default();
        let grew = |now: u64, before: u64| now.checked_sub(before).unwrap_or(now);
        let total = acc.totals.entry(n.network.clone()).or_default();
        total.dropped += grew(now.dropped, before.dropped);
        total.failed_checks += grew(now.failed_checks, before.failed_checks);
        total.discarded += grew(now.discarded, before.discarded);
        total.verified += grew(now.verified, before.verified);
        acc.seen.insert(key, now);
    }
}

fn accumulated() -> std::sync::MutexGuard<'static, Accumulated> {
    ACCUMULATED.lock().unwrap_or_else(|p| p.into_inner())
}

/// The totals with every listed transfer's latest figures in.
fn figures(list: &[TransferInfo]) -> BTreeMap<String, Totals> {
    let mut acc = accumulated();
    for t in list {
        observe(&mut acc, t);
    }
    // Only transfers still listed are remembered, so the map stays as small as the list.
    acc.seen
        .retain(|(id, _), _| list.iter().any(|t| &t.id == id));
    acc.totals.clone()
}

/// Follows the transfers' events between scrapes, so a transfer that finishes and is
/// removed before the next scrape still counts.
pub(super) async fn follow(gw: crate::Gateway, stop: tokio_util::sync::CancellationToken) {
    let mut events = gw.transfers.subscribe();
    loop {
        let ev = tokio::select! {
            ev = events.recv() => ev,
            () = stop.cancelled() => return,
        };
        match ev {
            Ok(ev) => {
                let mut acc = accumulated();
                observe(&mut acc, &ev.transfer);
                if ev.removed {
                    acc.seen.retain(|(id, _), _| *id != ev.transfer.id);
                }
            }
            // Missed events: the next one, or the next scrape, catches up from absolutes.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// OpenMetrics text to the classic format: counters' `# HELP`/`# TYPE` lines name the
/// `_total` sample, and no `# EOF`.
fn classic(open: &str) -> String {
    let counters: Vec<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len() + 64);
    for line in open.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_with_total_and_eof_is_dropped() {
        let mut reg = Registry::with_prefix("junction");
        let c = family::<Counter>(&mut reg, "network_hits", "Hits");
        c.get_or_create(&net("ed2k")).inc_by(3);
        let g = family::<Gauge>(&mut reg, "network_peers", "Peers");
        g.get_or_create(&net("ed2k")).set(2);
        let mut open = String::new();
        encode_registry(&mut open, &reg).unwrap();
        prometheus_client::encoding::text::encode_eof(&mut open).unwrap();
        let text = classic(&open);
        assert!(
            text.contains("# HELP junction_network_hits_total Hits.\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE junction_network_hits_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("junction_network_hits_total{network=\"ed2k\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE junction_network_peers gauge\n"),
            "{text}"
        );
        assert!(!text.contains("EOF"), "{text}");
    }
}
