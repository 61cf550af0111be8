//! Part 1: search merge throughput (`Merger::add` on one core), with criterion's figure
//! when `cargo bench` ran before.

use anyhow::Result;
use junction_bench::workload;

use super::{Row, row};

const MERGE_HITS: usize = 10_000;

const MERGE_GOAL: f64 = 200_000.0;

pub(super) async fn merge_rows() -> Result<Vec<Row>> {
    // On its own thread: one core, nothing else of ours running.
    let (add, add_item) = tokio::task::spawn_blocking(|| {
        let hits = workload::hits(MERGE_HITS, 42, "movie");
        let terms = vec!["movie".to_owned()];
        (
            workload::merge_rate(&hits, &terms, false, 21),
            workload::merge_rate(&hits, &terms, true, 21),
        )
    })
    .await?;
    let criterion = |name| criterion_rate(name).map(|r| format!("{} (criterion)", per_sec(r)));
    let (c_add, c_item) = (criterion("add"), criterion("add+item"));
    let best = criterion_rate("add").unwrap_or(add);
    Ok(vec![
        row(
            "merge: Merger::add, 10k hits, ~1/3 merging, 1 core",
            c_add.unwrap_or_else(|| format!("{} (harness, median of 21)", per_sec(add))),
            "≥ 200k hits/s",
            Some(best >= MERGE_GOAL),
        ),
        row(
            "merge + item snapshot per hit (as the hub sends)",
            c_item.unwrap_or_else(|| format!("{} (harness, median of 21)", per_sec(add_item))),
            "-",
            None,
        ),
    ])
}

fn per_sec(r: f64) -> String {
    format!("{:.0}k hits/s", r / 1000.0)
}

/// Hits/s from criterion's last `cargo bench` of `merge/<name>`, if it ran.
fn criterion_rate(name: &str) -> Option<f64> {
    let target = std::env::current_exe()
        .ok()?
        .parent()?
        .parent()?
        .to_path_buf();
    let path = target.join(format!("criterion/merge/{name}/new/estimates.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let ns = v["median"]["point_estimate"].as_f64()?;
    Some(MERGE_HITS as f64 / (ns / 1e9))
}
