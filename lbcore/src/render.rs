//! `ipvsadm` text, byte for byte: `ipvsadm -Ln`, `-Ln --stats`, `-Ln --rate`, their
//! `--exact`, `--nosort`, `--persistent-conn` and `--tun-info` variants, and `ipvsadm -Lnc`.
//!
//! The balancer fills in plain snapshot structs ([`ServiceView`], [`DestView`], [`ConnView`],
//! [`TableInfo`]); the functions here only format them, so the output is a pure function of
//! the snapshot. The formats follow ipvsadm 1.31's `ipvsadm.c` (`list_all`, `print_title`,
//! `print_service_entry`, `print_largenum`, `print_sched_flags`, `list_conn`/`print_conn`) and
//! its `libipvs` sort order (`ipvs_cmp_services`, `ipvs_cmp_dests`):
//!
//! - columns, padding and trailing spaces are those of ipvsadm's `printf` formats;
//! - addresses are printed numerically (`-n`) the way glibc's `inet_ntop` prints them (IPv6
//!   in brackets, `::a.b.c.d` / `::ffff:a.b.c.d` for IPv4-compatible and -mapped addresses);
//! - services and destinations are sorted like ipvsadm sorts them in user space: its
//!   comparators subtract 32-bit address words as unsigned numbers and read the result as a
//!   signed `int`, so addresses more than 2^31 apart compare "backwards"; the sort is glibc's
//!   `qsort` merge sort, reproduced here so that even that non-transitive order comes out the
//!   same;
//! - `--stats`/`--rate` numbers use `print_largenum` (K/M/G/T above 10^8 unless `--exact`).
//!
//! Forwarding methods unknown to mainline ipvsadm (FULLNAT) print under the name DPVS's
//! ipvsadm uses, [`Forward::ipvsadm_name`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::service::{Family, Forward, Netmask, Persistence, Sched, SchedFlags, ServiceKey, TunnelType};
use crate::stats::{Counters, Rates};
use crate::time::Duration;

/// Global table information for the first line of `ipvsadm -Ln`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableInfo {
    /// Connection hash table size, printed as `IP Virtual Server version 1.2.1 (size=N)`.
    pub conn_tab_size: u32,
}

/// One virtual service, as `ipvsadm -L` sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    /// Protocol, VIP and port, or firewall mark.
    pub key: ServiceKey,
    /// Scheduler.
    pub sched: Sched,
    /// Scheduler flags (printed as `(sh-fallback,sh-port)` etc.).
    pub flags: SchedFlags,
    /// Persistence, if the service is persistent.
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`ops`).
    pub one_packet: bool,
    /// Cumulative counters.
    pub stats: Counters,
    /// Estimated rates.
    pub rates: Rates,
    /// Destinations, in any order (the kernel's list order for `--nosort`).
    pub dests: Vec<DestView>,
}

/// One destination of a [`ServiceView`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestView {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub forward: Forward,
    /// Weight.
    pub weight: i32,
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
    /// Persistence templates pointing at this destination.
    pub persistent: u32,
    /// Cumulative counters.
    pub stats: Counters,
    /// Estimated rates.
    pub rates: Rates,
}

/// One connection entry, as `ipvsadm -Lnc` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnView {
    /// Protocol name as IPVS prints it: `TCP`, `UDP`, or `IP` for firewall-mark templates.
    pub proto: &'static str,
    /// Time left before the entry expires (printed in whole seconds as `mm:ss`).
    pub expires_in: Duration,
    /// State name as IPVS spells it (`ESTABLISHED`, `FIN_WAIT`, `NONE`, `UDP`, ...).
    pub state: &'static str,
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Virtual address and port (fwmark connections still show the VIP).
    pub virt: (IpAddr, u16),
    /// Destination address and port.
    pub dest: (IpAddr, u16),
}

/// Which `ipvsadm -L` columns to print (ipvsadm's `FMT_*` flags; one at a time, as ipvsadm
/// gives them precedence in this order: stats, rate, persistent-conn, tun-info).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListFormat {
    /// `-Ln`: scheduler, flags, forward, weight, active and inactive connections.
    #[default]
    Plain,
    /// `-Ln --stats`: cumulative counters.
    Stats,
    /// `-Ln --rate`: estimated rates.
    Rate,
    /// `-Ln --persistent-conn`: weight, persistence templates, active, inactive.
    PersistentConn,
    /// `-Ln --tun-info`: plain columns plus the tunnel type.
    TunInfo,
}

/// Options of `ipvsadm -Ln`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// The columns.
    pub format: ListFormat,
    /// `--exact`: full numbers instead of K/M/G/T in `--stats` and `--rate`.
    pub exact: bool,
    /// `--nosort`: services and destinations in the order given.
    pub nosort: bool,
}

/// `ipvsadm -Ln`.
pub fn list(info: &TableInfo, services: &[ServiceView]) -> String {
    list_with(info, services, ListOptions::default())
}

/// `ipvsadm -Ln --stats`.
pub fn list_stats(info: &TableInfo, services: &[ServiceView]) -> String {
    list_with(
        info,
        services,
        ListOptions {
            format: ListFormat::Stats,
            ..ListOptions::default()
        },
    )
}

