//! The adapter's two DHT tasks: keeping the routing table filled (bootstrap, refresh), and
//! the BEP 51 indexer that fetches the metadata of what other nodes hold into the search
//! index.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::dht::Dht;
use super::requests::{Command, Requests};
use super::storage::Storage;
use super::torrent::Torrent;
use crate::config::Config;
use crate::wire::id::InfoHash;

/// Bootstraps the DHT from the configured nodes, again whenever the table runs empty, and
/// refreshes it every 15 minutes.
pub(crate) async fn dht_maintenance(dht: Dht, boot: Vec<String>, cancel: CancellationToken) {
    let mut last_refresh = Instant::now();
    loop {
        if dht.node_count() == 0 && !boot.is_empty() {
            let mut addrs = Vec::new();
            for b in &boot {
                match junction_core::addr::resolve(b, junction_core::addr::RESOLVE_TIMEOUT).await {
                    Ok(a) if a.is_ipv4() => addrs.push(a),
                    Ok(a) => tracing::warn!(node = %b, %a, "DHT bootstrap: not IPv4, skipped"),
                    Err(e) => tracing::warn!(node = %b, error = %e, "DHT bootstrap: skipped"),
                }
            }
            dht.bootstrap(&addrs).await;
        } else if last_refresh.elapsed() > Duration::from_secs(15 * 60) {
            last_refresh = Instant::now();
            dht.refresh().await;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

/// Info-hashes whose metadata is fetched at once for the index, and how long one may take.
const INDEX_FETCHES: usize = 2;
const INDEX_FETCH_TIME: Duration = Duration::from_secs(120);
const MAX_INDEX_QUEUE: usize = 200;

/// Learns info-hashes from DHT nodes with BEP 51 `sample_infohashes` and fetches their
/// metadata (DHT `get_peers`, then ut_metadata from those peers) into the search index.
pub(crate) async fn dht_indexer(
    dht: Dht,
    config: Config,
    requests: Requests,
    cancel: CancellationToken,
) {
    let mut queue: VecDeque<InfoHash> = VecDeque::new();
    let mut seen: HashSet<InfoHash> = HashSet::new();
    let mut running: Vec<(Arc<Torrent>, Instant)> = Vec::new();
    let mut next_sample = Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        // What peers announced to this node, at once; samples of what other nodes hold,
        // every `dht_sample_interval`.
        let mut found = dht.stored();
        if Instant::now() >= next_sample && dht.node_count() > 0 {
            next_sample = Instant::now() + config.dht_sample_interval;
            for node in dht.some_nodes(8) {
                if let Ok(samples) = dht.sample(node).await {
                    found.extend(samples);
                }
            }
        }
        for ih in found {
            if seen.len() < 100_000 && seen.insert(ih) && queue.len() < MAX_INDEX_QUEUE {
                queue.push_back(ih);
            }
        }
        // Finished or overdue metadata fetches end; a torrent stopped meanwhile (replaced
        // by a fetch of the same info-hash) is no longer ours to wait for.
        running.retain(|(t, started)| {
            if t.cancel.is_cancelled() {
                return false;
            }
            if t.metadata().is_some() || started.elapsed() > INDEX_FETCH_TIME {
                if matches!(t.storage, Storage::MetadataOnly) {
                    t.cancel.cancel();
                }
                return false;
            }
            true
        });
        while running.len() < INDEX_FETCHES {
            let Some(ih) = queue.pop_front() else { break };
            // The command loop starts a metadata-only torrent unless the index or a running
            // torrent has this info-hash already.
            match requests
                .ask(|reply| Command::IndexMetadata { ih, reply })
                .await
            {
                Ok(Some(t)) => running.push((t, Instant::now())),
                Ok(None) => {}
                Err(_) => return,
            }
        }
    }
}
