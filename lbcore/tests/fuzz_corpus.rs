//! Stable replay of the fuzz corpora: every file under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` is run through the same code as the cargo-fuzz target of that
//! name (`fuzz/harness.rs`, included below), so seeds and fixed crashes are checked by plain
//! `cargo test` on stable, without nightly or libFuzzer.

use std::fs;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/harness.rs"]
mod harness;

// The other targets' harnesses, as their fuzz targets include them (crate-level modules).
#[path = "../../fuzz/harness/config.rs"]
mod config;
#[path = "../../fuzz/harness/input.rs"]
mod input;
#[path = "../../fuzz/harness/pipeline.rs"]
mod pipeline;
#[path = "../../fuzz/harness/vrrp_sim.rs"]
mod vrrp_sim;
#[path = "../../fuzz/harness/wire.rs"]
mod wire;

mod common;

/// Runs one input through the fuzz target `target`. Panics on an unknown target so that a new
/// corpus directory is not silently ignored: add its target here.
fn run_target(target: &str, data: &[u8]) {
    match target {
        "parse_frame" => harness::parse_frame(data),
        "pipeline" => pipeline::pipeline(data),
        "conn_model" => pipeline::conn_model(data),
        "wire" => wire::wire(data),
        "vrrp_sim" => vrrp_sim::vrrp_sim(data),
        "config" => config::config(data),
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

// ----- seeds of the other targets -----

/// The keepalived 2.2.7 adverts of `shared/fixtures/` (see the VRRP capture tests), copied here
/// so the repository reads nothing outside itself.
const VRRP_CAPTURES: [(&str, &str); 3] = [
    (
        "vrrp_v2_keepalived",
        "01005e00001202000ac9000b080045c0002800010000ff70cfbe0ac9000be00000122133640101010c3b0ac900643131313100000000",
    ),
    (
        "vrrp_v3_keepalived",
        "01005e00001202000ac9000b080045c0002000010000ff70cfc60ac9000be000001231336401006473d70ac90064",
    ),
    (
        "vrrp_v3_ipv6_keepalived",
        "33330000001202000ac9000b86dd6c083eb1001870fffe8000000000000000000afffec9000bff0200000000000000000000000000123134640100646272fd000201000000000000000000000100",
    ),
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// ICMP echo requests and errors, v4 and v6, built with etherparse.
fn icmp_frames() -> Vec<(&'static str, Vec<u8>)> {
    use etherparse::{IcmpEchoHeader, Icmpv4Type, Icmpv6Type, PacketBuilder};
    let echo = IcmpEchoHeader { id: 7, seq: 1 };
    let eth = || PacketBuilder::ethernet2(common::CLIENT_MAC, common::LB_MAC);
    let mut v4 = Vec::new();
    eth()
        .ipv4([192, 0, 2, 7], [10, 0, 0, 100], 64)
        .icmpv4(Icmpv4Type::EchoRequest(echo))
        .write(&mut v4, b"ping")
        .unwrap();
    let mut v6 = Vec::new();
    eth()
        .ipv6(
            "2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            "fd00::100".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            64,
        )
        .icmpv6(Icmpv6Type::EchoRequest(echo))
        .write(&mut v6, b"ping")
        .unwrap();
    // Fragmentation needed from a router about a packet real server 10.0.1.1:80 -> client.
    let quoted = common::tcp("10.0.1.1", 80, "192.0.2.7", 40001, common::ACK, b"", false);
    let mut frag_needed = Vec::new();
    eth()
        .ipv4([10, 0, 9, 1], [10, 0, 1, 1], 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut frag_needed, &quoted[..28])
        .unwrap();
    let quoted6 = common::udp("fd00::1:0:0:0:1", 53, "2001:db8::7", 40008, b"answer", false);
    let mut too_big = Vec::new();
    eth()
        .ipv6(
            "fd00::9:0:0:0:1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            "fd00::1:0:0:0:1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            64,
        )
        .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut too_big, &quoted6[..48])
        .unwrap();
    vec![
        ("icmp4_echo", v4),
        ("icmp6_echo", v6),
        ("icmp4_frag_needed", frag_needed),
        ("icmp6_too_big", too_big),
    ]
}

/// A deterministic byte stream (xorshift64*) for programs the fuzzer starts from.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// A hand-written `pipeline` program (see `fuzz/harness/pipeline.rs` for the layout): one TCP
/// service on 10.0.0.100:80 with a NAT and a FULLNAT destination, two clients each doing
/// SYN, SYN-ACK reply, ACK with data, a time step, FIN both ways, and bounded expiry.
fn pipeline_story() -> Vec<u8> {
    let mut p = vec![1, 3, 0, 1, 0, 0, 0, 0]; // capacity 8, 4 ports, seed 1, one service
    p.extend([0, 0, 0, 3, 3, 0, 0]); // v4, 10.0.0.100, port 80, TCP, wlc, no flags, no persistence
    p.extend([1, 3, 1, 1, 0, 4, 1, 1, 0]); // two dests: NAT and FULLNAT, weight 1
    for c in [1, 2] {
        p.extend([0, 0, c, 2, 0, 0, 0]); // SYN
        p.extend([4, 0, 0, 1]); // reply (SYN-ACK)
        p.extend([0, 0, c, 2, 1, 0, 3, b'a', b'b', b'c']); // ACK + data
        p.extend([6, 1, 5]); // 5 s later
        p.extend([0, 0, c, 2, 3, 0, 0]); // FIN
        p.extend([4, 0, 3, 1]); // FIN back
        p.extend([7, 3]); // expire
    }
    p
}

/// A `conn_model` story: SYNs from several clients to the FULLNAT service until the 4 local
/// ports run out, replies, then time and expiry so the ports come back.
fn conn_model_story() -> Vec<u8> {
    let mut p = vec![0, 1, 0, 0, 0]; // seed 1, reuse mode 0, no expire_nodest/quiescent
    for c in 0..6 {
        p.extend([0, 0, c, 1, 0, 0]); // SYN from client c
        p.extend([4, 0, 0]); // a reply
    }
    p.extend([1, 1, 3, 4, 3]); // a UDP datagram to the NAT service
    p.extend([6, 2, 0, 200, 7, 15, 7, 15]); // 200 s later, expire twice
    for c in 0..4 {
        p.extend([0, 0, c, 3, 0, 0]); // new SYNs get ports again
    }
    p
}

/// The seed corpora of every target but `parse_frame` (whose seeds are checked above), as
/// (target, name, bytes). Regenerate the files with `LBCORE_WRITE_SEEDS=1`.
fn target_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, hex) in VRRP_CAPTURES {
        out.push(("wire", name.to_string(), [vec![0], unhex(hex)].concat()));
        let ip = unhex(hex)[14..].to_vec();
        out.push(("wire", format!("{name}_ip"), [vec![1], ip].concat()));
    }
    for (name, frame) in icmp_frames() {
        out.push(("wire", name.to_string(), [vec![0], frame].concat()));
    }
    for (name, data) in seeds() {
        out.push(("wire", format!("frame_{name}"), data));
    }
    out.push(("pipeline", "story_nat_fullnat".into(), pipeline_story()));
    out.push(("conn_model", "story_port_exhaustion".into(), conn_model_story()));
    for i in 0..8u64 {
        out.push(("pipeline", format!("noise_{i}"), noise(i + 1, 300)));
        out.push(("conn_model", format!("noise_{i}"), noise(i + 101, 200)));
        out.push(("vrrp_sim", format!("noise_{i}"), noise(i + 201, 120)));
    }
    // vrrp_sim: v2, v3 over IPv4, v3 over IPv6; three routers, then timer steps and a forgery.
    for (ctl, name) in [(0u8, "v2"), (2, "v3"), (1, "v3_ipv6")] {
        let mut p = vec![ctl, 0, 1, 100, 0, 0, 200, 0, 0, 150, 0, 8];
        p.extend([0, 0, 0x10, 0x00, 1, 1, 0x20, 0x00, 0, 3, 1, 0, 255, 1, 0, 0, 0, 0]);
        p.extend([2, 6, 0, 1, 2, 0, 0x30, 0x00]); // crash router 2, wait
        out.push(("vrrp_sim", format!("story_{name}"), p));
    }
    let cfg_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/config");
    let mut files: Vec<_> = fs::read_dir(&cfg_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let ctl = u8::from(name.ends_with(".rules"));
        out.push(("config", name, [vec![ctl], fs::read(&path).unwrap()].concat()));
    }
    out
}

