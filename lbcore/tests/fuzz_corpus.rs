//! Stable replay of the fuzz corpora: every file under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` is run through the same code as the cargo-fuzz target of that
//! name (`fuzz/harness.rs`, included below), so seeds and fixed crashes are checked by plain
//! `cargo test` on stable, without nightly or libFuzzer.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/harness.rs"]
mod harness;

mod common;

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

/// Valid frames for the harness's services, one per forwarding path, so the fuzzer starts from
/// inputs that reach scheduling and rewriting rather than only the parser. Each is the control
/// byte (see `fuzz/harness.rs`) followed by the frame.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use common::{SYN, tcp, udp};
    let with = |ctl: u8, frame: Vec<u8>| [vec![ctl], frame].concat();
    let (c4, c6) = ("192.0.2.7", "2001:db8::7");
    let (v4, v6) = ("10.0.0.100", "fd00::100");
    vec![
        ("v4_tcp_dr_wlc", with(0, tcp(c4, 40001, v4, 80, SYN, b"", true))),
        ("v4_udp_nat_ops", with(0, udp(c4, 40002, v4, 53, b"query", true))),
        (
            "v4_udp_nat_ops_ip",
            with(1, udp(c4, 40002, v4, 53, b"query", false)),
        ),
        (
            "v4_tcp_fullnat_mh",
            with(1, tcp(c4, 40003, v4, 443, SYN, b"", false)),
        ),
        (
            "v4_tcp_tun_sh",
            with(1, tcp(c4, 40004, v4, 8080, SYN, b"GET /", false)),
        ),
        (
            "v4_tcp_pcc_port0",
            with(0, tcp(c4, 40005, v4, 9999, SYN, b"", true)),
        ),
        (
            "v4_fwmark7_dr",
            with(2, tcp(c4, 40006, "10.9.9.9", 25, SYN, b"", true)),
        ),
        ("v6_tcp_dr_sed", with(0, tcp(c6, 40007, v6, 80, SYN, b"", true))),
        (
            "v6_udp_fullnat_nq",
            with(1, udp(c6, 40008, v6, 53, b"query", false)),
        ),
        (
            "v6_tcp_gue_twos",
            with(1, tcp(c6, 40009, v6, 443, SYN, b"", false)),
        ),
        (
            "v6_fwmark8_dr",
            with(4, tcp(c6, 40010, "2001:db8:1::1", 25, SYN, b"", true)),
        ),
    ]
}

/// The seeds are committed under fuzz/corpus/parse_frame/ (regenerate them with
/// `LBCORE_WRITE_SEEDS=1 cargo test -p lbcore --test fuzz_corpus`) and each is forwarded by the
/// harness's balancer: a seed that stops reaching the data plane fails here.
#[test]
fn seeds_are_committed_and_forwarded() {
    let dir = fuzz_dir().join("corpus").join("parse_frame");
    for (name, data) in seeds() {
        let path = dir.join(name);
        if std::env::var_os("LBCORE_WRITE_SEEDS").is_some() {
            fs::write(&path, &data).unwrap();
        }
        let committed = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(committed, data, "{} differs from its generator", path.display());

        let (meta, bytes) = harness::split_input(&data);
        let mut lb = harness::balancer();
        let mut frame = lbcore::balancer::Frame::copy_from(bytes, meta).unwrap();
        let verdict = lb.process(lbcore::time::Instant::from_secs(1000), &mut frame);
        assert!(
            matches!(verdict, lbcore::balancer::Verdict::Forward(_)),
            "seed {name}: {verdict:?}"
        );
    }
}
