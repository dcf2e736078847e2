//! keepalived.conf (keepalived 2.2.x syntax as operators write it) into a [`Plan`].
//!
//! # How the text is read
//! As keepalived's `read_line`/`alloc_strvec` do: a comment starts at `!` or `#` outside a
//! quoted string and runs to the end of the line (`\!` and `\#` are literal); words are
//! separated by blanks; `"..."` is one word without its quotes; every `{` and `}` outside
//! quotes is a word of its own even when glued (`virtual_ipaddress{`, `}}`); a line
//! `include PATTERN` is replaced by the files the [`Source`] returns for it (a glob relative
//! to the including file; no match is only a warning, as in keepalived). A `{` opens the
//! block of the keyword line right before it, on the same line or the next.
//!
//! # What is checked
//! Every keyword of the blocks listed in [`parse_keepalived`] is validated: numbers and
//! their ranges (`virtual_router_id` 1..255, `priority` 1..255, weights, `advert_int` per
//! VRRP version), addresses and families, schedulers and forwarding methods, block
//! structure, and cross references (sync group members, tracked scripts, duplicate VRIDs
//! and real servers). Errors carry `file:line` and say what was expected and what was found.
//! Unknown keywords are warnings, as keepalived only logs them; keywords we understand but
//! do not implement are warnings when ignoring them changes behaviour.
//!
//! Never panics, whatever the input; block nesting and include depth are bounded.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::IpAddr;
use core::time::Duration;

use super::util::{Diags, fmt_secs, parse_bool, parse_fixed, parse_i64, parse_ip, parse_secs, parse_u64};
use super::{
    CheckCommon, CheckPlan, Diagnostic, GlobalDefs, InstancePlan, Notify, Origin, Parsed, Plan,
    RealServerPlan, ScriptPlan, Source, SyncGroupPlan, TrackRef, UrlPlan, VipPlan, VirtualServerPlan,
};
use crate::service::{
    DestConfig, Family, Forward, Netmask, Persistence, Protocol, Sched, SchedFlags, ServiceConfig,
    ServiceKey, TunnelType,
};
use crate::vrrp::{GarpConfig, StartState, Version};

/// Deepest `include` nesting followed; deeper is an error (a file including itself).
pub const MAX_INCLUDE_DEPTH: u32 = 16;
/// Deepest `{ }` nesting accepted (keepalived's grammar needs 5).
pub const MAX_BLOCK_DEPTH: u32 = 32;

/// Parses keepalived.conf `text` read from `file`, resolving `include` through `source`.
///
/// Top-level blocks: `global_defs`, `vrrp_script`, `vrrp_instance`, `vrrp_sync_group`,
/// `virtual_server`. See the module documentation for the rules. On success the plan comes
/// with the warnings; on failure every error and warning, in reading order.
pub fn parse_keepalived(file: &str, text: &str, source: &mut dyn Source) -> Result<Parsed, Vec<Diagnostic>> {
    let mut diags = Diags::default();
    let mut lexer = Lexer {
        source,
        items: Vec::new(),
        diags: &mut diags,
        seq: 0,
    };
    lexer.file(file, text, 0);
    let items = lexer.items;
    let mut it = items.into_iter();
    let tree = build(&mut it, 0, None, &mut diags);
    let plan = {
        let mut cx = Cx { d: &mut diags };
        cx.plan(&tree)
    };
    if diags.has_errors() {
        Err(diags.finish())
    } else {
        Ok(Parsed {
            plan,
            warnings: diags.finish(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Lexing: text -> logical lines and braces, includes expanded.

/// A word of a line.
#[derive(Clone, Debug)]
struct Tok {
    text: String,
}

#[derive(Debug)]
enum Item {
    /// Words of one logical line (never empty); `rest` is the raw text after the first word.
    Line {
        seq: u64,
        origin: Origin,
        toks: Vec<Tok>,
        rest: String,
    },
    Open {
        seq: u64,
        origin: Origin,
    },
    Close {
        seq: u64,
        origin: Origin,
    },
}

struct Lexer<'a> {
    source: &'a mut dyn Source,
    items: Vec<Item>,
    diags: &'a mut Diags,
    seq: u64,
}

impl Lexer<'_> {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn file(&mut self, file: &str, text: &str, depth: u32) {
        for (n, line) in text.split('\n').enumerate() {
            let origin = Origin {
                file: file.to_owned(),
                line: u32::try_from(n + 1).unwrap_or(u32::MAX),
            };
            self.line(line, &origin, depth);
        }
    }

    fn line(&mut self, line: &str, origin: &Origin, depth: u32) {
        let seq = self.next_seq();
        self.diags.record(origin, seq);
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Strip the comment and split at braces outside quotes.
        let mut segs: Vec<Seg> = Vec::new();
        let mut cur = String::new();
        let mut quote = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    quote = !quote;
                    cur.push(c);
                }
                '\\' if !quote && matches!(chars.peek(), Some('!' | '#')) => {
                    if let Some(n) = chars.next() {
                        cur.push('\\');
                        cur.push(n);
                    }
                }
                '!' | '#' if !quote => break,
                '{' | '}' if !quote => {
                    segs.push(Seg::Text(core::mem::take(&mut cur)));
                    segs.push(if c == '{' { Seg::Open } else { Seg::Close });
                }
                _ => cur.push(c),
            }
        }
        segs.push(Seg::Text(cur));
        if quote {
            self.diags.error(
                seq,
                origin,
                "unterminated quote: a '\"' opened on this line is never closed".to_string(),
            );
            return;
        }
        for seg in segs {
            match seg {
                Seg::Open => self.items.push(Item::Open {
                    seq,
                    origin: origin.clone(),
                }),
                Seg::Close => self.items.push(Item::Close {
                    seq,
                    origin: origin.clone(),
                }),
                Seg::Text(t) => {
                    let toks = words(&t);
                    if toks.is_empty() {
                        continue;
                    }
                    if toks[0].text == "include" && toks.len() == 2 {
                        self.include(&toks[1].text, origin, seq, depth);
                        continue;
                    }
                    let rest = rest_after_first_word(&t);
                    self.items.push(Item::Line {
                        seq,
                        origin: origin.clone(),
                        toks,
                        rest,
                    });
                }
            }
        }
    }

    fn include(&mut self, pattern: &str, origin: &Origin, seq: u64, depth: u32) {
        if depth >= MAX_INCLUDE_DEPTH {
            self.diags.error(
                seq,
                origin,
                format!(
                    "include '{pattern}': includes nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
                ),
            );
            return;
        }
        match self.source.include(pattern, origin) {
            Ok(files) if files.is_empty() => self.diags.warn(
                seq,
                origin,
                format!("include '{pattern}': no configuration file matched; nothing included"),
            ),
            Ok(files) => {
                for (name, text) in files {
                    self.file(&name, &text, depth + 1);
                }
            }
            Err(reason) => self
                .diags
                .error(seq, origin, format!("include '{pattern}': {reason}")),
        }
    }
}

enum Seg {
    Text(String),
    Open,
    Close,
}

/// Splits a comment-free segment into words: blanks separate, `"..."` is one word.
fn words(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // keepalived (`alloc_strvec_r`): a quote starts a word of its own and the
                // closing quote ends it.
                if in_word {
                    out.push(Tok {
                        text: core::mem::take(&mut cur),
                    });
                }
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    cur.push(q);
                }
                out.push(Tok {
                    text: core::mem::take(&mut cur),
                });
                in_word = false;
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(Tok {
                        text: core::mem::take(&mut cur),
                    });
                    in_word = false;
                }
            }
            // `\!` / `\#` were kept escaped by the comment stripper: drop the backslash.
            '\\' if matches!(chars.peek(), Some('!' | '#')) => in_word = true,
            _ => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(Tok { text: cur });
    }
    out
}

/// The raw text after the first word, trimmed (for command lines given unquoted).
fn rest_after_first_word(s: &str) -> String {
    let t = s.trim_start();
    let end = t.find(char::is_whitespace).unwrap_or(t.len());
    t[end..].trim().replace("\\!", "!").replace("\\#", "#")
}

// ---------------------------------------------------------------------------------------
// Tree: logical lines -> keyword nodes with optional blocks.

#[derive(Debug)]
struct Node {
    seq: u64,
    origin: Origin,
    kw: String,
    args: Vec<Tok>,
    rest: String,
    block: Option<Vec<Node>>,
}

impl Node {
    fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|t| t.text.as_str())
    }
}

