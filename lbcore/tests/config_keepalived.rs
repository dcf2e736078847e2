//! keepalived.conf parsing: the sample configurations in `tests/data/config/`, every error
//! class with its exact `file:line: reason`, includes through a fake `Source`, and a
//! never-panic sweep over random and truncated input.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use lbcore::config::*;
use lbcore::service::{Family, Forward, Netmask, Protocol, Sched, SchedFlags, ServiceKey, TunnelType};
use lbcore::vrrp::{StartState, Version};

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/config/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn load(name: &str) -> Parsed {
    match parse_keepalived(name, &data(name), &mut NoIncludes) {
        Ok(p) => p,
        Err(e) => panic!("{name}: {}", lines(&e)),
    }
}

fn lines(d: &[Diagnostic]) -> String {
    d.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Every diagnostic of a configuration that must fail, as printed.
fn errors(text: &str) -> Vec<String> {
    match parse_keepalived("t.conf", text, &mut NoIncludes) {
        Ok(p) => panic!("expected errors, got a plan ({} warnings)", p.warnings.len()),
        Err(e) => {
            assert!(e.iter().any(|d| d.severity == Severity::Error));
            e.iter().map(|d| d.to_string()).collect()
        }
    }
}

fn warnings(text: &str) -> Vec<String> {
    match parse_keepalived("t.conf", text, &mut NoIncludes) {
        Ok(p) => p.warnings.iter().map(|d| d.to_string()).collect(),
        Err(e) => panic!("unexpected errors:\n{}", lines(&e)),
    }
}

const INST: &str = "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n";

#[test]
fn lvs_dr_tutorial_master() {
    let p = load("lvs_dr_master.conf");
    assert!(p.warnings.is_empty(), "{}", lines(&p.warnings));
    let plan = p.plan;
    assert_eq!(plan.global.router_id.as_deref(), Some("LVS_DEVEL"));
    assert_eq!(plan.global.vrrp_version, Version::V2);
    assert_eq!(plan.instances.len(), 1);
    let i = &plan.instances[0];
    assert_eq!(i.name, "VI_1");
    assert_eq!(i.interface, "eth0");
    assert_eq!(i.start_state, StartState::Master);
    assert_eq!((i.vrid, i.priority), (51, 100));
    assert_eq!(i.version, Version::V2);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert_eq!(i.auth_pass.as_deref(), Some(&b"1111"[..]));
    assert_eq!(i.vips.len(), 1);
    assert_eq!((i.vips[0].addr, i.vips[0].prefix_len), (ip("172.27.9.100"), 32));
    assert_eq!(i.vips[0].origin.to_string(), "lvs_dr_master.conf:27");
    assert_eq!(i.origin.line, 16);
    // keepalived's defaults
    assert!(!i.nopreempt && i.accept.is_none() && i.unicast_peers.is_empty());
    assert_eq!(i.garp, plan.global.garp);

    assert_eq!(plan.virtual_servers.len(), 1);
    let vs = &plan.virtual_servers[0];
    assert_eq!(
        vs.service.key,
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            vip: ip("172.27.9.100"),
            port: 81
        }
    );
    assert_eq!(vs.service.sched, Sched::Wrr);
    let pers = vs.service.persistence.unwrap();
    assert_eq!(pers.timeout, Duration::from_secs(50));
    assert_eq!(pers.netmask, Netmask::V4(u32::MAX));
    assert_eq!(vs.delay_loop, Duration::from_secs(6));
    assert_eq!(vs.quorum, 1);
    assert_eq!(vs.real_servers.len(), 2);
    for (rs, addr) in vs.real_servers.iter().zip(["172.27.9.91", "172.27.9.92"]) {
        assert_eq!(rs.dest.addr, ip(addr));
        assert_eq!(rs.dest.port, 81);
        assert_eq!(rs.dest.weight, 1);
        assert_eq!(rs.dest.forward, Forward::DirectRouting);
        // DR: the runner resolves the MAC on the outgoing interface.
        assert_eq!(rs.dest.mac, None);
        let [CheckPlan::Tcp(c)] = rs.checks.as_slice() else {
            panic!("{:?}", rs.checks)
        };
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(c.connect_port, Some(81));
        assert_eq!(c.retry, Some(3));
        assert_eq!(c.delay_before_retry, Some(Duration::from_secs(3)));
    }
}

