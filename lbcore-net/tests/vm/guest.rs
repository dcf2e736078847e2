//! The program that runs inside the test VM (as a static binary started by `/init`, after the
//! IPVS modules are loaded). It checks `lbcore_net::ipvs` against the real kernel and against
//! `ipvsadm`, and prints one line per check on the console:
//!
//! - `CASE <name> OK|FAIL ...` for each configuration: applied with our driver, then the same
//!   configuration loaded with `ipvsadm -R` (from `render_ipvsadm_rules`, or hand-written
//!   `ipvsadm` commands for kernel-only settings); `ipvsadm -Sn` and `ipvsadm -Ln` must be
//!   byte-for-byte equal, and re-applying our configuration over ipvsadm's must send nothing;
//! - `CHECK <name> OK|FAIL ...` for error messages and the diff-apply properties;
//! - `CHECK lbd-... OK|FAIL ...` for `lbd --offload ipvs` (the static `/lbd` in the initramfs)
//!   following its health checks, SIGHUP reloads and SIGTERM in the kernel ([`lbd`]);
//! - `BENCH ...` timings, and finally `LBCORE-VM-RESULT: N passed, M failed`.
//!
//! Not a test of the host: `tests/ipvs_vm.rs` boots the VM and reads these lines.

use std::io::Write as _;
use std::net::{IpAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lbcore::config::{Plan, parse_ipvsadm_rules, render_ipvsadm_rules};
mod lbd;

use lbcore_net::ipvs::{
    Desired, Dest, Fwd, Ipvs, Key, Service, ServiceFlags, SyncDaemon, SyncState, Timeouts, TunFlags, TunKind,
    Tunnel,
};

struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn check(&mut self, kind: &str, name: &str, ok: bool, detail: &str) {
        if ok {
            self.passed += 1;
            println!("{kind} {name} OK {detail}");
        } else {
            self.failed += 1;
            println!("{kind} {name} FAIL {detail}");
        }
    }
}

