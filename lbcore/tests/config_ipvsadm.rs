//! ipvsadm rules: the tutorial rules, hand-written rules with long options and edits,
//! `ipvsadm -Sn` text round trips for every scheduler and forwarding method, and errors
//! with their exact `file:line: reason`.

use std::net::IpAddr;
use std::time::Duration;

use lbcore::config::*;
use lbcore::service::{Family, Forward, Netmask, Protocol, Sched, SchedFlags, ServiceKey, TunnelType};

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/config/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ok(text: &str) -> Parsed {
    match parse_ipvsadm_rules("r", text) {
        Ok(p) => p,
        Err(e) => panic!(
            "{}",
            e.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
        ),
    }
}

fn errors(text: &str) -> Vec<String> {
    parse_ipvsadm_rules("r", text)
        .expect_err("expected errors")
        .iter()
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn lvs_dr_tutorial_rules() {
    let text = data("lvs_dr.rules");
    let p = parse_ipvsadm_rules("lvs_dr.rules", &text).unwrap();
    assert!(p.warnings.is_empty());
    let vs = &p.plan.virtual_servers[0];
    assert_eq!(
        vs.service.key,
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            vip: ip("172.27.9.100"),
            port: 81
        }
    );
    assert_eq!(vs.service.sched, Sched::Wrr);
    assert_eq!(vs.service.persistence.unwrap().timeout, Duration::from_secs(50));
    assert_eq!(vs.origin.to_string(), "lvs_dr.rules:2");
    let d: Vec<_> = vs
        .real_servers
        .iter()
        .map(|r| (r.dest.addr, r.dest.port, r.dest.weight, r.dest.forward))
        .collect();
    assert_eq!(
        d,
        [
            (ip("172.27.9.91"), 81, 1, Forward::DirectRouting),
            (ip("172.27.9.92"), 81, 1, Forward::DirectRouting)
        ]
    );
    // The same text comes back, comments aside.
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(render_ipvsadm_rules(&p.plan), body);

    // The keepalived tutorial configuration describes the same services.
    let k = parse_keepalived("k", &data("lvs_dr_master.conf"), &mut NoIncludes).unwrap();
    let ks = &k.plan.virtual_servers[0];
    assert_eq!(ks.service, vs.service);
    assert_eq!(
        ks.real_servers.iter().map(|r| r.dest).collect::<Vec<_>>(),
        vs.real_servers.iter().map(|r| r.dest).collect::<Vec<_>>()
    );
}

