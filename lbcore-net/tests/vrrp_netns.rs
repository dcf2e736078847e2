//! End to end: two `lbd` processes running VRRP from keepalived.conf files in network
//! namespaces on one bridge, with a client namespace beside them.
//!
//! Topology (one per test, names unique per process and test, removed on drop):
//! ```text
//!   a (lbd, priority 100) --eth0--+
//!   b (lbd, priority 99)  --eth0--+-- br0 (namespace sw)
//!   c (client)            --eth0--+
//! ```
//! Needs root (skipped otherwise, failed with `LBCORE_REQUIRE_NETNS=1`) and `ping`
//! (iputils-ping) for the client check. Timings are printed (`--nocapture` to see them).
//! `LBCORE_LBD=/path/to/lbd` runs them against another lbd build.

mod netns;

use std::time::{Duration, Instant};

use netns::{Lab, has_address, mac_of, neighbour_mac, wait_until};

/// The lbd under test: this build's, or `LBCORE_LBD` (another build, same command line).
fn lbd() -> String {
    std::env::var("LBCORE_LBD").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lbd").to_string())
}

#[derive(Clone, Copy, PartialEq)]
enum Flavour {
    V2Pass,
    V3Ipv4,
    V3Ipv6,
}

impl Flavour {
    fn vip(self) -> &'static str {
        match self {
            Flavour::V3Ipv6 => "fd00:201::100",
            _ => "10.201.0.100",
        }
    }
}

/// keepalived.conf for one router.
fn conf(flavour: Flavour, router_id: &str, priority: u8, extra_global: &str, extra_instance: &str) -> String {
    let (version, vrid, auth, vip) = match flavour {
        Flavour::V2Pass => (
            2,
            51,
            "    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n",
            "10.201.0.100/24",
        ),
        Flavour::V3Ipv4 => (3, 51, "", "10.201.0.100/24"),
        Flavour::V3Ipv6 => (3, 52, "", "fd00:201::100/64"),
    };
    format!(
        "global_defs {{
    router_id {router_id}
    vrrp_version {version}
{extra_global}}}

vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
{auth}    virtual_ipaddress {{
        {vip}
    }}
{extra_instance}}}
"
    )
}

/// The three namespaces on a bridge.
struct Net {
    lab: Lab,
    a: String,
    b: String,
    c: String,
}

fn net(tag: &str) -> Option<Net> {
    let mut lab = Lab::new(tag)?;
    let sw = lab.ns("sw");
    lab.bridge(&sw, "br0");
    let a = lab.ns("a");
    let b = lab.ns("b");
    let c = lab.ns("c");
    lab.veth(&a, "eth0", &sw, "br0", &["10.201.0.11/24", "fd00:201::11/64"]);
    lab.veth(&b, "eth0", &sw, "br0", &["10.201.0.12/24", "fd00:201::12/64"]);
    lab.veth(&c, "eth0", &sw, "br0", &["10.201.0.50/24", "fd00:201::50/64"]);
    Some(Net { lab, a, b, c })
}

impl Net {
    /// Start lbd in `ns` with `conf`; returns the process index.
    fn start(&mut self, ns: &str, name: &str, conf: &str) -> usize {
        let path = self.lab.write(&format!("{name}.conf"), conf);
        let path = path.to_str().unwrap().to_string();
        let pid = self.lab.path(&format!("{name}.pid"));
        self.lab.spawn(
            ns,
            &lbd(),
            &[
                "-f",
                &path,
                "-l",
                "--pid-file",
                pid.to_str().unwrap(),
                "--control",
                self.lab.path(&format!("{name}.sock")).to_str().unwrap(),
            ],
            &format!("{name}.log"),
        )
    }

    fn holds(&self, ns: &str, vip: &str) -> bool {
        has_address(ns, "eth0", vip)
    }

    fn log_has(&mut self, p: usize, text: &str) -> bool {
        self.lab.proc(p).log_text().contains(text)
    }

    #[track_caller]
    fn expect(&mut self, what: &str, timeout: Duration, mut cond: impl FnMut(&mut Net) -> bool) -> Duration {
        match wait_until(timeout, || cond(self)) {
            Some(d) => d,
            None => panic!(
                "timed out after {timeout:?} waiting for: {what}\n{}",
                self.lab.logs()
            ),
        }
    }
}

