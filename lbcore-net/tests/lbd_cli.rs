//! The `lbd` command line without a network: `lbd check` reports every problem of a
//! keepalived.conf as `file:line: reason` with a non-zero exit, `lbd show` without a daemon
//! says so.

use std::path::PathBuf;
use std::process::Command;

fn lbd(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lbd"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lbd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn tutorial() -> String {
    let p = format!(
        "{}/../lbcore/tests/data/config/lvs_dr_master.conf",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn check_accepts_the_tutorial_configuration() {
    let p = scratch("good.conf", &tutorial());
    let (code, text) = lbd(&["check", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn check_names_file_and_line_of_each_error() {
    let bad = tutorial()
        .replace("lb_algo wrr", "lb_algo fastest")
        .replace("weight 1\n        TCP_CHECK", "weight -4\n        TCP_CHECK");
    let p = scratch("bad.conf", &bad);
    let (code, text) = lbd(&["check", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    let file = p.display().to_string();
    assert!(
        text.contains(&format!("{file}:33:")),
        "the scheduler line: {text}"
    );
    assert!(
        text.lines().count() >= 2,
        "every error, not just the first: {text}"
    );
}

#[test]
fn check_refuses_what_lbd_could_not_run() {
    let ssl = tutorial().replacen("TCP_CHECK {", "SSL_GET {\n            url { path / }", 1);
    let p = scratch("ssl.conf", &ssl);
    let (code, text) = lbd(&["check", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("SSL_GET"), "{text}");
    assert!(text.contains(&format!("{}:", p.display())), "{text}");

    let fnat = tutorial().replace("lb_kind DR", "lb_kind FNAT");
    let p = scratch("fnat.conf", &fnat);
    let (code, text) = lbd(&["check", "-f", p.to_str().unwrap()]);
    assert_eq!(code, 1, "FULLNAT without a local address: {text}");
    assert!(
        text.contains(&format!("{}:31: service TCP 172.27.9.100:81", p.display())),
        "{text}"
    );
    assert!(text.contains("FULLNAT needs a local address"), "{text}");
    let (code, text) = lbd(&["check", "-f", p.to_str().unwrap(), "--laddr", "172.27.9.50"]);
    assert_eq!(code, 0, "with --laddr: {text}");
}

#[test]
fn show_without_a_daemon_fails_clearly() {
    let sock = std::env::temp_dir().join(format!("lbd-cli-none-{}.sock", std::process::id()));
    let (code, text) = lbd(&["show", "--control", sock.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(text.contains("cannot reach lbd at"), "{text}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(lbd(&["--frobnicate"]).0, 2);
    assert_eq!(lbd(&[]).0, 2);
    let (code, text) = lbd(&["-h"]);
    assert_eq!(code, 0);
    assert!(text.contains("lbd show"), "{text}");
}

#[test]
fn offload_without_ipvs_in_the_kernel_says_so() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        eprintln!("SKIPPED: this kernel has IPVS; the message for a kernel without it cannot be shown here");
        return;
    }
    let conf = tutorial();
    // Only the virtual server: no VRRP instance, so no interface is needed.
    let vs_only = &conf[conf.find("virtual_server").unwrap()..];
    let p = scratch("offload.conf", vs_only);
    let sock = std::env::temp_dir().join(format!("lbd-cli-offload-{}.sock", std::process::id()));
    let (code, text) = lbd(&[
        "-f",
        p.to_str().unwrap(),
        "--offload",
        "ipvs",
        "--control",
        sock.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("--offload ipvs: ") && text.contains("the kernel has no IPVS (modprobe ip_vs)"),
        "{text}"
    );
}