fn build(
    it: &mut alloc::vec::IntoIter<Item>,
    level: u32,
    opener: Option<(String, u64, Origin)>,
    d: &mut Diags,
) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    // Whether the last item was a keyword line that can still take a block.
    let mut can_open = false;
    loop {
        match it.next() {
            None => {
                if let Some((kw, seq, origin)) = opener {
                    d.error(
                        seq,
                        &origin,
                        format!("missing '}}': the block of '{kw}' opened here is not closed"),
                    );
                }
                return nodes;
            }
            Some(Item::Line {
                seq,
                origin,
                mut toks,
                rest,
            }) => {
                let kw = toks.remove(0).text;
                nodes.push(Node {
                    seq,
                    origin,
                    kw,
                    args: toks,
                    rest,
                    block: None,
                });
                can_open = true;
            }
            Some(Item::Open { seq, origin }) => {
                if level + 1 >= MAX_BLOCK_DEPTH {
                    d.error(
                        seq,
                        &origin,
                        format!("blocks nested more than {MAX_BLOCK_DEPTH} deep"),
                    );
                    skip_block(it);
                    can_open = false;
                    continue;
                }
                match nodes.last_mut() {
                    Some(n) if can_open => {
                        let children = build(it, level + 1, Some((n.kw.clone(), n.seq, n.origin.clone())), d);
                        n.block = Some(children);
                    }
                    _ => {
                        d.error(
                            seq,
                            &origin,
                            "unexpected '{': a block must follow a keyword".to_string(),
                        );
                        // Parse and drop it so that the braces still balance.
                        let _ = build(it, level + 1, Some(("{".to_string(), seq, origin)), d);
                    }
                }
                can_open = false;
            }
            Some(Item::Close { seq, origin }) => {
                if opener.is_some() {
                    return nodes;
                }
                d.error(seq, &origin, "unexpected '}': no block is open here".to_string());
                can_open = false;
            }
        }
    }
}

