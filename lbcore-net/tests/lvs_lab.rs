//! End to end: the seeds' LVS-DR + keepalived lab, with `lbd` in place of ipvsadm +
//! keepalived, in network namespaces on one bridge.
//!
//! ```text
//!   client (172.27.9.10 + 120 more source addresses) --+
//!   lb1    (lbd, VRRP MASTER 100, 172.27.9.2)        --+
//!   lb2    (lbd, VRRP BACKUP  99, 172.27.9.3)        --+-- br0 (namespace sw)
//!   rs1    (nginx :81, 172.27.9.91, VIP on lo/32)    --+
//!   rs2    (nginx :81, 172.27.9.92, VIP on lo/32)    --+
//! ```
//!
//! The lbd configurations are the tutorial's keepalived.conf files (lbcore/tests/data/config/
//! lvs_dr_{master,backup}.conf) with only the timings shortened (delay_loop,
//! retries) and the weights set to 1 and 2 so that the split is visible. Every frame reaching
//! the real servers is captured and its checksums validated by scapy.
//!
//! Needs root, `nginx`, `nft` (nftables), `tcpdump` and `/usr/bin/python3` with scapy
//! (python3-scapy); skipped without them, failed with `LBCORE_REQUIRE_NETNS=1`.

mod netns;

use std::collections::HashMap;
use std::time::Duration;

use netns::{Lab, has_address, wait_until};

const VIP: &str = "172.27.9.100";
const DEBIAN_PYTHON: &str = "/usr/bin/python3";

fn lbd() -> String {
    std::env::var("LBCORE_LBD").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lbd").to_string())
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Starts nginx in namespace `ns` as real server `name` (`rs1`, ...), listening on `port` and
/// answering every request with `body` (nginx syntax: `$remote_addr` is expanded), all its
/// files in the lab's directory. Returns the process index.
fn spawn_nginx(lab: &mut Lab, ns: &str, name: &str, port: u16, body: &str) -> usize {
    let dir = lab.dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = format!(
        "worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{ listen {port}; location / {{ return 200 \"{body}\\n\"; }} }}
}}
",
        dir = dir.display()
    );
    let path = lab.write(&format!("{name}-nginx.conf"), &conf);
    lab.spawn(
        ns,
        "nginx",
        &[
            "-e",
            &format!("{}/error.log", dir.display()),
            "-c",
            path.to_str().unwrap(),
        ],
        &format!("{name}-nginx.log"),
    )
}

