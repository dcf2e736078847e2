//! The IPVS offload (`lbcore_net::ipvs`) against a real kernel: boots the Debian kernel and
//! initramfs that `.ci/vm.sh` prepares under `qemu-system-x86_64 -accel tcg` and reads the
//! guest program's verdicts (`tests/vm/guest.rs`, and `tests/vm/lbd.rs` for
//! `lbd --offload ipvs`) from the serial console.
//!
//! The artefacts are looked up in `$LBCORE_VM_DIR` (default `~/.cache/lbcore-vm/current`):
//! `vmlinuz` and `initramfs.gz`. When they or qemu are missing the test prints `SKIPPED` and
//! passes, unless `LBCORE_REQUIRE_NETNS=1`, where it fails. Run `.ci/vm.sh` to prepare and run.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

fn skip_or_fail(why: &str) {
    if std::env::var("LBCORE_REQUIRE_NETNS").as_deref() == Ok("1") {
        panic!("IPVS VM test required (LBCORE_REQUIRE_NETNS=1) but {why}");
    }
    println!("SKIPPED: IPVS VM test: {why} (run .ci/vm.sh)");
}

#[test]
fn ipvs_offload_in_a_real_kernel() {
    let dir = match std::env::var_os("LBCORE_VM_DIR") {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cache/lbcore-vm/current"),
            None => return skip_or_fail("no LBCORE_VM_DIR and no HOME"),
        },
    };
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initramfs.gz"));
    if !kernel.exists() || !initrd.exists() {
        return skip_or_fail(&format!("no kernel/initramfs in {}", dir.display()));
    }
    let qemu = "qemu-system-x86_64";
    if Command::new(qemu)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        return skip_or_fail("qemu-system-x86_64 is not installed");
    }
    let t0 = Instant::now();
    let child = Command::new("timeout")
        .arg("900")
        .arg(qemu)
        .args([
            "-accel",
            "tcg",
            "-m",
            "512",
            "-smp",
            "1",
            "-nographic",
            "-no-reboot",
            "-nic",
            "none",
        ])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu");
    let out = child.wait_with_output().expect("qemu output");
    let elapsed = t0.elapsed();
    let console = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    let mut result = None;
    for line in console.lines() {
        if line.starts_with("CASE ")
            || line.starts_with("CHECK ")
            || line.starts_with("BENCH ")
            || line.starts_with("MODULE-")
            || line.starts_with("LBCORE-")
            || line.starts_with("NOTE ")
            || line.starts_with("---")
            || line.starts_with("-A ")
            || line.starts_with("-a ")
        {
            println!("{line}");
        }
        if let Some(rest) = line.strip_prefix("LBCORE-VM-RESULT: ") {
            result = Some(rest.to_string());
        }
    }
    println!(
        "VM run: {:.1} s (boot, module loading, all checks, benchmark, lbd)",
        elapsed.as_secs_f64()
    );
    let Some(result) = result else {
        panic!(
            "no result line from the VM (qemu status {:?})\n--- console ---\n{console}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let nums: Vec<usize> = result
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    let (passed, failed) = (
        nums.first().copied().unwrap_or(0),
        nums.get(1).copied().unwrap_or(1),
    );
    assert!(
        !console.contains("MODULE-LOAD-FAILED"),
        "a module failed to load in the VM"
    );
    assert_eq!(failed, 0, "VM checks failed: {result}");
    assert!(passed >= 20, "too few VM checks ran: {result}");
    // `lbd --offload ipvs` in the kernel (tests/vm/lbd.rs): each property must have been checked.
    let missing: Vec<&str> = LBD_CHECKS
        .iter()
        .copied()
        .filter(|name| {
            !console
                .lines()
                .any(|l| l.starts_with(&format!("CHECK {name} OK")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "lbd checks missing or not OK in the VM: {missing:?}"
    );
}

/// The checks of `lbd --offload ipvs` the guest must report OK.
const LBD_CHECKS: &[&str] = &[
    "lbd-offload-start",
    "lbd-keeps-foreign-service",
    "lbd-conns-through-ipvs",
    "lbd-check-down-removes-dest",
    "lbd-inhibit-on-failure-weight-0",
    "lbd-check-up-restores",
    "lbd-sighup-weight-change",
    "lbd-sighup-one-set-dest",
    "lbd-sighup-bad-conf-no-change",
    "lbd-sighup-keeps-failed-dest-out",
    "lbd-sighup-drop-service",
    "lbd-sigterm-exit-0",
    "lbd-exit-removes-its-services",
];