/// `ipvsadm -Ln --rate`.
pub fn list_rate(info: &TableInfo, services: &[ServiceView]) -> String {
    list_with(
        info,
        services,
        ListOptions {
            format: ListFormat::Rate,
            ..ListOptions::default()
        },
    )
}

/// `ipvsadm -Ln` with any of its listing options: the version line, the title, then every
/// service (sorted unless `nosort`) with its destinations.
pub fn list_with(info: &TableInfo, services: &[ServiceView], opts: ListOptions) -> String {
    let mut out = String::new();
    put(
        &mut out,
        format_args!("IP Virtual Server version 1.2.1 (size={})\n", info.conn_tab_size),
    );
    push_title(&mut out, opts.format);
    let order = if opts.nosort {
        (0..services.len()).collect()
    } else {
        glibc_msort(services, |a, b| {
            cmp_services(&SortKey::service(a), &SortKey::service(b))
        })
    };
    for i in order {
        push_service(&mut out, &services[i], opts);
    }
    out
}

/// `ipvsadm -Ln -t|-u|-f SERVICE`: the title and one service, without the version line.
pub fn list_service(service: &ServiceView, opts: ListOptions) -> String {
    let mut out = String::new();
    push_title(&mut out, opts.format);
    push_service(&mut out, service, opts);
    out
}

/// `ipvsadm -Lnc`: every connection entry in the order given (ipvsadm prints
/// `/proc/net/ip_vs_conn` unsorted).
pub fn list_conns(conns: &[ConnView]) -> String {
    let mut out = String::from("IPVS connection entries\n");
    put(
        &mut out,
        format_args!(
            "pro expire {:<11} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination"
        ),
    );
    for c in conns {
        // /proc prints whole seconds (an unsigned int once ipvsadm has parsed it).
        let secs = u32::try_from(c.expires_in.as_secs()).unwrap_or(u32::MAX);
        let mut expire = String::new();
        put(&mut expire, format_args!("{:02}:{:02}", secs / 60, secs % 60));
        put(
            &mut out,
            format_args!(
                "{:<3} {:<6} {:<11} {:<18} {:<18} {}\n",
                c.proto,
                expire,
                c.state,
                addrport(c.client.0, c.client.1),
                addrport(c.virt.0, c.virt.1),
                addrport(c.dest.0, c.dest.1),
            ),
        );
    }
    out
}

/// Appends formatted text; writing to a `String` cannot fail.
fn put(out: &mut String, args: fmt::Arguments<'_>) {
    let _ = out.write_fmt(args);
}

/// `print_title`.
fn push_title(out: &mut String, format: ListFormat) {
    const PROT: &str = "Prot LocalAddress:Port";
    const REMOTE: &str = "  -> RemoteAddress:Port\n";
    match format {
        ListFormat::Stats => put(
            out,
            format_args!(
                "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
                "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
            ),
        ),
        ListFormat::Rate => put(
            out,
            format_args!(
                "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{REMOTE}",
                "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
            ),
        ),
        ListFormat::PersistentConn => put(
            out,
            format_args!(
                "{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n{REMOTE}",
                "Weight", "PersistConn", "ActiveConn", "InActConn"
            ),
        ),
        ListFormat::TunInfo => out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    \
             Weight ActiveConn InActConn\n",
        ),
        ListFormat::Plain => out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight \
             ActiveConn InActConn\n",
        ),
    }
}

/// `print_service_entry`: the service line, then its destinations.
fn push_service(out: &mut String, svc: &ServiceView, opts: ListOptions) {
    let name = service_name(&svc.key);
    match opts.format {
        ListFormat::Stats => {
            put(out, format_args!("{name:<33}"));
            let s = &svc.stats;
            for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                push_largenum(out, n, opts.exact);
            }
        }
        ListFormat::Rate => {
            put(out, format_args!("{name:<33}"));
            let r = &svc.rates;
            for n in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
                push_largenum(out, n, opts.exact);
            }
        }
        ListFormat::Plain | ListFormat::PersistentConn | ListFormat::TunInfo => {
            put(out, format_args!("{name} {}", svc.sched.name()));
            let flags = sched_flags(svc.sched, svc.flags);
            if !flags.is_empty() {
                put(out, format_args!(" ({flags})"));
            }
            if let Some(p) = &svc.persistence {
                let secs = u32::try_from(p.timeout.as_secs()).unwrap_or(u32::MAX);
                put(out, format_args!(" persistent {secs}"));
                push_mask(out, svc.key.family(), p.netmask);
            }
            if svc.one_packet {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');

    let order = if opts.nosort {
        (0..svc.dests.len()).collect()
    } else {
        glibc_msort(&svc.dests, cmp_dests)
    };
    for i in order {
        push_dest(out, &svc.dests[i], opts);
    }
}

/// One `  -> RemoteAddress:Port ...` line.
fn push_dest(out: &mut String, d: &DestView, opts: ListOptions) {
    let mut name = addrport(d.addr, d.port);
    if d.addr.is_ipv4() {
        name.truncate(28); // ipvsadm cuts IPv4 names at 28 characters (none is that long)
    }
    match opts.format {
        ListFormat::Stats => {
            put(out, format_args!("  -> {name:<28}"));
            let s = &d.stats;
            for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                push_largenum(out, n, opts.exact);
            }
            out.push('\n');
        }
        ListFormat::Rate => {
            // ipvsadm prints the destination's cps/pps with a plain %8llu.
            let r = &d.rates;
            put(
                out,
                format_args!("  -> {name:<28} {:>8} {:>8} {:>8}", r.cps, r.inpps, r.outpps),
            );
            push_largenum(out, r.inbps, opts.exact);
            push_largenum(out, r.outbps, opts.exact);
            out.push('\n');
        }
        ListFormat::PersistentConn => put(
            out,
            // The weight goes through %u there.
            format_args!(
                "  -> {name:<28} {:<9} {:<11} {:<10} {:<10}\n",
                d.weight as u32, d.persistent, d.active, d.inactive
            ),
        ),
        ListFormat::TunInfo => {
            let info = tunnel_info(d.forward);
            put(
                out,
                format_args!(
                    "  -> {name:<28} {:<7} {:<13} {:<6} {:<10} {:<10}\n",
                    d.forward.ipvsadm_name(),
                    info.as_deref().unwrap_or("n/a"),
                    d.weight,
                    d.active,
                    d.inactive
                ),
            );
        }
        ListFormat::Plain => put(
            out,
            format_args!(
                "  -> {name:<28} {:<7} {:<6} {:<10} {:<10}\n",
                d.forward.ipvsadm_name(),
                d.weight,
                d.active,
                d.inactive
            ),
        ),
    }
}

