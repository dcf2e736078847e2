//! Network-namespace labs for end-to-end tests (shared: `mod netns;` from a test file).
//!
//! A [`Lab`] owns everything it creates: namespaces (named `lbt-PID-N-TAG-NAME`, unique per
//! process, test and lab), the processes it spawned and a scratch directory for
//! configuration files and logs. Dropping it (also when the test panics) kills the processes
//! and anything else left in its namespaces, deletes the namespaces and, unless the test
//! failed, the directory (kept for a post-mortem and printed otherwise).
//!
//! Veth pairs are created inside the bridge's namespace with their peer moved straight into
//! the target namespace, so nothing ever appears in the host's namespace and tests can run in
//! parallel.
//!
//! ```ignore
//! mod netns;
//! let Some(mut lab) = netns::Lab::new("vrrp_v2") else { return }; // prints SKIPPED
//! let sw = lab.ns("sw");
//! lab.bridge(&sw, "br0");
//! let a = lab.ns("a");
//! lab.veth(&a, "eth0", &sw, "br0", &["10.0.0.1/24"]);
//! let p = lab.spawn(&a, "/path/lbd", &["-f", conf], "a.log");
//! assert!(netns::wait_until(Duration::from_secs(5), || netns::has_address(&a, "eth0", "10.0.0.100")).is_some());
//! ```
//!
//! Skip rule: without root, or when `ip netns add` fails, [`Lab::new`] prints
//! `SKIPPED: reason` and returns `None`, unless `LBCORE_REQUIRE_NETNS=1`, which turns the skip
//! into a failure (CI on a machine that can run them).
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static LABS: AtomicUsize = AtomicUsize::new(0);

/// Whether skipping is forbidden (`LBCORE_REQUIRE_NETNS=1`).
pub fn required() -> bool {
    std::env::var("LBCORE_REQUIRE_NETNS").is_ok_and(|v| v == "1")
}

/// Skip the calling test with `reason`, or fail it when skipping is forbidden.
pub fn skip(test: &str, reason: &str) {
    if required() {
        panic!("{test}: cannot run ({reason}) and LBCORE_REQUIRE_NETNS=1");
    }
    eprintln!("SKIPPED: {test}: {reason}");
}

/// Run a command, returning its output (a command that cannot start gives a failed output).
pub fn cmd(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(127 << 8),
            stdout: Vec::new(),
            stderr: format!("{program}: {e}").into_bytes(),
        })
}

/// Run a command and panic with its stderr if it fails.
pub fn must(program: &str, args: &[&str]) -> String {
    let out = cmd(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    String::from_utf8_lossy(&cmd("id", &["-u"]).stdout).trim() == "0"
}

/// A process spawned in a namespace.
pub struct Proc {
    /// What it is (for messages).
    pub name: String,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// The process id (`ip netns exec` execs the program, so it is the program's own).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Send `signal` (a `kill -s` name: TERM, KILL, HUP, INT).
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = cmd("kill", &["-s", signal, &pid.to_string()]);
        }
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        match &mut self.child {
            None => None,
            Some(c) => c.try_wait().ok().flatten(),
        }
    }

    /// Wait up to `timeout` for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A set of namespaces, processes and files, all removed on drop.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    procs: Vec<Proc>,
    dir: PathBuf,
    veths: usize,
}