/// Skips a block whose `{` was just read, without recursion.
fn skip_block(it: &mut alloc::vec::IntoIter<Item>) {
    let mut depth = 1u64;
    for item in it.by_ref() {
        match item {
            Item::Open { .. } => depth += 1,
            Item::Close { .. } => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            Item::Line { .. } => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Semantics: nodes -> plan.

struct Cx<'a> {
    d: &'a mut Diags,
}

/// An instance while its block is read: what is only checked once the version and family
/// are known.
struct InstDraft {
    plan: InstancePlan,
    seq: u64,
    version: Option<(Version, u64, Origin)>,
    advert_cs: Option<(u64, String, u64, Origin)>,
    has_interface: bool,
    has_vrid: bool,
    auth: Option<(u64, Origin)>,
}

impl Cx<'_> {
    fn err(&mut self, n: &Node, msg: String) {
        self.d.error(n.seq, &n.origin, msg);
    }
    fn warn(&mut self, n: &Node, msg: String) {
        self.d.warn(n.seq, &n.origin, msg);
    }
    fn unknown(&mut self, n: &Node) {
        let kw = &n.kw;
        self.warn(n, format!("unknown keyword '{kw}' ignored"));
    }
    fn unsupported(&mut self, n: &Node, why: &str) {
        let kw = &n.kw;
        self.warn(n, format!("'{kw}' is not supported and is ignored{why}"));
    }

    /// The argument `i` or an error naming what was expected.
    fn need<'n>(&mut self, n: &'n Node, i: usize, what: &str) -> Option<&'n str> {
        match n.arg(i) {
            Some(a) => Some(a),
            None => {
                let kw = &n.kw;
                self.err(n, format!("{kw}: expected {what}, found nothing"));
                None
            }
        }
    }

    fn bad(&mut self, n: &Node, what: &str, found: &str) {
        let kw = &n.kw;
        self.err(n, format!("{kw}: expected {what}, found '{found}'"));
    }

    fn uint(&mut self, n: &Node, i: usize, min: u64, max: u64) -> Option<u64> {
        let what = format!("a whole number {min}..{max}");
        let a = self.need(n, i, &what)?;
        let v = parse_u64(a, min, max);
        if v.is_none() {
            self.bad(n, &what, a);
        }
        v
    }

    fn int(&mut self, n: &Node, i: usize, min: i64, max: i64) -> Option<i64> {
        let what = format!("a whole number {min}..{max}");
        let a = self.need(n, i, &what)?;
        let v = parse_i64(a, min, max);
        if v.is_none() {
            self.bad(n, &what, a);
        }
        v
    }

    fn secs(&mut self, n: &Node, i: usize, min: Duration, max: Duration) -> Option<Duration> {
        let what = format!("seconds {}..{}", fmt_secs(min), fmt_secs(max));
        let a = self.need(n, i, &what)?;
        let v = parse_secs(a, min, max);
        if v.is_none() {
            self.bad(n, &what, a);
        }
        v
    }

    fn ip(&mut self, n: &Node, i: usize) -> Option<IpAddr> {
        let a = self.need(n, i, "an IP address")?;
        let v = parse_ip(a);
        if v.is_none() {
            self.bad(n, "an IPv4 or IPv6 address", a);
        }
        v
    }

    fn port(&mut self, n: &Node, i: usize) -> Option<u16> {
        self.uint(n, i, 0, 65535).map(|p| p as u16)
    }

    /// An optional `on|off` style argument (absent = on), as keepalived's flag keywords.
    fn flag(&mut self, n: &Node) -> bool {
        match n.arg(0) {
            None => true,
            Some(a) => match parse_bool(a) {
                Some(b) => b,
                None => {
                    self.bad(n, "nothing or one of on/off, true/false, yes/no", a);
                    true
                }
            },
        }
    }

    /// A command line: a single (quoted) word as is, several words as written.
    fn command(&mut self, n: &Node) -> Option<String> {
        match n.args.len() {
            0 => {
                let kw = &n.kw;
                self.err(n, format!("{kw}: expected a command, found nothing"));
                None
            }
            1 => Some(n.args[0].text.clone()),
            _ => Some(n.rest.clone()),
        }
    }

    fn block<'n>(&mut self, n: &'n Node) -> &'n [Node] {
        match &n.block {
            Some(b) => b,
            None => {
                let kw = &n.kw;
                self.err(n, format!("{kw}: expected a block '{{ ... }}' after it"));
                &[]
            }
        }
    }

    fn no_block(&mut self, n: &Node) {
        if n.block.is_some() {
            let kw = &n.kw;
            self.warn(n, format!("'{kw}' takes no block; the block is ignored"));
        }
    }

    // ----- whole file

    fn plan(&mut self, tree: &[Node]) -> Plan {
        let mut plan = Plan::default();
        // global_defs first: instances inherit its defaults wherever it is written.
        let mut garp_set = GarpSet::default();
        for n in tree.iter().filter(|n| n.kw == "global_defs") {
            self.global_defs(n, &mut plan.global, &mut garp_set);
        }
        garp_set.finish(&mut plan.global.garp);

        let mut drafts: Vec<InstDraft> = Vec::new();
        for n in tree {
            match n.kw.as_str() {
                "global_defs" => {}
                "vrrp_script" => {
                    if let Some(s) = self.vrrp_script(n) {
                        if plan.scripts.iter().any(|o| o.name == s.name) {
                            let name = &s.name;
                            self.err(n, format!("vrrp_script '{name}' is defined twice"));
                        } else {
                            plan.scripts.push(s);
                        }
                    }
                }
                "vrrp_instance" => {
                    if let Some(i) = self.vrrp_instance(n, &plan.global) {
                        if drafts.iter().any(|o| o.plan.name == i.plan.name) {
                            let name = &i.plan.name;
                            self.err(n, format!("vrrp_instance '{name}' is defined twice"));
                        } else {
                            drafts.push(i);
                        }
                    }
                }
                "vrrp_sync_group" => {
                    if let Some(g) = self.sync_group(n) {
                        plan.sync_groups.push(g);
                    }
                }
                "virtual_server" => {
                    if let Some(v) = self.virtual_server(n) {
                        match plan
                            .virtual_servers
                            .iter()
                            .find(|p| p.service.key == v.service.key)
                        {
                            // IPVS has one service per key: a second block would silently
                            // replace the first (ipvsadm refuses it as "service already added").
                            Some(prev) => self.err(
                                n,
                                format!(
                                    "virtual_server {} is already defined at {}",
                                    super::apply::service_name(&v.service.key),
                                    prev.origin
                                ),
                            ),
                            None => plan.virtual_servers.push(v),
                        }
                    }
                }
                "virtual_server_group" => self.err(
                    n,
                    "virtual_server_group is not supported: write one virtual_server per address".to_string(),
                ),
                "static_ipaddress"
                | "static_routes"
                | "static_rules"
                | "virtual_routes"
                | "vrrp_track_file"
                | "track_file"
                | "vrrp_track_process"
                | "track_process"
                | "bfd_instance"
                | "garp_group"
                | "linkbeat_interfaces"
                | "net_namespace"
                | "SSL" => self.unsupported(n, ""),
                _ => self.unknown(n),
            }
        }
        plan.instances = self.finish_instances(drafts, &plan.global);
        self.cross_check(&plan);
        plan
    }

    // ----- global_defs

    fn global_defs(&mut self, n: &Node, g: &mut GlobalDefs, gs: &mut GarpSet) {
        for c in self.block(n) {
            match c.kw.as_str() {
                "router_id" => {
                    if let Some(a) = self.need(c, 0, "a name") {
                        g.router_id = Some(a.to_string());
                    }
                }
                "vrrp_version" => {
                    if let Some(v) = self.version(c) {
                        g.vrrp_version = v;
                    }
                }
                "vrrp_check_unicast_src" => g.check_unicast_src = self.flag(c),
                "vrrp_strict" => g.strict = self.flag(c),
                "script_user" => {
                    if self.need(c, 0, "a user name").is_some() {
                        g.script_user = Some(c.rest.clone());
                    }
                }
                "enable_script_security" => g.enable_script_security = self.flag(c),
                "vrrp_higher_prio_send_advert" => g.higher_prio_send_advert = self.flag(c),
                "vrrp_lower_prio_no_advert" => g.lower_prio_no_advert = self.flag(c),
                "vrrp_garp_interval" | "vrrp_gna_interval" => {
                    if let Some(v) = self.secs(c, 0, Duration::ZERO, Duration::from_secs(1)) {
                        g.garp.interval = v;
                    }
                }
                kw if kw.starts_with("vrrp_garp_") => {
                    if !self.garp(c, &kw["vrrp_".len()..], &mut g.garp, gs) {
                        self.unknown(c);
                    }
                }
                // Accepted and ignored: mail alerts (no SMTP client here), identifiers and
                // knobs with no effect on what we run.
                "notification_email"
                | "notification_email_from"
                | "smtp_server"
                | "smtp_connect_timeout"
                | "smtp_helo_name"
                | "smtp_alert"
                | "smtp_alert_vrrp"
                | "smtp_alert_checker"
                | "vrrp_skip_check_adv_addr"
                | "lvs_id"
                | "enable_traps"
                | "enable_snmp_vrrp"
                | "enable_snmp_checker"
                | "enable_snmp_rfc"
                | "enable_snmp_keepalived"
                | "enable_dbus"
                | "vrrp_priority"
                | "checker_priority"
                | "bfd_priority"
                | "vrrp_no_swap"
                | "checker_no_swap"
                | "bfd_no_swap"
                | "vrrp_rt_priority"
                | "checker_rt_priority"
                | "max_auto_priority"
                | "vrrp_rlimit_rtime"
                | "checker_rlimit_rtime"
                | "dynamic_interfaces"
                | "vrrp_iptables"
                | "vrrp_ipsets"
                | "nftables"
                | "vrrp_garp_extra_if"
                | "vrrp_min_garp"
                | "umask"
                | "process_names"
                | "process_name"
                | "vrrp_process_name"
                | "checker_process_name"
                | "bfd_process_name"
                | "instance"
                | "use_pid_dir"
                | "linkbeat_use_polling"
                | "random_seed"
                | "no_email_faults"
                | "startup_script"
                | "shutdown_script"
                | "vrrp_netlink_cmd_rcv_bufs"
                | "vrrp_netlink_monitor_rcv_bufs"
                | "lvs_netlink_cmd_rcv_bufs"
                | "lvs_netlink_monitor_rcv_bufs"
                | "vrrp_startup_delay"
                | "script_security" => {}
                "vrrp_mcast_group4" | "vrrp_mcast_group6" | "lvs_sync_daemon" | "lvs_timeouts"
                | "lvs_flush" | "lvs_flush_on_stop" | "vrrp_notify_fifo" | "notify_fifo"
                | "lvs_notify_fifo" | "vrrp_track_process" | "net_namespace" => self.unsupported(c, ""),
                _ => self.unknown(c),
            }
        }
    }

    /// `garp_master_delay` and friends (`key` without any `vrrp_` prefix). Returns false if
    /// `key` is not one of them.
    fn garp(&mut self, n: &Node, key: &str, g: &mut GarpConfig, gs: &mut GarpSet) -> bool {
        let day = Duration::from_secs(86400);
        match key {
            "garp_master_delay" => {
                if let Some(v) = self.secs(n, 0, Duration::ZERO, day) {
                    g.master_delay = v;
                }
            }
            "garp_master_repeat" => {
                if let Some(v) = self.uint(n, 0, 1, 255) {
                    g.master_repeat = v as u16;
                }
            }
            "garp_master_refresh" => {
                if let Some(v) = self.secs(n, 0, Duration::ZERO, day) {
                    g.master_refresh = v;
                }
            }
            "garp_master_refresh_repeat" => {
                if let Some(v) = self.uint(n, 0, 1, 255) {
                    g.master_refresh_repeat = v as u16;
                }
            }
            "garp_lower_prio_delay" => {
                if let Some(v) = self.secs(n, 0, Duration::ZERO, day) {
                    g.lower_prio_delay = v;
                    gs.lower_delay = true;
                }
            }
            "garp_lower_prio_repeat" => {
                if let Some(v) = self.uint(n, 0, 0, 255) {
                    g.lower_prio_repeat = v as u16;
                    gs.lower_repeat = true;
                }
            }
            _ => return false,
        }
        true
    }

    fn version(&mut self, n: &Node) -> Option<Version> {
        match self.need(n, 0, "2 or 3")? {
            "2" => Some(Version::V2),
            "3" => Some(Version::V3),
            other => {
                let other = other.to_string();
                self.bad(n, "2 or 3", &other);
                None
            }
        }
    }

    // ----- vrrp_script

    fn vrrp_script(&mut self, n: &Node) -> Option<ScriptPlan> {
        let name = self.need(n, 0, "a script name")?.to_string();
        let mut s = ScriptPlan {
            name,
            script: String::new(),
            interval: Duration::from_secs(1),
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            origin: n.origin.clone(),
        };
        let mut have_script = false;
        let hour = Duration::from_secs(86400);
        for c in self.block(n) {
            self.no_block(c);
            match c.kw.as_str() {
                "script" => {
                    if let Some(cmd) = self.command(c) {
                        s.script = cmd;
                        have_script = true;
                    }
                }
                "interval" => {
                    if let Some(v) = self.secs(c, 0, Duration::from_micros(1), hour) {
                        s.interval = v;
                    }
                }
                "timeout" => {
                    if let Some(v) = self.secs(c, 0, Duration::from_micros(1), hour) {
                        s.timeout = Some(v);
                    }
                }
                "weight" => {
                    if let Some(w) = self.int(c, 0, -253, 253) {
                        s.weight = w as i16;
                    }
                    match c.arg(1) {
                        None => {}
                        Some("reverse") => s.weight_reverse = true,
                        Some(o) => {
                            let o = o.to_string();
                            self.bad(c, "'reverse' or nothing after the weight", &o);
                        }
                    }
                }
                "rise" => {
                    if let Some(v) = self.uint(c, 0, 1, u32::MAX as u64) {
                        s.rise = v as u32;
                    }
                }
                "fall" => {
                    if let Some(v) = self.uint(c, 0, 1, u32::MAX as u64) {
                        s.fall = v as u32;
                    }
                }
                "user" => {
                    if self.need(c, 0, "a user name").is_some() {
                        s.user = Some(c.rest.clone());
                    }
                }
                "init_fail" => self.unsupported(c, ": the script starts as succeeded"),
                _ => self.unknown(c),
            }
        }
        if !have_script {
            let name = &s.name;
            self.err(n, format!("vrrp_script '{name}' has no 'script' command"));
            return None;
        }
        Some(s)
    }

    // ----- vrrp_instance

    fn vrrp_instance(&mut self, n: &Node, g: &GlobalDefs) -> Option<InstDraft> {
        let name = self.need(n, 0, "an instance name")?.to_string();
        let mut i = InstDraft {
            plan: InstancePlan {
                name,
                interface: String::new(),
                version: g.vrrp_version,
                vrid: 0,
                priority: 100,
                advert_interval: Duration::from_secs(1),
                start_state: StartState::Backup,
                nopreempt: false,
                preempt_delay: Duration::ZERO,
                accept: None,
                auth_pass: None,
                vips: Vec::new(),
                vips_excluded: Vec::new(),
                unicast_src: None,
                unicast_peers: Vec::new(),
                track_scripts: Vec::new(),
                track_interfaces: Vec::new(),
                notify: Notify::default(),
                garp: g.garp,
                use_vmac: false,
                native_ipv6: false,
                dont_track_primary: false,
                origin: n.origin.clone(),
            },
            seq: n.seq,
            version: None,
            advert_cs: None,
            has_interface: false,
            has_vrid: false,
            auth: None,
        };
        let p = &mut i.plan;
        let mut gs = GarpSet::default();
        for c in self.block(n) {
            let kw = c.kw.as_str();
            if !matches!(
                kw,
                "authentication"
                    | "virtual_ipaddress"
                    | "virtual_ipaddress_excluded"
                    | "unicast_peer"
                    | "track_script"
                    | "track_interface"
            ) {
                self.no_block(c);
            }
            match kw {
                "state" => match self.need(c, 0, "MASTER or BACKUP") {
                    Some("MASTER") => p.start_state = StartState::Master,
                    Some("BACKUP") => p.start_state = StartState::Backup,
                    Some(o) => self.bad(c, "MASTER or BACKUP", o),
                    None => {}
                },
                // Written but invalid is reported where written, not again as missing.
                "interface" => {
                    i.has_interface = true;
                    if let Some(a) = self.need(c, 0, "an interface name") {
                        p.interface = a.to_string();
                    }
                }
                "virtual_router_id" => {
                    i.has_vrid = true;
                    if let Some(v) = self.uint(c, 0, 1, 255) {
                        p.vrid = v as u8;
                    }
                }
                "priority" => {
                    if let Some(v) = self.uint(c, 0, 1, 255) {
                        p.priority = v as u8;
                    }
                }
                "advert_int" => {
                    let what = "seconds with at most 2 decimals (1, 0.5)";
                    if let Some(a) = self.need(c, 0, what) {
                        match parse_fixed(a, 2) {
                            Some(cs) => i.advert_cs = Some((cs, a.to_string(), c.seq, c.origin.clone())),
                            None => self.bad(c, what, a),
                        }
                    }
                }
                "version" => {
                    if let Some(v) = self.version(c) {
                        i.version = Some((v, c.seq, c.origin.clone()));
                    }
                }
                "nopreempt" => p.nopreempt = true,
                "preempt" => p.nopreempt = false,
                "preempt_delay" => {
                    if let Some(v) = self.secs(c, 0, Duration::ZERO, Duration::from_secs(1000)) {
                        p.preempt_delay = v;
                    }
                }
                "accept" => p.accept = Some(true),
                "no_accept" => p.accept = Some(false),
                "authentication" => {
                    i.auth = Some((c.seq, c.origin.clone()));
                    p.auth_pass = self.authentication(c);
                }
                "virtual_ipaddress" => {
                    for l in self.block(c) {
                        if let Some(v) = self.vip(l) {
                            p.vips.push(v);
                        }
                    }
                }
                "virtual_ipaddress_excluded" => {
                    for l in self.block(c) {
                        if let Some(v) = self.vip(l) {
                            p.vips_excluded.push(v);
                        }
                    }
                }
                "unicast_src_ip" => p.unicast_src = self.ip(c, 0),
                "unicast_peer" => {
                    for l in self.block(c) {
                        match parse_ip(&l.kw) {
                            Some(a) => p.unicast_peers.push(a),
                            None => {
                                let k = &l.kw;
                                self.err(l, format!("unicast_peer: expected an IP address, found '{k}'"));
                            }
                        }
                        if !l.args.is_empty() {
                            self.warn(
                                l,
                                "unicast_peer: min_ttl/max_ttl are not supported and are ignored".to_string(),
                            );
                        }
                    }
                }
                "track_script" => {
                    for l in self.block(c) {
                        if let Some(t) = self.track(l, "track_script") {
                            p.track_scripts.push(t);
                        }
                    }
                }
                "track_interface" => {
                    for l in self.block(c) {
                        if let Some(t) = self.track(l, "track_interface") {
                            p.track_interfaces.push(t);
                        }
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    self.notify(c, &mut p.notify)
                }
                "use_vmac" => p.use_vmac = true,
                "native_ipv6" => p.native_ipv6 = true,
                "dont_track_primary" => p.dont_track_primary = true,
                "smtp_alert"
                | "debug"
                | "notify_master_rx_lower_pri"
                | "notify_deleted"
                | "vmac_xmit_base"
                | "promote_secondaries"
                | "linkbeat_use_polling"
                | "skip_check_adv_addr"
                | "strict_mode"
                | "check_unicast_src"
                | "unicast_ttl"
                | "unicast_fault_no_peer"
                | "old_unicast_checksum"
                | "lower_prio_no_advert"
                | "higher_prio_send_advert"
                | "kernel_rx_buf_size" => {
                    // Accepted; either covered by a global keyword or without effect here.
                }
                kw if kw.starts_with("garp_") => {
                    if !self.garp(c, kw, &mut p.garp, &mut gs) {
                        self.unknown(c);
                    }
                }
                "mcast_src_ip" | "mcast_dst_ip" | "use_ipvlan" | "track_file" | "track_process"
                | "track_bfd" | "track_src_ip" | "virtual_routes" | "virtual_rules" | "vrf"
                | "v3_checksum_as_v2" | "down_timer_adverts" | "auth_hmac" => self.unsupported(c, ""),
                _ => self.unknown(c),
            }
        }
        Some(i)
    }

    fn authentication(&mut self, n: &Node) -> Option<Vec<u8>> {
        let mut ty: Option<(String, u64, Origin)> = None;
        let mut pass: Option<String> = None;
        for c in self.block(n) {
            self.no_block(c);
            match c.kw.as_str() {
                "auth_type" => {
                    if let Some(a) = self.need(c, 0, "PASS") {
                        ty = Some((a.to_string(), c.seq, c.origin.clone()));
                    }
                }
                "auth_pass" => {
                    if let Some(a) = self.need(c, 0, "a password") {
                        let mut a = a.to_string();
                        if a.len() > 8 {
                            // keepalived sends the first 8 bytes only.
                            let mut cut = 8;
                            while !a.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            a.truncate(cut);
                            self.warn(c, format!("auth_pass is longer than 8 characters; only '{a}' is used, as keepalived does"));
                        }
                        pass = Some(a);
                    }
                }
                _ => self.unknown(c),
            }
        }
        match ty {
            Some((t, seq, origin)) if t == "PASS" => match pass {
                Some(p) => Some(p.into_bytes()),
                None => {
                    self.d.error(
                        seq,
                        &origin,
                        "authentication: auth_type PASS needs an auth_pass".to_string(),
                    );
                    None
                }
            },
            Some((t, seq, origin)) if t == "AH" => {
                self.d.error(
                    seq,
                    &origin,
                    "auth_type: AH authentication is not supported (use PASS, or none)".to_string(),
                );
                None
            }
            Some((t, seq, origin)) => {
                self.d
                    .error(seq, &origin, format!("auth_type: expected PASS, found '{t}'"));
                None
            }
            None => {
                if pass.is_some() {
                    self.err(n, "authentication: auth_pass without auth_type PASS".to_string());
                }
                None
            }
        }
    }

    /// One line of `virtual_ipaddress`: `ADDR[/LEN] [dev IF] [label L] [brd X] [scope S] ...`.
    fn vip(&mut self, l: &Node) -> Option<VipPlan> {
        self.no_block(l);
        let (a, len) = match l.kw.split_once('/') {
            Some((a, len)) => (a, Some(len)),
            None => (l.kw.as_str(), None),
        };
        let Some(addr) = parse_ip(a) else {
            let k = &l.kw;
            self.err(
                l,
                format!(
                    "virtual_ipaddress: expected an address like 192.168.1.10/24 or 2001:db8::1, found '{k}'"
                ),
            );
            return None;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            None => max,
            Some(s) => match parse_u64(s, 0, max as u64) {
                Some(v) => v as u8,
                None => {
                    self.err(
                        l,
                        format!(
                            "virtual_ipaddress: expected a prefix length 0..{max} after '/', found '{s}'"
                        ),
                    );
                    return None;
                }
            },
        };
        let mut v = VipPlan {
            addr,
            prefix_len,
            dev: None,
            label: None,
            origin: l.origin.clone(),
        };
        let mut k = 0;
        while k < l.args.len() {
            let opt = l.args[k].text.as_str();
            let val = l.args.get(k + 1).map(|t| t.text.clone());
            let takes_value = matches!(
                opt,
                "dev" | "label" | "brd" | "broadcast" | "scope" | "preferred_lft" | "track_group"
            );
            if takes_value && val.is_none() {
                self.err(
                    l,
                    format!("virtual_ipaddress: expected a value after '{opt}', found nothing"),
                );
                return None;
            }
            match opt {
                "dev" => v.dev = val,
                "label" => v.label = val,
                "brd" | "broadcast" | "scope" | "preferred_lft" | "track_group" => {}
                "no_track" | "home" | "nodad" | "noprefixroute" | "autojoin" | "-" => {}
                _ => {
                    self.warn(l, format!("virtual_ipaddress: unknown option '{opt}' ignored"));
                }
            }
            k += if takes_value { 2 } else { 1 };
        }
        Some(v)
    }

    fn track(&mut self, l: &Node, what: &str) -> Option<TrackRef> {
        self.no_block(l);
        let mut t = TrackRef {
            name: l.kw.clone(),
            weight: None,
            origin: l.origin.clone(),
        };
        match l.arg(0) {
            None => {}
            Some("weight") => {
                let a = l.arg(1).unwrap_or("");
                match parse_i64(a, -253, 253) {
                    Some(w) => t.weight = Some(w as i16),
                    None => {
                        let found = if a.is_empty() {
                            "nothing".to_string()
                        } else {
                            format!("'{a}'")
                        };
                        self.err(
                            l,
                            format!(
                                "{what} {}: expected a weight -253..253 after 'weight', found {found}",
                                t.name
                            ),
                        );
                        return None;
                    }
                }
                match l.arg(2) {
                    None => {}
                    Some("reverse") => self.warn(l, format!("{what}: 'reverse' here is not supported and is ignored; put 'weight N reverse' in the vrrp_script")),
                    Some(o) => {
                        let o = o.to_string();
                        self.err(l, format!("{what} {}: unexpected '{o}' after the weight", t.name));
                    }
                }
            }
            Some(o) => {
                let o = o.to_string();
                self.err(
                    l,
                    format!(
                        "{what} {}: expected 'weight N' or nothing after the name, found '{o}'",
                        t.name
                    ),
                );
                return None;
            }
        }
        Some(t)
    }

    fn notify(&mut self, c: &Node, n: &mut Notify) {
        let Some(cmd) = self.command(c) else { return };
        match c.kw.as_str() {
            "notify_master" => n.master = Some(cmd),
            "notify_backup" => n.backup = Some(cmd),
            "notify_fault" => n.fault = Some(cmd),
            "notify_stop" => n.stop = Some(cmd),
            _ => n.any = Some(cmd),
        }
    }

    /// Resolves what depends on the whole instance: family, version, advert interval.
    fn finish_instances(&mut self, drafts: Vec<InstDraft>, g: &GlobalDefs) -> Vec<InstancePlan> {
        let mut out = Vec::new();
        for mut i in drafts {
            let p = &mut i.plan;
            let name = p.name.clone();
            let mut ok = true;
            if !i.has_interface {
                self.d.error(
                    i.seq,
                    &p.origin,
                    format!(
                        "vrrp_instance {name}: 'interface' is missing (the interface to send adverts on)"
                    ),
                );
                ok = false;
            }
            if !i.has_vrid {
                self.d.error(i.seq, &p.origin, format!("vrrp_instance {name}: 'virtual_router_id' is missing (1..255, the same on every router of the group)"));
                ok = false;
            }
            // Family: unicast_src_ip, else the first VIP, else native_ipv6 (as the runner's
            // `family_of`).
            let family = if let Some(s) = p.unicast_src {
                Family::of(&s)
            } else if let Some(v) = p.vips.first() {
                Family::of(&v.addr)
            } else if p.native_ipv6 {
                Family::V6
            } else {
                Family::V4
            };
            let fam_name = |f: Family| if f == Family::V4 { "IPv4" } else { "IPv6" };
            for v in &p.vips {
                if Family::of(&v.addr) != family {
                    self.d.error(i.seq, &v.origin, format!(
                        "virtual_ipaddress {}: an {} address in {} instance {name} (use virtual_ipaddress_excluded for the other family)",
                        v.addr, fam_name(Family::of(&v.addr)), fam_name(family)
                    ));
                    ok = false;
                }
            }
            for peer in &p.unicast_peers {
                if Family::of(peer) != family {
                    self.d.error(
                        i.seq,
                        &p.origin,
                        format!(
                            "vrrp_instance {name}: unicast_peer {peer} is {} but the instance is {}",
                            fam_name(Family::of(peer)),
                            fam_name(family)
                        ),
                    );
                    ok = false;
                }
            }
            p.version = match (&i.version, family) {
                (Some((Version::V2, seq, origin)), Family::V6) => {
                    self.d.warn(
                        *seq,
                        origin,
                        format!(
                            "version 2 cannot carry IPv6: instance {name} uses VRRPv3, as keepalived does"
                        ),
                    );
                    Version::V3
                }
                (Some((v, _, _)), _) => *v,
                (None, Family::V6) => Version::V3,
                (None, Family::V4) => g.vrrp_version,
            };
            if let Some((cs, text, seq, origin)) = &i.advert_cs {
                match p.version {
                    Version::V2 => {
                        if cs % 100 != 0 || !(100..=25500).contains(cs) {
                            self.d.error(
                                *seq,
                                origin,
                                format!("advert_int: VRRPv2 needs whole seconds 1..255, found '{text}'"),
                            );
                            ok = false;
                        }
                    }
                    Version::V3 => {
                        if !(1..=4095).contains(cs) {
                            self.d.error(
                                *seq,
                                origin,
                                format!("advert_int: VRRPv3 needs 0.01..40.95 seconds, found '{text}'"),
                            );
                            ok = false;
                        }
                    }
                }
                p.advert_interval = Duration::from_millis(cs.saturating_mul(10));
            }
            if p.version == Version::V3 && p.auth_pass.is_some() {
                if let Some((seq, origin)) = &i.auth {
                    self.d.warn(
                        *seq,
                        origin,
                        "authentication: VRRPv3 has no authentication; ignored".to_string(),
                    );
                }
                p.auth_pass = None;
            }
            if ok {
                out.push(i.plan);
            }
        }
        // Two instances answering the same VRID on the same link would fight.
        for (k, a) in out.iter().enumerate() {
            for b in &out[..k] {
                let fa = inst_family(a);
                if a.vrid == b.vrid
                    && a.interface == b.interface
                    && fa == inst_family(b)
                    && !(disjoint_peers(a, b))
                {
                    self.d.error_at(
                        &a.origin,
                        format!(
                            "vrrp_instance {}: virtual_router_id {} on {} ({}) is already used by vrrp_instance {} at {}",
                            a.name,
                            a.vrid,
                            a.interface,
                            if fa == Family::V4 { "IPv4" } else { "IPv6" },
                            b.name,
                            b.origin
                        ),
                    );
                }
            }
        }
        out
    }

    // ----- vrrp_sync_group

    fn sync_group(&mut self, n: &Node) -> Option<SyncGroupPlan> {
        let name = self.need(n, 0, "a group name")?.to_string();
        let mut g = SyncGroupPlan {
            name,
            members: Vec::new(),
            notify: Notify::default(),
            track_scripts: Vec::new(),
            origin: n.origin.clone(),
        };
        for c in self.block(n) {
            match c.kw.as_str() {
                "group" => {
                    for l in self.block(c) {
                        g.members.push(l.kw.clone());
                        g.members.extend(l.args.iter().map(|t| t.text.clone()));
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    self.notify(c, &mut g.notify)
                }
                "track_script" => {
                    for l in self.block(c) {
                        if let Some(t) = self.track(l, "track_script") {
                            g.track_scripts.push(t);
                        }
                    }
                }
                "smtp_alert" | "global_tracking" => {}
                "track_interface"
                | "track_file"
                | "track_process"
                | "track_bfd"
                | "sync_group_tracking_weight"
                | "notify_deleted" => self.unsupported(c, ""),
                _ => self.unknown(c),
            }
        }
        if g.members.is_empty() {
            let name = &g.name;
            self.err(
                n,
                format!("vrrp_sync_group {name}: no members (expected 'group {{ INSTANCE ... }}')"),
            );
        }
        Some(g)
    }

    // ----- cross references

    fn cross_check(&mut self, plan: &Plan) {
        let known_script = |name: &str| plan.scripts.iter().any(|s| s.name == name);
        let mut refs: Vec<&TrackRef> = Vec::new();
        for i in &plan.instances {
            refs.extend(i.track_scripts.iter());
        }
        for g in &plan.sync_groups {
            refs.extend(g.track_scripts.iter());
        }
        for t in refs {
            if !known_script(&t.name) {
                self.d.error_at(
                    &t.origin,
                    format!("track_script: no vrrp_script named '{}'", t.name),
                );
            }
        }
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for g in &plan.sync_groups {
            for m in &g.members {
                // An instance dropped for its own errors was already reported.
                let exists = plan.instances.iter().any(|i| &i.name == m);
                if !exists {
                    self.d.error_at(
                        &g.origin,
                        format!("vrrp_sync_group {}: no vrrp_instance named '{m}'", g.name),
                    );
                }
                if let Some((_, other)) = seen.iter().find(|(i, _)| i == m) {
                    self.d.error_at(
                        &g.origin,
                        format!(
                            "vrrp_sync_group {}: instance '{m}' is already in vrrp_sync_group {other}",
                            g.name
                        ),
                    );
                } else {
                    seen.push((m, &g.name));
                }
            }
        }
    }

    // ----- virtual_server

    fn virtual_server(&mut self, n: &Node) -> Option<VirtualServerPlan> {
        enum Key {
            Addr(IpAddr, u16),
            Mark(u32),
        }
        let first = self.need(n, 0, "an IP address (and port) or 'fwmark N'")?;
        let key = match first {
            "fwmark" => Key::Mark(self.uint(n, 1, 1, u32::MAX as u64)? as u32),
            "group" => {
                self.err(
                    n,
                    "virtual_server group: virtual_server_group is not supported".to_string(),
                );
                return None;
            }
            a => {
                let Some(ip) = parse_ip(a) else {
                    let a = a.to_string();
                    self.bad(n, "an IP address (and port) or 'fwmark N'", &a);
                    return None;
                };
                let port = match n.arg(1) {
                    None => 0,
                    Some(_) => self.port(n, 1)?,
                };
                Key::Addr(ip, port)
            }
        };
        let label = n
            .args
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut proto = Protocol::Tcp;
        let mut family: Option<Family> = match key {
            Key::Addr(ip, _) => Some(Family::of(&ip)),
            Key::Mark(_) => None,
        };
        let mut sched = Sched::Wlc;
        let mut flags: Vec<(&str, &Node)> = Vec::new();
        let mut forward = Forward::Nat;
        let mut persist: Option<Duration> = None;
        let mut granularity: Option<(&Node, &str)> = None;
        let mut one_packet = false;
        let mut vs = VirtualServerPlan {
            service: ServiceConfig::tcp(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0),
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
            origin: n.origin.clone(),
        };
        let mut defaults = CheckDefaults::default();
        let mut sorry: Option<(&Node, IpAddr, Option<u16>)> = None;
        let mut sorry_forward: Option<Forward> = None;
        let mut rs_nodes: Vec<&Node> = Vec::new();
        let mut vs_inhibit = false;
        let mut vs_weight: Option<i32> = None;
        let block = self.block(n);
        for c in block {
            if !matches!(c.kw.as_str(), "real_server") {
                self.no_block(c);
            }
            match c.kw.as_str() {
                "delay_loop" => {
                    if let Some(v) =
                        self.secs(c, 0, Duration::from_micros(1), Duration::from_secs(86400 * 31))
                    {
                        vs.delay_loop = v;
                    }
                }
                "lb_algo" | "lvs_sched" => {
                    if let Some(a) = self.need(c, 0, "a scheduler name") {
                        match Sched::from_name(a) {
                            Some(s) => sched = s,
                            None => {
                                let names: Vec<&str> = Sched::ALL.iter().map(|s| s.name()).collect();
                                let a = a.to_string();
                                self.bad(c, &format!("a scheduler ({})", names.join(", ")), &a);
                            }
                        }
                    }
                }
                "lb_kind" | "lvs_method" => {
                    if let Some(f) = self.forward(c) {
                        forward = f;
                    }
                }
                "persistence_timeout" => {
                    persist = match c.arg(0) {
                        // keepalived's IPVS_SVC_PERSISTENT_TIMEOUT.
                        None => Some(Duration::from_secs(360)),
                        Some(_) => self.uint(c, 0, 1, 86400 * 31).map(Duration::from_secs),
                    };
                }
                "persistence_granularity" => {
                    if let Some(a) = self.need(c, 0, "a netmask (IPv4) or prefix length (IPv6)") {
                        granularity = Some((c, a));
                    }
                }
                "protocol" => match self.need(c, 0, "TCP or UDP") {
                    Some(a) if a.eq_ignore_ascii_case("TCP") => proto = Protocol::Tcp,
                    Some(a) if a.eq_ignore_ascii_case("UDP") => proto = Protocol::Udp,
                    Some(a) if a.eq_ignore_ascii_case("SCTP") => {
                        self.err(c, "protocol: SCTP is not supported (TCP or UDP)".to_string())
                    }
                    Some(a) => {
                        let a = a.to_string();
                        self.bad(c, "TCP or UDP", &a)
                    }
                    None => {}
                },
                "ip_family" => match self.need(c, 0, "inet or inet6") {
                    Some("inet") => family = family.or(Some(Family::V4)),
                    Some("inet6") => family = family.or(Some(Family::V6)),
                    Some(a) => {
                        let a = a.to_string();
                        self.bad(c, "inet or inet6", &a)
                    }
                    None => {}
                },
                "quorum" => {
                    if let Some(v) = self.uint(c, 0, 1, u32::MAX as u64) {
                        vs.quorum = v as u32;
                    }
                }
                "hysteresis" => {
                    if let Some(v) = self.uint(c, 0, 0, u32::MAX as u64) {
                        vs.hysteresis = v as u32;
                    }
                }
                "quorum_up" => vs.quorum_up = self.command(c),
                "quorum_down" => vs.quorum_down = self.command(c),
                "sorry_server" => {
                    if let Some(ip) = self.ip(c, 0) {
                        let port = match c.arg(1) {
                            None => None,
                            Some(_) => self.port(c, 1),
                        };
                        sorry = Some((c, ip, port));
                    }
                }
                "sorry_server_inhibit" => vs.sorry_server_inhibit = self.flag(c),
                "sorry_server_lvs_method" => sorry_forward = self.forward(c),
                "alpha" => vs.alpha = self.flag(c),
                "omega" => vs.omega = self.flag(c),
                "ha_suspend" => vs.ha_suspend = self.flag(c),
                "ops" => one_packet = true,
                "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" | "flag-1" | "flag-2" | "flag-3" => {
                    flags.push((c.kw.as_str(), c))
                }
                "inhibit_on_failure" => vs_inhibit = self.flag(c),
                "weight" => vs_weight = self.uint(c, 0, 1, 65535).map(|w| w as i32),
                "connect_timeout" => {
                    defaults.connect_timeout =
                        self.secs(c, 0, Duration::from_micros(1), Duration::from_secs(86400))
                }
                "retry" => defaults.retry = self.uint(c, 0, 0, u32::MAX as u64).map(|v| v as u32),
                "delay_before_retry" => {
                    defaults.delay_before_retry = self.secs(c, 0, Duration::ZERO, Duration::from_secs(86400))
                }
                "virtualhost" => defaults.virtualhost = self.need(c, 0, "a host name").map(str::to_string),
                "real_server" => rs_nodes.push(c),
                "smtp_alert" | "hashed" | "snmp_name" | "warmup" => {}
                "persistence_engine" => self.unsupported(c, ": persistence is per client address"),
                _ => self.unknown(c),
            }
        }
        // The family of a fwmark service: ip_family, else that of its real servers.
        let family = family
            .or_else(|| {
                rs_nodes
                    .iter()
                    .find_map(|r| r.arg(0).and_then(parse_ip).map(|a| Family::of(&a)))
            })
            .unwrap_or(Family::V4);

        let key = match key {
            Key::Addr(ip, port) => ServiceKey::Addr { proto, vip: ip, port },
            Key::Mark(mark) => ServiceKey::Fwmark { family, mark },
        };
        let mut svc = ServiceConfig::new(key).scheduler(sched).one_packet(one_packet);
        if one_packet && proto != Protocol::Udp {
            self.warn(n, format!("virtual_server {label}: 'ops' only affects UDP"));
        }
        // Scheduler flags: keepalived maps flag-1/2 to SCHED1/2 and the sh-/mh- names to the
        // same bits, and ignores the named ones for other schedulers.
        let mut fl = SchedFlags::NONE;
        for (name, c) in flags {
            let (bit, only) = match name {
                "sh-port" => (SchedFlags::PORT, Some(Sched::Sh)),
                "sh-fallback" => (SchedFlags::FALLBACK, Some(Sched::Sh)),
                "mh-port" => (SchedFlags::PORT, Some(Sched::Mh)),
                "mh-fallback" => (SchedFlags::FALLBACK, Some(Sched::Mh)),
                "flag-1" => (SchedFlags::FALLBACK, None),
                "flag-2" => (SchedFlags::PORT, None),
                _ => {
                    self.unsupported(c, ": no scheduler uses it");
                    continue;
                }
            };
            match only {
                Some(s) if s != sched => self.warn(
                    c,
                    format!("'{name}' only applies to the {} scheduler; ignored", s.name()),
                ),
                _ => fl = fl.union(bit),
            }
        }
        svc = svc.flags(fl);
        if persist.is_none() && granularity.is_some() {
            // keepalived: a granularity makes the service persistent with the default timeout.
            persist = Some(Duration::from_secs(360));
        }
        if let Some(t) = persist {
            svc.persistence = Some(Persistence {
                timeout: t,
                netmask: Netmask::host(family),
            });
        }
        if let Some((c, a)) = granularity {
            let mask = match family {
                Family::V4 => match a.parse::<core::net::Ipv4Addr>() {
                    Ok(m) => Some(Netmask::V4(u32::from(m))),
                    Err(_) => {
                        self.bad(c, "an IPv4 netmask like 255.255.255.0", a);
                        None
                    }
                },
                Family::V6 => match parse_u64(a, 1, 128) {
                    Some(len) => Some(Netmask::V6Prefix(len as u8)),
                    None => {
                        self.bad(c, "an IPv6 prefix length 1..128", a);
                        None
                    }
                },
            };
            if let Some(m) = mask {
                svc = svc.netmask(m);
            }
        }
        if let ServiceKey::Addr { port: 0, .. } = key
            && svc.persistence.is_none()
        {
            self.err(n, format!("virtual_server {label}: a service without a port (all ports) must be persistent: add persistence_timeout"));
        }
        vs.service = svc;

        let vs_port = match key {
            ServiceKey::Addr { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
        if let Some((c, ip, port)) = sorry {
            let f = sorry_forward.unwrap_or(forward);
            if Family::of(&ip) != family && !matches!(f, Forward::Tunnel(_)) {
                self.err(
                    c,
                    format!("sorry_server {ip}: its address family differs from virtual_server {label}'s"),
                );
            }
            vs.sorry_server = Some(DestConfig::new(ip, port.unwrap_or(vs_port)).forward(f));
        }
        for r in rs_nodes {
            if let Some(rs) = self.real_server(r, vs_port, forward, family, vs_inhibit, vs_weight, &defaults)
            {
                if vs
                    .real_servers
                    .iter()
                    .any(|o| o.dest.addr == rs.dest.addr && o.dest.port == rs.dest.port)
                {
                    self.err(
                        r,
                        format!(
                            "real_server {} {}: already defined in virtual_server {label}",
                            rs.dest.addr, rs.dest.port
                        ),
                    );
                } else {
                    vs.real_servers.push(rs);
                }
            }
        }
        Some(vs)
    }

    /// `lb_kind` / `lvs_method`: `NAT|DR|TUN [type ipip|gue] [port N] [nocsum|csum|remcsum]`,
    /// plus our `FNAT` extension.
    fn forward(&mut self, c: &Node) -> Option<Forward> {
        let what = "NAT, DR, TUN or FNAT";
        let m = self.need(c, 0, what)?;
        let base = match m {
            "NAT" => Forward::Nat,
            "DR" => Forward::DirectRouting,
            "TUN" => Forward::Tunnel(TunnelType::Ipip),
            // Our extension (DPVS spells it FNAT): full NAT, not in mainline IPVS.
            "FNAT" | "FULLNAT" => Forward::FullNat,
            o => {
                let o = o.to_string();
                self.bad(c, what, &o);
                return None;
            }
        };
        let mut gue = false;
        let mut port: Option<u16> = None;
        let mut k = 1;
        while k < c.args.len() {
            match c.args[k].text.as_str() {
                "type" => {
                    match c.arg(k + 1) {
                        Some("ipip") => gue = false,
                        Some("gue") => gue = true,
                        Some("gre") => {
                            self.err(
                                c,
                                "lvs_method: tunnel type gre is not supported (ipip or gue)".to_string(),
                            );
                            return None;
                        }
                        Some(o) => {
                            let o = o.to_string();
                            self.bad(c, "a tunnel type ipip or gue after 'type'", &o);
                            return None;
                        }
                        None => {
                            self.err(
                                c,
                                "lvs_method: expected a tunnel type ipip or gue after 'type', found nothing"
                                    .to_string(),
                            );
                            return None;
                        }
                    }
                    k += 2;
                }
                "port" => {
                    port = Some(self.uint(c, k + 1, 1, 65535)? as u16);
                    k += 2;
                }
                "nocsum" => k += 1,
                "csum" | "remcsum" => {
                    let o = c.args[k].text.clone();
                    self.warn(
                        c,
                        format!("lvs_method: '{o}' is not supported; GUE is sent without checksum"),
                    );
                    k += 1;
                }
                o => {
                    let o = o.to_string();
                    self.bad(c, "type, port, nocsum, csum or remcsum", &o);
                    return None;
                }
            }
        }
        if c.args.len() > 1 && !matches!(base, Forward::Tunnel(_)) {
            self.err(c, format!("lvs_method {m}: tunnel options only apply to TUN"));
            return None;
        }
        match (base, gue, port) {
            (Forward::Tunnel(_), true, Some(p)) => Some(Forward::Tunnel(TunnelType::Gue { port: p })),
            (Forward::Tunnel(_), true, None) => {
                self.err(
                    c,
                    "lvs_method TUN type gue: expected 'port N' (the GUE UDP port), found nothing"
                        .to_string(),
                );
                None
            }
            (Forward::Tunnel(_), false, Some(_)) => {
                self.err(c, "lvs_method TUN: 'port' only applies to type gue".to_string());
                None
            }
            (f, _, _) => Some(f),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn real_server(
        &mut self,
        n: &Node,
        vs_port: u16,
        forward: Forward,
        family: Family,
        inhibit: bool,
        weight: Option<i32>,
        vs_defaults: &CheckDefaults,
    ) -> Option<RealServerPlan> {
        let addr = self.ip(n, 0)?;
        let port = match n.arg(1) {
            None => vs_port,
            Some(_) => self.port(n, 1)?,
        };
        let mut dest = DestConfig::new(addr, port).forward(forward);
        if let Some(w) = weight {
            dest = dest.weight(w);
        }
        let mut rs = RealServerPlan {
            dest,
            inhibit_on_failure: inhibit,
            notify_up: None,
            notify_down: None,
            checks: Vec::new(),
            origin: n.origin.clone(),
        };
        let mut defaults = vs_defaults.clone();
        let mut check_nodes: Vec<&Node> = Vec::new();
        for c in self.block(n) {
            if !c.kw.ends_with("_CHECK") && !c.kw.ends_with("_GET") {
                self.no_block(c);
            }
            match c.kw.as_str() {
                "weight" => {
                    if let Some(w) = self.uint(c, 0, 0, 65535) {
                        rs.dest.weight = w as i32;
                    }
                }
                "uthreshold" => {
                    if let Some(v) = self.uint(c, 0, 0, u32::MAX as u64) {
                        rs.dest.u_threshold = v as u32;
                    }
                }
                "lthreshold" => {
                    if let Some(v) = self.uint(c, 0, 0, u32::MAX as u64) {
                        rs.dest.l_threshold = v as u32;
                    }
                }
                "lvs_method" | "lb_kind" => {
                    if let Some(f) = self.forward(c) {
                        rs.dest.forward = f;
                    }
                }
                "inhibit_on_failure" => rs.inhibit_on_failure = self.flag(c),
                "notify_up" => rs.notify_up = self.command(c),
                "notify_down" => rs.notify_down = self.command(c),
                "connect_timeout" => {
                    defaults.connect_timeout =
                        self.secs(c, 0, Duration::from_micros(1), Duration::from_secs(86400))
                }
                "retry" => defaults.retry = self.uint(c, 0, 0, u32::MAX as u64).map(|v| v as u32),
                "delay_before_retry" => {
                    defaults.delay_before_retry = self.secs(c, 0, Duration::ZERO, Duration::from_secs(86400))
                }
                "delay_loop" => {
                    defaults.delay_loop =
                        self.secs(c, 0, Duration::from_micros(1), Duration::from_secs(86400 * 31))
                }
                "alpha" => defaults.alpha = Some(self.flag(c)),
                "virtualhost" => defaults.virtualhost = self.need(c, 0, "a host name").map(str::to_string),
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" => check_nodes.push(c),
                "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "PING_CHECK" | "FILE_CHECK" | "BFD_CHECK" => {
                    let kw = &c.kw;
                    self.warn(
                        c,
                        format!(
                            "{kw} is not supported and is ignored: this real server is not checked by it"
                        ),
                    );
                }
                "smtp_alert" | "snmp_name" | "warmup" => {}
                _ => self.unknown(c),
            }
        }
        if Family::of(&addr) != family && !matches!(rs.dest.forward, Forward::Tunnel(_)) {
            self.err(n, format!("real_server {addr}: its address family differs from the virtual server's (only TUN may mix families)"));
            return None;
        }
        for c in check_nodes {
            if let Some(ch) = self.check(c, &defaults) {
                rs.checks.push(ch);
            }
        }
        Some(rs)
    }

    fn check(&mut self, n: &Node, defaults: &CheckDefaults) -> Option<CheckPlan> {
        let mut common = CheckCommon {
            connect_ip: None,
            connect_port: None,
            bind_to: None,
            connect_timeout: defaults.connect_timeout,
            retry: defaults.retry,
            delay_before_retry: defaults.delay_before_retry,
            delay_loop: defaults.delay_loop,
            alpha: defaults.alpha,
            origin: n.origin.clone(),
        };
        let http = matches!(n.kw.as_str(), "HTTP_GET" | "SSL_GET");
        let misc = n.kw == "MISC_CHECK";
        let mut urls: Vec<UrlPlan> = Vec::new();
        let mut virtualhost = defaults.virtualhost.clone();
        let mut misc_path: Option<String> = None;
        let mut misc_timeout = None;
        let mut misc_dynamic = false;
        for c in self.block(n) {
            if c.kw != "url" {
                self.no_block(c);
            }
            match c.kw.as_str() {
                "connect_ip" => common.connect_ip = self.ip(c, 0),
                "connect_port" => common.connect_port = self.uint(c, 0, 1, 65535).map(|p| p as u16),
                "bindto" => common.bind_to = self.ip(c, 0),
                "connect_timeout" => {
                    common.connect_timeout =
                        self.secs(c, 0, Duration::from_micros(1), Duration::from_secs(86400))
                }
                "retry" | "nb_get_retry" => {
                    common.retry = self.uint(c, 0, 0, u32::MAX as u64).map(|v| v as u32)
                }
                "delay_before_retry" => {
                    common.delay_before_retry = self.secs(c, 0, Duration::ZERO, Duration::from_secs(86400))
                }
                "delay_loop" => {
                    common.delay_loop =
                        self.secs(c, 0, Duration::from_micros(1), Duration::from_secs(86400 * 31))
                }
                "alpha" => common.alpha = Some(self.flag(c)),
                "bind_port" | "bind_if" | "fwmark" | "source_ip" => self.unsupported(c, ""),
                "warmup" | "log_all_failures" | "dynamic" => {}
                "url" if http => {
                    if let Some(u) = self.url(c) {
                        urls.push(u);
                    }
                }
                "virtualhost" if http => virtualhost = self.need(c, 0, "a host name").map(str::to_string),
                "http_protocol" | "fast_recovery" | "enable_sni" | "tls_compliant" | "sni_name" if http => {}
                "misc_path" if misc => misc_path = self.command(c),
                "misc_timeout" if misc => {
                    misc_timeout = self.secs(c, 0, Duration::from_micros(1), Duration::from_secs(86400))
                }
                "misc_dynamic" if misc => misc_dynamic = self.flag(c),
                "user" if misc => self.unsupported(c, ": the check runs as the script user"),
                _ => self.unknown(c),
            }
        }
        match n.kw.as_str() {
            "TCP_CHECK" => Some(CheckPlan::Tcp(common)),
            "MISC_CHECK" => match misc_path {
                Some(path) => Some(CheckPlan::Misc {
                    common,
                    path,
                    timeout: misc_timeout,
                    dynamic: misc_dynamic,
                }),
                None => {
                    self.err(
                        n,
                        "MISC_CHECK: 'misc_path' is missing (the command to run)".to_string(),
                    );
                    None
                }
            },
            kw => {
                if urls.is_empty() {
                    self.err(
                        n,
                        format!("{kw}: expected at least one 'url {{ path ... }}' block"),
                    );
                    return None;
                }
                Some(CheckPlan::Http {
                    common,
                    urls,
                    virtualhost,
                    tls: kw == "SSL_GET",
                })
            }
        }
    }

    fn url(&mut self, n: &Node) -> Option<UrlPlan> {
        let mut u = UrlPlan {
            path: String::new(),
            status_code: None,
            digest: None,
        };
        for c in self.block(n) {
            self.no_block(c);
            match c.kw.as_str() {
                "path" => {
                    if let Some(p) = self.need(c, 0, "a URL path") {
                        u.path = p.to_string();
                    }
                }
                "digest" => {
                    if let Some(d) = self.need(c, 0, "an MD5 digest (32 hex digits)") {
                        if d.len() == 32 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
                            u.digest = Some(d.to_ascii_lowercase());
                        } else {
                            let d = d.to_string();
                            self.bad(c, "an MD5 digest (32 hex digits)", &d);
                        }
                    }
                }
                "status_code" => {
                    if let Some(s) = self.need(c, 0, "an HTTP status code 100..599") {
                        if let Some(v) = parse_u64(s, 100, 599) {
                            u.status_code = Some(v as u16);
                            if c.args.len() > 1 {
                                self.warn(c, "status_code: only the first code is used (ranges and lists are not supported)".to_string());
                            }
                        } else if s.contains('-') || s.contains(',') {
                            if s != "200-299" {
                                self.warn(c, format!("status_code: ranges and lists are not supported; '{s}' is read as any 2xx"));
                            }
                        } else {
                            let s = s.to_string();
                            self.bad(c, "an HTTP status code 100..599", &s);
                        }
                    }
                }
                "virtualhost" | "regex" | "regex_no_match" | "regex_options" | "regex_max_offset"
                | "regex_min_offset" | "regex_stack" => self.unsupported(c, ""),
                _ => self.unknown(c),
            }
        }
        if u.path.is_empty() {
            self.err(n, "url: 'path' is missing".to_string());
            return None;
        }
        Some(u)
    }
}

/// Which lower-priority GARP settings were written (they default to the master ones).
#[derive(Default)]
struct GarpSet {
    lower_delay: bool,
    lower_repeat: bool,
}

impl GarpSet {
    fn finish(&self, g: &mut GarpConfig) {
        if !self.lower_delay {
            g.lower_prio_delay = g.master_delay;
        }
        if !self.lower_repeat {
            g.lower_prio_repeat = g.master_repeat;
        }
    }
}

/// Check settings written at virtual or real server level, inherited by its checks.
#[derive(Clone, Default)]
struct CheckDefaults {
    connect_timeout: Option<Duration>,
    retry: Option<u32>,
    delay_before_retry: Option<Duration>,
    delay_loop: Option<Duration>,
    alpha: Option<bool>,
    virtualhost: Option<String>,
}

fn inst_family(i: &InstancePlan) -> Family {
    if let Some(s) = i.unicast_src {
        Family::of(&s)
    } else if let Some(v) = i.vips.first() {
        Family::of(&v.addr)
    } else if i.native_ipv6 {
        Family::V6
    } else {
        Family::V4
    }
}

/// keepalived lets two instances share a VRID on a link when both are unicast to peers
/// that do not overlap.
fn disjoint_peers(a: &InstancePlan, b: &InstancePlan) -> bool {
    !a.unicast_peers.is_empty()
        && !b.unicast_peers.is_empty()
        && a.unicast_peers.iter().all(|p| !b.unicast_peers.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NoIncludes;

    fn texts(s: &str) -> Vec<String> {
        words(s).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(texts("  script \"/bin/a -x\"  y "), ["script", "/bin/a -x", "y"]);
        assert_eq!(texts("a\"b c\"d"), ["a", "b c", "d"]);
        assert_eq!(texts(""), Vec::<String>::new());
        assert_eq!(rest_after_first_word("notify_master  /x  a \\#1 "), "/x  a #1");
    }

    #[test]
    fn braces_split_and_comments_stop_outside_quotes() {
        let p = parse_keepalived(
            "t",
            "vrrp_script s{script \"echo #1 {x}\" ! comment {\n}\\\n",
            &mut NoIncludes,
        )
        .unwrap();
        // The stray backslash line is an unknown keyword; the script itself parsed.
        assert_eq!(
            p.warnings[0].to_string(),
            "t:2: warning: unknown keyword '\\' ignored"
        );
        let ok = parse_keepalived(
            "t",
            "vrrp_script s{script \"echo #1 {x}\" ! c {\n}\n",
            &mut NoIncludes,
        )
        .unwrap();
        assert_eq!(ok.plan.scripts[0].script, "echo #1 {x}");
        let ok = parse_keepalived(
            "t",
            "vrrp_script s {\nscript /bin/echo \\#x\n}}\n",
            &mut NoIncludes,
        );
        let e = ok.unwrap_err();
        assert_eq!(e[0].to_string(), "t:3: unexpected '}': no block is open here");
    }

    #[test]
    fn block_depth_is_bounded() {
        let mut d = Diags::default();
        let text = "a {\n".repeat(MAX_BLOCK_DEPTH as usize + 5);
        let mut lx = Lexer {
            source: &mut NoIncludes,
            items: Vec::new(),
            diags: &mut d,
            seq: 0,
        };
        lx.file("t", &text, 0);
        let items = lx.items;
        let _ = build(&mut items.into_iter(), 0, None, &mut d);
        let msgs: Vec<String> = d.finish().into_iter().map(|x| x.message).collect();
        assert!(
            msgs.iter().any(|m| m.contains("nested more than 32 deep")),
            "{msgs:?}"
        );
    }
}