/// What is missing on this machine for the lab, if anything.
fn missing_tools() -> Option<String> {
    let checks: [(&str, &[&str], &str); 4] = [
        ("nginx", &["-v"], "nginx (apt-get install nginx-light)"),
        ("nft", &["--version"], "nft (apt-get install nftables)"),
        ("tcpdump", &["--version"], "tcpdump (apt-get install tcpdump)"),
        (
            DEBIAN_PYTHON,
            &["-c", "import scapy"],
            "scapy for /usr/bin/python3 (apt-get install python3-scapy)",
        ),
    ];
    let missing: Vec<&str> = checks
        .iter()
        .filter(|(p, a, _)| !netns::cmd(p, a).status.success())
        .map(|(_, _, what)| *what)
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// The tutorial's keepalived.conf for one director, timings shortened for a test.
fn director_conf(master: bool) -> String {
    let file = if master {
        "lvs_dr_master.conf"
    } else {
        "lvs_dr_backup.conf"
    };
    let path = format!(
        "{}/../lbcore/tests/data/config/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let text = text
        .replace("delay_loop 6", "delay_loop 1")
        .replace("connect_timeout 3", "connect_timeout 1")
        .replace("nb_get_retry 3", "nb_get_retry 1")
        .replace("delay_before_retry 3", "delay_before_retry 1");
    // Weights 1 and 2: the second real server gets twice the clients.
    let second = text.find("real_server 172.27.9.92 81").unwrap();
    let (head, tail) = text.split_at(second);
    format!("{head}{}", tail.replacen("weight 1", "weight 2", 1))
}

struct SeedLab {
    lab: Lab,
    client: String,
    lb: [String; 2],
    rs: [String; 2],
    lbd: [usize; 2],
    nginx: [Option<usize>; 2],
}

const RS_ADDR: [&str; 2] = ["172.27.9.91", "172.27.9.92"];

impl SeedLab {
    fn new(lab: Lab) -> SeedLab {
        let mut lab = lab;
        let sw = lab.ns("sw");
        lab.bridge(&sw, "br0");
        let client = lab.ns("client");
        lab.veth(&client, "eth0", &sw, "br0", &["172.27.9.10/24"]);
        for i in 0..120 {
            netns::must(
                "ip",
                &[
                    "-n",
                    &client,
                    "addr",
                    "add",
                    &format!("172.27.9.{}/24", 110 + i),
                    "dev",
                    "eth0",
                ],
            );
        }
        let lb = [lab.ns("lb1"), lab.ns("lb2")];
        lab.veth(&lb[0], "eth0", &sw, "br0", &["172.27.9.2/24"]);
        lab.veth(&lb[1], "eth0", &sw, "br0", &["172.27.9.3/24"]);
        let rs = [lab.ns("rs1"), lab.ns("rs2")];
        for (i, ns) in rs.iter().enumerate() {
            lab.veth(ns, "eth0", &sw, "br0", &[&format!("{}/24", RS_ADDR[i])]);
            // The LVS-DR real-server recipe: the VIP on lo, never announced or answered.
            netns::must(
                "ip",
                &["-n", ns, "addr", "add", &format!("{VIP}/32"), "dev", "lo"],
            );
            for key in [
                "net.ipv4.conf.all.arp_ignore=1",
                "net.ipv4.conf.all.arp_announce=2",
                "net.ipv4.conf.eth0.arp_ignore=1",
                "net.ipv4.conf.eth0.arp_announce=2",
            ] {
                netns::must("ip", &["netns", "exec", ns, "sysctl", "-qw", key]);
            }
        }
        let mut me = SeedLab {
            lab,
            client,
            lb,
            rs,
            lbd: [usize::MAX; 2],
            nginx: [None, None],
        };
        me.start_nginx(0);
        me.start_nginx(1);
        me
    }

    fn start_nginx(&mut self, i: usize) {
        let name = format!("rs{}", i + 1);
        let ns = self.rs[i].clone();
        let p = spawn_nginx(&mut self.lab, &ns, &name, 81, &name);
        self.nginx[i] = Some(p);
        let addr = RS_ADDR[i];
        let client = self.client.clone();
        assert!(
            wait_until(Duration::from_secs(5), || {
                self.lab
                    .exec(&client, "bash", &["-c", &format!("exec 3<>/dev/tcp/{addr}/81")])
                    .status
                    .success()
            })
            .is_some(),
            "nginx on {name} listens\n{}",
            self.lab.logs()
        );
    }

    fn stop_nginx(&mut self, i: usize) {
        if let Some(p) = self.nginx[i].take() {
            // SIGTERM, as `nginx -s stop`: the master takes its workers down (after SIGKILL
            // the orphaned worker would keep serving).
            self.lab.proc(p).signal("TERM");
            let _ = self.lab.proc(p).wait_exit(Duration::from_secs(5));
        }
    }

    fn start_lbd(&mut self, i: usize) {
        let conf = self
            .lab
            .write(&format!("lb{}.conf", i + 1), &director_conf(i == 0));
        let sock = self.lab.path(&format!("lb{}.sock", i + 1));
        let ns = self.lb[i].clone();
        self.lbd[i] = self.lab.spawn(
            &ns,
            &lbd(),
            &[
                "-f",
                conf.to_str().unwrap(),
                "-l",
                "--control",
                sock.to_str().unwrap(),
            ],
            &format!("lb{}.log", i + 1),
        );
    }

    fn show(&self, i: usize, extra: &[&str]) -> String {
        let sock = self.lab.path(&format!("lb{}.sock", i + 1));
        let mut args = vec!["show", "--control", sock.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = netns::cmd(&lbd(), &args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Requests from each source, `count` rounds; `source -> bodies`, plus the error lines.
    fn requests(&self, sources: &[String], count: usize) -> (HashMap<String, Vec<String>>, Vec<String>) {
        let script = data("http_client.py");
        let count = count.to_string();
        let mut args = vec![script.as_str(), VIP, "81", count.as_str()];
        args.extend(sources.iter().map(String::as_str));
        let out = self.lab.exec(&self.client, DEBIAN_PYTHON, &args);
        assert!(
            out.status.success(),
            "http_client.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut by_source: HashMap<String, Vec<String>> = HashMap::new();
        let mut errors = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (src, rest) = line.split_once(' ').unwrap_or((line, ""));
            if rest.starts_with("ERROR") {
                errors.push(line.to_string());
            } else {
                by_source
                    .entry(src.to_string())
                    .or_default()
                    .push(rest.to_string());
            }
        }
        (by_source, errors)
    }

    fn listed(&self, i: usize, rs: usize) -> bool {
        self.show(i, &[]).contains(&format!("-> {}:81", RS_ADDR[rs]))
    }
}

fn sources(from: u32, n: u32) -> Vec<String> {
    (from..from + n).map(|i| format!("172.27.9.{i}")).collect()
}

fn servers(by_source: &HashMap<String, Vec<String>>) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for bodies in by_source.values() {
        for b in bodies {
            *n.entry(b.clone()).or_insert(0) += 1;
        }
    }
    n
}

#[test]
fn seed_lab_dr_wrr_persistence_checks_and_failover() {
    let Some(lab) = Lab::new("seedlab") else { return };
    if let Some(missing) = missing_tools() {
        netns::skip("seed_lab", &format!("missing {missing}"));
        return;
    }
    let mut s = SeedLab::new(lab);

    // Capture everything the real servers receive, for the checksum check at the end.
    let mut captures = Vec::new();
    for i in 0..2 {
        let pcap = s.lab.path(&format!("rs{}.pcap", i + 1));
        let ns = s.rs[i].clone();
        let p = s.lab.spawn(
            &ns,
            "tcpdump",
            // Only what lbd forwarded: the kernel's own packets (health checks, the real
            // server's replies) leave with offloaded, not yet computed, checksums.
            &[
                "-i",
                "eth0",
                "-n",
                "-U",
                "--immediate-mode",
                "-w",
                pcap.to_str().unwrap(),
                "tcp port 81 and dst host 172.27.9.100",
            ],
            &format!("rs{}-tcpdump.log", i + 1),
        );
        captures.push((p, pcap));
    }

    s.start_lbd(0);
    s.start_lbd(1);
    let lb1 = s.lb[0].clone();
    let lb2 = s.lb[1].clone();
    let took = wait_until(Duration::from_secs(8), || has_address(&lb1, "eth0", VIP));
    assert!(took.is_some(), "lb1 becomes master\n{}", s.lab.logs());
    assert!(!has_address(&lb2, "eth0", VIP), "lb2 stays backup");
    println!("lb1 master after {:?}", took.unwrap());
    assert!(
        wait_until(Duration::from_secs(5), || s.listed(0, 0) && s.listed(0, 1)).is_some(),
        "both real servers in the table:\n{}\n{}",
        s.show(0, &[]),
        s.lab.logs()
    );
    let table = s.show(0, &[]);
    println!("{table}");
    assert!(
        table.contains("TCP  172.27.9.100:81 wrr persistent 50"),
        "{table}"
    );
    let vrrp = s.show(0, &["--vrrp"]);
    assert!(vrrp.contains("VI_1 MASTER"), "{vrrp}");

    // (1) wrr 1:2 over 90 persistent clients, 4 requests each: every client sticks to one
    // server, and the clients split 30:60.
    let clients = sources(110, 90);
    let (by_source, errors) = s.requests(&clients, 4);
    assert!(
        errors.is_empty(),
        "every request succeeds: {errors:?}\n{}",
        s.lab.logs()
    );
    for (src, bodies) in &by_source {
        assert_eq!(bodies.len(), 4, "{src}");
        assert!(
            bodies.iter().all(|b| b == &bodies[0]),
            "{src} sticks to one server: {bodies:?}"
        );
    }
    let split = servers(&by_source);
    println!("split over 360 requests: {split:?}");
    let (n1, n2) = (
        split.get("rs1").copied().unwrap_or(0),
        split.get("rs2").copied().unwrap_or(0),
    );
    assert_eq!(n1 + n2, 360);
    let share = n1 as f64 / 360.0;
    assert!((share - 1.0 / 3.0).abs() < 0.03, "rs1 serves a third: {split:?}");
    let stats = s.show(0, &["--stats"]);
    println!("{stats}");
    assert!(
        stats.contains("Conns   InPkts  OutPkts  InBytes OutBytes"),
        "{stats}"
    );
    let conns = s.show(0, &["-c"]);
    assert!(conns.contains("IPVS connection entries"), "{conns}");

    // SIGHUP with rs2's weight changed: the one destination is edited in place, nothing else
    // is touched, the connections stay. Then a broken file: refused, the running one stays.
    let before = s.show(0, &[]);
    let conf = director_conf(true).replacen("weight 2", "weight 3", 1);
    s.lab.write("lb1.conf", &conf);
    let lbd1 = s.lbd[0];
    s.lab.proc(lbd1).signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || s
            .show(0, &[])
            .contains("-> 172.27.9.92:81               Route   3"))
        .is_some(),
        "reload applies the new weight:\n{}\n{}",
        s.show(0, &[]),
        s.lab.logs()
    );
    let after = s.show(0, &[]);
    assert_eq!(
        after.replace("Route   3", "Route   2"),
        before,
        "only the weight changed; connection counts stay"
    );
    s.lab
        .write("lb1.conf", &conf.replace("lb_algo wrr", "lb_algo bogus"));
    s.lab.proc(lbd1).signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || s.lab.logs().contains("reload refused")).is_some(),
        "a broken file is refused:\n{}",
        s.lab.logs()
    );
    assert!(s.lab.logs().contains("lb1.conf:"), "the error names file:line");
    assert_eq!(s.show(0, &[]), after, "the running configuration stays");
    s.lab.write("lb1.conf", &director_conf(true));
    s.lab.proc(lbd1).signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || s
            .show(0, &[])
            .contains("-> 172.27.9.92:81               Route   2"))
        .is_some()
    );

    // (2) nginx down on rs1: once the checker notices, everything goes to rs2.
    s.stop_nginx(0);
    let took = wait_until(Duration::from_secs(10), || !s.listed(0, 0));
    assert!(
        took.is_some(),
        "rs1 removed:\n{}\n{}",
        s.show(0, &[]),
        s.lab.logs()
    );
    println!("rs1 removed {:?} after nginx stopped", took.unwrap());
    let (by_source, errors) = s.requests(&clients, 1);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        servers(&by_source).get("rs2"),
        Some(&90),
        "all to rs2: {by_source:?}"
    );

    // (3) nginx back: rs1 comes back and new clients reach it again.
    s.start_nginx(0);
    let took = wait_until(Duration::from_secs(10), || s.listed(0, 0));
    assert!(took.is_some(), "rs1 back:\n{}\n{}", s.show(0, &[]), s.lab.logs());
    println!("rs1 back {:?} after nginx started", took.unwrap());
    let newcomers = sources(200, 30);
    let (by_source, errors) = s.requests(&newcomers, 1);
    assert!(errors.is_empty(), "{errors:?}");
    let split = servers(&by_source);
    assert!(
        split.get("rs1").copied().unwrap_or(0) >= 5,
        "rs1 serves new clients again: {split:?}"
    );

    // (4) the master lbd killed: lb2 takes the VIP and requests keep succeeding.
    let p = s.lbd[0];
    s.lab.proc(p).signal("KILL");
    let _ = s.lab.proc(p).wait_exit(Duration::from_secs(5));
    let took = wait_until(Duration::from_secs(6), || has_address(&lb2, "eth0", VIP));
    assert!(took.is_some(), "lb2 takes over\n{}", s.lab.logs());
    println!("lb2 holds the VIP {:?} after lb1's lbd was killed", took.unwrap());
    assert!(
        wait_until(Duration::from_secs(5), || s.listed(1, 0) && s.listed(1, 1)).is_some(),
        "lb2 has both real servers:\n{}",
        s.show(1, &[])
    );
    let some = sources(110, 10);
    let (by_source, errors) = s.requests(&some, 2);
    assert!(
        errors.is_empty(),
        "requests through lb2: {errors:?}\n{}",
        s.lab.logs()
    );
    assert_eq!(by_source.values().map(Vec::len).sum::<usize>(), 20);
    assert!(s.show(1, &["--vrrp"]).contains("VI_1 MASTER"));

    // (5) the master back: it preempts.
    s.start_lbd(0);
    let took = wait_until(Duration::from_secs(8), || {
        has_address(&lb1, "eth0", VIP) && !has_address(&lb2, "eth0", VIP)
    });
    assert!(took.is_some(), "lb1 preempts\n{}", s.lab.logs());
    println!("lb1 preempted {:?} after restart", took.unwrap());
    assert!(wait_until(Duration::from_secs(5), || s.listed(0, 0) && s.listed(0, 1)).is_some());
    let (_, errors) = s.requests(&some, 2);
    assert!(
        errors.is_empty(),
        "requests through lb1 again: {errors:?}\n{}",
        s.lab.logs()
    );

    // Every frame the real servers received has valid checksums (scapy recomputes them).
    for (p, _) in &captures {
        s.lab.proc(*p).signal("INT");
        let _ = s.lab.proc(*p).wait_exit(Duration::from_secs(5));
    }
    let files: Vec<String> = captures.iter().map(|(_, f)| f.display().to_string()).collect();
    let mut args = vec![data("check_checksums.py")];
    args.extend(files);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = netns::cmd(DEBIAN_PYTHON, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "checksums: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .filter(|l| l.starts_with("checked "))
            .all(|l| !l.starts_with("checked 0 ")),
        "both captures hold packets: {text}"
    );

    // SIGTERM: clean exit, VIP released.
    for i in 0..2 {
        let p = s.lbd[i];
        s.lab.proc(p).signal("TERM");
        let st = s.lab.proc(p).wait_exit(Duration::from_secs(10));
        assert!(
            st.is_some_and(|st| st.success()),
            "lb{} exits 0: {st:?}\n{}",
            i + 1,
            s.lab.logs()
        );
    }
    assert!(!has_address(&lb1, "eth0", VIP) && !has_address(&lb2, "eth0", VIP));
}

