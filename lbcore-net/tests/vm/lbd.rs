//! `lbd --offload ipvs` in the VM: the static `/lbd` (packed by `.ci/vm.sh`) runs a
//! keepalived.conf whose real servers have TCP_CHECKs against listeners this program opens and
//! closes; the kernel's IPVS table (read with [`Ipvs`]) must follow the checks, SIGHUP reloads
//! and SIGTERM. One `CHECK lbd-...` line per property.
//!
//! Layout: 10.8.0.1/24 on lo; two services `TCP 10.8.0.100:80` (real servers 10.8.0.2:80
//! weight 3 and 10.8.0.3:80 weight 1) and `TCP 10.8.0.100:443` (10.8.0.4:443 weight 2 with
//! `inhibit_on_failure`, 10.8.0.5:443 weight 1), wrr, NAT. The real servers do not exist
//! (SYNs to them vanish, as in the diff-apply checks); their TCP_CHECKs use `connect_ip
//! 127.0.0.1` and `connect_port 1800x`, where this program listens. Connections made through
//! IPVS (local SYNs to the VIP, scheduled in LOCAL_OUT) give the destinations connection
//! entries and counters, which must survive every change that does not touch them.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lbcore_net::ipvs::{Ipvs, Key, Service};

use super::{Tally, ipvsadm, v4};

const CONF: &str = "/tmp/lbd-keepalived.conf";
const LOG: &str = "/tmp/lbd.log";
const LBD: &str = "/lbd";

/// A checked real server: (address, port, check port, weight, inhibit_on_failure).
type Rs = (&'static str, u16, u16, u32, bool);

/// The checked real servers of the two services.
const RS80: [Rs; 2] = [
    ("10.8.0.2", 80, 18002, 3, false),
    ("10.8.0.3", 80, 18003, 1, false),
];
const RS443: [Rs; 2] = [
    ("10.8.0.4", 443, 18004, 2, true),
    ("10.8.0.5", 443, 18005, 1, false),
];

/// The configuration, with the weight of 10.8.0.2 given, and with or without the :443 service.
fn conf(weight_of_10_8_0_2: u32, with_443: bool) -> String {
    let mut s = String::from("global_defs {\n    router_id lbd_vm\n}\n");
    let services: &[(u16, [Rs; 2])] = if with_443 {
        &[(80, RS80), (443, RS443)]
    } else {
        &[(80, RS80)]
    };
    for &(port, rss) in services {
        s.push_str(&format!(
            "virtual_server 10.8.0.100 {port} {{\n    delay_loop 1\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n"
        ));
        for (addr, rport, cport, weight, inhibit) in rss {
            let weight = if addr == "10.8.0.2" {
                weight_of_10_8_0_2
            } else {
                weight
            };
            s.push_str(&format!(
                "    real_server {addr} {rport} {{\n        weight {weight}\n"
            ));
            if inhibit {
                s.push_str("        inhibit_on_failure\n");
            }
            s.push_str(&format!(
                "        TCP_CHECK {{\n            connect_ip 127.0.0.1\n            connect_port {cport}\n            connect_timeout 1\n            retry 0\n            delay_before_retry 1\n        }}\n    }}\n"
            ));
        }
        s.push_str("}\n");
    }
    s
}

/// The health-check listeners, by port; not accepting connections (the checks only
/// connect), so the backlog is drained while waiting.
struct Listeners(BTreeMap<u16, TcpListener>);

impl Listeners {
    fn open(&mut self, port: u16) -> Result<(), String> {
        let l = TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("listen on :{port}: {e}"))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        self.0.insert(port, l);
        Ok(())
    }

    fn close(&mut self, port: u16) {
        self.0.remove(&port);
    }

    fn drain(&self) {
        for l in self.0.values() {
            while l.accept().is_ok() {}
        }
    }
}

/// The kernel's table, one entry per service and destination:
/// `TCP 10.8.0.100:80` → `wrr conns .. pkts ..`, `TCP 10.8.0.100:80 -> 10.8.0.2:80` →
/// `Masq w 3 act 0 inact 2 conns 2 ...` (counters without the decaying rates).
type Table = BTreeMap<String, String>;