#[test]
fn lvs_dr_tutorial_backup_differs_only_in_state_and_priority() {
    let m = load("lvs_dr_master.conf").plan;
    let b = load("lvs_dr_backup.conf").plan;
    assert_eq!(b.instances[0].start_state, StartState::Backup);
    assert_eq!(b.instances[0].priority, 99);
    assert_eq!(m.virtual_servers[0].service, b.virtual_servers[0].service);
    let dests = |p: &Plan| {
        p.virtual_servers[0]
            .real_servers
            .iter()
            .map(|r| r.dest)
            .collect::<Vec<_>>()
    };
    assert_eq!(dests(&m), dests(&b));
}

#[test]
fn ipv6_vrrp_v3_config() {
    let p = load("ipv6_v3.conf");
    assert!(p.warnings.is_empty(), "{}", lines(&p.warnings));
    let plan = p.plan;
    assert_eq!(plan.global.vrrp_version, Version::V3);
    // lower-priority GARP follows the master values when not set (keepalived).
    assert_eq!(plan.global.garp.master_delay, Duration::from_secs(2));
    assert_eq!(plan.global.garp.lower_prio_delay, Duration::from_secs(2));
    assert_eq!(plan.global.garp.lower_prio_repeat, 3);
    let i = &plan.instances[0];
    assert_eq!(i.version, Version::V3);
    assert_eq!(i.advert_interval, Duration::from_millis(500));
    assert!(i.nopreempt);
    assert_eq!(i.unicast_src, Some(ip("2001:db8:0:1::2")));
    assert_eq!(i.unicast_peers, vec![ip("2001:db8:0:1::3")]);
    assert_eq!(i.vips.len(), 2);
    assert_eq!(i.vips[0].prefix_len, 64);
    assert_eq!(i.vips[0].dev.as_deref(), Some("ens3"));
    assert_eq!(i.vips[1].prefix_len, 128);
    assert_eq!(i.vips_excluded[0].addr, ip("192.0.2.100"));
    assert_eq!(i.garp.master_repeat, 7);
    assert_eq!(i.garp.master_delay, Duration::from_secs(2));

    let vs = &plan.virtual_servers[0];
    assert_eq!(vs.service.sched, Sched::Mh);
    assert_eq!(vs.service.flags, SchedFlags::PORT.union(SchedFlags::FALLBACK));
    let pers = vs.service.persistence.unwrap();
    assert_eq!(
        pers.timeout,
        Duration::from_secs(360),
        "bare persistence_timeout = 6 min"
    );
    assert_eq!(pers.netmask, Netmask::V6Prefix(64));
    let rs = &vs.real_servers[0];
    assert_eq!(rs.dest.forward, Forward::Tunnel(TunnelType::Gue { port: 6080 }));
    assert_eq!(
        (rs.dest.weight, rs.dest.u_threshold, rs.dest.l_threshold),
        (10, 1000, 800)
    );
    match &rs.checks[0] {
        CheckPlan::Http {
            common,
            urls,
            tls,
            virtualhost,
        } => {
            assert!(*tls);
            assert_eq!(urls[0].path, "/healthz");
            assert_eq!(urls[0].status_code, Some(200));
            assert_eq!(common.retry, Some(2));
            assert_eq!(*virtualhost, None);
        }
        c => panic!("{c:?}"),
    }
    match &vs.real_servers[1].checks[0] {
        CheckPlan::Http {
            urls,
            tls,
            virtualhost,
            ..
        } => {
            assert!(!*tls);
            assert_eq!(
                urls[0].digest.as_deref(),
                Some("9b3a0c85a887a256d6939da88aabd8cd")
            );
            assert_eq!(virtualhost.as_deref(), Some("www.example.com"));
        }
        c => panic!("{c:?}"),
    }
}