#[test]
fn handwritten_rules_with_long_options_edits_and_defaults() {
    let p = ok(&data("handwritten.rules"));
    assert_eq!(
        p.warnings.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        Vec::<String>::new()
    );
    let v = &p.plan.virtual_servers;
    assert_eq!(v.len(), 5, "10.0.0.9 was deleted");
    // -E replaced the scheduler and kept the servers.
    assert_eq!(v[0].service.sched, Sched::Wrr);
    let rs: Vec<_> = v[0].real_servers.iter().map(|r| r.dest).collect();
    assert_eq!(rs.len(), 2, "10.1.0.3:80 was deleted");
    assert_eq!(
        (rs[0].addr, rs[0].port, rs[0].weight, rs[0].forward),
        (ip("10.1.0.1"), 8080, 3, Forward::Nat)
    );
    // -e replaced the whole server: thresholds back to 0.
    assert_eq!((rs[1].weight, rs[1].u_threshold, rs[1].l_threshold), (7, 0, 0));

    let udp = &v[1];
    assert_eq!(
        udp.service.key,
        ServiceKey::Addr {
            proto: Protocol::Udp,
            vip: ip("10.0.0.1"),
            port: 53
        }
    );
    assert_eq!(udp.service.flags, SchedFlags::PORT.union(SchedFlags::FALLBACK));
    assert!(udp.service.one_packet);
    assert_eq!(
        udp.real_servers[0].dest.forward,
        Forward::Tunnel(TunnelType::Ipip)
    );
    assert_eq!(
        udp.real_servers[0].dest.port, 53,
        "port defaults to the service's"
    );

    let fw = &v[2];
    assert_eq!(
        fw.service.key,
        ServiceKey::Fwmark {
            family: Family::V6,
            mark: 42
        }
    );
    assert_eq!(
        fw.service.persistence.unwrap().timeout,
        Duration::from_secs(300),
        "-p alone = 300 s"
    );
    assert_eq!(fw.service.persistence.unwrap().netmask, Netmask::V6Prefix(128));
    assert_eq!(
        fw.real_servers[0].dest.forward,
        Forward::Tunnel(TunnelType::Gue { port: 6080 })
    );
    assert_eq!(fw.real_servers[0].dest.port, 0);

    let v6 = &v[3];
    assert_eq!(v6.service.persistence.unwrap().netmask, Netmask::V6Prefix(64));
    assert_eq!(v6.service.sched, Sched::Wlc);
    let d = v6.real_servers[0].dest;
    assert_eq!(
        (d.addr, d.port, d.weight, d.forward, d.mac),
        (ip("2001:db8::21"), 443, 5, Forward::DirectRouting, None)
    );

    // The persistent all-ports service and its server with every default.
    let s = &v[4];
    assert_eq!(
        s.service.key,
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            vip: ip("10.0.0.2"),
            port: 0
        }
    );
    assert_eq!(s.service.persistence.unwrap().netmask, Netmask::V4(0xffff_ff00));
    assert_eq!(s.service.persistence.unwrap().timeout, Duration::from_secs(300));
    assert_eq!(s.real_servers[0].dest.weight, 1);
    assert_eq!(s.real_servers[0].dest.port, 0);
    assert_eq!(
        s.real_servers[0].dest.forward,
        Forward::DirectRouting,
        "ipvsadm's default is -g"
    );

    // --opt=value, glued short options and -C.
    let p3 = ok("-A -t 1.2.3.4:80 --scheduler=lc -p600\n-a -t 1.2.3.4:80 -r 5.6.7.8:80 -m -w9\n");
    let s = &p3.plan.virtual_servers[0];
    assert_eq!(
        (s.service.sched, s.service.persistence.unwrap().timeout),
        (Sched::Lc, Duration::from_secs(600))
    );
    assert_eq!(s.real_servers[0].dest.weight, 9);
    assert!(ok("-A -t 1.2.3.4:80\n-C\n").plan.virtual_servers.is_empty());
    // Old `ipvsadm -S` wrote `ops` and `pe NAME` without dashes.
    let old = ok("-A -u 1.2.3.4:5060 -s rr -p 60 pe sip ops\n");
    assert!(old.plan.virtual_servers[0].service.one_packet);
    assert_eq!(
        old.warnings[0].to_string(),
        "r:1: warning: pe sip: persistence engines are not supported; ignored"
    );
}

#[test]
fn every_scheduler_and_forwarding_method_round_trips() {
    let forwards = [
        ("-g", Forward::DirectRouting, ""),
        ("-i", Forward::Tunnel(TunnelType::Ipip), ""),
        (
            "-i",
            Forward::Tunnel(TunnelType::Gue { port: 6080 }),
            " --tun-type gue --tun-port 6080 --tun-nocsum",
        ),
        ("-m", Forward::Nat, ""),
        ("--fullnat", Forward::FullNat, ""),
    ];
    let mut text = String::new();
    let mut expect = Vec::new();
    for (n, s) in Sched::ALL.iter().enumerate() {
        let flags = match s {
            Sched::Sh => " -b sh-fallback,sh-port",
            Sched::Mh => " -b mh-port",
            _ => "",
        };
        let (svc, persist) = match n % 4 {
            0 => (format!("-t 192.0.2.{n}:80"), " -p 300 -M 255.255.0.0"),
            1 => (format!("-u 192.0.2.{n}:53"), " -o"),
            2 => (format!("-t [2001:db8::{n}]:443"), " -p 60 -M 48"),
            _ => (format!("-f {n}"), " -p 30"),
        };
        let persist = if n % 4 == 1 { " -o" } else { persist };
        text += &format!("-A {svc} -s {}{flags}{persist}\n", s.name());
        expect.push(*s);
        for (k, (sw, fwd, extra)) in forwards.iter().enumerate() {
            let r = if n % 4 == 2 {
                format!("[2001:db8:1::{}]:8{k}", k + 1)
            } else {
                format!("10.0.{n}.{k}:8{k}")
            };
            let thresholds = if k == 3 { " -x 100 -y 10" } else { "" };
            text += &format!("-a {svc} -r {r} {sw} -w {k}{thresholds}{extra}\n");
            let _ = fwd;
        }
    }
    let p = ok(&text);
    assert_eq!(p.plan.virtual_servers.len(), Sched::ALL.len());
    for (vs, s) in p.plan.virtual_servers.iter().zip(&expect) {
        assert_eq!(vs.service.sched, *s);
        let got: Vec<Forward> = vs.real_servers.iter().map(|r| r.dest.forward).collect();
        assert_eq!(got, forwards.iter().map(|f| f.1).collect::<Vec<_>>());
    }
    let sh = p
        .plan
        .virtual_servers
        .iter()
        .find(|v| v.service.sched == Sched::Sh)
        .unwrap();
    assert_eq!(sh.service.flags, SchedFlags::FALLBACK.union(SchedFlags::PORT));
    // Rendering gives back exactly the text, and parsing that gives the same plan.
    let rendered = render_ipvsadm_rules(&p.plan);
    assert_eq!(rendered, text);
    assert_eq!(ok(&rendered).plan.virtual_servers, p.plan.virtual_servers);
}

