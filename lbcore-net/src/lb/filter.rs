//! Keeping the host's own stack away from the packets lbd forwards.
//!
//! With an AF_PACKET driver the kernel receives its own copy of every frame lbd balances. For a
//! VIP the kernel holds (VRRP puts it on the interface) it would answer a SYN to a port it does
//! not listen on with a RST, and NAT replies it is not meant to route would earn the real
//! server an ICMP error. IPVS avoids this by consuming the packets in LOCAL_IN; lbd installs an
//! nftables table `inet lbd` whose prerouting chain (priority raw) drops exactly those copies —
//! AF_PACKET sees frames before netfilter, so lbd still gets them:
//!
//! - packets to a service's VIP and port (every port for port-0 services);
//! - replies from NAT/FULLNAT real servers (source address and port) that are not addressed
//!   to one of the host's own addresses — so the host's health checks, whose replies come
//!   from the same address and port to the host's own address, are untouched;
//! - everything from a FULLNAT real server to a FULLNAT local address (the local address is
//!   lbd's, the host never uses it as a source).
//!
//! Firewall-mark services cannot be expressed as such a rule; they are reported and left to
//! the operator. The table is replaced atomically on every change and deleted on exit.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::process::{Command, Stdio};

use lbcore::service::{Forward, ServiceConfig, ServiceKey};

/// The nftables table lbd owns.
pub const TABLE: &str = "inet lbd";

/// One service with its destinations, as the filter needs them.
#[derive(Clone, Debug)]
pub struct FilterService {
    /// The service.
    pub service: ServiceConfig,
    /// Its destinations: address, port, forwarding method.
    pub dests: Vec<(IpAddr, u16, Forward)>,
}

fn family(a: IpAddr) -> &'static str {
    if a.is_ipv4() { "ip" } else { "ip6" }
}

fn proto_name(p: lbcore::service::Protocol) -> &'static str {
    match p {
        lbcore::service::Protocol::Tcp => "tcp",
        lbcore::service::Protocol::Udp => "udp",
    }
}

/// The nft script that (re)creates the table for `services` and FULLNAT `local_addrs`; the
/// warnings name what could not be filtered.
pub fn script(services: &[FilterService], local_addrs: &[IpAddr]) -> (String, Vec<String>) {
    let mut rules = Vec::new();
    let mut warnings = Vec::new();
    for s in services {
        match s.service.key {
            ServiceKey::Addr { proto, vip, port } => {
                let p = proto_name(proto);
                let f = family(vip);
                if port == 0 {
                    rules.push(format!("{f} daddr {vip} meta l4proto {p} drop"));
                } else {
                    rules.push(format!("{f} daddr {vip} {p} dport {port} drop"));
                }
                for &(addr, dport, forward) in &s.dests {
                    let fa = family(addr);
                    match forward {
                        Forward::Nat | Forward::FullNat => {
                            let sport = if dport == 0 { port } else { dport };
                            let rule = if sport == 0 {
                                format!("{fa} saddr {addr} meta l4proto {p} fib daddr type != local drop")
                            } else {
                                format!("{fa} saddr {addr} {p} sport {sport} fib daddr type != local drop")
                            };
                            if !rules.contains(&rule) {
                                rules.push(rule);
                            }
                            if forward == Forward::FullNat {
                                for l in local_addrs.iter().filter(|l| l.is_ipv4() == addr.is_ipv4()) {
                                    let rule = format!("{fa} saddr {addr} {fa} daddr {l} meta l4proto {p} drop");
                                    if !rules.contains(&rule) {
                                        rules.push(rule);
                                    }
                                }
                            }
                        }
                        Forward::DirectRouting | Forward::Tunnel(_) => {}
                    }
                }
            }
            ServiceKey::Fwmark { mark, .. } => warnings.push(format!(
                "fwmark {mark} service: the host stack still sees its packets; drop them in your own nftables rules"
            )),
        }
    }
    let mut text = String::new();
    // `add` + `delete` + `add` makes the replacement atomic and works whether or not the table
    // exists (nft applies a script as one transaction).
    let _ = writeln!(text, "add table {TABLE}");
    let _ = writeln!(text, "delete table {TABLE}");
    let _ = writeln!(text, "table {TABLE} {{");
    let _ = writeln!(text, "  chain prerouting {{");
    let _ = writeln!(
        text,
        "    type filter hook prerouting priority raw; policy accept;"
    );
    for r in &rules {
        let _ = writeln!(text, "    {r}");
    }
    let _ = writeln!(text, "  }}");
    let _ = writeln!(text, "}}");
    (text, warnings)
}

fn nft(script: &str) -> io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run nft ({e}): install nftables, or run lbd with --no-host-filter"),
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "nft -f - failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The installed table; [`HostFilter::remove`] (or drop) deletes it.
#[derive(Debug)]
pub struct HostFilter {
    installed: bool,
}

impl HostFilter {
    /// Installs (or replaces) the table for `services`; returns the warnings of [`script`].
    pub fn install(
        services: &[FilterService],
        local_addrs: &[IpAddr],
    ) -> io::Result<(HostFilter, Vec<String>)> {
        let (text, warnings) = script(services, local_addrs);
        nft(&text)?;
        Ok((HostFilter { installed: true }, warnings))
    }

    /// Replaces the rules after a reload.
    pub fn update(&mut self, services: &[FilterService], local_addrs: &[IpAddr]) -> io::Result<Vec<String>> {
        let (text, warnings) = script(services, local_addrs);
        nft(&text)?;
        self.installed = true;
        Ok(warnings)
    }

    /// Deletes the table.
    pub fn remove(&mut self) -> io::Result<()> {
        if self.installed {
            self.installed = false;
            nft(&format!("delete table {TABLE}\n"))?;
        }
        Ok(())
    }
}

impl Drop for HostFilter {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbcore::service::TunnelType;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rules_for_each_method() {
        let services = vec![
            FilterService {
                service: ServiceConfig::tcp(ip("172.27.9.100"), 81),
                dests: vec![
                    (ip("172.27.9.91"), 81, Forward::DirectRouting),
                    (ip("172.27.9.92"), 81, Forward::Tunnel(TunnelType::Ipip)),
                ],
            },
            FilterService {
                service: ServiceConfig::udp(ip("2001:db8::100"), 53),
                dests: vec![(ip("2001:db8::2"), 5353, Forward::Nat)],
            },
            FilterService {
                service: ServiceConfig::tcp(ip("10.1.0.100"), 80),
                dests: vec![(ip("10.2.0.2"), 8080, Forward::FullNat)],
            },
            FilterService {
                service: ServiceConfig::fwmark(lbcore::service::Family::V4, 7),
                dests: vec![],
            },
        ];
        let (text, warnings) = script(&services, &[ip("10.2.0.50")]);
        assert_eq!(
            text,
            "add table inet lbd
delete table inet lbd
table inet lbd {
  chain prerouting {
    type filter hook prerouting priority raw; policy accept;
    ip daddr 172.27.9.100 tcp dport 81 drop
    ip6 daddr 2001:db8::100 udp dport 53 drop
    ip6 saddr 2001:db8::2 udp sport 5353 fib daddr type != local drop
    ip daddr 10.1.0.100 tcp dport 80 drop
    ip saddr 10.2.0.2 tcp sport 8080 fib daddr type != local drop
    ip saddr 10.2.0.2 ip daddr 10.2.0.50 meta l4proto tcp drop
  }
}
"
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("fwmark 7 service"), "{warnings:?}");
    }
}