#[test]
fn sync_group_with_tracked_scripts() {
    let p = load("sync_group.conf");
    assert!(p.warnings.is_empty(), "{}", lines(&p.warnings));
    let plan = p.plan;
    assert!(plan.global.enable_script_security);
    assert_eq!(plan.global.script_user.as_deref(), Some("keepalived_script"));
    assert_eq!(plan.global.garp.master_refresh, Duration::from_secs(60));

    let s = &plan.scripts[0];
    assert_eq!(s.name, "chk_haproxy");
    assert_eq!(s.script, "/usr/bin/killall -0 haproxy");
    assert_eq!(s.interval, Duration::from_secs(2));
    assert_eq!(s.timeout, Some(Duration::from_millis(1500)));
    assert_eq!((s.weight, s.weight_reverse, s.fall, s.rise), (-20, false, 2, 3));
    let f = &plan.scripts[1];
    assert_eq!((f.weight, f.weight_reverse), (10, true));
    assert_eq!((f.interval, f.rise, f.fall), (Duration::from_secs(1), 1, 1));

    let g = &plan.sync_groups[0];
    assert_eq!(g.name, "VG_1");
    assert_eq!(g.members, ["VI_EXT", "VI_INT"]);
    assert_eq!(
        g.notify.master.as_deref(),
        Some("/etc/keepalived/notify.sh master")
    );
    assert_eq!(
        g.notify.backup.as_deref(),
        Some("/etc/keepalived/notify.sh backup")
    );
    assert_eq!(g.track_scripts[0].name, "chk_file");

    let ext = &plan.instances[0];
    assert_eq!(ext.advert_interval, Duration::from_secs(2));
    assert_eq!(ext.preempt_delay, Duration::from_secs(30));
    assert_eq!(ext.accept, Some(false));
    assert_eq!(ext.vips[0].label.as_deref(), Some("eth0:vip"));
    assert_eq!(ext.vips[0].prefix_len, 24);
    assert_eq!(ext.track_scripts[0].name, "chk_haproxy");
    assert_eq!(ext.track_scripts[0].weight, Some(-30));
    assert_eq!(ext.track_interfaces.len(), 2);
    assert_eq!(ext.track_interfaces[0].weight, Some(-50));
    assert_eq!(ext.track_interfaces[1].weight, None);
    assert_eq!(ext.garp.master_delay, Duration::from_secs(1));
    assert_eq!(
        ext.garp.master_refresh,
        Duration::from_secs(60),
        "inherited from global_defs"
    );
    assert_eq!(ext.notify.any.as_deref(), Some("/etc/keepalived/notify_all.sh"));
    let int = &plan.instances[1];
    assert_eq!(int.start_state, StartState::Master, "'!' comment after the value");
    assert_eq!(int.vips[0].addr, ip("10.0.0.1"), "one-line block");
    assert_eq!(int.track_scripts[0].weight, None);

    let fw = &plan.virtual_servers[0];
    assert_eq!(
        fw.service.key,
        ServiceKey::Fwmark {
            family: Family::V4,
            mark: 7
        }
    );
    assert_eq!(fw.service.sched, Sched::Sh);
    assert_eq!(fw.service.flags, SchedFlags::PORT);
    let pers = fw.service.persistence.unwrap();
    assert_eq!(pers.timeout, Duration::from_secs(600));
    assert_eq!(pers.netmask, Netmask::V4(0xffff_ff00));
    assert_eq!((fw.quorum, fw.hysteresis), (2, 1));
    assert_eq!(fw.quorum_up.as_deref(), Some("/usr/local/bin/quorum.sh up"));
    assert_eq!(fw.quorum_down.as_deref(), Some("/usr/local/bin/quorum.sh down"));
    let sorry = fw.sorry_server.unwrap();
    assert_eq!(
        (sorry.addr, sorry.port, sorry.forward),
        (ip("10.0.0.250"), 8080, Forward::Nat)
    );
    assert!(fw.sorry_server_inhibit && fw.alpha && fw.omega && fw.ha_suspend);
    let r1 = &fw.real_servers[0];
    assert!(r1.inhibit_on_failure);
    assert_eq!(r1.dest.forward, Forward::Nat);
    assert_eq!(r1.notify_up.as_deref(), Some("/usr/local/bin/rs.sh up 10.0.0.11"));
    match &r1.checks[0] {
        CheckPlan::Misc {
            path,
            timeout,
            dynamic,
            ..
        } => {
            assert_eq!(path, "/usr/local/bin/check_app.sh 10.0.0.11");
            assert_eq!(*timeout, Some(Duration::from_secs(5)));
            assert!(*dynamic);
        }
        c => panic!("{c:?}"),
    }
    let r2 = &fw.real_servers[1];
    assert_eq!(r2.dest.forward, Forward::DirectRouting, "per-server lvs_method");
    match &r2.checks[0] {
        CheckPlan::Tcp(c) => {
            assert_eq!(c.connect_ip, Some(ip("10.0.1.12")));
            assert_eq!(c.connect_port, Some(9000));
            assert_eq!(c.bind_to, Some(ip("10.0.0.2")));
        }
        c => panic!("{c:?}"),
    }
    let dns = &plan.virtual_servers[1];
    assert_eq!(
        dns.service.key,
        ServiceKey::Addr {
            proto: Protocol::Udp,
            vip: ip("203.0.113.10"),
            port: 53
        }
    );
    assert!(dns.service.one_packet);
    assert_eq!(dns.service.sched, Sched::Rr);
    assert_eq!(dns.real_servers[0].dest.weight, 1);
    assert_eq!(
        dns.real_servers[0].dest.forward,
        Forward::Nat,
        "keepalived's default lb_kind"
    );
}

