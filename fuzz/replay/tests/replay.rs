//! Replays every committed fuzz input through its target's body: each file of
//! `fuzz/corpus/NAME/` and `fuzz/regressions/NAME/`. A decoder that panics, or a round
//! trip that no longer holds, on any input the fuzzers kept fails here, in plain
//! `cargo test`, with no fuzzer built.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files directly inside `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.expect("read corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn every_corpus_and_regression_input_replays() {
    let mut total = 0;
    for (name, body) in junction_fuzz_replay::TARGETS {
        let mut n = 0;
        for kind in ["corpus", "regressions"] {
            for path in files(&root().join(kind).join(name)) {
                // A fuzzer running in this tree may drop a file meanwhile.
                let Ok(data) = std::fs::read(&path) else {
                    continue;
                };
                let result = std::panic::catch_unwind(|| body(&data));
                assert!(result.is_ok(), "{name}: {} panicked", path.display());
                n += 1;
            }
        }
        assert!(n > 0, "{name}: no corpus committed");
        total += n;
    }
    eprintln!("replayed {total} inputs");
}

#[test]
fn every_folder_names_a_target_and_every_target_has_a_binary() {
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root().join(kind)) else {
            continue;
        };
        for e in entries {
            let name = e.unwrap().file_name().into_string().unwrap();
            assert!(
                junction_fuzz_replay::target(&name).is_some(),
                "fuzz/{kind}/{name} has no target in TARGETS"
            );
        }
    }
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    for (name, _) in junction_fuzz_replay::TARGETS {
        let bin = root().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(bin.is_file(), "no cargo-fuzz target {}", bin.display());
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} is not a [[bin]] of fuzz/Cargo.toml"
        );
    }
}
