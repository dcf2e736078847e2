//! Stable replay of the fuzz corpora: every file under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` is run through the same code as the cargo-fuzz target of that
//! name (`fuzz/harness.rs`, included below), so seeds and fixed crashes are checked by plain
//! `cargo test` on stable, without nightly or libFuzzer.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/harness.rs"]
mod harness;

/// Runs one input through the fuzz target `target`. Panics on an unknown target so that a new
/// corpus directory is not silently ignored: add its target here.
fn run_target(target: &str, data: &[u8]) {
    match target {
        "parse_frame" => harness::parse_frame(data),
        other => panic!("fuzz corpus directory for unknown target `{other}`: add it to run_target"),
    }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, as (target, path), sorted; dotfiles (.gitkeep) skipped.
fn inputs(kind: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(targets) = fs::read_dir(fuzz_dir().join(kind)) else {
        return out;
    };
    for target in targets {
        let target = target.expect("readable fuzz directory").path();
        if !target.is_dir() {
            continue;
        }
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        for file in fs::read_dir(&target).expect("readable corpus directory") {
            let path = file.expect("readable corpus entry").path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                out.push((name.clone(), path));
            }
        }
    }
    out.sort();
    out
}

fn replay(kind: &str) -> usize {
    let inputs = inputs(kind);
    for (target, path) in &inputs {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        eprintln!("replaying {}", path.display());
        run_target(target, &data);
    }
    inputs.len()
}

#[test]
fn seed_corpus_replays() {
    let n = replay("corpus");
    eprintln!("replayed {n} corpus files");
    // The seed corpus is checked in; finding none means the layout moved, not that all is well.
    assert!(n > 0, "no files under {}", fuzz_dir().join("corpus").display());
}

#[test]
fn regressions_replay() {
    let n = replay("regressions");
    eprintln!("replayed {n} regression files");
}