/// Which forwarding method the routed lab runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Method {
    Nat,
    FullNat,
    Tunnel,
}

/// One director with two addresses on one segment, a client in the front subnet and two real
/// servers in the back subnet:
///
/// ```text
///   client 10.1.0.10/24 (default via 10.1.0.1)             --+
///   lb     10.1.0.1/24 + 10.2.0.1/24, VIP 10.1.0.100/32      --+-- br0
///          (+ FULLNAT local address 10.2.0.50/32)            |
///   rs1    10.2.0.2/24, rs2 10.2.0.3/24 (NAT: default via 10.2.0.1), nginx :8080
/// ```
///
/// lbd runs an ipvsadm-save file on the director's eth0. nginx answers `rsN $remote_addr`.
fn routed_lab(method: Method) {
    let tag = format!("{method:?}").to_lowercase();
    let Some(mut lab) = Lab::new(&tag) else { return };
    if let Some(missing) = missing_tools() {
        netns::skip(&tag, &format!("missing {missing}"));
        return;
    }
    let sw = lab.ns("sw");
    lab.bridge(&sw, "br0");
    let client = lab.ns("client");
    lab.veth(&client, "eth0", &sw, "br0", &["10.1.0.10/24"]);
    netns::must(
        "ip",
        &["-n", &client, "route", "add", "default", "via", "10.1.0.1"],
    );
    let lb = lab.ns("lb");
    lab.veth(&lb, "eth0", &sw, "br0", &["10.1.0.1/24", "10.2.0.1/24"]);
    netns::must("ip", &["-n", &lb, "addr", "add", "10.1.0.100/32", "dev", "eth0"]);
    netns::must("ip", &["-n", &lb, "addr", "add", "10.2.0.50/32", "dev", "eth0"]);
    let rs_addrs = ["10.2.0.2", "10.2.0.3"];
    let mut rss = Vec::new();
    for (i, addr) in rs_addrs.iter().enumerate() {
        let ns = lab.ns(&format!("rs{}", i + 1));
        lab.veth(&ns, "eth0", &sw, "br0", &[&format!("{addr}/24")]);
        if method == Method::Nat {
            netns::must("ip", &["-n", &ns, "route", "add", "default", "via", "10.2.0.1"]);
        }
        rss.push(ns);
    }
    let mut pcaps = Vec::new();
    for (i, ns) in rss.iter().enumerate() {
        let name = format!("rs{}", i + 1);
        spawn_nginx(&mut lab, ns, &name, 8080, &format!("{name} $remote_addr"));
        let pcap = lab.path(&format!("rs{}.pcap", i + 1));
        // Only what lbd forwarded: the kernel's own packets leave with offloaded, not yet
        // computed, checksums.
        let filter = match method {
            Method::Tunnel => "ip proto 4",
            Method::Nat => "tcp and src host 10.1.0.10",
            Method::FullNat => "tcp and src host 10.2.0.50",
        };
        let p = lab.spawn(
            ns,
            "tcpdump",
            &[
                "-i",
                "eth0",
                "-n",
                "-U",
                "--immediate-mode",
                "-w",
                pcap.to_str().unwrap(),
                filter,
            ],
            &format!("rs{}-tcpdump.log", i + 1),
        );
        pcaps.push((p, pcap));
    }
    let cpcap = lab.path("client.pcap");
    let p = lab.spawn(
        &client,
        "tcpdump",
        &[
            "-i",
            "eth0",
            "-n",
            "-U",
            "--immediate-mode",
            "-w",
            cpcap.to_str().unwrap(),
            "tcp and src host 10.1.0.100",
        ],
        "client-tcpdump.log",
    );
    pcaps.push((p, cpcap));

    let flag = match method {
        Method::Nat => "-m",
        Method::FullNat => "--fullnat",
        Method::Tunnel => "-i",
    };
    let rules = format!(
        "-A -t 10.1.0.100:80 -s rr\n-a -t 10.1.0.100:80 -r 10.2.0.2:8080 {flag} -w 1\n-a -t 10.1.0.100:80 -r 10.2.0.3:8080 {flag} -w 1\n"
    );
    let rules = lab.write("lb.rules", &rules);
    let sock = lab.path("lb.sock");
    let p = lab.spawn(
        &lb,
        &lbd(),
        &[
            "--ipvsadm-rules",
            rules.to_str().unwrap(),
            "-i",
            "eth0",
            "--laddr",
            "10.2.0.50",
            "--control",
            sock.to_str().unwrap(),
        ],
        "lb.log",
    );
    let show = |_: &Lab| {
        String::from_utf8_lossy(&netns::cmd(&lbd(), &["show", "--control", sock.to_str().unwrap()]).stdout)
            .into_owned()
    };
    assert!(
        wait_until(Duration::from_secs(5), || show(&lab).contains("-> 10.2.0.3:8080")).is_some(),
        "lbd up with both real servers:\n{}",
        lab.logs()
    );
    // Let tcpdump start capturing.
    std::thread::sleep(Duration::from_millis(300));

    let counters = || {
        String::from_utf8_lossy(
            &netns::cmd(
                &lbd(),
                &["show", "--counters", "--control", sock.to_str().unwrap()],
            )
            .stdout,
        )
        .into_owned()
    };
    let curl = |lab: &Lab| {
        let out = lab.exec(&client, "curl", &["-s", "--max-time", "2", "http://10.1.0.100/"]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    };
    if method == Method::Tunnel {
        // The real servers cannot decapsulate here: the connection does not complete, but the
        // SYNs arrive encapsulated.
        let _ = curl(&lab);
        let _ = curl(&lab);
    } else {
        let mut seen = HashMap::new();
        for _ in 0..6 {
            let (ok, body) = curl(&lab);
            assert!(
                ok,
                "{method:?}: curl through the VIP works: {body:?}\n{}\n{}\n{}",
                show(&lab),
                counters(),
                lab.logs()
            );
            *seen.entry(body).or_insert(0) += 1;
        }
        println!("{method:?}: {seen:?}");
        let source = if method == Method::Nat {
            "10.1.0.10"
        } else {
            "10.2.0.50"
        };
        assert_eq!(
            seen.get(&format!("rs1 {source}")),
            Some(&3),
            "{method:?}: rr, source {source}: {seen:?}"
        );
        assert_eq!(
            seen.get(&format!("rs2 {source}")),
            Some(&3),
            "{method:?}: rr, source {source}: {seen:?}"
        );
    }
    let table = show(&lab);
    println!("{table}");

    std::thread::sleep(Duration::from_millis(300));
    for (p, _) in &pcaps {
        lab.proc(*p).signal("INT");
        let _ = lab.proc(*p).wait_exit(Duration::from_secs(5));
    }
    if method == Method::Tunnel {
        // Decode: outer IPv4 protocol 4 from the director to the real server, inner TCP SYN
        // from the client to the VIP, both checksums valid.
        let script = "import sys
from scapy.all import IP, TCP, rdpcap
n = 0
for path in sys.argv[1:]:
    for p in rdpcap(path):
        if IP in p and p[IP].proto == 4:
            outer, inner = p[IP], p[IP].payload
            assert outer.src == '10.1.0.1', outer.src
            assert outer.dst in ('10.2.0.2', '10.2.0.3'), outer.dst
            assert inner.src == '10.1.0.10' and inner.dst == '10.1.0.100', inner.summary()
            assert inner[TCP].dport == 80 and 'S' in str(inner[TCP].flags), inner.summary()
            n += 1
print(f'decoded {n} IPIP packets')
assert n >= 2, n
";
        let mut args = vec!["-c", script];
        let files: Vec<String> = pcaps[..2].iter().map(|(_, f)| f.display().to_string()).collect();
        args.extend(files.iter().map(String::as_str));
        let out = netns::cmd(DEBIAN_PYTHON, &args);
        println!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(
            out.status.success(),
            "IPIP decode: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files: Vec<String> = pcaps.iter().map(|(_, f)| f.display().to_string()).collect();
    let mut args = vec![data("check_checksums.py")];
    args.extend(files);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = netns::cmd(DEBIAN_PYTHON, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "{method:?} checksums: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expect_packets = if method == Method::Tunnel { 2 } else { 3 };
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("checked ") && !l.starts_with("checked 0 "))
            .count(),
        expect_packets,
        "{method:?}: every capture holds packets: {text}\n{}",
        lab.logs()
    );

    lab.proc(p).signal("TERM");
    let st = lab.proc(p).wait_exit(Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "lbd exits 0: {st:?}\n{}",
        lab.logs()
    );
}

#[test]
fn nat_end_to_end_with_curl() {
    routed_lab(Method::Nat);
}

#[test]
fn fullnat_end_to_end_with_curl() {
    routed_lab(Method::FullNat);
}

#[test]
fn tun_packets_arrive_encapsulated() {
    routed_lab(Method::Tunnel);
}
