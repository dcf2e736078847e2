//! `ipvsadm` rules (the output of `ipvsadm -Sn`, and hand-written rule files) into a
//! [`Plan`], and a [`Plan`]'s services back into that text ([`render_ipvsadm_rules`]).
//!
//! # Accepted lines
//! One command per line, optionally prefixed with `ipvsadm`; blank lines and `#` comments
//! are skipped. Commands, short or long:
//! - `-A|--add-service`, `-E|--edit-service`, `-D|--delete-service`, `-C|--clear`;
//! - `-a|--add-server`, `-e|--edit-server`, `-d|--delete-server`.
//!
//! Service: `-t|--tcp-service ADDR:PORT`, `-u|--udp-service ADDR:PORT` (IPv6 as
//! `[2001:db8::1]:80`; no port means port 0, persistent services only), `-f|--fwmark-service
//! MARK` with `-6|--ipv6` for IPv6; `-s|--scheduler NAME` (default `wlc`),
//! `-p|--persistent [TIMEOUT]` (default 300 s), `-M|--netmask MASK` (dotted for IPv4, prefix
//! length for IPv6), `-b|--sched-flags LIST` (`sh-port,sh-fallback,mh-port,mh-fallback,
//! flag-1,flag-2`), `-o|--ops`. Old `ipvsadm -S` wrote `ops` and `pe NAME` without dashes;
//! both are read.
//!
//! Server: `-r|--real-server ADDR[:PORT]` (default: the service's port), `-g|--gatewaying`
//! (DR, the default), `-i|--ipip` (TUN) with `--tun-type ipip|gue` and `--tun-port N`,
//! `-m|--masquerading` (NAT), `-w|--weight` (0..65535, default 1), `-x|--u-threshold`,
//! `-y|--l-threshold`. **Our extension:** `--fullnat` selects FULLNAT forwarding, which
//! mainline IPVS lacks.
//!
//! `--opt=value` and glued short options (`-w3`) are read as `getopt` does. As in ipvsadm,
//! `-E` and `-e` replace the whole service or server configuration with what the line says
//! (unspecified options take their defaults); a service's servers survive `-E`.
//!
//! DR servers get no MAC here ([`DestConfig::mac`] is `None`): the runner resolves it on the
//! outgoing interface before adding the server to the data plane.
//!
//! Never panics on any input.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

use super::util::{Diags, parse_u64};
use super::{Diagnostic, Origin, Parsed, Plan, RealServerPlan, VirtualServerPlan};
use crate::service::{
    DestConfig, Family, Forward, Netmask, Persistence, Protocol, Sched, SchedFlags, ServiceConfig,
    ServiceKey, TunnelType,
};

/// ipvsadm's default persistence timeout (`-p` without a value).
pub const DEFAULT_PERSISTENCE: Duration = Duration::from_secs(300);
/// The longest persistence timeout accepted (31 days).
const MAX_TIMEOUT: u64 = 86400 * 31;