/// Master-down interval of the priority-99 backup with advert_int 1: 3 + (256 - 99) / 256 s.
const MASTER_DOWN_99: Duration = Duration::from_micros(3_613_281);

fn failover(tag: &str, flavour: Flavour) {
    let Some(mut n) = net(tag) else { return };
    let vip = flavour.vip();
    let (a, b, c) = (n.a.clone(), n.b.clone(), n.c.clone());
    let conf_a = conf(flavour, "lbA", 100, "", "");
    let conf_b = conf(flavour, "lbB", 99, "", "");

    // A starts first; B once A is in its initial backup wait, as one would with keepalived.
    let t0 = Instant::now();
    let pa = n.start(&a, "a1", &conf_a);
    n.expect("A in BACKUP (init)", Duration::from_secs(5), |n| {
        n.log_has(pa, "(VI_1) Entering BACKUP STATE (init)")
    });
    let pb = n.start(&b, "b", &conf_b);
    n.expect("A holds the VIP", Duration::from_secs(8), |n| n.holds(&a, vip));
    let start_to_master = t0.elapsed();
    n.expect("B in BACKUP", Duration::from_secs(3), |n| {
        n.log_has(pb, "(VI_1) Entering BACKUP STATE (init)")
    });
    assert!(n.log_has(pa, "(VI_1) Entering MASTER STATE"), "{}", n.lab.logs());
    // A few adverts later, still so.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(n.holds(&a, vip) && !n.holds(&b, vip), "{}", n.lab.logs());
    assert!(
        !n.log_has(pb, "Entering MASTER STATE"),
        "B must stay backup\n{}",
        n.lab.logs()
    );

    // SIGHUP: the file is re-read; the VRRP instances run on as they are.
    n.lab.proc(pb).signal("HUP");
    n.expect("B reloads", Duration::from_secs(2), |n| {
        n.log_has(pb, "Configuration reloaded")
    });
    assert!(
        n.lab.proc(pb).exited().is_none(),
        "B still runs after SIGHUP\n{}",
        n.lab.logs()
    );

    // SIGTERM: priority-0 advert, VIP removed, B takes over after its skew time.
    let t = Instant::now();
    n.lab.proc(pa).signal("TERM");
    n.expect(
        "B holds the VIP after SIGTERM of A",
        Duration::from_secs(3),
        |n| n.holds(&b, vip),
    );
    let term_takeover = t.elapsed();
    let status = n.lab.proc(pa).wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "A exits 0 on SIGTERM: {status:?}\n{}",
        n.lab.logs()
    );
    assert!(!n.holds(&a, vip), "A removed its VIP");
    assert!(n.log_has(pa, "(VI_1) sent 0 priority"), "{}", n.lab.logs());
    assert!(
        term_takeover < Duration::from_millis(1500),
        "SIGTERM takeover took {term_takeover:?}"
    );

    // The client reaches the VIP, at B's MAC (B's gratuitous ARP / NA, or resolution).
    if netns::have_ping() {
        assert!(
            wait_until(Duration::from_secs(3), || netns::ping(&c, vip)).is_some(),
            "client cannot ping {vip}\n{}",
            n.lab.logs()
        );
        assert_eq!(
            neighbour_mac(&c, vip),
            Some(mac_of(&b, "eth0")),
            "the client talks to B"
        );
    } else {
        netns::skip(tag, "ping (iputils-ping) not installed: client check not done");
    }

    // A comes back with the higher priority and preempts.
    let pa2 = n.start(&a, "a2", &conf_a);
    n.expect("A holds the VIP again", Duration::from_secs(8), |n| {
        n.holds(&a, vip)
    });
    n.expect("B gave the VIP up", Duration::from_secs(2), |n| !n.holds(&b, vip));
    assert!(n.log_has(pb, "(VI_1) Entering BACKUP STATE"), "{}", n.lab.logs());
    std::thread::sleep(Duration::from_millis(300));

    // SIGKILL: no goodbye; B takes over when its master-down timer runs out.
    let t = Instant::now();
    n.lab.proc(pa2).signal("KILL");
    n.expect(
        "B holds the VIP after SIGKILL of A",
        MASTER_DOWN_99 + Duration::from_secs(1),
        |n| n.holds(&b, vip),
    );
    let kill_takeover = t.elapsed();
    eprintln!(
        "{tag}: start -> master {start_to_master:?}; SIGTERM -> backup holds VIP {term_takeover:?}; \
         SIGKILL -> backup holds VIP {kill_takeover:?} (master-down interval {MASTER_DOWN_99:?})"
    );
    n.lab.proc(pb).signal("TERM");
    let status = n.lab.proc(pb).wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "B exits 0: {status:?}\n{}",
        n.lab.logs()
    );
    assert!(!n.holds(&b, vip), "B removed its VIP");
}