#[test]
fn error_classes_name_file_line_and_reason() {
    let cases: &[(&str, &[&str])] = &[
        (
            "vrrp_instance A {\n interface eth0\n virtual_router_id 0\n}\n",
            &["t.conf:3: virtual_router_id: expected a whole number 1..255, found '0'"],
        ),
        (
            "vrrp_instance A {\n interface eth0\n virtual_router_id 51\n priority 300\n}\n",
            &["t.conf:4: priority: expected a whole number 1..255, found '300'"],
        ),
        (
            "vrrp_instance A {\n interface eth0\n virtual_router_id x51\n priority high\n}\n",
            &[
                "t.conf:3: virtual_router_id: expected a whole number 1..255, found 'x51'",
                "t.conf:4: priority: expected a whole number 1..255, found 'high'",
            ],
        ),
        (
            &format!("{INST} advert_int 0.5\n}}\n"),
            &["t.conf:4: advert_int: VRRPv2 needs whole seconds 1..255, found '0.5'"],
        ),
        (
            &format!("{INST} advert_int 256\n}}\n"),
            &["t.conf:4: advert_int: VRRPv2 needs whole seconds 1..255, found '256'"],
        ),
        (
            &format!("{INST} version 3\n advert_int 41\n}}\n"),
            &["t.conf:5: advert_int: VRRPv3 needs 0.01..40.95 seconds, found '41'"],
        ),
        (
            &format!("{INST} advert_int 0.001\n}}\n"),
            &["t.conf:4: advert_int: expected seconds with at most 2 decimals (1, 0.5), found '0.001'"],
        ),
        (
            &format!("{INST} virtual_ipaddress {{\n 10.0.0.300/24\n 10.0.0.1/33\n }}\n}}\n"),
            &[
                "t.conf:5: virtual_ipaddress: expected an address like 192.168.1.10/24 or 2001:db8::1, found '10.0.0.300/24'",
                "t.conf:6: virtual_ipaddress: expected a prefix length 0..32 after '/', found '33'",
            ],
        ),
        (
            &format!("{INST} virtual_ipaddress {{\n 10.0.0.1\n 2001:db8::1\n }}\n}}\n"),
            &[
                "t.conf:6: virtual_ipaddress 2001:db8::1: an IPv6 address in IPv4 instance A (use virtual_ipaddress_excluded for the other family)",
            ],
        ),
        (
            &format!("{INST} unicast_src_ip 10.0.0.2\n unicast_peer {{\n 2001:db8::3\n }}\n}}\n"),
            &["t.conf:1: vrrp_instance A: unicast_peer 2001:db8::3 is IPv6 but the instance is IPv4"],
        ),
        (
            &format!("{INST} unicast_peer {{\n 10.0.0.3 min_ttl 1\n not-an-ip\n }}\n}}\n"),
            &[
                // Err carries the warnings too, in file order.
                "t.conf:5: warning: unicast_peer: min_ttl/max_ttl are not supported and are ignored",
                "t.conf:6: unicast_peer: expected an IP address, found 'not-an-ip'",
            ],
        ),
        (
            &format!("{INST} authentication {{\n auth_type AH\n auth_pass secret\n }}\n}}\n"),
            &["t.conf:5: auth_type: AH authentication is not supported (use PASS, or none)"],
        ),
        (
            &format!("{INST} authentication {{\n auth_type PASS\n }}\n}}\n"),
            &["t.conf:5: authentication: auth_type PASS needs an auth_pass"],
        ),
        (
            "vrrp_instance A {\n virtual_router_id 5\n}\nvrrp_instance B {\n interface eth0\n}\n",
            &[
                "t.conf:1: vrrp_instance A: 'interface' is missing (the interface to send adverts on)",
                "t.conf:4: vrrp_instance B: 'virtual_router_id' is missing (1..255, the same on every router of the group)",
            ],
        ),
        (
            &format!("{INST}}}\nvrrp_instance B {{\n interface eth0\n virtual_router_id 5\n}}\n"),
            &[
                "t.conf:5: vrrp_instance B: virtual_router_id 5 on eth0 (IPv4) is already used by vrrp_instance A at t.conf:1",
            ],
        ),
        (
            &format!("{INST} track_script {{\n nope\n }}\n}}\n"),
            &["t.conf:5: track_script: no vrrp_script named 'nope'"],
        ),
        (
            &format!(
                "{INST} track_script {{\n s weight 300\n }}\n}}\nvrrp_script s {{\n script /bin/true\n weight -254\n}}\n"
            ),
            &[
                "t.conf:5: track_script s: expected a weight -253..253 after 'weight', found '300'",
                "t.conf:10: weight: expected a whole number -253..253, found '-254'",
            ],
        ),
        (
            &format!("vrrp_sync_group G {{\n group {{\n A\n B\n }}\n}}\n{INST}}}\n"),
            &["t.conf:1: vrrp_sync_group G: no vrrp_instance named 'B'"],
        ),
        (
            &format!("{INST} state LEADER\n}}\n"),
            &["t.conf:4: state: expected MASTER or BACKUP, found 'LEADER'"],
        ),
        (
            "vrrp_script s {\n interval 2\n}\n",
            &["t.conf:1: vrrp_script 's' has no 'script' command"],
        ),
        (
            &format!("{INST} notify_master \"/bin/x\n}}\n"),
            &["t.conf:4: unterminated quote: a '\"' opened on this line is never closed"],
        ),
        // Unbalanced braces.
        (
            INST,
            &["t.conf:1: missing '}': the block of 'vrrp_instance' opened here is not closed"],
        ),
        (
            &format!("{INST}}}\n}}\n"),
            &["t.conf:5: unexpected '}': no block is open here"],
        ),
        (
            "{\n}\n",
            &["t.conf:1: unexpected '{': a block must follow a keyword"],
        ),
        // Virtual servers.
        (
            "virtual_server 10.0.0.1 80 {\n lb_algo fastest\n lb_kind DSR\n}\n",
            &[
                "t.conf:2: lb_algo: expected a scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos), found 'fastest'",
                "t.conf:3: lb_kind: expected NAT, DR, TUN or FNAT, found 'DSR'",
            ],
        ),
        (
            "virtual_server 10.0.0.1 {\n lb_algo rr\n}\n",
            &[
                "t.conf:1: virtual_server 10.0.0.1: a service without a port (all ports) must be persistent: add persistence_timeout",
            ],
        ),
        (
            "virtual_server 10.0.0.1 99999 {\n}\n",
            &["t.conf:1: virtual_server: expected a whole number 0..65535, found '99999'"],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n }\n real_server 10.0.0.2 80 {\n weight 70000\n }\n}\n",
            &[
                "t.conf:4: real_server 10.0.0.2 80: already defined in virtual_server 10.0.0.1 80",
                "t.conf:5: weight: expected a whole number 0..65535, found '70000'",
            ],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n persistence_timeout 10\n persistence_granularity 255.255.0\n}\n",
            &[
                "t.conf:3: persistence_granularity: expected an IPv4 netmask like 255.255.255.0, found '255.255.0'",
            ],
        ),
        (
            "virtual_server 2001:db8::1 80 {\n persistence_granularity 255.255.255.0\n real_server 10.0.0.2 80 {\n }\n}\n",
            &[
                "t.conf:2: persistence_granularity: expected an IPv6 prefix length 1..128, found '255.255.255.0'",
                "t.conf:3: real_server 10.0.0.2: its address family differs from the virtual server's (only TUN may mix families)",
            ],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n protocol SCTP\n lb_kind TUN type gue\n}\n",
            &[
                "t.conf:2: protocol: SCTP is not supported (TCP or UDP)",
                "t.conf:3: lvs_method TUN type gue: expected 'port N' (the GUE UDP port), found nothing",
            ],
        ),
        (
            "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n MISC_CHECK {\n misc_timeout 3\n }\n HTTP_GET {\n connect_timeout 3\n }\n }\n}\n",
            &[
                "t.conf:3: MISC_CHECK: 'misc_path' is missing (the command to run)",
                "t.conf:6: HTTP_GET: expected at least one 'url { path ... }' block",
            ],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(errors(text), *want, "for:\n{text}");
    }
}

