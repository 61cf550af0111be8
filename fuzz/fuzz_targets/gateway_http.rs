#![no_main]
//! See `junction_fuzz_replay::gateway::http`: the body lives there so `cargo test` replays the corpus.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| junction_fuzz_replay::gateway::http(data));
