//! Instruction-count driver of the CI gate (`.ci/bench-gate.sh`).
//!
//! `lbcore-icount list` prints the scenario names; `lbcore-icount NAME` runs one scenario (under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*lbcore_icount_measured*'`
//! for the count) and prints `NAME UNITS UNIT`, the units the measured region handled;
//! `lbcore-icount all` runs every scenario natively (a smoke test). With
//! `LBCORE_GATE_SELFTEST=1` the measured region does extra work, which the gate must catch.

use lbcore_benches::icount;

fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "list".into());
    let extra = std::env::var_os("LBCORE_GATE_SELFTEST").is_some_and(|v| v == "1");
    let names: Vec<&str> = match arg.as_str() {
        "list" => {
            for n in icount::NAMES {
                println!("{n}");
            }
            return;
        }
        "list-extra" => {
            for n in icount::EXTRA_NAMES {
                println!("{n}");
            }
            return;
        }
        "all" => icount::NAMES.to_vec(),
        "sizes" => {
            println!(
                "wire::Packet {} bytes",
                std::mem::size_of::<lbcore::wire::Packet>()
            );
            println!("conn::Conn {} bytes", std::mem::size_of::<lbcore::conn::Conn>());
            println!(
                "wire::IcmpInfo {} bytes",
                std::mem::size_of::<lbcore::wire::IcmpInfo>()
            );
            return;
        }
        one => vec![one],
    };
    for name in names {
        let Some(mut s) = icount::scenario(name) else {
            eprintln!("lbcore-icount: unknown scenario {name:?} (try `list`)");
            std::process::exit(2);
        };
        let units = icount::drive(s.as_mut(), extra);
        if let Err(e) = s.check() {
            eprintln!("lbcore-icount: {name}: {e}");
            std::process::exit(1);
        }
        println!("{name} {units} {}", s.unit());
    }
}