#[test]
fn vrrp_v2_pass_failover() {
    failover("v2pass", Flavour::V2Pass);
}

#[test]
fn vrrp_v3_ipv4_failover() {
    failover("v3ipv4", Flavour::V3Ipv4);
}

#[test]
fn vrrp_v3_ipv6_failover() {
    failover("v3ipv6", Flavour::V3Ipv6);
}

/// A vrrp_script that fails while a flag file exists lowers A's priority below B's: B takes
/// over; removing the flag gives the VIP back to A. Notify scripts see the transitions.
#[test]
fn vrrp_script_tracking_moves_the_master() {
    let tag = "script";
    let Some(mut n) = net(tag) else { return };
    let vip = Flavour::V2Pass.vip();
    let (a, b) = (n.a.clone(), n.b.clone());
    let flag = n.lab.path("fail.flag");
    let check = n
        .lab
        .write("check.sh", &format!("#!/bin/sh\n[ ! -e {} ]\n", flag.display()));
    netns::must("chmod", &["+x", check.to_str().unwrap()]);
    let events = n.lab.path("notify.log");
    let notify = n.lab.write(
        "notify.sh",
        &format!("#!/bin/sh\necho \"$@\" >>{}\n", events.display()),
    );
    netns::must("chmod", &["+x", notify.to_str().unwrap()]);
    let script = format!(
        "vrrp_script chk {{\n    script \"{}\"\n    interval 1\n    timeout 2\n    weight -10\n    rise 1\n    fall 1\n}}\n\n",
        check.display()
    );
    let track = format!(
        "    track_script {{\n        chk\n    }}\n    notify {}\n",
        notify.display()
    );
    let conf_a = format!("{script}{}", conf(Flavour::V2Pass, "lbA", 100, "", &track));
    let conf_b = conf(Flavour::V2Pass, "lbB", 99, "", "");

    let pa = n.start(&a, "a", &conf_a);
    n.expect("A in BACKUP (init)", Duration::from_secs(5), |n| {
        n.log_has(pa, "(VI_1) Entering BACKUP STATE (init)")
    });
    let pb = n.start(&b, "b", &conf_b);
    n.expect("A holds the VIP", Duration::from_secs(8), |n| n.holds(&a, vip));
    n.expect("notify INSTANCE VI_1 MASTER 100", Duration::from_secs(3), |_| {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .contains("INSTANCE VI_1 MASTER 100")
    });
    std::thread::sleep(Duration::from_millis(1200));
    assert!(!n.holds(&b, vip), "{}", n.lab.logs());

    // The script fails: A advertises 90 < 99, B preempts after its master-down interval.
    std::fs::write(&flag, "").unwrap();
    let t = Instant::now();
    n.expect("B takes the VIP", Duration::from_secs(8), |n| n.holds(&b, vip));
    n.expect("A gives it up", Duration::from_secs(3), |n| !n.holds(&a, vip));
    let failover = t.elapsed();
    assert!(n.log_has(pa, "VRRP_Script(chk) failed"), "{}", n.lab.logs());
    n.expect("notify INSTANCE VI_1 BACKUP 90", Duration::from_secs(3), |_| {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .contains("INSTANCE VI_1 BACKUP 90")
    });

    // The script succeeds again: A is back at 100 and preempts B.
    std::fs::remove_file(&flag).unwrap();
    let t = Instant::now();
    n.expect("A takes the VIP back", Duration::from_secs(8), |n| {
        n.holds(&a, vip)
    });
    n.expect("B gives it up", Duration::from_secs(3), |n| !n.holds(&b, vip));
    let failback = t.elapsed();
    assert!(n.log_has(pa, "VRRP_Script(chk) succeeded"), "{}", n.lab.logs());
    eprintln!("{tag}: script failure -> B master {failover:?}; script recovery -> A master {failback:?}");

    n.lab.proc(pa).signal("TERM");
    assert!(
        n.lab
            .proc(pa)
            .wait_exit(Duration::from_secs(5))
            .is_some_and(|s| s.success())
    );
    n.expect("notify INSTANCE VI_1 STOP", Duration::from_secs(3), |_| {
        std::fs::read_to_string(&events)
            .unwrap_or_default()
            .contains("INSTANCE VI_1 STOP")
    });
    let _ = pb;
}