/// Parses `ipvsadm` rules read from `file`. See the module documentation.
pub fn parse_ipvsadm_rules(file: &str, text: &str) -> Result<Parsed, Vec<Diagnostic>> {
    let mut d = Diags::default();
    let mut plan = Plan::default();
    for (n, line) in text.split('\n').enumerate() {
        let origin = Origin {
            file: file.to_owned(),
            line: u32::try_from(n + 1).unwrap_or(u32::MAX),
        };
        let seq = n as u64;
        let mut p = LineParser {
            d: &mut d,
            seq,
            origin: &origin,
        };
        p.line(line, &mut plan);
    }
    if d.has_errors() {
        Err(d.finish())
    } else {
        Ok(Parsed {
            plan,
            warnings: d.finish(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cmd {
    AddService,
    EditService,
    DelService,
    Clear,
    AddServer,
    EditServer,
    DelServer,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::AddService => "-A",
            Cmd::EditService => "-E",
            Cmd::DelService => "-D",
            Cmd::Clear => "-C",
            Cmd::AddServer => "-a",
            Cmd::EditServer => "-e",
            Cmd::DelServer => "-d",
        }
    }
    fn is_server(self) -> bool {
        matches!(self, Cmd::AddServer | Cmd::EditServer | Cmd::DelServer)
    }
}

/// Everything one line said.
#[derive(Default)]
struct Opts {
    cmd: Option<Cmd>,
    key: Option<KeySpec>,
    ipv6: bool,
    sched: Option<Sched>,
    persistent: Option<Duration>,
    netmask: Option<String>,
    flags: Option<String>,
    ops: bool,
    server: Option<(IpAddr, Option<u16>)>,
    forward: Option<(&'static str, Forward)>,
    tun_type: Option<String>,
    tun_port: Option<u16>,
    weight: Option<i32>,
    u_threshold: Option<u32>,
    l_threshold: Option<u32>,
}

enum KeySpec {
    Addr(Protocol, IpAddr, u16),
    Mark(u32),
}

struct LineParser<'a> {
    d: &'a mut Diags,
    seq: u64,
    origin: &'a Origin,
}

impl LineParser<'_> {
    fn err(&mut self, msg: String) {
        self.d.error(self.seq, self.origin, msg);
    }
    fn warn(&mut self, msg: String) {
        self.d.warn(self.seq, self.origin, msg);
    }

    fn line(&mut self, line: &str, plan: &mut Plan) {
        let line = match line.find('#') {
            Some(i) => &line[..i],
            None => line,
        };
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"ipvsadm") {
            words.remove(0);
        }
        if words.is_empty() {
            return;
        }
        // Split `--opt=value` and glued short options into separate words.
        let mut toks: Vec<String> = Vec::new();
        for w in words {
            if let Some(long) = w.strip_prefix("--") {
                match long.split_once('=') {
                    Some((o, v)) => {
                        toks.push(format!("--{o}"));
                        toks.push(v.to_string());
                    }
                    None => toks.push(w.to_string()),
                }
            } else if w.len() > 2
                && w.starts_with('-')
                && w.as_bytes()[1].is_ascii_alphabetic()
                && w.is_char_boundary(2)
            {
                toks.push(w[..2].to_string());
                toks.push(w[2..].to_string());
            } else {
                toks.push(w.to_string());
            }
        }
        let Some(o) = self.options(&toks) else { return };
        self.apply(o, plan);
    }

    /// Reads the words of a line into [`Opts`]; `None` after an error.
    fn options(&mut self, toks: &[String]) -> Option<Opts> {
        let mut o = Opts::default();
        let mut i = 0;
        while i < toks.len() {
            let t = toks[i].as_str();
            i += 1;
            // The value of an option that takes one.
            let mut value = |what: &str, me: &mut Self| -> Option<String> {
                match toks.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => {
                        me.err(format!("{t}: expected {what}, found nothing"));
                        None
                    }
                }
            };
            let cmd = match t {
                "-A" | "--add-service" => Some(Cmd::AddService),
                "-E" | "--edit-service" => Some(Cmd::EditService),
                "-D" | "--delete-service" => Some(Cmd::DelService),
                "-C" | "--clear" => Some(Cmd::Clear),
                "-a" | "--add-server" => Some(Cmd::AddServer),
                "-e" | "--edit-server" => Some(Cmd::EditServer),
                "-d" | "--delete-server" => Some(Cmd::DelServer),
                _ => None,
            };
            if let Some(c) = cmd {
                if let Some(prev) = o.cmd {
                    self.err(format!(
                        "two commands on one line ({} and {})",
                        prev.name(),
                        c.name()
                    ));
                    return None;
                }
                o.cmd = Some(c);
                continue;
            }
            match t {
                "-t" | "--tcp-service" | "-u" | "--udp-service" => {
                    let proto = if t == "-t" || t == "--tcp-service" {
                        Protocol::Tcp
                    } else {
                        Protocol::Udp
                    };
                    let v = value("ADDRESS:PORT", self)?;
                    let (ip, port) = self.addr_port(t, &v)?;
                    o.key = Some(KeySpec::Addr(proto, ip, port.unwrap_or(0)));
                }
                "--sctp-service" => {
                    self.err("--sctp-service: SCTP is not supported (TCP or UDP)".to_string());
                    return None;
                }
                "-f" | "--fwmark-service" => {
                    let v = value("a firewall mark 1..4294967295", self)?;
                    match parse_mark(&v) {
                        Some(m) => o.key = Some(KeySpec::Mark(m)),
                        None => {
                            self.err(format!(
                                "{t}: expected a firewall mark 1..4294967295, found '{v}'"
                            ));
                            return None;
                        }
                    }
                }
                "-6" | "--ipv6" => o.ipv6 = true,
                "-s" | "--scheduler" => {
                    let v = value("a scheduler name", self)?;
                    match Sched::from_name(&v) {
                        Some(s) => o.sched = Some(s),
                        None => {
                            let names: Vec<&str> = Sched::ALL.iter().map(|s| s.name()).collect();
                            self.err(format!(
                                "{t}: expected a scheduler ({}), found '{v}'",
                                names.join(", ")
                            ));
                            return None;
                        }
                    }
                }
                "-p" | "--persistent" => {
                    // Optional value: taken when the next word is not an option.
                    match toks.get(i) {
                        Some(v) if !v.starts_with('-') && v != "ops" && v != "pe" => {
                            i += 1;
                            match parse_u64(v, 1, MAX_TIMEOUT) {
                                Some(s) => o.persistent = Some(Duration::from_secs(s)),
                                None => {
                                    self.err(format!(
                                        "{t}: expected a timeout in seconds 1..{MAX_TIMEOUT}, found '{v}'"
                                    ));
                                    return None;
                                }
                            }
                        }
                        _ => o.persistent = Some(DEFAULT_PERSISTENCE),
                    }
                }
                "-M" | "--netmask" => o.netmask = Some(value("a netmask", self)?),
                "-b" | "--sched-flags" => o.flags = Some(value("scheduler flags", self)?),
                "-o" | "--ops" | "ops" => o.ops = true,
                "--pe" | "pe" => {
                    let v = value("a persistence engine", self)?;
                    self.warn(format!("{t} {v}: persistence engines are not supported; ignored"));
                }
                "-r" | "--real-server" => {
                    let v = value("ADDRESS[:PORT]", self)?;
                    o.server = Some(self.addr_port(t, &v)?);
                }
                "-g" | "--gatewaying" => o.forward = Some((t_static(t), Forward::DirectRouting)),
                "-i" | "--ipip" => o.forward = Some((t_static(t), Forward::Tunnel(TunnelType::Ipip))),
                "-m" | "--masquerading" => o.forward = Some((t_static(t), Forward::Nat)),
                "--fullnat" => o.forward = Some(("--fullnat", Forward::FullNat)),
                "--tun-type" => o.tun_type = Some(value("ipip or gue", self)?),
                "--tun-port" => {
                    let v = value("a UDP port 1..65535", self)?;
                    match parse_u64(&v, 1, 65535) {
                        Some(p) => o.tun_port = Some(p as u16),
                        None => {
                            self.err(format!("{t}: expected a UDP port 1..65535, found '{v}'"));
                            return None;
                        }
                    }
                }
                "--tun-nocsum" => {}
                "--tun-csum" | "--tun-remcsum" => self.warn(format!(
                    "{t}: tunnel checksums are not supported; GUE is sent without"
                )),
                "-w" | "--weight" => {
                    let v = value("a weight 0..65535", self)?;
                    match parse_u64(&v, 0, 65535) {
                        Some(w) => o.weight = Some(w as i32),
                        None => {
                            self.err(format!("{t}: expected a weight 0..65535, found '{v}'"));
                            return None;
                        }
                    }
                }
                "-x" | "--u-threshold" | "-y" | "--l-threshold" => {
                    let v = value("a connection count", self)?;
                    match parse_u64(&v, 0, i32::MAX as u64) {
                        Some(x) if t == "-x" || t == "--u-threshold" => o.u_threshold = Some(x as u32),
                        Some(x) => o.l_threshold = Some(x as u32),
                        None => {
                            self.err(format!(
                                "{t}: expected a connection count 0..{}, found '{v}'",
                                i32::MAX
                            ));
                            return None;
                        }
                    }
                }
                "-n" | "--numeric" => {}
                "-L" | "-l" | "--list" | "-S" | "--save" | "-R" | "--restore" | "-Z" | "--zero" | "--set"
                | "--start-daemon" | "--stop-daemon" | "-h" | "--help" | "-v" | "--version" => {
                    self.err(format!("{t}: not a rule (expected -A, -E, -D, -C, -a, -e or -d)"));
                    return None;
                }
                _ => {
                    self.err(format!("unknown option '{t}'"));
                    return None;
                }
            }
        }
        if o.cmd.is_none() {
            self.err(
                "no command: expected -A, -E, -D, -C, -a, -e or -d at the start of the rule".to_string(),
            );
            return None;
        }
        Some(o)
    }

    /// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80`.
    fn addr_port(&mut self, opt: &str, v: &str) -> Option<(IpAddr, Option<u16>)> {
        let (host, port) = if let Some(rest) = v.strip_prefix('[') {
            match rest.split_once(']') {
                Some((h, "")) => (h, None),
                Some((h, p)) => match p.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None => ("", None),
                },
                None => ("", None),
            }
        } else if v.matches(':').count() > 1 {
            // A bare IPv6 address (no port).
            (v, None)
        } else {
            match v.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (v, None),
            }
        };
        let Ok(ip) = host.parse::<IpAddr>() else {
            self.err(format!(
                "{opt}: expected ADDRESS[:PORT] with a numeric address (IPv6 in brackets: [2001:db8::1]:80), found '{v}'"
            ));
            return None;
        };
        let port = match port {
            None => None,
            Some(p) => match parse_u64(p, 0, 65535) {
                Some(p) => Some(p as u16),
                None => {
                    self.err(format!("{opt}: expected a port 0..65535 after ':', found '{p}'"));
                    return None;
                }
            },
        };
        Some((ip, port))
    }

    /// Checks which options the command allows and applies it to the plan.
    fn apply(&mut self, o: Opts, plan: &mut Plan) {
        let Some(cmd) = o.cmd else { return };
        let c = cmd.name();
        // Options that make no sense with the command are refused as ipvsadm does.
        let svc_opts =
            o.sched.is_some() || o.persistent.is_some() || o.netmask.is_some() || o.flags.is_some() || o.ops;
        let srv_opts = o.forward.is_some()
            || o.weight.is_some()
            || o.u_threshold.is_some()
            || o.l_threshold.is_some()
            || o.tun_type.is_some()
            || o.tun_port.is_some();
        if cmd == Cmd::Clear {
            if o.key.is_some() || svc_opts || srv_opts || o.server.is_some() {
                self.err("-C: takes no other option".to_string());
                return;
            }
            plan.virtual_servers.clear();
            return;
        }
        let Some(spec) = &o.key else {
            self.err(format!(
                "{c}: expected a service (-t ADDRESS:PORT, -u ADDRESS:PORT or -f MARK)"
            ));
            return;
        };
        if cmd.is_server() && svc_opts {
            self.err(format!(
                "{c}: service options (-s, -p, -M, -b, -o) belong on -A or -E"
            ));
            return;
        }
        if !cmd.is_server() && (srv_opts || o.server.is_some()) {
            self.err(format!(
                "{c}: server options (-r, -g, -i, -m, -w, -x, -y) belong on -a or -e"
            ));
            return;
        }
        if o.ipv6 && !matches!(spec, KeySpec::Mark(_)) {
            self.err(format!("{c}: -6 only applies to -f (a fwmark service)"));
            return;
        }
        let key = match *spec {
            KeySpec::Addr(proto, vip, port) => ServiceKey::Addr { proto, vip, port },
            KeySpec::Mark(mark) => ServiceKey::Fwmark {
                family: if o.ipv6 { Family::V6 } else { Family::V4 },
                mark,
            },
        };
        let label = service_label(&key);
        let found = plan.virtual_servers.iter().position(|v| v.service.key == key);
        match cmd {
            Cmd::AddService | Cmd::EditService => {
                let Some(svc) = self.service(key, &o, &label) else {
                    return;
                };
                match (cmd, found) {
                    (Cmd::AddService, Some(k)) => {
                        let at = &plan.virtual_servers[k].origin;
                        self.err(format!("-A {label}: service already added at {at}"))
                    }
                    (Cmd::AddService, None) => plan.virtual_servers.push(VirtualServerPlan {
                        service: svc,
                        delay_loop: Duration::from_secs(60),
                        quorum: 1,
                        hysteresis: 0,
                        quorum_up: None,
                        quorum_down: None,
                        sorry_server: None,
                        sorry_server_inhibit: false,
                        omega: false,
                        alpha: false,
                        ha_suspend: false,
                        real_servers: Vec::new(),
                        origin: self.origin.clone(),
                    }),
                    (_, Some(k)) => plan.virtual_servers[k].service = svc,
                    (_, None) => self.err(format!("-E {label}: no such service (add it with -A first)")),
                }
            }
            Cmd::DelService => match found {
                Some(k) => {
                    plan.virtual_servers.remove(k);
                }
                None => self.err(format!("-D {label}: no such service")),
            },
            Cmd::AddServer | Cmd::EditServer | Cmd::DelServer => {
                let Some(k) = found else {
                    self.err(format!("{c} {label}: no such service (add it with -A first)"));
                    return;
                };
                let Some((addr, port)) = o.server else {
                    self.err(format!("{c} {label}: expected -r ADDRESS[:PORT]"));
                    return;
                };
                let vs = &mut plan.virtual_servers[k];
                let svc_port = match key {
                    ServiceKey::Addr { port, .. } => port,
                    ServiceKey::Fwmark { .. } => 0,
                };
                let port = port.unwrap_or(svc_port);
                let at = vs
                    .real_servers
                    .iter()
                    .position(|r| r.dest.addr == addr && r.dest.port == port);
                let rname = match addr {
                    IpAddr::V4(_) => format!("{addr}:{port}"),
                    IpAddr::V6(_) => format!("[{addr}]:{port}"),
                };
                if cmd == Cmd::DelServer {
                    match at {
                        Some(i) => {
                            vs.real_servers.remove(i);
                        }
                        None => self.err(format!("-d {label}: no server {rname}")),
                    }
                    return;
                }
                let Some(dest) = self.dest(addr, port, &o, key.family(), &rname) else {
                    return;
                };
                match (cmd, at) {
                    (Cmd::AddServer, Some(i)) => {
                        let prev = vs.real_servers[i].origin.clone();
                        self.err(format!("-a {label}: server {rname} already added at {prev}"));
                    }
                    (Cmd::AddServer, None) => vs.real_servers.push(RealServerPlan {
                        dest,
                        inhibit_on_failure: false,
                        notify_up: None,
                        notify_down: None,
                        checks: Vec::new(),
                        origin: self.origin.clone(),
                    }),
                    (_, Some(i)) => vs.real_servers[i].dest = dest,
                    (_, None) => self.err(format!("-e {label}: no server {rname} (add it with -a first)")),
                }
            }
            Cmd::Clear => {}
        }
    }

    fn service(&mut self, key: ServiceKey, o: &Opts, label: &str) -> Option<ServiceConfig> {
        let c = o.cmd.map(Cmd::name).unwrap_or("-A");
        let sched = o.sched.unwrap_or(Sched::Wlc);
        let mut svc = ServiceConfig::new(key).scheduler(sched).one_packet(o.ops);
        if o.ops
            && !matches!(
                key,
                ServiceKey::Addr {
                    proto: Protocol::Udp,
                    ..
                }
            )
        {
            self.warn(format!(
                "{c} {label}: -o (one-packet scheduling) only affects UDP"
            ));
        }
        if let Some(list) = &o.flags {
            let mut fl = SchedFlags::NONE;
            for f in list.split(',') {
                let (bit, only) = match f {
                    "sh-fallback" => (SchedFlags::FALLBACK, Some(Sched::Sh)),
                    "sh-port" => (SchedFlags::PORT, Some(Sched::Sh)),
                    "mh-fallback" => (SchedFlags::FALLBACK, Some(Sched::Mh)),
                    "mh-port" => (SchedFlags::PORT, Some(Sched::Mh)),
                    "flag-1" => (SchedFlags::FALLBACK, None),
                    "flag-2" => (SchedFlags::PORT, None),
                    "flag-3" => {
                        self.warn("-b flag-3: no scheduler uses it; ignored".to_string());
                        continue;
                    }
                    _ => {
                        self.err(format!(
                            "-b: expected sh-fallback, sh-port, mh-fallback, mh-port, flag-1, flag-2 or flag-3, found '{f}'"
                        ));
                        return None;
                    }
                };
                if let Some(s) = only
                    && s != sched
                {
                    self.err(format!(
                        "-b {f}: only applies to the {} scheduler, not {}",
                        s.name(),
                        sched.name()
                    ));
                    return None;
                }
                fl = fl.union(bit);
            }
            svc = svc.flags(fl);
        }
        let family = key.family();
        if let Some(t) = o.persistent {
            svc.persistence = Some(Persistence {
                timeout: t,
                netmask: Netmask::host(family),
            });
        }
        if let Some(m) = &o.netmask {
            let mask = match family {
                Family::V4 => m.parse::<Ipv4Addr>().ok().map(|a| Netmask::V4(u32::from(a))),
                Family::V6 => parse_u64(m, 1, 128).map(|l| Netmask::V6Prefix(l as u8)),
            };
            let Some(mask) = mask else {
                let what = if family == Family::V4 {
                    "an IPv4 netmask like 255.255.255.0"
                } else {
                    "an IPv6 prefix length 1..128"
                };
                self.err(format!("-M: expected {what}, found '{m}'"));
                return None;
            };
            if svc.persistence.is_none() {
                self.warn(format!("{c} {label}: -M has no effect without -p; ignored"));
            }
            svc = svc.netmask(mask);
        }
        if let ServiceKey::Addr { port: 0, .. } = key
            && svc.persistence.is_none()
        {
            self.err(format!(
                "{c} {label}: a service on port 0 (all ports) must be persistent: add -p"
            ));
            return None;
        }
        Some(svc)
    }

    fn dest(&mut self, addr: IpAddr, port: u16, o: &Opts, family: Family, rname: &str) -> Option<DestConfig> {
        let c = o.cmd.map(Cmd::name).unwrap_or("-a");
        // ipvsadm's default forwarding method is DR (-g).
        let (fname, mut forward) = o.forward.unwrap_or(("-g", Forward::DirectRouting));
        match (&o.tun_type, forward) {
            (None, _) => {}
            (Some(t), Forward::Tunnel(_)) => match t.as_str() {
                "ipip" => {}
                "gue" => match o.tun_port {
                    Some(p) => forward = Forward::Tunnel(TunnelType::Gue { port: p }),
                    None => {
                        self.err(format!("{c}: --tun-type gue needs --tun-port"));
                        return None;
                    }
                },
                "gre" => {
                    self.err("--tun-type: gre is not supported (ipip or gue)".to_string());
                    return None;
                }
                other => {
                    self.err(format!("--tun-type: expected ipip or gue, found '{other}'"));
                    return None;
                }
            },
            (Some(_), _) => {
                self.err(format!("{c}: --tun-type needs -i (tunnelling), not {fname}"));
                return None;
            }
        }
        if o.tun_port.is_some() && !matches!(forward, Forward::Tunnel(TunnelType::Gue { .. })) {
            self.err(format!("{c}: --tun-port only applies to --tun-type gue"));
            return None;
        }
        if Family::of(&addr) != family && !matches!(forward, Forward::Tunnel(_)) {
            self.err(format!(
                "{c} -r {rname}: the server's address family differs from the service's (only -i may mix families)"
            ));
            return None;
        }
        let mut dest = DestConfig::new(addr, port)
            .forward(forward)
            .weight(o.weight.unwrap_or(1));
        dest.u_threshold = o.u_threshold.unwrap_or(0);
        dest.l_threshold = o.l_threshold.unwrap_or(0);
        Some(dest)
    }
}