impl Lab {
    /// A new lab for test `tag`, or `None` (after printing `SKIPPED: ...`) when namespaces
    /// cannot be used here. Panics instead of skipping with `LBCORE_REQUIRE_NETNS=1`.
    pub fn new(tag: &str) -> Option<Lab> {
        if !is_root() {
            skip(tag, "needs root for network namespaces");
            return None;
        }
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("lbt-{}-{n}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(&prefix);
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            skip(tag, &format!("cannot create {}: {e}", dir.display()));
            return None;
        }
        let mut lab = Lab {
            prefix,
            namespaces: Vec::new(),
            procs: Vec::new(),
            dir,
            veths: 0,
        };
        // Probe: the first namespace.
        let probe = format!("{}-probe", lab.prefix);
        let out = cmd("ip", &["netns", "add", &probe]);
        if !out.status.success() {
            skip(
                tag,
                &format!(
                    "ip netns add failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            );
            return None;
        }
        lab.namespaces.push(probe);
        Some(lab)
    }

    /// The scratch directory (configuration files, logs, flag files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Write a file in the scratch directory and return its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Create namespace `short` (full name returned), with `lo` up and IPv6 duplicate
    /// address detection off.
    pub fn ns(&mut self, short: &str) -> String {
        let name = format!("{}-{short}", self.prefix);
        must("ip", &["netns", "add", &name]);
        self.namespaces.push(name.clone());
        must("ip", &["-n", &name, "link", "set", "lo", "up"]);
        for key in [
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ] {
            let _ = cmd("ip", &["netns", "exec", &name, "sysctl", "-qw", key]);
        }
        name
    }

    /// Create bridge `name` in namespace `ns`, up, with bridged frames kept away from
    /// iptables (`net.bridge.bridge-nf-call-iptables=0`, where br_netfilter exists).
    pub fn bridge(&mut self, ns: &str, name: &str) {
        must("ip", &["-n", ns, "link", "add", "name", name, "type", "bridge"]);
        must("ip", &["-n", ns, "link", "set", "dev", name, "up"]);
        for key in [
            "net.bridge.bridge-nf-call-iptables=0",
            "net.bridge.bridge-nf-call-ip6tables=0",
        ] {
            let _ = cmd("ip", &["netns", "exec", ns, "sysctl", "-qw", key]);
        }
    }

    /// A veth pair: `dev` in namespace `ns` with `addrs` (IPv6 ones `nodad`), its peer a port
    /// of `bridge` in `bridge_ns`; both up.
    pub fn veth(&mut self, ns: &str, dev: &str, bridge_ns: &str, bridge: &str, addrs: &[&str]) {
        self.veths += 1;
        let peer = format!("vp{}", self.veths);
        must(
            "ip",
            &[
                "-n", bridge_ns, "link", "add", "name", &peer, "type", "veth", "peer", "name", dev, "netns",
                ns,
            ],
        );
        must(
            "ip",
            &["-n", bridge_ns, "link", "set", "dev", &peer, "master", bridge],
        );
        must("ip", &["-n", bridge_ns, "link", "set", "dev", &peer, "up"]);
        for a in addrs {
            if a.contains(':') {
                must("ip", &["-n", ns, "addr", "add", a, "dev", dev, "nodad"]);
            } else {
                must("ip", &["-n", ns, "addr", "add", a, "dev", dev]);
            }
        }
        must("ip", &["-n", ns, "link", "set", "dev", dev, "up"]);
    }

    /// Run a command in namespace `ns`.
    pub fn exec(&self, ns: &str, program: &str, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", ns, program];
        all.extend_from_slice(args);
        cmd("ip", &all)
    }

    /// Start `program args` in namespace `ns`, stdout and stderr to `log` in the scratch
    /// directory. Returns its index for [`Lab::proc`].
    pub fn spawn(&mut self, ns: &str, program: &str, args: &[&str], log: &str) -> usize {
        let log = self.path(log);
        let out = File::options().create(true).append(true).open(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        self.procs.push(Proc {
            name: format!("{program} in {ns}"),
            log,
            child: Some(child),
        });
        self.procs.len() - 1
    }

    /// A spawned process.
    pub fn proc(&mut self, i: usize) -> &mut Proc {
        &mut self.procs[i]
    }

    /// Every spawned process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for p in &self.procs {
            s.push_str(&format!(
                "----- {} ({})\n{}\n",
                p.name,
                p.log.display(),
                p.log_text()
            ));
        }
        s
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in &mut self.procs {
            p.kill();
        }
        for ns in self.namespaces.iter().rev() {
            let pids = cmd("ip", &["netns", "pids", ns]);
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = cmd("kill", &["-s", "KILL", pid]);
            }
            let _ = cmd("ip", &["netns", "del", ns]);
        }
        if std::thread::panicking() {
            eprintln!("lab files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Poll `cond` every 10 ms until it holds (returning how long that took) or `timeout`
/// passed (`None`).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `dev` in namespace `ns` has address `addr` (without prefix length).
pub fn has_address(ns: &str, dev: &str, addr: &str) -> bool {
    let out = cmd("ip", &["-n", ns, "-o", "addr", "show", "dev", dev]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(addr))
}

/// The MAC address of `dev` in namespace `ns`.
pub fn mac_of(ns: &str, dev: &str) -> String {
    let out = must("ip", &["-n", ns, "-o", "link", "show", "dev", dev]);
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "link/ether" {
            return words.next().unwrap_or_default().to_string();
        }
    }
    String::new()
}

/// The MAC that namespace `ns` has in its neighbour table for `addr`, if any.
pub fn neighbour_mac(ns: &str, addr: &str) -> Option<String> {
    let out = cmd("ip", &["-n", ns, "neigh", "show", addr]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "lladdr" {
            return words.next().map(str::to_string);
        }
    }
    None
}

/// Whether `ping` is installed (iputils-ping).
pub fn have_ping() -> bool {
    cmd("ping", &["-V"]).status.success()
}

/// One ping from namespace `ns` to `addr` (1 s timeout): answered or not.
pub fn ping(ns: &str, addr: &str) -> bool {
    let mut args = vec!["netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W", "1"];
    if addr.contains(':') {
        args.push("-6");
    }
    args.push(addr);
    cmd("ip", &args).status.success()
}

/// Whether process `pid` is gone (exited, or a zombie: `kill -0` succeeds on those).
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) == Some("Z"),
    }
}

/// A veth pair straight between two namespaces: `dev1` in `ns1` with `addrs1`, `dev2` in
/// `ns2` with `addrs2` (IPv6 ones `nodad`); both up. Offloads stay at the veth defaults
/// (checksum offload, TSO and GSO on).
pub fn veth_pair(ns1: &str, dev1: &str, addrs1: &[&str], ns2: &str, dev2: &str, addrs2: &[&str]) {
    must(
        "ip",
        &[
            "-n", ns1, "link", "add", "name", dev1, "type", "veth", "peer", "name", dev2, "netns", ns2,
        ],
    );
    for (ns, dev, addrs) in [(ns1, dev1, addrs1), (ns2, dev2, addrs2)] {
        for a in addrs {
            if a.contains(':') {
                must("ip", &["-n", ns, "addr", "add", a, "dev", dev, "nodad"]);
            } else {
                must("ip", &["-n", ns, "addr", "add", a, "dev", dev]);
            }
        }
        must("ip", &["-n", ns, "link", "set", "dev", dev, "up"]);
    }
}

/// The path of namespace `ns` for `setns(2)` (`ip netns` bind-mounts them there).
pub fn ns_path(ns: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(ns)
}

/// Interface `dev`'s index in namespace `ns`.
pub fn ifindex(ns: &str, dev: &str) -> u32 {
    let out = must("ip", &["-n", ns, "-o", "link", "show", "dev", dev]);
    out.split(':')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Interface `dev`'s received-packets counter in namespace `ns`.
pub fn rx_packets(ns: &str, dev: &str) -> u64 {
    let out = cmd(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "cat",
            &format!("/sys/class/net/{dev}/statistics/rx_packets"),
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}
