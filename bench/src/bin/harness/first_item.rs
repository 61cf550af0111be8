//! Part 2: time from the fastest network's first hit to the first merged item over gRPC.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use futures::StreamExt;
use junction_bench::memnet::{FirstHit, MemNet};
use junction_bench::workload;
use junction_core::DynNetwork;
use proto::v1 as pb;
use proto::v1::search_event::Event;

use super::served::serve;
use super::{Row, row};

/// Delays before each in-memory network's first hit: the fastest answers first.
const FIRST_DELAYS_MS: [u64; 3] = [2, 5, 9];

pub(super) async fn first_item_rows(searches: usize) -> Result<Vec<Row>> {
    let goal = Duration::from_millis(1);
    let mut rows = Vec::new();
    for nodelay in [false, true] {
        let mut delays = first_item_delays(searches, nodelay).await?;
        delays.sort();
        let (median, p99) = (percentile(&delays, 0.5), percentile(&delays, 0.99));
        let how = if nodelay {
            "diagnostic: same, API socket with TCP_NODELAY"
        } else {
            "first merged item after the fastest network's first hit (gRPC as served, 3 networks)"
        };
        rows.push(row(
            format!("{how}, {} searches", delays.len()),
            format!(
                "median {}, p99 {}, max {}",
                ms(median),
                ms(p99),
                ms(*delays.last().unwrap_or(&Duration::ZERO))
            ),
            "≤ 1 ms",
            Some(median <= goal && p99 <= goal),
        ));
    }
    Ok(rows)
}

/// Per search: from the moment the fastest in-memory network hands out its first hit to
/// the moment the gRPC client holds the first `Item` event.
async fn first_item_delays(searches: usize, nodelay: bool) -> Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let first = Arc::new(FirstHit::default());
    // 30 hits per network; contents repeat across networks, so updates flow too.
    let hits = workload::hits(90, 9, "movie");
    let nets: Vec<Arc<dyn DynNetwork>> = ["fast", "middle", "slow"]
        .into_iter()
        .zip(FIRST_DELAYS_MS)
        .zip(hits.chunks(30))
        .map(|((id, delay), hits)| {
            Arc::new(MemNet::searching(
                id,
                hits.to_vec(),
                Duration::from_millis(delay),
                first.clone(),
            )) as Arc<dyn DynNetwork>
        })
        .collect();
    let mut s = serve(dir.path(), nets, nodelay).await?;
    let warmup = 20;
    let mut delays = Vec::with_capacity(searches);
    for n in 0..searches + warmup {
        first.take();
        let req = pb::SearchRequest {
            query: "movie".into(),
            timeout_ms: 2000,
            ..Default::default()
        };
        let mut stream = s.client.search(req).await?.into_inner();
        let mut got = None;
        let mut items = 0;
        while let Some(ev) = stream.next().await {
            match ev?.event {
                Some(Event::Item(_)) => {
                    got.get_or_insert_with(Instant::now);
                    items += 1;
                }
                Some(Event::Finished(_)) => break,
                _ => {}
            }
        }
        let got = got.ok_or_else(|| anyhow!("search {n} returned no item"))?;
        let hit = first
            .take()
            .ok_or_else(|| anyhow!("search {n}: no network noted a first hit"))?;
        if items < 30 {
            bail!("search {n} returned only {items} items");
        }
        if n >= warmup {
            delays.push(got.saturating_duration_since(hit));
        }
    }
    s.stop().await;
    Ok(delays)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
