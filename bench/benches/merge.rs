//! Search merge throughput on one core: `Merger::add` over realistic hits from three
//! networks, of which about a third merge into an item already seen.
//! Goal: ≥ 200k hits/s. Run: `cargo bench -p junction-bench --bench merge`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use junction_bench::workload;

const HITS: usize = 10_000;

fn merge(c: &mut Criterion) {
    let hits = workload::hits(HITS, 42, "movie");
    let terms = vec!["movie".to_owned()];
    let mut g = c.benchmark_group("merge");
    g.throughput(Throughput::Elements(HITS as u64));
    // Merger::add alone: the goal figure.
    g.bench_function("add", |b| {
        b.iter_batched(
            || hits.clone(),
            |h| workload::merge(h, &terms, false),
            BatchSize::LargeInput,
        )
    });
    // As the search hub does: add, then build the item sent to the client.
    g.bench_function("add+item", |b| {
        b.iter_batched(
            || hits.clone(),
            |h| workload::merge(h, &terms, true),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, merge);
criterion_main!(benches);