/// Every target's seeds are committed under fuzz/corpus/<target>/ and equal their generator.
#[test]
fn target_seeds_are_committed() {
    for (target, name, data) in target_seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        let path = dir.join(&name);
        if std::env::var_os("LBCORE_WRITE_SEEDS").is_some() {
            fs::create_dir_all(&dir).unwrap();
            fs::write(&path, &data).unwrap();
        }
        let committed = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(committed, data, "{} differs from its generator", path.display());
    }
}

/// The captured adverts really are adverts: the VRRP round trip runs on them, not past them.
#[test]
fn vrrp_captures_round_trip() {
    for (name, hex) in VRRP_CAPTURES {
        let frame = unhex(hex);
        let (env, msg) = lbcore::vrrp::wire::parse_envelope(&frame, lbcore::vrrp::Rx::Ethernet)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let adv = lbcore::vrrp::wire::Advert::parse(msg, lbcore::service::Family::of(&env.src))
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(adv.checksum_ok(&env, false), "{name}");
        wire::vrrp(&frame, lbcore::vrrp::Rx::Ethernet, false);
    }
}

// ----- named regressions -----

/// Replays `fuzz/regressions/<target>/<name>`.
fn regression(target: &str, name: &str) {
    let path = fuzz_dir().join("regressions").join(target).join(name);
    let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    run_target(target, &data);
}