fn table(ipvs: &mut Ipvs) -> Table {
    let mut t = Table::new();
    for s in ipvs.services().unwrap_or_default() {
        let st = s.stats;
        let key = s.service.key;
        t.insert(
            key.to_string(),
            format!(
                "{} conns {} pkts {}/{} bytes {}/{}",
                s.service.sched, st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes
            ),
        );
        for d in ipvs.dests(&key).unwrap_or_default() {
            let st = d.stats;
            t.insert(
                format!("{key} -> {}:{}", d.dest.addr, d.dest.port),
                format!(
                    "{:?} w {} act {} inact {} conns {} pkts {}/{} bytes {}/{}",
                    d.dest.fwd,
                    d.dest.weight,
                    d.active,
                    d.inactive,
                    st.conns,
                    st.inpkts,
                    st.outpkts,
                    st.inbytes,
                    st.outbytes
                ),
            );
        }
    }
    t
}

fn dest_key(port: u16, addr: &str, rport: u16) -> String {
    format!("TCP 10.8.0.100:{port} -> {addr}:{rport}")
}

/// The weight of a destination in `t`, `None` when it is not in the kernel.
fn weight(t: &Table, port: u16, addr: &str, rport: u16) -> Option<i64> {
    let v = t.get(&dest_key(port, addr, rport))?;
    v.split_whitespace()
        .skip_while(|w| *w != "w")
        .nth(1)
        .and_then(|w| w.parse().ok())
}

