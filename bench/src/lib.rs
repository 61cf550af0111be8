//! Junction's benchmarks (issue 6): the pieces the criterion benches and the whole-process
//! harness share.
//!
//! - [`workload`]: realistic search hits for the merge benchmark;
//! - [`memnet`]: an in-memory network that timestamps its first hit and serves synthetic bytes;
//! - [`proc`]: resident memory of a process, free loopback ports, deterministic content.

pub mod memnet;
pub mod proc;
pub mod workload;