fn ipvsadm(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new("/sbin/ipvsadm");
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().map_err(|e| format!("ipvsadm: {e}"))?;
    if let (Some(text), Some(mut si)) = (stdin, child.stdin.take()) {
        si.write_all(text.as_bytes())
            .map_err(|e| format!("ipvsadm stdin: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("ipvsadm: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ipvsadm {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn snapshot() -> Result<(String, String), String> {
    Ok((ipvsadm(&["-Sn"], None)?, ipvsadm(&["-Ln"], None)?))
}

/// The first differing line of two texts, for the report.
fn first_diff(a: &str, b: &str) -> String {
    let (la, lb): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (
            la.get(i).copied().unwrap_or("<none>"),
            lb.get(i).copied().unwrap_or("<none>"),
        );
        if x != y {
            return format!("line {}: ours '{x}' vs ipvsadm '{y}'", i + 1);
        }
    }
    "identical".to_string()
}

fn plan(rules: &str) -> Plan {
    match parse_ipvsadm_rules("case", rules) {
        Ok(p) => p.plan,
        Err(d) => panic!("test rules do not parse: {d:?}"),
    }
}

/// Ours vs `ipvsadm -R` of the rendered rules, then idempotence over ipvsadm's state.
fn compare_plan(t: &mut Tally, ipvs: &mut Ipvs, name: &str, rules: &str) {
    let p = plan(rules);
    let rendered = render_ipvsadm_rules(&p);
    compare_with(
        t,
        ipvs,
        name,
        &lbcore_net::ipvs::desired_from_plan(&p).unwrap(),
        &rendered,
        true,
    );
}

fn compare_with(t: &mut Tally, ipvs: &mut Ipvs, name: &str, desired: &[Desired], rules: &str, restore: bool) {
    let mut run = || -> Result<String, String> {
        ipvs.flush().map_err(|e| e.to_string())?;
        let r1 = ipvs.apply_desired(desired).map_err(|e| e.to_string())?;
        let (s1, l1) = snapshot()?;
        ipvs.flush().map_err(|e| e.to_string())?;
        if restore {
            ipvsadm(&["-R"], Some(rules))?;
        } else {
            for line in rules.lines().filter(|l| !l.trim().is_empty()) {
                let args: Vec<&str> = line.split_whitespace().collect();
                ipvsadm(&args, None)?;
            }
        }
        let (s2, l2) = snapshot()?;
        let r2 = ipvs.apply_desired(desired).map_err(|e| e.to_string())?;
        if s1 != s2 {
            return Err(format!(
                "ipvsadm -Sn differs: {}\n--- ours\n{s1}--- ipvsadm\n{s2}",
                first_diff(&s1, &s2)
            ));
        }
        if l1 != l2 {
            return Err(format!("ipvsadm -Ln differs: {}", first_diff(&l1, &l2)));
        }
        if r2.writes() != 0 {
            return Err(format!("re-apply over ipvsadm's state was not a no-op: {r2}"));
        }
        Ok(format!(
            "({} services, {} dests, {} lines of -Sn, {} bytes of -Ln identical; re-apply sent 0 messages)",
            r1.new_service,
            r1.new_dest,
            s1.lines().count(),
            l1.len()
        ))
    };
    match run() {
        Ok(d) => t.check("CASE", name, true, &d),
        Err(e) => t.check("CASE", name, false, &e),
    }
}

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn main() {
    let mut t = Tally { passed: 0, failed: 0 };
    println!("LBCORE-VM-START");
    let mut ipvs = match Ipvs::new() {
        Ok(i) => i,
        Err(e) => {
            println!("CHECK open FAIL {e}");
            println!("LBCORE-VM-RESULT: 0 passed, 1 failed");
            return;
        }
    };
    match ipvs.info() {
        Ok(i) => t.check(
            "CHECK",
            "info",
            i.version != 0 && i.conn_tab_size != 0,
            &format!("version {} conn_tab_size {}", i.version_string(), i.conn_tab_size),
        ),
        Err(e) => t.check("CHECK", "info", false, &e.to_string()),
    }

    // ---- configurations: ours vs ipvsadm -R of the rendered rules ----
    let scheds = [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf",
    ];
    let mut all = String::new();
    for (i, s) in scheds.iter().enumerate() {
        all.push_str(&format!(
            "-A -t 10.1.0.{n}:80 -s {s}\n-a -t 10.1.0.{n}:80 -r 10.2.0.1:80 -m -w 3\n-a -t 10.1.0.{n}:80 -r 10.2.0.2:8080 -m -w 1\n",
            n = i + 1
        ));
    }
    compare_plan(&mut t, &mut ipvs, "every-scheduler", &all);
    compare_plan(
        &mut t,
        &mut ipvs,
        "forwarding-methods",
        "-A -t 10.1.1.1:80 -s wrr\n\
         -a -t 10.1.1.1:80 -r 10.2.1.1:80 -g -w 1\n\
         -a -t 10.1.1.1:80 -r 10.2.1.2:80 -i -w 2\n\
         -a -t 10.1.1.1:80 -r 10.2.1.3:8080 -m -w 3\n\
         -a -t 10.1.1.1:80 -r 10.2.1.4:80 -i --tun-type gue --tun-port 6080 -w 4\n",
    );
    compare_plan(
        &mut t,
        &mut ipvs,
        "persistence-netmask",
        "-A -t 10.1.2.1:443 -s wlc -p 300 -M 255.255.255.0\n\
         -a -t 10.1.2.1:443 -r 10.2.2.1:443 -g -w 1\n\
         -A -u 10.1.2.2:53 -s rr -p 60\n\
         -a -u 10.1.2.2:53 -r 10.2.2.2:53 -m -w 1\n\
         -A -t [2001:db8::10]:443 -s sh -p 120 -M 64\n\
         -a -t [2001:db8::10]:443 -r [2001:db8::20]:443 -m -w 1\n",
    );
    compare_plan(
        &mut t,
        &mut ipvs,
        "fwmark-and-port-0",
        "-A -f 7 -s wrr -p 300\n\
         -a -f 7 -r 10.2.3.1:0 -g -w 2\n\
         -a -f 7 -r 10.2.3.2:0 -i -w 1\n\
         -A -f 8 -6 -s rr\n\
         -a -f 8 -6 -r [2001:db8::31]:0 -g -w 1\n\
         -A -t 10.1.3.1:0 -s lc -p 600\n\
         -a -t 10.1.3.1:0 -r 10.2.3.3:0 -g -w 1\n",
    );
    compare_plan(
        &mut t,
        &mut ipvs,
        "thresholds-weights",
        "-A -t 10.1.4.1:80 -s wlc\n\
         -a -t 10.1.4.1:80 -r 10.2.4.1:80 -m -w 10 -x 1000 -y 750\n\
         -a -t 10.1.4.1:80 -r 10.2.4.2:80 -m -w 0 -x 5\n\
         -a -t 10.1.4.1:80 -r 10.2.4.3:80 -m -w 65535\n",
    );
    compare_plan(
        &mut t,
        &mut ipvs,
        "sched-flags-one-packet",
        "-A -t 10.1.5.1:80 -s sh -b sh-fallback,sh-port\n\
         -a -t 10.1.5.1:80 -r 10.2.5.1:80 -m -w 1\n\
         -A -t 10.1.5.2:80 -s mh -b mh-port\n\
         -a -t 10.1.5.2:80 -r 10.2.5.2:80 -m -w 1\n\
         -A -u 10.1.5.3:53 -s rr -o\n\
         -a -u 10.1.5.3:53 -r 10.2.5.3:53 -m -w 1\n",
    );
    compare_plan(
        &mut t,
        &mut ipvs,
        "ipv6",
        "-A -t [2001:db8:1::1]:80 -s wrr\n\
         -a -t [2001:db8:1::1]:80 -r [2001:db8:2::1]:80 -m -w 2\n\
         -a -t [2001:db8:1::1]:80 -r [2001:db8:2::2]:80 -g -w 1\n\
         -a -t [2001:db8:1::1]:80 -r [2001:db8:2::3]:80 -i -w 1\n\
         -A -u [2001:db8:1::2]:53 -s mh -b mh-fallback\n\
         -a -u [2001:db8:1::2]:53 -r [2001:db8:2::4]:5353 -m -w 1\n",
    );

    // ---- kernel-only settings (not in lbcore's model): ipvsadm command lines by hand ----
    let key = Key::Addr {
        proto: 6,
        addr: v4("10.1.6.1"),
        port: 80,
    };
    let tun = |kind, port, flags| Fwd::Tunnel(Tunnel { kind, port, flags });
    let mk = |a: &str, fwd| Dest {
        fwd,
        ..Dest::new(v4(a), 80)
    };
    let desired = vec![Desired {
        service: Service {
            sched: "rr".into(),
            ..Service::new(key)
        },
        dests: vec![
            mk("10.2.6.1", tun(TunKind::Gre, 0, TunFlags::NOCSUM)),
            mk("10.2.6.2", tun(TunKind::Gre, 0, TunFlags::CSUM)),
            mk("10.2.6.3", tun(TunKind::Gue, 5555, TunFlags::CSUM)),
            mk("10.2.6.4", tun(TunKind::Gue, 5556, TunFlags::REMCSUM)),
        ],
    }];
    compare_with(
        &mut t,
        &mut ipvs,
        "gre-gue-checksum-flags",
        &desired,
        "-A -t 10.1.6.1:80 -s rr\n\
         -a -t 10.1.6.1:80 -r 10.2.6.1:80 -i --tun-type gre --tun-nocsum\n\
         -a -t 10.1.6.1:80 -r 10.2.6.2:80 -i --tun-type gre --tun-csum\n\
         -a -t 10.1.6.1:80 -r 10.2.6.3:80 -i --tun-type gue --tun-port 5555 --tun-csum\n\
         -a -t 10.1.6.1:80 -r 10.2.6.4:80 -i --tun-type gue --tun-port 5556 --tun-remcsum\n",
        false,
    );

    errors(&mut t, &mut ipvs);
    misc(&mut t, &mut ipvs);
    diff_apply(&mut t, &mut ipvs);
    bench(&mut t, &mut ipvs);
    lbd::run(&mut t, &mut ipvs);

    let _ = ipvs.flush();
    println!("LBCORE-VM-RESULT: {} passed, {} failed", t.passed, t.failed);
}

fn errors(t: &mut Tally, ipvs: &mut Ipvs) {
    let _ = ipvs.flush();
    let key = Key::Addr {
        proto: 6,
        addr: v4("10.3.0.1"),
        port: 80,
    };
    let mut bad = Service::new(key);
    bad.sched = "nosuch".into();
    let e = ipvs
        .add_service(&bad)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    t.check(
        "CHECK",
        "error-missing-scheduler",
        e == "add service TCP 10.3.0.1:80: scheduler 'nosuch' not found (no module ip_vs_nosuch in this kernel?) (ENOENT)",
        &e,
    );
    let good = Service::new(key);
    let _ = ipvs.add_service(&good);
    let e = ipvs
        .add_service(&good)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    t.check(
        "CHECK",
        "error-eexist",
        e == "add service TCP 10.3.0.1:80: the service already exists (EEXIST)",
        &e,
    );
    let other = Key::Addr {
        proto: 17,
        addr: v4("10.3.0.2"),
        port: 53,
    };
    let e = ipvs
        .del_service(&other)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    t.check(
        "CHECK",
        "error-esrch",
        e == "delete service UDP 10.3.0.2:53: the service does not exist (ESRCH)",
        &e,
    );
    let e = ipvs
        .del_dest(&key, v4("10.3.0.9"), 80)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    t.check(
        "CHECK",
        "error-enoent-dest",
        e == "delete destination 10.3.0.9:80 of service TCP 10.3.0.1:80: the destination does not exist (ENOENT)",
        &e,
    );
    // An IPv6 prefix length above 128 is refused by the kernel (port 0 without persistence
    // is refused by ipvsadm only: the kernel accepts it).
    let mut v6 = Service::new(Key::Addr {
        proto: 6,
        addr: "2001:db8::3".parse().unwrap(),
        port: 80,
    });
    v6.flags = ServiceFlags::PERSISTENT;
    v6.timeout = 60;
    v6.netmask = 129;
    let e = ipvs
        .add_service(&v6)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    t.check(
        "CHECK",
        "error-einval",
        e.starts_with("add service TCP [2001:db8::3]:80: invalid argument") && e.ends_with("(EINVAL)"),
        &e,
    );
    // A negative weight: ERANGE.
    let e = ipvs
        .add_dest(
            &key,
            &Dest {
                weight: -1,
                ..Dest::new(v4("10.3.0.8"), 80)
            },
        )
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string());
    t.check(
        "CHECK",
        "error-erange",
        e == "add destination 10.3.0.8:80 of service TCP 10.3.0.1:80: value out of range (a negative weight, \
              or a lower threshold above the upper one) (ERANGE)",
        &e,
    );
    let _ = ipvs.flush();
}

fn misc(t: &mut Tally, ipvs: &mut Ipvs) {
    let want = Timeouts {
        tcp: 901,
        tcp_fin: 121,
        udp: 301,
    };
    let r = ipvs.set_timeouts(&want).and_then(|_| ipvs.timeouts());
    let shown = ipvsadm(&["-L", "--timeout"], None).unwrap_or_default();
    t.check(
        "CHECK",
        "timeouts",
        r.as_ref().ok() == Some(&want) && shown.contains("(tcp tcpfin udp): 901 121 301"),
        &format!("{r:?} / ipvsadm: {}", shown.trim()),
    );
    let d = SyncDaemon {
        state: SyncState::Master,
        ifname: "lo".into(),
        sync_id: 9,
    };
    let started = ipvs.start_daemon(&d).and_then(|_| ipvs.daemons());
    let shown = ipvsadm(&["-L", "--daemon"], None).unwrap_or_default();
    let stopped = ipvs.stop_daemon(SyncState::Master).and_then(|_| ipvs.daemons());
    t.check(
        "CHECK",
        "sync-daemon",
        started.as_ref().ok() == Some(&vec![d.clone()])
            && shown.contains("master sync daemon (mcast=lo, syncid=9")
            && stopped.as_ref().map(|v| v.is_empty()).unwrap_or(false),
        &format!("{started:?} / ipvsadm: {} / after stop {stopped:?}", shown.trim()),
    );
}

fn counts(ipvs: &mut Ipvs, key: &Key) -> Vec<(IpAddr, u32, u32, u64)> {
    ipvs.dests(key)
        .unwrap_or_default()
        .into_iter()
        .map(|d| (d.dest.addr, d.active, d.inactive, d.stats.conns))
        .collect()
}

fn svc_conns(ipvs: &mut Ipvs) -> Vec<(Key, u64)> {
    ipvs.services()
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.service.key, s.stats.conns))
        .collect()
}

/// Our listing (connection counts, 64-bit counters) against `ipvsadm -Ln` and
/// `ipvsadm -Ln --stats --exact` for every IPv4 service and destination.
fn stats_match_ipvsadm(t: &mut Tally, ipvs: &mut Ipvs) {
    let mut ours = Vec::new();
    let mut ours_conns = Vec::new();
    for s in ipvs.services().unwrap_or_default() {
        let Key::Addr { proto, addr, port } = s.service.key else {
            continue;
        };
        let p = if proto == 6 { "TCP" } else { "UDP" };
        let st = s.stats;
        ours.push(format!(
            "{p} {addr}:{port} {} {} {} {} {}",
            st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes
        ));
        for d in ipvs.dests(&s.service.key).unwrap_or_default() {
            let st = d.stats;
            ours.push(format!(
                "-> {}:{} {} {} {} {} {}",
                d.dest.addr, d.dest.port, st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes
            ));
            ours_conns.push(format!(
                "-> {}:{} {} {}",
                d.dest.addr, d.dest.port, d.active, d.inactive
            ));
        }
    }
    let stats = ipvsadm(&["-Ln", "--stats", "--exact"], None).unwrap_or_default();
    let list = ipvsadm(&["-Ln"], None).unwrap_or_default();
    let mut theirs = Vec::new();
    let mut theirs_conns = Vec::new();
    for line in stats.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 7 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "->") {
            theirs.push(f.join(" "));
        }
    }
    for line in list.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // -> RemoteAddress:Port Forward Weight ActiveConn InActConn
        if f.len() == 6 && f[0] == "->" && f[1] != "RemoteAddress:Port" {
            theirs_conns.push(format!("-> {} {} {}", f[1], f[4], f[5]));
        }
    }
    ours.sort();
    theirs.sort();
    ours_conns.sort();
    theirs_conns.sort();
    t.check(
        "CHECK",
        "stats-and-counts-match-ipvsadm",
        !ours.is_empty() && ours == theirs && ours_conns == theirs_conns,
        &format!("ours {ours:?} {ours_conns:?} / ipvsadm {theirs:?} {theirs_conns:?}"),
    );
}