/// `TCP  VIP:port`, `UDP  [VIP6]:port`, `FWM  mark` or `FWM  mark IPv6`.
fn service_name(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Fwmark { family, mark } => {
            let mut s = String::new();
            put(&mut s, format_args!("FWM  {mark}"));
            if family == Family::V6 {
                s.push_str(" IPv6");
            }
            s
        }
        ServiceKey::Addr { proto, vip, port } => {
            let mut s = String::new();
            put(
                &mut s,
                format_args!("{:<4} {}", proto.name(), addrport(vip, port)),
            );
            if vip.is_ipv4() {
                s.truncate(33); // as ipvsadm does; an IPv4 name is at most 26 characters
            }
            s
        }
    }
}

/// `print_sched_flags`: the flags by the scheduler's names for them, comma-separated.
fn sched_flags(sched: Sched, flags: SchedFlags) -> String {
    let (first, second) = match sched {
        Sched::Sh => ("sh-fallback", "sh-port"),
        Sched::Mh => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    let mut s = String::new();
    for (flag, name) in [(SchedFlags::FALLBACK, first), (SchedFlags::PORT, second)] {
        if flags.contains(flag) {
            if !s.is_empty() {
                s.push(',');
            }
            s.push_str(name);
        }
    }
    s
}

/// ` mask 255.255.255.0` (IPv4, when not /32) or ` mask 64` (IPv6, when not /128). A netmask
/// of the other family's form is converted first (a prefix to a mask, a mask to its prefix).
fn push_mask(out: &mut String, family: Family, netmask: Netmask) {
    match family {
        Family::V4 => {
            let mask = match netmask {
                Netmask::V4(m) => m,
                Netmask::V6Prefix(p) => u32::MAX.checked_shl(32 - u32::from(p.min(32))).unwrap_or(0),
            };
            if mask != u32::MAX {
                put(out, format_args!(" mask {}", Ipv4Addr::from(mask)));
            }
        }
        Family::V6 => {
            let prefix = match netmask {
                Netmask::V6Prefix(p) => u32::from(p),
                Netmask::V4(m) => m.leading_ones(),
            };
            if prefix != 128 {
                put(out, format_args!(" mask {prefix}"));
            }
        }
    }
}

/// `fwd_tun_info`: `ipip`, or `gue:PORT:-c` (our GUE sends no UDP checksum: ipvsadm's
/// `--tun-nocsum`, shown as `-c`); `None` (printed `n/a`) for other methods.
fn tunnel_info(forward: Forward) -> Option<String> {
    match forward {
        Forward::Tunnel(TunnelType::Ipip) => Some(String::from("ipip")),
        Forward::Tunnel(TunnelType::Gue { port }) => {
            let mut s = String::new();
            put(&mut s, format_args!("gue:{port}:-c"));
            Some(s)
        }
        _ => None,
    }
}

/// `print_largenum`: right-aligned in 9 columns (a separating space included); without
/// `exact`, numbers of 10^8 and more are divided down with a K/M/G/T suffix.
fn push_largenum(out: &mut String, n: u64, exact: bool) {
    if exact {
        let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
        let width = if digits <= 8 { 9 } else { digits + 1 };
        put(out, format_args!("{n:>width$}"));
    } else if n < 100_000_000 {
        put(out, format_args!("{n:>9}"));
    } else if n < 1_000_000_000 {
        put(out, format_args!("{:>8}K", n / 1_000));
    } else if n < 100_000_000_000 {
        put(out, format_args!("{:>8}M", n / 1_000_000));
    } else if n < 100_000_000_000_000 {
        put(out, format_args!("{:>8}G", n / 1_000_000_000));
    } else {
        put(out, format_args!("{:>8}T", n / 1_000_000_000_000));
    }
}

/// `addrport_to_anyname` with `-n`: `a.b.c.d:port` or `[v6]:port`.
fn addrport(addr: IpAddr, port: u16) -> String {
    let mut s = String::new();
    match addr {
        IpAddr::V4(a) => put(&mut s, format_args!("{a}:{port}")),
        IpAddr::V6(a) => {
            s.push('[');
            push_ipv6(&mut s, a);
            put(&mut s, format_args!("]:{port}"));
        }
    }
    s
}

/// An IPv6 address as glibc's `inet_ntop` writes it: the longest run (the first of equal
/// ones) of two or more zero groups becomes `::`, groups in lowercase hex, and the last 32
/// bits in dotted quad for IPv4-compatible (`::a.b.c.d`) and IPv4-mapped addresses.
fn push_ipv6(out: &mut String, addr: Ipv6Addr) {
    let words = addr.segments();
    let (mut best, mut best_len) = (usize::MAX, 0);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                (best, best_len) = (start, i - start);
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best = usize::MAX;
    }
    let in_run = |i: usize| best != usize::MAX && i >= best && i < best + best_len;
    for (i, word) in words.iter().enumerate() {
        if in_run(i) {
            if i == best {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)) {
            let o = addr.octets();
            put(out, format_args!("{}", Ipv4Addr::new(o[12], o[13], o[14], o[15])));
            return;
        }
        put(out, format_args!("{word:x}"));
    }
    if best != usize::MAX && best + best_len == 8 {
        out.push(':');
    }
}