#[test]
fn errors_name_file_line_and_reason() {
    let cases: &[(&str, &[&str])] = &[
        (
            "-A -t 10.0.0.1:80 -s fastest\n",
            &[
                "r:1: -s: expected a scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh, fo, ovf, twos), found 'fastest'",
            ],
        ),
        (
            "\n-A -t 10.0.0.1 -s rr\n",
            &["r:2: -A -t 10.0.0.1:0: a service on port 0 (all ports) must be persistent: add -p"],
        ),
        (
            "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n",
            &["r:2: -A -t 10.0.0.1:80: service already added at r:1"],
        ),
        (
            "-a -t 10.0.0.1:80 -r 10.0.0.2\n",
            &["r:1: -a -t 10.0.0.1:80: no such service (add it with -A first)"],
        ),
        (
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 70000\n",
            &["r:2: -w: expected a weight 0..65535, found '70000'"],
        ),
        (
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m\n",
            &["r:3: -a -t 10.0.0.1:80: server 10.0.0.2:80 already added at r:2"],
        ),
        (
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -m\n",
            &[
                "r:2: -a -r [2001:db8::1]:80: the server's address family differs from the service's (only -i may mix families)",
            ],
        ),
        (
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue\n",
            &["r:2: -a: --tun-type gue needs --tun-port"],
        ),
        (
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type ipip\n",
            &["r:2: -a: --tun-type needs -i (tunnelling), not -m"],
        ),
        (
            "-A -t 10.0.0.1:80 -s rr -b sh-port\n",
            &["r:1: -b sh-port: only applies to the sh scheduler, not rr"],
        ),
        (
            "-A -t 10.0.0.1:80 -p 10 -M 255.255.0\n",
            &["r:1: -M: expected an IPv4 netmask like 255.255.255.0, found '255.255.0'"],
        ),
        (
            "-A -t 10.0.0.1:80 -p 0\n",
            &["r:1: -p: expected a timeout in seconds 1..2678400, found '0'"],
        ),
        (
            "-A -t 10.0.0.300:80\n",
            &[
                "r:1: -t: expected ADDRESS[:PORT] with a numeric address (IPv6 in brackets: [2001:db8::1]:80), found '10.0.0.300:80'",
            ],
        ),
        (
            "-A -t 10.0.0.1:80 -w 3\n",
            &["r:1: -A: server options (-r, -g, -i, -m, -w, -x, -y) belong on -a or -e"],
        ),
        (
            "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -s rr\n",
            &["r:2: -a: service options (-s, -p, -M, -b, -o) belong on -A or -E"],
        ),
        (
            "-A -f 0\n",
            &["r:1: -f: expected a firewall mark 1..4294967295, found '0'"],
        ),
        (
            "-t 10.0.0.1:80 -s rr\n",
            &["r:1: no command: expected -A, -E, -D, -C, -a, -e or -d at the start of the rule"],
        ),
        (
            "-A -t 10.0.0.1:80 --frobnicate\n",
            &["r:1: unknown option '--frobnicate'"],
        ),
        (
            "-L -n\n",
            &["r:1: -L: not a rule (expected -A, -E, -D, -C, -a, -e or -d)"],
        ),
        (
            "-A -t 10.0.0.1:80 -s\n",
            &["r:1: -s: expected a scheduler name, found nothing"],
        ),
        (
            "-D -t 10.0.0.1:80\n",
            &["r:1: -D -t 10.0.0.1:80: no such service"],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(errors(text), *want, "for:\n{text}");
    }
}
