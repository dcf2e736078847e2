//! load_keepalived / load_ipvsadm_rules on real files in a temporary directory, with
//! keepalived-style includes.

use std::fs;
use std::path::PathBuf;

use lbcore_net::config::{load_ipvsadm_rules, load_keepalived};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("lbcore-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn keepalived_with_includes_from_disk() {
    let t = TempDir::new("inc");
    let d = &t.0;
    fs::create_dir_all(d.join("conf.d/subdir.conf")).unwrap(); // a directory: skipped
    fs::write(
        d.join("keepalived.conf"),
        "global_defs {\n router_id LB1\n}\ninclude conf.d/*.conf\ninclude missing/*.conf\n",
    )
    .unwrap();
    fs::write(
        d.join("conf.d/20-vs.conf"),
        "virtual_server 10.0.0.1 80 {\n lb_algo rr\n real_server 10.0.1.1 80 {\n }\n}\n",
    )
    .unwrap();
    fs::write(
        d.join("conf.d/10-vrrp.conf"),
        "vrrp_instance VI {\n interface eth0\n virtual_router_id 9\n virtual_ipaddress {\n  include ../vips/*.txt\n }\n}\n",
    )
    .unwrap();
    fs::write(d.join("conf.d/notes.txt"), "this is not included\n").unwrap();
    fs::create_dir_all(d.join("vips")).unwrap();
    fs::write(d.join("vips/b.txt"), "10.0.0.2\n").unwrap();
    fs::write(d.join("vips/a.txt"), "10.0.0.1\n").unwrap();

    let p = load_keepalived(&d.join("keepalived.conf")).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
        )
    });
    assert_eq!(p.plan.global.router_id.as_deref(), Some("LB1"));
    let i = &p.plan.instances[0];
    // Sorted matches: a.txt before b.txt; the include is relative to 10-vrrp.conf's directory.
    let vips: Vec<String> = i.vips.iter().map(|v| v.addr.to_string()).collect();
    assert_eq!(vips, ["10.0.0.1", "10.0.0.2"]);
    assert!(
        i.vips[0].origin.file.ends_with("vips/a.txt"),
        "{}",
        i.vips[0].origin
    );
    assert!(i.origin.file.ends_with("conf.d/10-vrrp.conf"));
    assert_eq!(p.plan.virtual_servers.len(), 1);
    assert!(
        p.plan.virtual_servers[0]
            .origin
            .file
            .ends_with("conf.d/20-vs.conf")
    );
    // No match is a warning, as in keepalived.
    assert_eq!(p.warnings.len(), 1);
    let w = p.warnings[0].to_string();
    assert!(w.ends_with("keepalived.conf:5: warning: include 'missing/*.conf': no configuration file matched; nothing included"), "{w}");
}

#[test]
fn include_loops_and_unreadable_files_are_errors() {
    let t = TempDir::new("loop");
    let d = &t.0;
    fs::write(d.join("a.conf"), "include b.conf\n").unwrap();
    fs::write(d.join("b.conf"), "include a.conf\n").unwrap();
    let e = load_keepalived(&d.join("a.conf")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].to_string().contains("includes nested more than 16 deep"),
        "{}",
        e[0]
    );

    fs::write(d.join("bad.conf"), b"global_defs {\n router_id \xff\n}\n").unwrap();
    fs::write(d.join("main.conf"), "include bad.conf\n").unwrap();
    let e = load_keepalived(&d.join("main.conf")).unwrap_err();
    assert!(
        e[0].to_string().contains("bad.conf is not UTF-8 text"),
        "{}",
        e[0]
    );

    let e = load_keepalived(&d.join("nope.conf")).unwrap_err();
    assert!(e[0].message.starts_with("cannot read"), "{}", e[0]);
}

#[test]
fn ipvsadm_rules_from_disk() {
    let t = TempDir::new("rules");
    let path = t.0.join("ipvs.rules");
    fs::write(&path, "-A -t 172.27.9.100:81 -s wrr -p 50\n-a -t 172.27.9.100:81 -r 172.27.9.91:81 -g -w 1\n-a -t 172.27.9.100:81 -r 172.27.9.92:81 -g -w 1\n").unwrap();
    let p = load_ipvsadm_rules(&path).unwrap();
    assert_eq!(p.plan.virtual_servers[0].real_servers.len(), 2);
    fs::write(&path, "-A -t 10.0.0.1:80 -s nope\n").unwrap();
    let e = load_ipvsadm_rules(&path).unwrap_err();
    assert!(e[0].to_string().ends_with("ipvs.rules:1: -s: expected a scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos), found 'nope'"), "{}", e[0]);
}