/// The fields libipvs compares, as it holds them.
struct SortKey {
    fwmark: u32,
    /// AF_INET (2) or AF_INET6 (10).
    af: u16,
    /// IP protocol number; 0 for fwmark services.
    protocol: u16,
    /// The address as four host-order words (IPv4 in the first, the rest zero).
    addr: [u32; 4],
    port: u16,
}

impl SortKey {
    fn service(s: &ServiceView) -> SortKey {
        match s.key {
            ServiceKey::Addr { proto, vip, port } => SortKey {
                fwmark: 0,
                af: af_number(Family::of(&vip)),
                protocol: u16::from(proto.number()),
                addr: addr_words(vip),
                port,
            },
            ServiceKey::Fwmark { family, mark } => SortKey {
                fwmark: mark,
                af: af_number(family),
                protocol: 0,
                addr: [0; 4],
                port: 0,
            },
        }
    }
}

const fn af_number(family: Family) -> u16 {
    match family {
        Family::V4 => 2,
        Family::V6 => 10,
    }
}

fn addr_words(addr: IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(a), 0, 0, 0],
        IpAddr::V6(a) => {
            let s = a.segments();
            core::array::from_fn(|i| (u32::from(s[2 * i]) << 16) | u32::from(s[2 * i + 1]))
        }
    }
}

/// `ntohl(a) - ntohl(b)` assigned to an `int`: unsigned subtraction read as signed.
fn wrapping_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// `ipvs_cmp_addr` part of both comparators: four words if the first operand is IPv6, else one.
fn cmp_addr(first_is_v6: bool, a: &[u32; 4], b: &[u32; 4]) -> i32 {
    let words = if first_is_v6 { 4 } else { 1 };
    (0..words)
        .map(|i| wrapping_diff(a[i], b[i]))
        .find(|&r| r != 0)
        .unwrap_or(0)
}

/// `ipvs_cmp_services`.
fn cmp_services(a: &SortKey, b: &SortKey) -> i32 {
    let mut r = wrapping_diff(a.fwmark, b.fwmark);
    if r == 0 {
        r = i32::from(a.af) - i32::from(b.af);
    }
    if r == 0 {
        r = i32::from(a.protocol) - i32::from(b.protocol);
    }
    if r == 0 {
        r = cmp_addr(a.af == 10, &a.addr, &b.addr);
    }
    if r == 0 {
        r = i32::from(a.port) - i32::from(b.port);
    }
    r
}

/// `ipvs_cmp_dests`.
fn cmp_dests(a: &DestView, b: &DestView) -> i32 {
    let r = cmp_addr(a.addr.is_ipv6(), &addr_words(a.addr), &addr_words(b.addr));
    if r != 0 {
        r
    } else {
        i32::from(a.port) - i32::from(b.port)
    }
}

/// The permutation glibc's `qsort` (its top-down merge sort, `msort_with_tmp`) produces
/// with the C-style comparator `cmp`, as indices into `items`.
fn glibc_msort<T>(items: &[T], cmp: impl Fn(&T, &T) -> i32) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..items.len()).collect();
    let mut tmp = Vec::with_capacity(items.len());
    msort_rec(&mut idx, &mut tmp, &|a: usize, b: usize| {
        cmp(&items[a], &items[b])
    });
    idx
}