fn diff_apply(t: &mut Tally, ipvs: &mut Ipvs) {
    let _ = ipvs.flush();
    // 10.9.0.0/24 is local (on lo); local connections to the VIP go through IPVS's LOCAL_OUT
    // hook, which schedules them and creates connection entries.
    let ip = Command::new("/bin/busybox")
        .args(["ip", "addr", "add", "10.9.0.1/24", "dev", "lo"])
        .output();
    if !ip.as_ref().map(|o| o.status.success()).unwrap_or(false) {
        println!("NOTE ip addr add failed: {ip:?}");
    }
    let base = "-A -t 10.9.0.100:80 -s rr\n\
                -a -t 10.9.0.100:80 -r 10.9.0.2:80 -m -w 1\n\
                -a -t 10.9.0.100:80 -r 10.9.0.3:80 -m -w 1\n\
                -A -u 10.9.0.100:53 -s rr\n\
                -a -u 10.9.0.100:53 -r 10.9.0.2:53 -m -w 1\n\
                -A -t 10.9.0.100:443 -s wrr\n\
                -a -t 10.9.0.100:443 -r 10.9.0.4:443 -m -w 1\n\
                -a -t 10.9.0.100:443 -r 10.9.0.5:443 -m -w 1\n";
    let r0 = ipvs.apply(&plan(base));
    t.check(
        "CHECK",
        "diff-initial",
        r0.as_ref()
            .map(|r| r.new_service == 3 && r.new_dest == 5)
            .unwrap_or(false),
        &format!("{r0:?}"),
    );
    // Connections: 4 TCP to :80 (SYNs to a server that never answers), 3 UDP to :53.
    for _ in 0..4 {
        let _ = TcpStream::connect_timeout(&"10.9.0.100:80".parse().unwrap(), Duration::from_millis(50));
    }
    for p in 0..3u16 {
        let _ = UdpSocket::bind(("0.0.0.0", 40000 + p)).and_then(|s| s.send_to(b"x", "10.9.0.100:53"));
    }
    let k80 = Key::Addr {
        proto: 6,
        addr: v4("10.9.0.100"),
        port: 80,
    };
    let k53 = Key::Addr {
        proto: 17,
        addr: v4("10.9.0.100"),
        port: 53,
    };
    let k443 = Key::Addr {
        proto: 6,
        addr: v4("10.9.0.100"),
        port: 443,
    };
    // The kernel folds the per-CPU counters into the listed stats every 2 s (estimator).
    std::thread::sleep(Duration::from_millis(2500));
    let before = (counts(ipvs, &k80), counts(ipvs, &k53), svc_conns(ipvs));
    let conns_seen: u64 = before.2.iter().map(|x| x.1).sum();
    let entries: u32 = before.0.iter().chain(&before.1).map(|x| x.1 + x.2).sum();
    let changed = base.replace(
        "-a -t 10.9.0.100:443 -r 10.9.0.5:443 -m -w 1",
        "-a -t 10.9.0.100:443 -r 10.9.0.5:443 -m -w 5",
    );
    let r = ipvs.apply(&plan(&changed));
    let after = (counts(ipvs, &k80), counts(ipvs, &k53), svc_conns(ipvs));
    let one_set = r
        .as_ref()
        .map(|r| r.set_dest == 1 && r.writes() == 1)
        .unwrap_or(false);
    t.check(
        "CHECK",
        "diff-one-weight-one-set-dest",
        one_set,
        &r.as_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|e| e.to_string()),
    );
    let w = counts(ipvs, &k443);
    t.check(
        "CHECK",
        "diff-weight-applied",
        w.len() == 2
            && ipvs
                .dests(&k443)
                .map(|d| d.iter().any(|x| x.dest.weight == 5))
                .unwrap_or(false),
        &format!("{w:?}"),
    );
    t.check(
        "CHECK",
        "diff-untouched-conns-stay",
        before == after && conns_seen > 0 && entries > 0,
        &format!(
            "conns scheduled {conns_seen}, connection entries {entries}; before {before:?}; after {after:?}"
        ),
    );
    stats_match_ipvsadm(t, ipvs);
    let r = ipvs.apply(&plan(&changed));
    t.check(
        "CHECK",
        "diff-noop",
        r.as_ref().map(|r| r.writes() == 0).unwrap_or(false),
        &format!("{r:?}"),
    );
    // Scheduler change: one SET_SERVICE; dropping one dest: one DEL_DEST; a new service.
    let edited = changed
        .replace("-A -t 10.9.0.100:80 -s rr", "-A -t 10.9.0.100:80 -s wlc")
        .replace("-a -t 10.9.0.100:80 -r 10.9.0.3:80 -m -w 1\n", "")
        + "-A -t 10.9.0.100:8080 -s rr\n-a -t 10.9.0.100:8080 -r 10.9.0.6:8080 -m -w 1\n";
    let r = ipvs.apply(&plan(&edited));
    let ok = r
        .as_ref()
        .map(|r| {
            r.set_service == 1 && r.del_dest == 1 && r.new_service == 1 && r.new_dest == 1 && r.writes() == 4
        })
        .unwrap_or(false);
    let c53 = counts(ipvs, &k53);
    t.check(
        "CHECK",
        "diff-edit-service-del-dest-add-service",
        ok && c53 == before.1,
        &format!(
            "{} ; udp:53 {c53:?}",
            r.as_ref()
                .map(|r| r.to_string())
                .unwrap_or_else(|e| e.to_string())
        ),
    );
    // ServiceFlags are compared without HASHED.
    let listed = ipvs.services().unwrap_or_default();
    t.check(
        "CHECK",
        "hashed-flag-listed",
        listed
            .iter()
            .all(|s| s.service.flags.contains(ServiceFlags::HASHED)),
        "",
    );
    let _ = ipvs.flush();
}