#[test]
fn warnings_for_what_keepalived_only_logs() {
    assert_eq!(
        warnings(&format!("{INST} foo_bar 1\n}}\nmystery_block {{\n x\n}}\n")),
        [
            "t.conf:4: warning: unknown keyword 'foo_bar' ignored",
            "t.conf:6: warning: unknown keyword 'mystery_block' ignored",
        ]
    );
    assert_eq!(
        warnings(&format!(
            "{INST} authentication {{\n auth_type PASS\n auth_pass 0123456789\n }}\n}}\n"
        )),
        [
            "t.conf:6: warning: auth_pass is longer than 8 characters; only '01234567' is used, as keepalived does"
        ]
    );
    let p = parse_keepalived(
        "t.conf",
        &format!("{INST} authentication {{\n auth_type PASS\n auth_pass 0123456789\n }}\n}}\n"),
        &mut NoIncludes,
    )
    .unwrap();
    assert_eq!(p.plan.instances[0].auth_pass.as_deref(), Some(&b"01234567"[..]));
    // An IPv6 instance is VRRPv3 even when version 2 is written.
    let v6 = format!("{INST} version 2\n virtual_ipaddress {{\n fe80::1\n }}\n}}\n");
    assert_eq!(
        warnings(&v6),
        ["t.conf:4: warning: version 2 cannot carry IPv6: instance A uses VRRPv3, as keepalived does"]
    );
    let p = parse_keepalived("t.conf", &v6, &mut NoIncludes).unwrap();
    assert_eq!(p.plan.instances[0].version, Version::V3);
    assert_eq!(
        warnings(
            "virtual_server 10.0.0.1 80 {\n lb_algo rr\n sh-port\n real_server 10.0.0.2 80 {\n SMTP_CHECK {\n }\n }\n}\n"
        ),
        [
            "t.conf:3: warning: 'sh-port' only applies to the sh scheduler; ignored",
            "t.conf:5: warning: SMTP_CHECK is not supported and is ignored: this real server is not checked by it",
        ]
    );
}