/// The entries of `t` except those named in `skip` (a prefix match).
fn others(t: &Table, skip: &[String]) -> Table {
    t.iter()
        .filter(|(k, _)| !skip.iter().any(|s| k.starts_with(s.as_str())))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Polls the kernel until `pred` holds (draining the listeners meanwhile); the table and the
/// time it took, or the last table on timeout.
fn wait_for(
    ipvs: &mut Ipvs,
    ls: &Listeners,
    limit: Duration,
    pred: impl Fn(&Table) -> bool,
) -> (bool, Table, Duration) {
    let t0 = Instant::now();
    loop {
        ls.drain();
        let t = table(ipvs);
        if pred(&t) {
            return (true, t, t0.elapsed());
        }
        if t0.elapsed() > limit {
            return (false, t, t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sleeps `d`, draining the listeners.
fn idle(ls: &Listeners, d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        ls.drain();
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, sig: libc::c_int) -> bool {
    let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    pid > 0 && unsafe { libc::kill(pid, sig) } == 0
}

/// Whether the process has its SIGHUP handler installed yet (bit 0 of `SigCgt`): before
/// that a SIGHUP would kill it.
fn catches_sighup(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|m| m & 1 == 1)
}

fn log_text() -> String {
    std::fs::read_to_string(LOG).unwrap_or_default()
}

fn show(t: &Table) -> String {
    t.iter()
        .map(|(k, v)| format!("[{k}: {v}]"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run(t: &mut Tally, ipvs: &mut Ipvs) {
    let t_start = Instant::now();
    let _ = ipvs.flush();
    let ip = Command::new("/bin/busybox")
        .args(["ip", "addr", "add", "10.8.0.1/24", "dev", "lo"])
        .output();
    if !ip.as_ref().map(|o| o.status.success()).unwrap_or(false) {
        println!("NOTE ip addr add 10.8.0.1/24 failed: {ip:?}");
    }
    // A service lbd does not own, added by someone else before it starts.
    let foreign = Key::Addr {
        proto: 6,
        addr: v4("10.8.0.200"),
        port: 80,
    };
    let _ = ipvs.add_service(&Service {
        sched: "rr".into(),
        ..Service::new(foreign)
    });
    let mut ls = Listeners(BTreeMap::new());
    for (_, _, cport, _, _) in RS80.iter().chain(&RS443) {
        if let Err(e) = ls.open(*cport) {
            println!("NOTE {e}");
        }
    }
    if let Err(e) = std::fs::write(CONF, conf(3, true)) {
        t.check("CHECK", "lbd-start", false, &format!("writing {CONF}: {e}"));
        return;
    }
    let log = match File::create(LOG) {
        Ok(f) => f,
        Err(e) => {
            t.check("CHECK", "lbd-start", false, &format!("creating {LOG}: {e}"));
            return;
        }
    };
    let spawned = Command::new(LBD)
        .args([
            "-f",
            CONF,
            "--offload",
            "ipvs",
            "--control",
            "/tmp/lbd.sock",
            "-l",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
        .stderr(Stdio::from(log))
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            t.check("CHECK", "lbd-start", false, &format!("{LBD}: {e}"));
            return;
        }
    };
    let pid = child.id();
    lbd_checks(t, ipvs, &mut ls, &mut child, foreign);
    // Whatever happened: no lbd left behind.
    if matches!(child.try_wait(), Ok(None)) {
        let _ = child.kill();
        let _ = child.wait();
    }
    for line in log_text().lines() {
        println!("NOTE lbd[{pid}]: {line}");
    }
    println!("NOTE lbd checks took {:.1} s", t_start.elapsed().as_secs_f64());
    let _ = ipvs.flush();
}

fn lbd_checks(t: &mut Tally, ipvs: &mut Ipvs, ls: &mut Listeners, child: &mut Child, foreign: Key) {
    // ---- start: both services with their configured weights ----
    let configured = |t: &Table, w2: i64| {
        weight(t, 80, "10.8.0.2", 80) == Some(w2)
            && weight(t, 80, "10.8.0.3", 80) == Some(1)
            && weight(t, 443, "10.8.0.4", 443) == Some(2)
            && weight(t, 443, "10.8.0.5", 443) == Some(1)
    };
    let (ok, tab, dt) = wait_for(ipvs, ls, Duration::from_secs(20), |t| configured(t, 3));
    let exact = tab
        .get("TCP 10.8.0.100:80")
        .is_some_and(|v| v.starts_with("wrr "))
        && tab
            .get("TCP 10.8.0.100:443")
            .is_some_and(|v| v.starts_with("wrr "))
        && tab
            .iter()
            .filter(|(k, _)| k.contains(" -> "))
            .all(|(_, v)| v.starts_with("Masq "))
        && tab.keys().filter(|k| k.starts_with("TCP 10.8.0.100:")).count() == 6;
    t.check(
        "CHECK",
        "lbd-offload-start",
        ok && exact,
        &format!("kernel table after {:.1} s: {}", dt.as_secs_f64(), show(&tab)),
    );
    if !ok {
        return;
    }
    // Services lbd did not configure stay, as with keepalived.
    let kept = tab.contains_key(&foreign.to_string());
    t.check(
        "CHECK",
        "lbd-keeps-foreign-service",
        kept,
        &format!("{foreign} (added before lbd started) still in the kernel: {kept}"),
    );
    // ---- connections through IPVS: 8 SYNs to :80, 3 to :443 (entries and counters) ----
    for _ in 0..8 {
        let _ = TcpStream::connect_timeout(&"10.8.0.100:80".parse().unwrap(), Duration::from_millis(50));
    }
    for _ in 0..3 {
        let _ = TcpStream::connect_timeout(&"10.8.0.100:443".parse().unwrap(), Duration::from_millis(50));
    }
    // The kernel folds the per-CPU counters into the listed ones every 2 s.
    idle(ls, Duration::from_millis(2500));
    let t0 = table(ipvs);
    let with_conns = [
        dest_key(80, "10.8.0.2", 80),
        dest_key(80, "10.8.0.3", 80),
        dest_key(443, "10.8.0.4", 443),
        dest_key(443, "10.8.0.5", 443),
    ]
    .iter()
    .filter(|k| t0.get(*k).is_some_and(|v| !v.contains(" conns 0 ")))
    .count();
    t.check(
        "CHECK",
        "lbd-conns-through-ipvs",
        with_conns == 4,
        &format!("{with_conns} of 4 destinations have connections: {}", show(&t0)),
    );

    // ---- checks fail: 10.8.0.3 removed, 10.8.0.4 (inhibit_on_failure) weight 0 ----
    let d3 = dest_key(80, "10.8.0.3", 80);
    let d4 = dest_key(443, "10.8.0.4", 443);
    ls.close(18003);
    ls.close(18004);
    let (ok, t1, dt) = wait_for(ipvs, ls, Duration::from_secs(15), |t| {
        weight(t, 80, "10.8.0.3", 80).is_none() && weight(t, 443, "10.8.0.4", 443) == Some(0)
    });
    let rest_same = others(&t1, &[d3.clone(), d4.clone()]) == others(&t0, &[d3.clone(), d4.clone()]);
    t.check(
        "CHECK",
        "lbd-check-down-removes-dest",
        ok && weight(&t1, 80, "10.8.0.3", 80).is_none() && rest_same,
        &format!(
            "listener of 10.8.0.3 closed: gone from the kernel after {:.1} s; the other destinations and services unchanged: {rest_same}",
            dt.as_secs_f64()
        ),
    );
    // The inhibited destination keeps its connection entries and counters (a SET_DEST).
    let inhibited_kept = t0
        .get(&d4)
        .zip(t1.get(&d4))
        .is_some_and(|(a, b)| a.replacen(" w 2 ", " w 0 ", 1) == *b);
    t.check(
        "CHECK",
        "lbd-inhibit-on-failure-weight-0",
        ok && inhibited_kept,
        &format!(
            "listener of 10.8.0.4 closed: before [{}] after [{}]",
            t0.get(&d4).map(String::as_str).unwrap_or("-"),
            t1.get(&d4).map(String::as_str).unwrap_or("-")
        ),
    );

    // ---- checks succeed again: both back with their weights ----
    let reopened = ls.open(18003).and_then(|()| ls.open(18004));
    let (ok, t2, dt) = wait_for(ipvs, ls, Duration::from_secs(15), |t| configured(t, 3));
    let rest_same = others(&t2, &[d3.clone(), d4.clone()]) == others(&t0, &[d3.clone(), d4.clone()]);
    let d4_back = t0.get(&d4) == t2.get(&d4);
    t.check(
        "CHECK",
        "lbd-check-up-restores",
        reopened.is_ok() && ok && rest_same && d4_back,
        &format!(
            "listeners reopened ({reopened:?}): 10.8.0.3 back with weight {:?}, 10.8.0.4 weight {:?} (counters kept: {d4_back}) after {:.1} s; the others unchanged: {rest_same}",
            weight(&t2, 80, "10.8.0.3", 80),
            weight(&t2, 443, "10.8.0.4", 443),
            dt.as_secs_f64()
        ),
    );

    // ---- SIGHUP with one weight changed: one SET_DEST, the rest untouched ----
    let pid = child.id();
    let t_hup = Instant::now();
    while !catches_sighup(pid) && t_hup.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let d2 = dest_key(80, "10.8.0.2", 80);
    let log_before = log_text().len();
    let before = table(ipvs);
    let written = std::fs::write(CONF, conf(5, true));
    let sent = written.is_ok() && signal(child, libc::SIGHUP);
    let (ok, after, dt) = wait_for(ipvs, ls, Duration::from_secs(15), |t| {
        weight(t, 80, "10.8.0.2", 80) == Some(5)
    });
    // Give the manager time for anything else it might do after the reload.
    idle(ls, Duration::from_millis(1500));
    let after2 = table(ipvs);
    let d2_counters_kept = before
        .get(&d2)
        .zip(after2.get(&d2))
        .is_some_and(|(a, b)| a.replacen(" w 3 ", " w 5 ", 1) == *b);
    let rest_same = others(&before, std::slice::from_ref(&d2)) == others(&after2, std::slice::from_ref(&d2));
    let reload_log: String = log_text().get(log_before..).unwrap_or("").to_string();
    let updates: Vec<&str> = reload_log
        .lines()
        .filter(|l| l.contains("kernel IPVS updated"))
        .collect();
    let one_set_dest = updates.len() == 1
        && updates[0].contains(
            "new_service: 0, set_service: 0, del_service: 0, new_dest: 0, set_dest: 1, del_dest: 0",
        );
    t.check(
        "CHECK",
        "lbd-sighup-weight-change",
        sent && ok && d2_counters_kept && rest_same,
        &format!(
            "weight 3 -> 5 in the kernel {:.1} s after SIGHUP (written {written:?}, sent {sent}); its counters kept: {d2_counters_kept}; everything else identical: {rest_same}; {}",
            dt.as_secs_f64(),
            show(&after2)
        ),
    );
    t.check(
        "CHECK",
        "lbd-sighup-one-set-dest",
        one_set_dest,
        &format!("lbd's kernel updates after the reload: {updates:?}"),
    );
    let _ = after;

    // ---- SIGHUP with a syntax error (and another weight): nothing changes ----
    let log_before = log_text().len();
    let before = table(ipvs);
    let written = std::fs::write(CONF, conf(7, true) + "}\n");
    let sent = written.is_ok() && signal(child, libc::SIGHUP);
    let t_bad = Instant::now();
    let mut refused = false;
    while t_bad.elapsed() < Duration::from_secs(10) && !refused {
        idle(ls, Duration::from_millis(200));
        refused = log_text()
            .get(log_before..)
            .is_some_and(|l| l.contains("reload refused"));
    }
    idle(ls, Duration::from_millis(1500));
    let after = table(ipvs);
    let alive = matches!(child.try_wait(), Ok(None));
    t.check(
        "CHECK",
        "lbd-sighup-bad-conf-no-change",
        sent && refused && alive && before == after,
        &format!(
            "refused in the log: {refused}; still running: {alive}; kernel identical: {}; {}",
            before == after,
            log_text()
                .get(log_before..)
                .unwrap_or("")
                .lines()
                .filter(|l| l.contains("ERROR"))
                .collect::<Vec<_>>()
                .join(" | ")
        ),
    );

    // ---- SIGHUP while a check is failing: does the dead server stay out? ----
    // keepalived carries the checkers' state over a reload for unchanged real servers
    // (migrate_checkers()). lbd restarting its checks with every real server up puts the dead
    // one back until its first probe fails: printed as a NOTE (not counted) while lbd does
    // that, counted as a CHECK once it keeps the state.
    let d5 = dest_key(443, "10.8.0.5", 443);
    ls.close(18005);
    let (down, _, _) = wait_for(ipvs, ls, Duration::from_secs(15), |t| !t.contains_key(&d5));
    let log_before = log_text().len();
    let written = std::fs::write(CONF, conf(5, true));
    let sent = written.is_ok() && signal(child, libc::SIGHUP);
    let t_watch = Instant::now();
    let mut polls_back = 0;
    let mut polls = 0;
    while t_watch.elapsed() < Duration::from_secs(3) {
        ls.drain();
        polls += 1;
        if table(ipvs).contains_key(&d5) {
            polls_back += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let updates: Vec<String> = log_text()
        .get(log_before..)
        .unwrap_or("")
        .lines()
        .filter(|l| l.contains("kernel IPVS updated"))
        .map(|l| l.split("ApplyReport").nth(1).unwrap_or(l).to_string())
        .collect();
    let detail = format!(
        "10.8.0.5 down before the reload: {down}; SIGHUP sent: {sent}; in the kernel in {polls_back} of {polls} polls over 3 s after the reload; kernel updates: {updates:?}"
    );
    t.check(
        "CHECK",
        "lbd-sighup-keeps-failed-dest-out",
        down && sent && polls_back == 0,
        &detail,
    );
    if let Err(e) = ls.open(18005) {
        println!("NOTE {e}");
    }

    // ---- SIGHUP without the :443 service: it goes, :80 and the foreign service stay ----
    let (_, before, _) = wait_for(ipvs, ls, Duration::from_secs(15), |t| t.contains_key(&d5));
    let written = std::fs::write(CONF, conf(5, false));
    let sent = written.is_ok() && signal(child, libc::SIGHUP);
    let (ok, after, dt) = wait_for(ipvs, ls, Duration::from_secs(15), |t| {
        !t.keys().any(|k| k.starts_with("TCP 10.8.0.100:443"))
    });
    idle(ls, Duration::from_millis(1000));
    let after2 = table(ipvs);
    let rest_same = others(&before, &["TCP 10.8.0.100:443".to_string()]) == after2 && after == after2;
    t.check(
        "CHECK",
        "lbd-sighup-drop-service",
        sent && ok && rest_same && after2.contains_key(&foreign.to_string()),
        &format!(
            "TCP 10.8.0.100:443 gone {:.1} s after SIGHUP; everything else (TCP 10.8.0.100:80 and its counters, {foreign}) identical: {rest_same}",
            dt.as_secs_f64()
        ),
    );

    // ---- SIGTERM: exit 0; lbd's services leave the kernel, a foreign one stays ----
    let foreign2 = Key::Addr {
        proto: 6,
        addr: v4("10.8.0.201"),
        port: 80,
    };
    let _ = ipvs.add_service(&Service {
        sched: "rr".into(),
        ..Service::new(foreign2)
    });
    let sent = signal(child, libc::SIGTERM);
    let t_term = Instant::now();
    let mut status = None;
    while t_term.elapsed() < Duration::from_secs(15) {
        if let Ok(Some(s)) = child.try_wait() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dt = t_term.elapsed();
    t.check(
        "CHECK",
        "lbd-sigterm-exit-0",
        sent && status.is_some_and(|s| s.code() == Some(0)),
        &format!("exit status {status:?} {:.1} s after SIGTERM", dt.as_secs_f64()),
    );
    let left = table(ipvs);
    let lbd_left: Vec<&String> = left.keys().filter(|k| k.starts_with("TCP 10.8.0.100:")).collect();
    let foreign_kept = left.contains_key(&foreign.to_string()) && left.contains_key(&foreign2.to_string());
    t.check(
        "CHECK",
        "lbd-exit-removes-its-services",
        lbd_left.is_empty() && foreign_kept,
        &format!(
            "lbd's services left in the kernel: {lbd_left:?}; {foreign} and {foreign2} (added while lbd ran) kept: {foreign_kept}; ipvsadm -Ln: {}",
            ipvsadm(&["-Ln"], None)
                .unwrap_or_default()
                .lines()
                .skip(3)
                .collect::<Vec<_>>()
                .join(" | ")
        ),
    );
}