/// A sync group of two instances: a weight-0 script failing on one member of A's group puts
/// the whole group in FAULT, so B takes both VIPs; recovery brings both back to A.
#[test]
fn vrrp_sync_group_fails_over_together() {
    let tag = "syncgroup";
    let Some(mut n) = net(tag) else { return };
    let (a, b) = (n.a.clone(), n.b.clone());
    let flag = n.lab.path("fail.flag");
    let check = n
        .lab
        .write("check.sh", &format!("#!/bin/sh\n[ ! -e {} ]\n", flag.display()));
    netns::must("chmod", &["+x", check.to_str().unwrap()]);
    let group_conf = |priority: u8, with_script: bool| {
        let (script, track) = if with_script {
            (
                format!(
                    "vrrp_script chk {{\n    script \"{}\"\n    interval 1\n    weight 0\n}}\n\n",
                    check.display()
                ),
                "    track_script {\n        chk\n    }\n",
            )
        } else {
            (String::new(), "")
        };
        format!(
            "{script}global_defs {{\n    vrrp_version 3\n}}\n\n\
             vrrp_sync_group G1 {{\n    group {{\n        VI_1\n        VI_2\n    }}\n}}\n\n\
             vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority {priority}\n    advert_int 1\n    virtual_ipaddress {{\n        10.201.0.100/24\n    }}\n}}\n\n\
             vrrp_instance VI_2 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 61\n    priority {priority}\n    advert_int 1\n    virtual_ipaddress {{\n        10.201.0.101/24\n    }}\n{track}}}\n"
        )
    };
    let pa = n.start(&a, "a", &group_conf(100, true));
    n.expect("A in BACKUP (init)", Duration::from_secs(5), |n| {
        n.log_has(pa, "(VI_2) Entering BACKUP STATE (init)")
    });
    let pb = n.start(&b, "b", &group_conf(99, false));
    n.expect("A holds both VIPs", Duration::from_secs(8), |n| {
        n.holds(&a, "10.201.0.100") && n.holds(&a, "10.201.0.101")
    });
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        !n.holds(&b, "10.201.0.100") && !n.holds(&b, "10.201.0.101"),
        "{}",
        n.lab.logs()
    );

    // VI_2's script fails (weight 0): A's whole group goes to FAULT, priority-0 adverts, B
    // takes both at once.
    std::fs::write(&flag, "").unwrap();
    n.expect("B holds both VIPs", Duration::from_secs(4), |n| {
        n.holds(&b, "10.201.0.100") && n.holds(&b, "10.201.0.101")
    });
    assert!(
        !n.holds(&a, "10.201.0.100") && !n.holds(&a, "10.201.0.101"),
        "{}",
        n.lab.logs()
    );
    assert!(n.log_has(pa, "(VI_1) Entering FAULT STATE"), "{}", n.lab.logs());
    assert!(
        n.log_has(pa, "VRRP_Group(G1) Syncing instances to FAULT state"),
        "{}",
        n.lab.logs()
    );

    // Recovery: A leaves FAULT as backup and preempts B with both instances.
    std::fs::remove_file(&flag).unwrap();
    n.expect("A holds both VIPs again", Duration::from_secs(8), |n| {
        n.holds(&a, "10.201.0.100") && n.holds(&a, "10.201.0.101")
    });
    n.expect("B gave both up", Duration::from_secs(3), |n| {
        !n.holds(&b, "10.201.0.100") && !n.holds(&b, "10.201.0.101")
    });
    let _ = pb;
}