#[test]
fn diagnostics_display() {
    let o = Origin {
        file: "a.conf".into(),
        line: 7,
    };
    let e = Diagnostic {
        origin: o.clone(),
        severity: Severity::Error,
        message: "bad".into(),
    };
    let w = Diagnostic {
        origin: o,
        severity: Severity::Warning,
        message: "odd".into(),
    };
    assert_eq!(e.to_string(), "a.conf:7: bad");
    assert_eq!(w.to_string(), "a.conf:7: warning: odd");
}

/// A file system in memory: pattern -> files, with every call recorded.
#[derive(Default)]
struct FakeSource {
    files: HashMap<String, Vec<(String, String)>>,
    calls: Vec<(String, String)>,
}

impl Source for FakeSource {
    fn include(&mut self, pattern: &str, from: &Origin) -> Result<Vec<(String, String)>, String> {
        self.calls.push((pattern.to_string(), from.to_string()));
        if pattern == "/denied/*" {
            return Err("permission denied".to_string());
        }
        Ok(self.files.get(pattern).cloned().unwrap_or_default())
    }
}

#[test]
fn includes_through_a_source() {
    let mut src = FakeSource::default();
    src.files.insert(
        "conf.d/*.conf".into(),
        vec![
            (
                "conf.d/10-vi1.conf".into(),
                data("lvs_dr_master.conf").replace("router_id LVS_DEVEL", "router_id FROM_INCLUDE"),
            ),
            (
                "conf.d/20-script.conf".into(),
                "vrrp_script chk {\n  script /bin/true\n  bogus_kw\n}\n".into(),
            ),
        ],
    );
    src.files.insert(
        "vips.inc".into(),
        vec![("vips.inc".into(), "10.9.9.9/24\n10.9.9.10/24\n".into())],
    );
    let main = "include conf.d/*.conf\n\
                vrrp_instance VI_2 {\n interface eth1\n virtual_router_id 52\n virtual_ipaddress {\n  include vips.inc\n }\n track_script {\n  chk\n }\n}\n\
                include nothing/*.conf\n";
    let p = parse_keepalived("/etc/keepalived/keepalived.conf", main, &mut src).unwrap();
    assert_eq!(
        src.calls[0],
        (
            "conf.d/*.conf".to_string(),
            "/etc/keepalived/keepalived.conf:1".to_string()
        )
    );
    assert_eq!(
        src.calls[1],
        (
            "vips.inc".to_string(),
            "/etc/keepalived/keepalived.conf:6".to_string()
        )
    );
    assert_eq!(p.plan.global.router_id.as_deref(), Some("FROM_INCLUDE"));
    assert_eq!(p.plan.instances.len(), 2);
    assert_eq!(p.plan.instances[0].origin.to_string(), "conf.d/10-vi1.conf:16");
    let vi2 = &p.plan.instances[1];
    assert_eq!(vi2.vips.len(), 2);
    assert_eq!(vi2.vips[1].origin.to_string(), "vips.inc:2");
    assert_eq!(p.plan.scripts[0].origin.to_string(), "conf.d/20-script.conf:1");
    // Warnings in reading order: inside the first include, then at the end of the main file.
    assert_eq!(
        p.warnings.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        [
            "conf.d/20-script.conf:3: warning: unknown keyword 'bogus_kw' ignored",
            "/etc/keepalived/keepalived.conf:12: warning: include 'nothing/*.conf': no configuration file matched; nothing included",
        ]
    );

    // A refused include is an error at the include line.
    let e = parse_keepalived("k.conf", "global_defs {\n}\ninclude /denied/*\n", &mut src).unwrap_err();
    assert_eq!(lines(&e), "k.conf:3: include '/denied/*': permission denied");

    // A file including itself stops at the depth limit.
    let mut looping = FakeSource::default();
    looping.files.insert(
        "self.conf".into(),
        vec![("self.conf".into(), "include self.conf\n".into())],
    );
    let e = parse_keepalived("self.conf", "include self.conf\n", &mut looping).unwrap_err();
    assert_eq!(
        lines(&e),
        "self.conf:1: include 'self.conf': includes nested more than 16 deep (does a file include itself?)"
    );
    assert_eq!(looping.calls.len(), 16);

    // Text-only callers get a clear refusal.
    let e = parse_keepalived("t.conf", "include other.conf\n", &mut NoIncludes).unwrap_err();
    assert_eq!(
        lines(&e),
        "t.conf:1: include 'other.conf': cannot include 'other.conf': this configuration was given as text, without a file system"
    );
}

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn never_panics_on_random_or_truncated_input() {
    let samples: Vec<String> = [
        "lvs_dr_master.conf",
        "lvs_dr_backup.conf",
        "ipv6_v3.conf",
        "sync_group.conf",
    ]
    .iter()
    .map(|f| data(f))
    .collect();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for s in &samples {
        // Every truncation at a char boundary.
        for cut in (0..=s.len()).filter(|&c| s.is_char_boundary(c)) {
            let _ = parse_keepalived("t", &s[..cut], &mut NoIncludes);
            let _ = parse_ipvsadm_rules("t", &s[..cut]);
        }
        // Random byte mutations, kept as (lossy) UTF-8.
        for _ in 0..300 {
            let mut b = s.as_bytes().to_vec();
            for _ in 0..(1 + rng.next() % 8) {
                let at = (rng.next() as usize) % b.len();
                const ALPHABET: &[u8] = b"{}\"!#\\ \n0123456789.:/-abcXYZ\xff";
                b[at] = ALPHABET[(rng.next() as usize) % ALPHABET.len()];
            }
            let t = String::from_utf8_lossy(&b);
            let _ = parse_keepalived("t", &t, &mut NoIncludes);
            let _ = parse_ipvsadm_rules("t", &t);
        }
    }
    // Pure noise, and deep nesting.
    for _ in 0..2000 {
        let len = (rng.next() % 200) as usize;
        let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let t = String::from_utf8_lossy(&b);
        let _ = parse_keepalived("t", &t, &mut NoIncludes);
        let _ = parse_ipvsadm_rules("t", &t);
    }
    let deep = "a {\n".repeat(100_000);
    assert!(parse_keepalived("t", &deep, &mut NoIncludes).is_err());
    let deep = "{".repeat(100_000) + &"}".repeat(100_000);
    assert!(parse_keepalived("t", &deep, &mut NoIncludes).is_err());
}