fn bench(t: &mut Tally, ipvs: &mut Ipvs) {
    let mut rules = String::new();
    for i in 0..1000u32 {
        let vip = format!("10.{}.{}.{}", 100 + i / 62500, (i / 250) % 250, i % 250 + 1);
        rules.push_str(&format!("-A -t {vip}:80 -s wrr\n"));
        for j in 0..10u32 {
            rules.push_str(&format!(
                "-a -t {vip}:80 -r 172.16.{}.{}:8080 -m -w {}\n",
                j,
                i % 250 + 1,
                j + 1
            ));
        }
    }
    let p = plan(&rules);
    let rendered = render_ipvsadm_rules(&p);
    let mut results = Vec::new();
    let mut snaps = Vec::new();
    for (label, batch) in [
        ("lbcore (pipelined, 32 per send)", 32),
        ("lbcore (one request per send)", 1),
    ] {
        let _ = ipvs.flush();
        ipvs.set_batch(batch);
        let t0 = Instant::now();
        let r = ipvs.apply(&p);
        let dt = t0.elapsed();
        ipvs.set_batch(lbcore_net::ipvs::DEFAULT_BATCH);
        let ok = r
            .as_ref()
            .map(|r| r.new_service == 1000 && r.new_dest == 10000)
            .unwrap_or(false);
        println!(
            "BENCH {label}: {:.3} s ({})",
            dt.as_secs_f64(),
            r.map(|r| r.to_string()).unwrap_or_else(|e| e.to_string())
        );
        results.push((label, dt, ok));
        snaps.push(ipvsadm(&["-Sn"], None).unwrap_or_default());
    }
    let _ = ipvs.flush();
    let t0 = Instant::now();
    let rr = ipvsadm(&["-R"], Some(&rendered));
    let dt = t0.elapsed();
    println!(
        "BENCH ipvsadm -R: {:.3} s ({})",
        dt.as_secs_f64(),
        if rr.is_ok() {
            "ok".to_string()
        } else {
            format!("{rr:?}")
        }
    );
    snaps.push(ipvsadm(&["-Sn"], None).unwrap_or_default());
    // Re-apply of the unchanged 1,000 x 10 over ipvsadm's state: only reads.
    let t0 = Instant::now();
    let r = ipvs.apply(&p);
    let dt2 = t0.elapsed();
    println!(
        "BENCH lbcore re-apply, nothing changed: {:.3} s ({})",
        dt2.as_secs_f64(),
        r.as_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|e| e.to_string())
    );
    let same = snaps.windows(2).all(|w| w[0] == w[1]) && snaps[0].lines().count() == 11000;
    t.check(
        "CHECK",
        "bench-1000x10",
        results.iter().all(|r| r.2) && rr.is_ok() && same && r.map(|r| r.writes() == 0).unwrap_or(false),
        &format!("ipvsadm -Sn identical after each of the three loads: {same}"),
    );
    let _ = ipvs.flush();
}
