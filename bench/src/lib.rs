//! Benchmarks (issue 6): filled in next.