/// Each input the fuzzer reported, by name (FUZZING.md, "Findings", says what each was). All of
/// these were harness mistakes, fixed in the harness; they stay as seeds of the paths they reach.
#[test]
fn regression_wire_ipv4_reserved_flag_bit() {
    // An IPv4 header with the reserved ("evil") flag bit set: etherparse's Ipv4Header has no
    // field for it, so its recomputed checksum differs; the raw-byte sum is right.
    regression("wire", "ipv4_reserved_flag_bit");
}

#[test]
fn regression_pipeline_template_rearmed_on_expiry() {
    // A persistence template controlling a connection is re-armed when the sweep meets it
    // first: it expires on a later pass, at a later time.
    regression("pipeline", "template_rearmed_on_expiry");
}

#[test]
fn regression_pipeline_nat_same_client_two_vports() {
    // One client ip:port reaching one NAT server ip:port through two virtual ports: the reply
    // tuple is ambiguous (in IPVS too), not a FULLNAT port collision.
    regression("pipeline", "nat_same_client_two_vports");
}

#[test]
fn regression_pipeline_fullnat_flow_rescheduled_to_dr() {
    // A FULLNAT flow that expired and was rescheduled to a DR destination no longer holds its
    // old local port, which FULLNAT may then give to another flow.
    regression("pipeline", "fullnat_flow_rescheduled_to_dr");
}

#[test]
fn regression_pipeline_nat_reply_tuple_of_removed_dest() {
    // A NAT connection whose destination was removed still forwards replies (as in IPVS); a
    // second client flow through another VIP to the same server ip:port makes the reply tuple
    // ambiguous although the first flow's destination is gone.
    regression("pipeline", "nat_reply_tuple_of_removed_dest");
}

#[test]
fn regression_pipeline_reply_tuple_reused_by_raw_frame() {
    // A raw fuzz frame's new FULLNAT connection evicted a half-open entry from a full table and
    // took its local port (correctly); the model, which learns only the flows it built, still
    // expected the reply on that tuple to go to the evicted flow.
    regression("pipeline", "reply_tuple_reused_by_raw_frame");
}

#[test]
fn regression_conn_model_flow_rescheduled_new_local_port() {
    // An evicted flow rescheduled with a new local port frees its old one.
    regression("conn_model", "flow_rescheduled_new_local_port");
}

#[test]
fn regression_vrrp_sim_v3_backup_learns_long_interval() {
    // A VRRPv3 backup learns a forged 40.95 s interval: its master-down timer is 3 x that.
    regression("vrrp_sim", "v3_backup_learns_long_interval");
}

#[test]
fn regression_vrrp_sim_weight0_track_fault() {
    // A failed track of weight 0 is a fault condition (as in keepalived): no master then.
    regression("vrrp_sim", "weight0_track_fault");
}

/// The bug the fuzzer found in lbcore (FUZZING.md, "Findings", 1), now fixed.
#[test]
fn regression_config_duplicate_virtual_server() {
    // FUZZING.md finding 1, fixed: two virtual_server blocks for one service are refused with
    // the place of the first.
    let path = fuzz_dir().join("regressions/config/duplicate_virtual_server");
    let data = fs::read(&path).unwrap();
    let text = String::from_utf8_lossy(&data[1..]);
    let diags = lbcore::config::parse_keepalived("dup.conf", &text, &mut lbcore::config::NoIncludes)
        .expect_err("two virtual_server blocks for one service are refused");
    assert!(
        diags
            .iter()
            .any(|d| d.to_string().contains("is already defined at dup.conf:")),
        "{diags:?}"
    );
    regression("config", "duplicate_virtual_server");
}

#[test]
fn regression_wire_vrrp_checksum_negative_zero() {
    // A VRRPv2 advert whose checksum field is 0xffff where the emitter writes 0x0000: both are
    // one's-complement zero and verify; the round trip compares the rest byte for byte.
    regression("wire", "vrrp_checksum_negative_zero");
}