fn msort_rec(b: &mut [usize], tmp: &mut Vec<usize>, cmp: &dyn Fn(usize, usize) -> i32) {
    let n = b.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    msort_rec(&mut b[..n1], tmp, cmp);
    msort_rec(&mut b[n1..], tmp, cmp);
    tmp.clear();
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(b[i], b[j]) <= 0 {
            tmp.push(b[i]);
            i += 1;
        } else {
            tmp.push(b[j]);
            j += 1;
        }
    }
    // The rest of the left half follows; the rest of the right half is already in place.
    tmp.extend_from_slice(&b[i..n1]);
    b[..tmp.len()].copy_from_slice(tmp);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Netmask;
    use crate::service::Protocol;

    // Expected texts were produced by emulating ipvsadm 1.31's printf calls with its format
    // strings verbatim (and glibc's own inet_ntop), independently of this module.
    const CLASSIC: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  172.27.9.100:81 wrr persistent 50\n",
        "  -> 172.27.9.91:81               Route   1      2          5         \n",
        "  -> 172.27.9.92:81               Route   1      0          1         \n",
    );
    const CLASSIC_PCONN: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
        "  -> RemoteAddress:Port\n",
        "TCP  172.27.9.100:81 wrr persistent 50\n",
        "  -> 172.27.9.91:81               1         3           2          5         \n",
        "  -> 172.27.9.92:81               1         1           0          1         \n",
    );
    const MIXED: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=65536)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  192.168.1.10:80 wlc\n",
        "  -> 10.0.0.1:8080                Tunnel  1      0          0         \n",
        "  -> 10.0.0.2:8080                FullNat 2      100000     7         \n",
        "  -> 10.0.0.3:8080                Masq    3      12         40        \n",
        "TCP  192.168.1.20:0 rr (flag-1) persistent 360\n",
        "  -> 192.168.2.1:0                Route   5      0          0         \n",
        "UDP  192.168.1.10:53 rr ops\n",
        "  -> 10.0.0.5:53                  Masq    1      0          0         \n",
        "TCP  [2001:db8::10]:443 sh (sh-fallback,sh-port) persistent 300 mask 64\n",
        "  -> [2001:db8::1]:443            Route   0      0          3         \n",
        "  -> [2001:db8::2]:443            Route   1      1          0         \n",
        "FWM  7 wlc persistent 60 mask 255.255.255.0\n",
        "  -> 10.0.0.1:0                   Route   1      0          0         \n",
        "FWM  8 IPv6 mh (mh-port)\n",
        "  -> [2001:db8::1]:0              Tunnel  1      0          0         \n",
    );
    const MIXED_NOSORT: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=65536)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "FWM  7 wlc persistent 60 mask 255.255.255.0\n",
        "  -> 10.0.0.1:0                   Route   1      0          0         \n",
        "TCP  [2001:db8::10]:443 sh (sh-fallback,sh-port) persistent 300 mask 64\n",
        "  -> [2001:db8::2]:443            Route   1      1          0         \n",
        "  -> [2001:db8::1]:443            Route   0      0          3         \n",
        "UDP  192.168.1.10:53 rr ops\n",
        "  -> 10.0.0.5:53                  Masq    1      0          0         \n",
        "FWM  8 IPv6 mh (mh-port)\n",
        "  -> [2001:db8::1]:0              Tunnel  1      0          0         \n",
        "TCP  192.168.1.10:80 wlc\n",
        "  -> 10.0.0.3:8080                Masq    3      12         40        \n",
        "  -> 10.0.0.1:8080                Tunnel  1      0          0         \n",
        "  -> 10.0.0.2:8080                FullNat 2      100000     7         \n",
        "TCP  192.168.1.20:0 rr (flag-1) persistent 360\n",
        "  -> 192.168.2.1:0                Route   5      0          0         \n",
    );
    const MIXED_TUN: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=65536)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        "TCP  192.168.1.10:80 wlc\n",
        "  -> 10.0.0.1:8080                Tunnel  ipip          1      0          0         \n",
        "  -> 10.0.0.2:8080                FullNat n/a           2      100000     7         \n",
        "  -> 10.0.0.3:8080                Masq    n/a           3      12         40        \n",
        "TCP  192.168.1.20:0 rr (flag-1) persistent 360\n",
        "  -> 192.168.2.1:0                Route   n/a           5      0          0         \n",
        "UDP  192.168.1.10:53 rr ops\n",
        "  -> 10.0.0.5:53                  Masq    n/a           1      0          0         \n",
        "TCP  [2001:db8::10]:443 sh (sh-fallback,sh-port) persistent 300 mask 64\n",
        "  -> [2001:db8::1]:443            Route   n/a           0      0          3         \n",
        "  -> [2001:db8::2]:443            Route   n/a           1      1          0         \n",
        "FWM  7 wlc persistent 60 mask 255.255.255.0\n",
        "  -> 10.0.0.1:0                   Route   n/a           1      0          0         \n",
        "FWM  8 IPv6 mh (mh-port)\n",
        "  -> [2001:db8::1]:0              Tunnel  gue:6080:-c   1      0          0         \n",
    );
    const STATS: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.1.10:80                   123 99999999  100000K     123G    5000M\n",
        "  -> 10.0.0.1:8080                       0        0        0        0        0\n",
        "  -> 10.0.0.2:8080                       0        0        0        0        0\n",
        "  -> 10.0.0.3:8080                      99     1000  999999K     100T  123456T\n",
        "UDP  192.168.1.10:53                     0        0        0        0        0\n",
        "  -> 10.0.0.5:53                         0        0        0        0        0\n",
    );
    const STATS_EXACT: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.1.10:80                   123 99999999 100000000 123456789012 5000000000\n",
        "  -> 10.0.0.1:8080                       0        0        0        0        0\n",
        "  -> 10.0.0.2:8080                       0        0        0        0        0\n",
        "  -> 10.0.0.3:8080                      99     1000 999999999 100000000000000 123456789012345678\n",
        "UDP  192.168.1.10:53                     0        0        0        0        0\n",
        "  -> 10.0.0.5:53                         0        0        0        0        0\n",
    );
    const RATE: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.1.10:80                  1234    56789  123456K    1500M       12\n",
        "  -> 10.0.0.1:8080                       0        0        0        0        0\n",
        "  -> 10.0.0.2:8080                       0        0        0        0        0\n",
        "  -> 10.0.0.3:8080                       7 123456789        0 99999999  100000K\n",
        "UDP  192.168.1.10:53                     0        0        0        0        0\n",
        "  -> 10.0.0.5:53                         0        0        0        0        0\n",
    );
    const RATE_EXACT: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
        "  -> RemoteAddress:Port\n",
        "TCP  192.168.1.10:80                  1234    56789 123456789 1500000000       12\n",
        "  -> 10.0.0.1:8080                       0        0        0        0        0\n",
        "  -> 10.0.0.2:8080                       0        0        0        0        0\n",
        "  -> 10.0.0.3:8080                       7 123456789        0 99999999 100000000\n",
    );
    const WRAP: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  192.168.0.100:80 rr\n",
        "  -> 100.0.0.1:80                 Masq    1      0          0         \n",
        "  -> 192.168.0.1:80               Masq    1      0          0         \n",
        "  -> 10.0.0.1:80                  Masq    1      0          0         \n",
        "TCP  10.0.0.100:80 rr\n",
        "  -> 192.168.0.1:80               Masq    1      0          0         \n",
        "  -> 10.0.0.1:80                  Masq    1      0          0         \n",
    );
    const CONNS: &str = concat!(
        "IPVS connection entries\n",
        "pro expire state       source             virtual            destination\n",
        "TCP 14:58  ESTABLISHED 192.0.2.1:51234    172.27.9.100:81    172.27.9.91:81\n",
        "UDP 04:59  UDP         198.51.100.77:5353 192.168.1.10:53    10.0.0.5:53\n",
        "TCP 1440:00 NONE        192.0.2.0:0        172.27.9.100:81    172.27.9.91:81\n",
        "TCP 00:05  FIN_WAIT    [2001:db8:ffff::1234]:40000 [2001:db8::10]:443 [2001:db8::2]:443\n",
        "TCP 01:59  SYN_RECV    203.0.113.200:65535 10.20.30.40:8080   [::10.0.0.1]:8080\n",
    );

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn dest(addr: &str, port: u16, forward: Forward, weight: i32) -> DestView {
        DestView {
            addr: ip(addr),
            port,
            forward,
            weight,
            active: 0,
            inactive: 0,
            persistent: 0,
            stats: Counters::default(),
            rates: Rates::default(),
        }
    }

    fn with_conns(mut d: DestView, active: u32, inactive: u32, persistent: u32) -> DestView {
        (d.active, d.inactive, d.persistent) = (active, inactive, persistent);
        d
    }

    fn service(key: ServiceKey, sched: Sched, dests: Vec<DestView>) -> ServiceView {
        ServiceView {
            key,
            sched,
            flags: SchedFlags::NONE,
            persistence: None,
            one_packet: false,
            stats: Counters::default(),
            rates: Rates::default(),
            dests,
        }
    }

    fn tcp(vip: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            vip: ip(vip),
            port,
        }
    }

    fn persistent(secs: u64, netmask: Netmask) -> Option<Persistence> {
        Some(Persistence {
            timeout: Duration::from_secs(secs),
            netmask,
        })
    }

    fn counters(v: [u64; 5]) -> Counters {
        Counters {
            conns: v[0],
            inpkts: v[1],
            outpkts: v[2],
            inbytes: v[3],
            outbytes: v[4],
        }
    }

    fn rates(v: [u64; 5]) -> Rates {
        Rates {
            cps: v[0],
            inpps: v[1],
            outpps: v[2],
            inbps: v[3],
            outbps: v[4],
        }
    }

    /// The classic LVS-DR example; destinations given in kernel (reverse-insertion) order.
    fn classic() -> Vec<ServiceView> {
        let mut s = service(
            tcp("172.27.9.100", 81),
            Sched::Wrr,
            vec![
                with_conns(dest("172.27.9.92", 81, Forward::DirectRouting, 1), 0, 1, 1),
                with_conns(dest("172.27.9.91", 81, Forward::DirectRouting, 1), 2, 5, 3),
            ],
        );
        s.persistence = persistent(50, Netmask::V4(u32::MAX));
        vec![s]
    }

    /// The first service of [`mixed`]: NAT, tunnel and FULLNAT destinations, with big numbers.
    fn web() -> ServiceView {
        let mut nat = with_conns(dest("10.0.0.3", 8080, Forward::Nat, 3), 12, 40, 0);
        nat.stats = counters([
            99,
            1000,
            999_999_999,
            100_000_000_000_000,
            123_456_789_012_345_678,
        ]);
        nat.rates = rates([7, 123_456_789, 0, 99_999_999, 100_000_000]);
        let mut s = service(
            tcp("192.168.1.10", 80),
            Sched::Wlc,
            vec![
                nat,
                dest("10.0.0.1", 8080, Forward::Tunnel(TunnelType::Ipip), 1),
                with_conns(dest("10.0.0.2", 8080, Forward::FullNat, 2), 100_000, 7, 0),
            ],
        );
        s.stats = counters([123, 99_999_999, 100_000_000, 123_456_789_012, 5_000_000_000]);
        s.rates = rates([1234, 56789, 123_456_789, 1_500_000_000, 12]);
        s
    }

    /// UDP with one-packet scheduling.
    fn dns() -> ServiceView {
        let mut s = service(
            ServiceKey::Addr {
                proto: Protocol::Udp,
                vip: ip("192.168.1.10"),
                port: 53,
            },
            Sched::Rr,
            vec![dest("10.0.0.5", 53, Forward::Nat, 1)],
        );
        s.one_packet = true;
        s
    }

    /// Every kind of service, in no particular order.
    fn mixed() -> Vec<ServiceView> {
        let mut fwm7 = service(
            ServiceKey::Fwmark {
                family: Family::V4,
                mark: 7,
            },
            Sched::Wlc,
            vec![dest("10.0.0.1", 0, Forward::DirectRouting, 1)],
        );
        fwm7.persistence = persistent(60, Netmask::V4(0xffff_ff00));
        let mut v6 = service(
            tcp("2001:db8::10", 443),
            Sched::Sh,
            vec![
                with_conns(dest("2001:db8::2", 443, Forward::DirectRouting, 1), 1, 0, 0),
                with_conns(dest("2001:db8::1", 443, Forward::DirectRouting, 0), 0, 3, 2),
            ],
        );
        v6.flags = SchedFlags::FALLBACK.union(SchedFlags::PORT);
        v6.persistence = persistent(300, Netmask::V6Prefix(64));
        let mut fwm8 = service(
            ServiceKey::Fwmark {
                family: Family::V6,
                mark: 8,
            },
            Sched::Mh,
            vec![dest(
                "2001:db8::1",
                0,
                Forward::Tunnel(TunnelType::Gue { port: 6080 }),
                1,
            )],
        );
        fwm8.flags = SchedFlags::PORT;
        let mut pcc = service(
            tcp("192.168.1.20", 0),
            Sched::Rr,
            vec![dest("192.168.2.1", 0, Forward::DirectRouting, 5)],
        );
        pcc.flags = SchedFlags::FALLBACK;
        pcc.persistence = persistent(360, Netmask::host(Family::V4));
        vec![fwm7, v6, dns(), fwm8, web(), pcc]
    }

    #[test]
    fn list_classic_lvs_dr() {
        assert_eq!(list(&TableInfo { conn_tab_size: 4096 }, &classic()), CLASSIC);
    }

    #[test]
    fn list_persistent_conn_columns() {
        let opts = ListOptions {
            format: ListFormat::PersistentConn,
            ..ListOptions::default()
        };
        assert_eq!(
            list_with(&TableInfo { conn_tab_size: 4096 }, &classic(), opts),
            CLASSIC_PCONN
        );
    }

    #[test]
    fn list_mixed_methods_ipv6_fwmark_ops_flags_sorted() {
        assert_eq!(list(&TableInfo { conn_tab_size: 65536 }, &mixed()), MIXED);
    }

    #[test]
    fn list_nosort_keeps_given_order() {
        let opts = ListOptions {
            nosort: true,
            ..ListOptions::default()
        };
        assert_eq!(
            list_with(&TableInfo { conn_tab_size: 65536 }, &mixed(), opts),
            MIXED_NOSORT
        );
    }

    #[test]
    fn list_tun_info_column() {
        let opts = ListOptions {
            format: ListFormat::TunInfo,
            ..ListOptions::default()
        };
        assert_eq!(
            list_with(&TableInfo { conn_tab_size: 65536 }, &mixed(), opts),
            MIXED_TUN
        );
    }

    #[test]
    fn list_stats_scales_large_numbers() {
        assert_eq!(
            list_stats(&TableInfo { conn_tab_size: 4096 }, &[web(), dns()]),
            STATS
        );
    }

    #[test]
    fn list_stats_exact() {
        let opts = ListOptions {
            format: ListFormat::Stats,
            exact: true,
            nosort: false,
        };
        assert_eq!(
            list_with(&TableInfo { conn_tab_size: 4096 }, &[dns(), web()], opts),
            STATS_EXACT
        );
    }

    #[test]
    fn list_rate_columns() {
        assert_eq!(
            list_rate(&TableInfo { conn_tab_size: 4096 }, &[dns(), web()]),
            RATE
        );
        let opts = ListOptions {
            format: ListFormat::Rate,
            exact: true,
            nosort: false,
        };
        assert_eq!(
            list_with(&TableInfo { conn_tab_size: 4096 }, &[web()], opts),
            RATE_EXACT
        );
    }

    #[test]
    fn sort_replicates_libipvs_wraparound_compare() {
        // libipvs subtracts addresses as unsigned 32-bit words and reads the result as int:
        // 192.168.0.0/16 sorts before 10.0.0.0/8, and glibc's merge sort decides the rest.
        let masq = |a| dest(a, 80, Forward::Nat, 1);
        let services = [
            service(
                tcp("10.0.0.100", 80),
                Sched::Rr,
                vec![masq("10.0.0.1"), masq("192.168.0.1")],
            ),
            service(
                tcp("192.168.0.100", 80),
                Sched::Rr,
                vec![masq("100.0.0.1"), masq("10.0.0.1"), masq("192.168.0.1")],
            ),
        ];
        assert_eq!(list(&TableInfo { conn_tab_size: 4096 }, &services), WRAP);
    }

    #[test]
    fn list_single_service_has_no_version_line() {
        let text = list_service(&classic()[0], ListOptions::default());
        assert_eq!(text, CLASSIC.split_once('\n').unwrap().1);
    }

    #[test]
    fn list_conns_format() {
        let conn = |proto, secs: u64, state, c: (&str, u16), v: (&str, u16), d: (&str, u16)| ConnView {
            proto,
            expires_in: Duration::from_millis(secs * 1000 + 999),
            state,
            client: (ip(c.0), c.1),
            virt: (ip(v.0), v.1),
            dest: (ip(d.0), d.1),
        };
        let conns = [
            conn(
                "TCP",
                898,
                "ESTABLISHED",
                ("192.0.2.1", 51234),
                ("172.27.9.100", 81),
                ("172.27.9.91", 81),
            ),
            conn(
                "UDP",
                299,
                "UDP",
                ("198.51.100.77", 5353),
                ("192.168.1.10", 53),
                ("10.0.0.5", 53),
            ),
            conn(
                "TCP",
                86400,
                "NONE",
                ("192.0.2.0", 0),
                ("172.27.9.100", 81),
                ("172.27.9.91", 81),
            ),
            conn(
                "TCP",
                5,
                "FIN_WAIT",
                ("2001:db8:ffff::1234", 40000),
                ("2001:db8::10", 443),
                ("2001:db8::2", 443),
            ),
            conn(
                "TCP",
                119,
                "SYN_RECV",
                ("203.0.113.200", 65535),
                ("10.20.30.40", 8080),
                ("::10.0.0.1", 8080),
            ),
        ];
        assert_eq!(list_conns(&conns), CONNS);
        assert_eq!(
            list_conns(&[]),
            "IPVS connection entries\npro expire state       source             virtual            destination\n"
        );
    }

    #[test]
    fn largenum_boundaries() {
        let cases: [(u64, &str, &str); 9] = [
            (0, "        0", "        0"),
            (99_999_999, " 99999999", " 99999999"),
            (100_000_000, "  100000K", " 100000000"),
            (999_999_999, "  999999K", " 999999999"),
            (1_000_000_000, "    1000M", " 1000000000"),
            (99_999_999_999, "   99999M", " 99999999999"),
            (100_000_000_000, "     100G", " 100000000000"),
            (100_000_000_000_000, "     100T", " 100000000000000"),
            (u64::MAX, "18446744T", " 18446744073709551615"),
        ];
        for (n, scaled, exact) in cases {
            let (mut a, mut b) = (String::new(), String::new());
            push_largenum(&mut a, n, false);
            push_largenum(&mut b, n, true);
            assert_eq!((a.as_str(), b.as_str()), (scaled, exact), "{n}");
        }
    }

    #[test]
    fn ipv6_text_matches_glibc_inet_ntop() {
        let cases = [
            ("::", "::"),
            ("::1", "::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:db8:0:1::1", "2001:db8:0:1::1"),
            ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
            ("1:0:0:1:1:0:0:1", "1::1:1:0:0:1"),
            ("2001:db8:1:2:3:4:5:0", "2001:db8:1:2:3:4:5:0"),
            ("fe80::", "fe80::"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
            ("::10.0.0.1", "::10.0.0.1"),
            ("::1:0:0:0", "::1:0:0:0"),
            ("0:0:1::", "0:0:1::"),
            ("2001:DB8::ABCD", "2001:db8::abcd"),
        ];
        for (input, text) in cases {
            let mut s = String::new();
            push_ipv6(&mut s, input.parse().unwrap());
            assert_eq!(s, text, "{input}");
        }
    }

    #[test]
    fn masks_and_flags_per_family() {
        let mut out = String::new();
        push_mask(&mut out, Family::V4, Netmask::V4(u32::MAX));
        push_mask(&mut out, Family::V6, Netmask::V6Prefix(128));
        assert_eq!(out, "");
        push_mask(&mut out, Family::V4, Netmask::V6Prefix(20));
        push_mask(&mut out, Family::V6, Netmask::V6Prefix(48));
        assert_eq!(out, " mask 255.255.240.0 mask 48");
        assert_eq!(sched_flags(Sched::Sh, SchedFlags::PORT), "sh-port");
        assert_eq!(
            sched_flags(Sched::Mh, SchedFlags::FALLBACK.union(SchedFlags::PORT)),
            "mh-fallback,mh-port"
        );
        assert_eq!(
            sched_flags(Sched::Wlc, SchedFlags::FALLBACK.union(SchedFlags::PORT)),
            "flag-1,flag-2"
        );
        assert_eq!(sched_flags(Sched::Sh, SchedFlags::NONE), "");
    }
}