fn t_static(t: &str) -> &'static str {
    match t {
        "-g" | "--gatewaying" => "-g",
        "-i" | "--ipip" => "-i",
        _ => "-m",
    }
}

/// A firewall mark: decimal or `0x` hex, 1..=u32::MAX.
fn parse_mark(v: &str) -> Option<u32> {
    let m = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) if !h.is_empty() && h.len() <= 8 => u32::from_str_radix(h, 16).ok()?,
        Some(_) => return None,
        None => parse_u64(v, 0, u32::MAX as u64)? as u32,
    };
    (m != 0).then_some(m)
}

fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// `-t 1.2.3.4:80`, `-u [2001:db8::1]:53`, `-f 7`, `-f 7 -6`.
fn service_label(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Addr { proto, vip, port } => {
            let p = if proto == Protocol::Tcp { "-t" } else { "-u" };
            format!("{p} {}", addr_port(vip, port))
        }
        ServiceKey::Fwmark { family, mark } => {
            if family == Family::V6 {
                format!("-f {mark} -6")
            } else {
                format!("-f {mark}")
            }
        }
    }
}

/// The virtual servers of `plan` as `ipvsadm -Sn` prints them: one `-A` line per service
/// followed by its `-a` lines, in plan order. [`parse_ipvsadm_rules`] reads the text back to
/// the same services and servers (keepalived-only settings such as checks are not
/// expressible and are left out). FULLNAT servers are written with our `--fullnat`.
pub fn render_ipvsadm_rules(plan: &Plan) -> String {
    let mut out = String::new();
    for vs in &plan.virtual_servers {
        let s = &vs.service;
        let label = service_label(&s.key);
        let _ = write!(out, "-A {label} -s {}", s.sched.name());
        let bits = s.flags;
        if bits != SchedFlags::NONE {
            let (fb, pt) = match s.sched {
                Sched::Sh => ("sh-fallback", "sh-port"),
                Sched::Mh => ("mh-fallback", "mh-port"),
                _ => ("flag-1", "flag-2"),
            };
            let mut names: Vec<&str> = Vec::new();
            if bits.contains(SchedFlags::FALLBACK) {
                names.push(fb);
            }
            if bits.contains(SchedFlags::PORT) {
                names.push(pt);
            }
            let _ = write!(out, " -b {}", names.join(","));
        }
        if let Some(p) = &s.persistence {
            let _ = write!(out, " -p {}", p.timeout.as_secs());
            match p.netmask {
                Netmask::V4(m) if m != u32::MAX => {
                    let _ = write!(out, " -M {}", Ipv4Addr::from(m));
                }
                Netmask::V6Prefix(l) if l != 128 => {
                    let _ = write!(out, " -M {l}");
                }
                _ => {}
            }
        }
        if s.one_packet {
            out.push_str(" -o");
        }
        out.push('\n');
        for rs in &vs.real_servers {
            let d = &rs.dest;
            let fwd = match d.forward {
                Forward::DirectRouting => "-g",
                Forward::Tunnel(_) => "-i",
                Forward::Nat => "-m",
                Forward::FullNat => "--fullnat",
            };
            let _ = write!(
                out,
                "-a {label} -r {} {fwd} -w {}",
                addr_port(d.addr, d.port),
                d.weight
            );
            if d.u_threshold != 0 {
                let _ = write!(out, " -x {}", d.u_threshold);
            }
            if d.l_threshold != 0 {
                let _ = write!(out, " -y {}", d.l_threshold);
            }
            if let Forward::Tunnel(TunnelType::Gue { port }) = d.forward {
                let _ = write!(out, " --tun-type gue --tun-port {port} --tun-nocsum");
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_labels() {
        assert_eq!(parse_mark("0x1f"), Some(31));
        assert_eq!(parse_mark("4294967295"), Some(u32::MAX));
        assert_eq!(parse_mark("0"), None);
        assert_eq!(parse_mark("0x"), None);
        assert_eq!(parse_mark("0x100000000"), None);
        let k = ServiceKey::Fwmark {
            family: Family::V6,
            mark: 3,
        };
        assert_eq!(service_label(&k), "-f 3 -6");
        assert_eq!(addr_port("2001:db8::1".parse().unwrap(), 80), "[2001:db8::1]:80");
    }

    #[test]
    fn address_forms() {
        let p = parse_ipvsadm_rules(
            "r",
            "-A -t [2001:db8::1]:80\n-a -t [2001:db8::1]:80 -r 2001:db8::2 -m\n-a -t [2001:db8::1]:80 -r [2001:db8::3] -m\n",
        )
        .unwrap();
        let rs = &p.plan.virtual_servers[0].real_servers;
        assert_eq!((rs[0].dest.port, rs[1].dest.port), (80, 80));
        let e = parse_ipvsadm_rules("r", "-A -t [2001:db8::1:80\n").unwrap_err();
        assert!(
            e[0].message.starts_with("-t: expected ADDRESS[:PORT]"),
            "{}",
            e[0]
        );
    }
}
