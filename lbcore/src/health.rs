//! Health-check state of one virtual server, with keepalived's semantics — no I/O, no clock.
//!
//! [`VirtualServerHealth`] is the checker half of keepalived (`check_*.c` epilogues and
//! `ipwrapper.c`) as a sans-IO state machine. It decides *when* each checker of each real
//! server should probe, *what* a probe result means (retries, alpha, all checkers must pass,
//! quorum with hysteresis, sorry server, `inhibit_on_failure`, `misc_dynamic` weights), and
//! *which* data-plane changes and notify commands follow. The probes themselves (TCP connect,
//! HTTP GET, a command) are done by a driver (`lbcore-net::check`), which feeds their results
//! back in.
//!
//! # Call protocol (quinn-proto style)
//! - construction ([`VirtualServerHealth::new`] / [`VirtualServerHealth::from_plan`]): the
//!   destinations the data plane must start with are [`VirtualServerHealth::dests`]; they are
//!   *not* repeated as actions. The action queue may already hold events and notify commands
//!   (keepalived runs `quorum_up` at start when the quorum is met).
//! - [`VirtualServerHealth::poll_probe`]: drain until `None`; each [`CheckerId`] returned is a
//!   probe to start now. That checker is then "in flight" and is not returned again until its
//!   result arrives.
//! - [`VirtualServerHealth::handle_result`]: the outcome of a probe.
//! - [`VirtualServerHealth::poll_action`]: drain until `None` and apply in order.
//! - [`VirtualServerHealth::poll_timeout`]: when to call `poll_probe` next. Calling early or
//!   spuriously is harmless.
//! - [`VirtualServerHealth::shutdown`]: keepalived's stop path (`omega` notifies).
//!
//! # Guarantees
//! Deterministic: the same inputs give the same actions in the same order. Never panics, never
//! reads a clock; unknown or stale [`CheckerId`]s are ignored (`handle_result` returns false).
//! Memory: allocation happens at construction and when actions are queued (bounded by what the
//! caller does not drain).
//!
//! # keepalived semantics
//! - A checker probes every `delay_loop`. When a probe of an *up* checker fails and fewer than
//!   `retry` retries were made, it probes again after `delay_before_retry` without any state
//!   change; the failure counts only when `retry` retries have failed too, i.e. after
//!   `retry + 1` consecutive failed probes (keepalived's `retry_it` counter). A failing checker
//!   that is already down is not retried (as keepalived's MISC_CHECK; its TCP_CHECK retries
//!   there too, which only changes probe timing). Defaults: `retry` 1 (TCP, HTTP) or 0
//!   (MISC), `delay_before_retry` 3 s (HTTP) or 1 s.
//! - The next probe is scheduled from the instant the result is handed in (keepalived's
//!   MISC_CHECK counts from the start of the previous run; the difference is the probe's
//!   duration).
//! - `alpha`: the checker starts down; the server is not added (with `inhibit_on_failure` it is
//!   added with weight 0) until every checker has succeeded once.
//! - A real server is alive only when all its checkers are up.
//! - Going down removes the destination, or with `inhibit_on_failure` sets its weight to 0;
//!   going up adds it back (or restores the weight).
//! - Quorum: the sum of the weights of alive servers. Gained when `sum >= quorum + hysteresis`
//!   (while lost), lost when `sum == 0 || sum < quorum - hysteresis` (while held). Losing it
//!   with a sorry server removes (or, inhibited, zero-weights) every alive server and adds the
//!   sorry server; gaining it does the reverse. `quorum_up` / `quorum_down` run on each
//!   transition, and at start when the quorum is met (or not, if a sorry server exists).
//! - `sorry_server_inhibit`: the sorry server is always present, at weight 0 while unused.
//! - `misc_dynamic`: a [`CheckResult::SuccessWeight`] sets the server's weight (applied at once
//!   when it is in the pool) and re-evaluates the quorum.
//! - `notify_up` / `notify_down` run when a server's alive state changes, and on the first
//!   result of an `alpha` checker that confirms the server down.
//! - `omega`: on [`VirtualServerHealth::shutdown`] the `notify_down` of alive servers and
//!   `quorum_down` run; without it no notify runs at shutdown.
//!
//! Not modelled: `ha_suspend` (checks always run), `warmup` (the first probe of every checker
//! is due at construction time), a sorry server that is also a real server, SMTP alerts and
//! the notify FIFO, reload (state migration on SIGHUP).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use crate::config::{CheckPlan, VirtualServerPlan};
use crate::service::{DestConfig, Protocol, ServiceKey};
use crate::time::{Duration, Instant};

/// Which kind of checker produced a result (for messages only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// `TCP_CHECK`.
    Tcp,
    /// `HTTP_GET` (or `SSL_GET`).
    Http,
    /// `MISC_CHECK`.
    Misc,
}

impl CheckKind {
    /// keepalived's keyword for it.
    pub const fn keyword(self) -> &'static str {
        match self {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Http => "HTTP_GET",
            CheckKind::Misc => "MISC_CHECK",
        }
    }
    /// keepalived's default `retry`: MISC_CHECK sets `default_retry = 0`, the others 1.
    pub const fn default_retry(self) -> u32 {
        match self {
            CheckKind::Misc => 0,
            CheckKind::Tcp | CheckKind::Http => 1,
        }
    }
    /// keepalived's default `delay_before_retry`: 3 s for HTTP/SSL, 1 s otherwise.
    pub const fn default_delay_before_retry(self) -> Duration {
        match self {
            CheckKind::Http => Duration::from_secs(3),
            CheckKind::Tcp | CheckKind::Misc => Duration::from_secs(1),
        }
    }
}

/// The outcome of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// The probe passed.
    Success,
    /// The probe failed (refused, timed out, wrong status, non-zero exit, ...).
    Failure,
    /// `MISC_CHECK` with `misc_dynamic` exited with status `2 + w`: passed, and the server's
    /// weight becomes `w`.
    SuccessWeight(u32),
}

/// One checker of a real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckerConfig {
    /// What kind of probe it is.
    pub kind: CheckKind,
    /// Failed retries before a failure counts (`retry`, `nb_get_retry`).
    pub retry: u32,
    /// Interval between probes (`delay_loop`).
    pub delay_loop: Duration,
    /// Interval before a retry (`delay_before_retry`).
    pub delay_before_retry: Duration,
    /// Start down until the first success (`alpha`).
    pub alpha: bool,
}

impl CheckerConfig {
    /// A checker with keepalived's defaults (`delay_loop` 60 s, no alpha).
    pub const fn new(kind: CheckKind) -> Self {
        CheckerConfig {
            kind,
            retry: kind.default_retry(),
            delay_loop: Duration::from_secs(60),
            delay_before_retry: kind.default_delay_before_retry(),
            alpha: false,
        }
    }

    /// The checker a parsed `*_CHECK` block describes, with the virtual server's `delay_loop`
    /// and `alpha` as defaults.
    pub fn from_plan(check: &CheckPlan, vs_delay_loop: Duration, vs_alpha: bool) -> Self {
        let (kind, common) = match check {
            CheckPlan::Tcp(c) => (CheckKind::Tcp, c),
            CheckPlan::Http { common, .. } => (CheckKind::Http, common),
            CheckPlan::Misc { common, .. } => (CheckKind::Misc, common),
        };
        CheckerConfig {
            kind,
            retry: common.retry.unwrap_or(kind.default_retry()),
            delay_loop: common.delay_loop.unwrap_or(vs_delay_loop),
            delay_before_retry: common
                .delay_before_retry
                .unwrap_or(kind.default_delay_before_retry()),
            alpha: common.alpha.unwrap_or(vs_alpha),
        }
    }
}

/// One real server and its checkers.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// The destination (its `weight` is the configured weight).
    pub dest: DestConfig,
    /// `inhibit_on_failure`: weight 0 instead of removal.
    pub inhibit_on_failure: bool,
    /// `notify_up` command.
    pub notify_up: Option<String>,
    /// `notify_down` command.
    pub notify_down: Option<String>,
    /// The checkers; all must be up for the server to be alive. None: always alive.
    pub checkers: Vec<CheckerConfig>,
}

impl ServerConfig {
    /// A server with no checkers and no notify commands.
    pub const fn new(dest: DestConfig) -> Self {
        ServerConfig {
            dest,
            inhibit_on_failure: false,
            notify_up: None,
            notify_down: None,
            checkers: Vec::new(),
        }
    }
}

/// The health settings of one virtual server.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthConfig {
    /// The service (for messages).
    pub service: ServiceKey,
    /// `quorum` (keepalived's default 1).
    pub quorum: u32,
    /// `hysteresis` (default 0).
    pub hysteresis: u32,
    /// `quorum_up` command.
    pub quorum_up: Option<String>,
    /// `quorum_down` command.
    pub quorum_down: Option<String>,
    /// `sorry_server`.
    pub sorry_server: Option<DestConfig>,
    /// `sorry_server_inhibit`.
    pub sorry_server_inhibit: bool,
    /// `omega`.
    pub omega: bool,
    /// `real_server` blocks, in order; [`CheckerId::server`] indexes this.
    pub servers: Vec<ServerConfig>,
}

impl HealthConfig {
    /// A virtual server with keepalived's defaults and no real servers.
    pub const fn new(service: ServiceKey) -> Self {
        HealthConfig {
            service,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry_server: None,
            sorry_server_inhibit: false,
            omega: false,
            servers: Vec::new(),
        }
    }

    /// The health settings of a parsed `virtual_server`.
    pub fn from_plan(vs: &VirtualServerPlan) -> Self {
        HealthConfig {
            service: vs.service.key,
            quorum: vs.quorum,
            hysteresis: vs.hysteresis,
            quorum_up: vs.quorum_up.clone(),
            quorum_down: vs.quorum_down.clone(),
            sorry_server: vs.sorry_server,
            sorry_server_inhibit: vs.sorry_server_inhibit,
            omega: vs.omega,
            servers: vs
                .real_servers
                .iter()
                .map(|rs| ServerConfig {
                    dest: rs.dest,
                    inhibit_on_failure: rs.inhibit_on_failure,
                    notify_up: rs.notify_up.clone(),
                    notify_down: rs.notify_down.clone(),
                    checkers: rs
                        .checks
                        .iter()
                        .map(|c| CheckerConfig::from_plan(c, vs.delay_loop, vs.alpha))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Names one checker: the index of its real server in [`HealthConfig::servers`] and its index
/// in [`ServerConfig::checkers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckerId {
    /// Real server index.
    pub server: usize,
    /// Checker index within the server.
    pub checker: usize,
}

/// A real or sorry server as keepalived prints it: `[addr]:proto:port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// The virtual server's protocol (TCP for fwmark services, as keepalived prints it).
    pub proto: Protocol,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]:{}:{}", self.addr, proto_name(self.proto), self.port)
    }
}

/// A virtual service as keepalived prints it: `[vip]:proto:port` or `FWM mark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VsName(pub ServiceKey);

impl fmt::Display for VsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ServiceKey::Addr { proto, vip, port } => {
                write!(f, "[{}]:{}:{}", vip, proto_name(proto), port)
            }
            ServiceKey::Fwmark { mark, .. } => write!(f, "FWM {mark}"),
        }
    }
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// Why a notify command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyReason {
    /// `notify_up` of real server `server`.
    ServerUp {
        /// Real server index.
        server: usize,
    },
    /// `notify_down` of real server `server`.
    ServerDown {
        /// Real server index.
        server: usize,
    },
    /// `quorum_up`.
    QuorumUp,
    /// `quorum_down`.
    QuorumDown,
}

/// A state change worth logging; `Display` gives keepalived's wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A checker succeeded for the first time or after being down.
    CheckUp {
        /// Which checker.
        id: CheckerId,
        /// Its kind.
        kind: CheckKind,
        /// Its real server.
        rs: Endpoint,
        /// The driver's detail, possibly empty.
        detail: String,
    },
    /// A checker was declared down (after its retries) or failed its first probe.
    CheckDown {
        /// Which checker.
        id: CheckerId,
        /// Its kind.
        kind: CheckKind,
        /// Its real server.
        rs: Endpoint,
        /// Its `retry` setting.
        retries: u32,
        /// The driver's detail (e.g. "connection refused"), possibly empty.
        detail: String,
    },
    /// A real server became alive: added to the pool (or, inhibited, given its weight back).
    ServerUp {
        /// Real server index.
        server: usize,
        /// The server.
        rs: Endpoint,
        /// The virtual server.
        vs: VsName,
        /// `inhibit_on_failure` is set.
        inhibit: bool,
    },
    /// A real server went down: removed from the pool (or, inhibited, set to weight 0).
    ServerDown {
        /// Real server index.
        server: usize,
        /// The server.
        rs: Endpoint,
        /// The virtual server.
        vs: VsName,
        /// `inhibit_on_failure` is set.
        inhibit: bool,
    },
    /// `misc_dynamic` changed a server's weight.
    WeightChanged {
        /// Real server index.
        server: usize,
        /// The server.
        rs: Endpoint,
        /// The virtual server.
        vs: VsName,
        /// Old weight.
        from: i32,
        /// New weight.
        to: i32,
        /// Whether the server is alive.
        active: bool,
    },
    /// The quorum was gained.
    QuorumGained {
        /// The virtual server.
        vs: VsName,
        /// `quorum`.
        quorum: u32,
        /// `hysteresis`.
        hysteresis: u32,
        /// The threshold that was reached.
        threshold: i64,
        /// Sum of the weights of alive servers.
        weight_sum: i64,
    },
    /// The quorum was lost (or is not met at start while a sorry server exists).
    QuorumLost {
        /// The virtual server.
        vs: VsName,
        /// `quorum`.
        quorum: u32,
        /// `hysteresis`.
        hysteresis: u32,
        /// The threshold that was missed.
        threshold: i64,
        /// Sum of the weights of alive servers.
        weight_sum: i64,
        /// At construction.
        init: bool,
    },
    /// The sorry server was put in the pool (real servers taken out).
    SorryServerIn {
        /// The sorry server.
        ss: Endpoint,
        /// The virtual server.
        vs: VsName,
        /// `sorry_server_inhibit`.
        inhibit: bool,
    },
    /// The sorry server was taken out (alive real servers put back).
    SorryServerOut {
        /// The sorry server.
        ss: Endpoint,
        /// The virtual server.
        vs: VsName,
        /// `sorry_server_inhibit`.
        inhibit: bool,
    },
    /// [`VirtualServerHealth::shutdown`] took a server out.
    ShuttingDown {
        /// The server.
        rs: Endpoint,
        /// The virtual server.
        vs: VsName,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::CheckUp { kind, rs, detail, .. } => {
                match kind {
                    CheckKind::Tcp => write!(f, "TCP connection to {rs} success.")?,
                    CheckKind::Http => write!(f, "HTTP status code success to {rs}.")?,
                    CheckKind::Misc => write!(f, "Misc check for {rs} succeeded.")?,
                }
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            Event::CheckDown {
                kind,
                rs,
                retries,
                detail,
                ..
            } => {
                write!(f, "{} on service {rs} failed", kind.keyword())?;
                if *retries > 0 {
                    write!(f, " after {retries} retries")?;
                }
                f.write_str(".")?;
                if !detail.is_empty() {
                    write!(f, " ({detail})")?;
                }
                Ok(())
            }
            Event::ServerUp { rs, vs, inhibit, .. } => {
                if *inhibit {
                    write!(f, "Enabling service {rs} of VS {vs}")
                } else {
                    write!(f, "Adding service {rs} to VS {vs}")
                }
            }
            Event::ServerDown { rs, vs, inhibit, .. } => {
                if *inhibit {
                    write!(f, "Disabling service {rs} of VS {vs}")
                } else {
                    write!(f, "Removing service {rs} from VS {vs}")
                }
            }
            Event::WeightChanged {
                rs,
                vs,
                from,
                to,
                active,
                ..
            } => {
                let inactive = if *active { "" } else { "in" };
                write!(
                    f,
                    "Changing weight from {from} to {to} for {inactive}active service {rs} of VS {vs}"
                )
            }
            Event::QuorumGained {
                vs,
                quorum,
                hysteresis,
                threshold,
                weight_sum,
            } => write!(
                f,
                "Gained quorum {quorum}+{hysteresis}={threshold} <= {weight_sum} for VS {vs}"
            ),
            Event::QuorumLost {
                vs,
                quorum,
                hysteresis,
                threshold,
                weight_sum,
                init,
            } => {
                let what = if *init {
                    "Starting with quorum down"
                } else {
                    "Lost quorum"
                };
                write!(
                    f,
                    "{what} {quorum}-{hysteresis}={threshold} > {weight_sum} for VS {vs}"
                )
            }
            Event::SorryServerIn { ss, vs, inhibit } => {
                let what = if *inhibit { "Enabling" } else { "Adding" };
                write!(f, "{what} sorry server {ss} to VS {vs}")
            }
            Event::SorryServerOut { ss, vs, inhibit } => {
                let what = if *inhibit { "Disabling" } else { "Removing" };
                write!(f, "{what} sorry server {ss} from VS {vs}")
            }
            Event::ShuttingDown { rs, vs } => write!(f, "Shutting down service {rs} from VS {vs}"),
        }
    }
}

/// What the caller must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Add this destination to the service.
    AddDest(DestConfig),
    /// Remove the destination `addr:port` from the service.
    RemoveDest {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
    },
    /// Change the weight of the destination `addr:port` (0 quiesces it).
    SetWeight {
        /// Address.
        addr: IpAddr,
        /// Port.
        port: u16,
        /// New weight.
        weight: i32,
    },
    /// Run this command (through the shell, as keepalived's notify scripts).
    RunNotify {
        /// The command line as configured.
        cmd: String,
        /// Which hook.
        reason: NotifyReason,
    },
    /// Log this.
    Event(Event),
}

#[derive(Clone, Debug)]
struct CheckerState {
    cfg: CheckerConfig,
    is_up: bool,
    has_run: bool,
    retry_it: u32,
    next_due: Instant,
    in_flight: bool,
}

#[derive(Clone, Debug)]
struct ServerState {
    cfg: ServerConfig,
    /// keepalived's `rs->alive`: in the pool as far as the checkers are concerned.
    alive: bool,
    /// keepalived's `rs->set`: present in the data plane (possibly at weight 0).
    set: bool,
    /// The weight the data plane has for it while `set`.
    plane_weight: i32,
    /// keepalived's `effective_weight`: configured, then as `misc_dynamic` sets it.
    weight: i32,
    /// Checkers currently down.
    num_failed: u32,
    checkers: Vec<CheckerState>,
}

#[derive(Clone, Debug)]
struct SorryState {
    dest: DestConfig,
    inhibit: bool,
    alive: bool,
    set: bool,
    plane_weight: i32,
}

/// The health state of one virtual server (see the module docs for the call protocol).
#[derive(Clone, Debug)]
pub struct VirtualServerHealth {
    vs: VsName,
    quorum: u32,
    hysteresis: u32,
    quorum_up_cmd: Option<String>,
    quorum_down_cmd: Option<String>,
    omega: bool,
    servers: Vec<ServerState>,
    sorry: Option<SorryState>,
    quorum_up: bool,
    actions: VecDeque<Action>,
    /// During construction data-plane changes only update `set`/`plane_weight`: the caller
    /// reads the result with `dests()` instead of replaying them.
    init: bool,
    stopped: bool,
}

impl VirtualServerHealth {
    /// The state at start (`now`): every checker's first probe is due at `now`.
    pub fn new(cfg: HealthConfig, now: Instant) -> Self {
        Self::new_migrated(cfg, now, None)
    }

    /// [`VirtualServerHealth::new`] after a reload, as keepalived's `migrate_checkers()`: a
    /// checker of a real server (same address and port) that has the same configuration in
    /// `old` starts in the state it had there (up or down, run or not), so a failed server
    /// stays out across a reload and the others are not touched.
    pub fn new_migrated(cfg: HealthConfig, now: Instant, old: Option<&VirtualServerHealth>) -> Self {
        let servers = cfg
            .servers
            .into_iter()
            .map(|s| {
                let prev = old.and_then(|o| {
                    o.servers
                        .iter()
                        .find(|p| p.cfg.dest.addr == s.dest.addr && p.cfg.dest.port == s.dest.port)
                });
                let checkers: Vec<CheckerState> = s
                    .checkers
                    .iter()
                    .map(|c| {
                        let was = prev.and_then(|p| p.checkers.iter().find(|pc| pc.cfg == *c));
                        CheckerState {
                            cfg: c.clone(),
                            is_up: was.map_or(!c.alpha, |w| w.is_up),
                            has_run: was.is_some_and(|w| w.has_run),
                            retry_it: 0,
                            next_due: now,
                            in_flight: false,
                        }
                    })
                    .collect();
                let num_failed = checkers.iter().filter(|c| !c.is_up).count() as u32;
                ServerState {
                    weight: s.dest.weight,
                    cfg: s,
                    alive: false,
                    set: false,
                    plane_weight: 0,
                    num_failed,
                    checkers,
                }
            })
            .collect();
        let mut h = VirtualServerHealth {
            vs: VsName(cfg.service),
            quorum: cfg.quorum,
            hysteresis: cfg.hysteresis,
            quorum_up_cmd: cfg.quorum_up,
            quorum_down_cmd: cfg.quorum_down,
            omega: cfg.omega,
            servers,
            sorry: cfg.sorry_server.map(|dest| SorryState {
                dest,
                inhibit: cfg.sorry_server_inhibit,
                alive: false,
                set: false,
                plane_weight: 0,
            }),
            quorum_up: false,
            actions: VecDeque::new(),
            init: true,
            stopped: false,
        };
        // keepalived's set_quorum_states() runs before any server is alive.
        h.quorum_up = 0 >= i64::from(h.quorum) + i64::from(h.hysteresis);
        // init_service_rs(): servers with no failed (alpha) checker start alive; inhibited
        // ones are present anyway, at weight 0 while failed.
        for i in 0..h.servers.len() {
            let s = &h.servers[i];
            if s.num_failed == 0 || s.cfg.inhibit_on_failure {
                let quiesced = s.num_failed > 0;
                h.plane_add(i, quiesced);
                if !quiesced {
                    h.servers[i].alive = true;
                }
            }
        }
        h.update_quorum_state(true);
        if let Some(ss) = &mut h.sorry
            && ss.inhibit
            && !ss.set
        {
            ss.set = true;
            ss.plane_weight = 0;
        }
        h.init = false;
        h
    }

    /// The state of a parsed `virtual_server` at start (`now`).
    pub fn from_plan(vs: &VirtualServerPlan, now: Instant) -> Self {
        Self::new(HealthConfig::from_plan(vs), now)
    }

    // ---- getters ----

    /// The destinations the data plane should have now, real servers in configuration order
    /// then the sorry server, each with the weight it should have. Right after construction
    /// this is the initial set.
    pub fn dests(&self) -> Vec<DestConfig> {
        let mut v: Vec<DestConfig> = self
            .servers
            .iter()
            .filter(|s| s.set)
            .map(|s| s.cfg.dest.weight(s.plane_weight))
            .collect();
        if let Some(ss) = &self.sorry
            && ss.set
        {
            v.push(ss.dest.weight(ss.plane_weight));
        }
        v
    }

    /// Whether the quorum is held.
    pub fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    /// Whether the sorry server is in use.
    pub fn sorry_active(&self) -> bool {
        self.sorry.as_ref().is_some_and(|s| s.alive)
    }

    /// Number of real servers.
    pub fn num_servers(&self) -> usize {
        self.servers.len()
    }

    /// Whether real server `server` is alive (all its checkers up); `None` if out of range.
    pub fn server_alive(&self, server: usize) -> Option<bool> {
        self.servers.get(server).map(|s| s.alive)
    }

    /// The effective weight of real server `server` (configured, or as `misc_dynamic` set it).
    pub fn server_weight(&self, server: usize) -> Option<i32> {
        self.servers.get(server).map(|s| s.weight)
    }

    /// Whether checker `id` is up.
    pub fn checker_up(&self, id: CheckerId) -> Option<bool> {
        self.checker(id).map(|c| c.is_up)
    }

    /// The configuration of checker `id`.
    pub fn checker_config(&self, id: CheckerId) -> Option<&CheckerConfig> {
        self.checker(id).map(|c| &c.cfg)
    }

    /// All checker ids, in order.
    pub fn checker_ids(&self) -> impl Iterator<Item = CheckerId> + '_ {
        self.servers
            .iter()
            .enumerate()
            .flat_map(|(server, s)| (0..s.checkers.len()).map(move |checker| CheckerId { server, checker }))
    }

    fn checker(&self, id: CheckerId) -> Option<&CheckerState> {
        self.servers.get(id.server)?.checkers.get(id.checker)
    }

    // ---- timers and probes ----

    /// The earliest instant a probe is due (`None`: nothing to schedule — every checker is in
    /// flight, there are none, or the state is shut down).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped {
            return None;
        }
        self.servers
            .iter()
            .flat_map(|s| s.checkers.iter())
            .filter(|c| !c.in_flight)
            .map(|c| c.next_due)
            .min()
    }

    /// The next probe due at `now`, in configuration order; it is in flight until its
    /// [`handle_result`](Self::handle_result). Drain until `None`.
    pub fn poll_probe(&mut self, now: Instant) -> Option<CheckerId> {
        if self.stopped {
            return None;
        }
        for (server, s) in self.servers.iter_mut().enumerate() {
            for (checker, c) in s.checkers.iter_mut().enumerate() {
                if !c.in_flight && c.next_due <= now {
                    c.in_flight = true;
                    return Some(CheckerId { server, checker });
                }
            }
        }
        None
    }

    /// The result of the probe `id` that [`poll_probe`](Self::poll_probe) handed out, at
    /// `now`. Returns false (and changes nothing) if `id` was not in flight.
    pub fn handle_result(&mut self, now: Instant, id: CheckerId, result: CheckResult) -> bool {
        self.handle_result_detail(now, id, result, "")
    }

    /// [`handle_result`](Self::handle_result) with the driver's detail (e.g. "connection
    /// refused", "status 503"), carried in the [`Event`] it may cause.
    pub fn handle_result_detail(
        &mut self,
        now: Instant,
        id: CheckerId,
        result: CheckResult,
        detail: &str,
    ) -> bool {
        if self.stopped {
            return false;
        }
        let rs = self.endpoint(id.server);
        let Some(c) = self
            .servers
            .get_mut(id.server)
            .and_then(|s| s.checkers.get_mut(id.checker))
        else {
            return false;
        };
        if !c.in_flight {
            return false;
        }
        c.in_flight = false;
        let kind = c.cfg.kind;
        match result {
            CheckResult::Success | CheckResult::SuccessWeight(_) => {
                c.retry_it = 0;
                c.next_due = now + c.cfg.delay_loop;
                let report = !c.is_up || !c.has_run;
                // keepalived's check_misc.c updates the weight before the checker state.
                if let CheckResult::SuccessWeight(w) = result {
                    let w = i32::try_from(w).unwrap_or(i32::MAX);
                    self.update_server_weight(id.server, w);
                }
                if report {
                    self.event(Event::CheckUp {
                        id,
                        kind,
                        rs,
                        detail: String::from(detail),
                    });
                    self.update_checker_state(id, true);
                }
            }
            CheckResult::Failure => {
                if c.is_up && c.retry_it < c.cfg.retry {
                    c.retry_it += 1;
                    c.next_due = now + c.cfg.delay_before_retry;
                } else {
                    c.retry_it = 0;
                    c.next_due = now + c.cfg.delay_loop;
                    if c.is_up || !c.has_run {
                        let retries = c.cfg.retry;
                        self.event(Event::CheckDown {
                            id,
                            kind,
                            rs,
                            retries,
                            detail: String::from(detail),
                        });
                        self.update_checker_state(id, false);
                    }
                }
            }
        }
        true
    }

    // ---- commands ----

    /// keepalived's stop path: every destination (and the sorry server) is removed — also
    /// inhibited ones — and, with `omega`, `notify_down` runs for alive servers and
    /// `quorum_down` once. Afterwards no probe is handed out and results are ignored.
    pub fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Some(ss) = &mut self.sorry {
            if ss.set {
                ss.set = false;
                let a = Action::RemoveDest {
                    addr: ss.dest.addr,
                    port: ss.dest.port,
                };
                self.actions.push_back(a);
            }
            ss.alive = false;
        }
        for i in 0..self.servers.len() {
            let rs = self.endpoint(i);
            self.event(Event::ShuttingDown { rs, vs: self.vs });
            self.plane_del(i, true);
            if self.servers[i].alive {
                self.servers[i].alive = false;
                if self.omega {
                    self.rs_notify(i);
                }
            }
        }
        self.quorum_up = false;
        if self.omega {
            self.vs_notify();
        }
    }

    // ---- outputs ----

    /// The next thing to do. Drain until `None`.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ---- keepalived's ipwrapper.c ----

    fn endpoint(&self, server: usize) -> Endpoint {
        let (addr, port) = self
            .servers
            .get(server)
            .map(|s| (s.cfg.dest.addr, s.cfg.dest.port))
            .unwrap_or((IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0));
        self.endpoint_of(addr, port)
    }

    fn endpoint_of(&self, addr: IpAddr, port: u16) -> Endpoint {
        let proto = match self.vs.0 {
            ServiceKey::Addr { proto, .. } => proto,
            ServiceKey::Fwmark { .. } => Protocol::Tcp,
        };
        Endpoint { addr, port, proto }
    }

    fn event(&mut self, e: Event) {
        self.actions.push_back(Action::Event(e));
    }

    fn plane(&mut self, a: Action) {
        if !self.init {
            self.actions.push_back(a);
        }
    }

    /// `ipvs_cmd(LVS_CMD_ADD_DEST)`: an inhibited server already present gets its weight
    /// back; otherwise it is added (at weight 0 when `quiesced`).
    fn plane_add(&mut self, i: usize, quiesced: bool) {
        let Some(s) = self.servers.get_mut(i) else {
            return;
        };
        let w = if quiesced { 0 } else { s.weight.max(0) };
        let (addr, port) = (s.cfg.dest.addr, s.cfg.dest.port);
        let a = if s.set {
            Action::SetWeight {
                addr,
                port,
                weight: w,
            }
        } else {
            Action::AddDest(s.cfg.dest.weight(w))
        };
        s.set = true;
        s.plane_weight = w;
        self.plane(a);
    }

    /// `ipvs_cmd(LVS_CMD_DEL_DEST)`: an inhibited server is set to weight 0 unless `force`.
    fn plane_del(&mut self, i: usize, force: bool) {
        let Some(s) = self.servers.get_mut(i) else {
            return;
        };
        if !s.set {
            return;
        }
        let (addr, port) = (s.cfg.dest.addr, s.cfg.dest.port);
        let a = if s.cfg.inhibit_on_failure && !force {
            s.plane_weight = 0;
            Action::SetWeight {
                addr,
                port,
                weight: 0,
            }
        } else {
            s.set = false;
            Action::RemoveDest { addr, port }
        };
        self.plane(a);
    }

    fn sorry_add(&mut self) {
        let Some(ss) = &mut self.sorry else {
            return;
        };
        let w = ss.dest.weight.max(0);
        let a = if ss.set {
            Action::SetWeight {
                addr: ss.dest.addr,
                port: ss.dest.port,
                weight: w,
            }
        } else {
            Action::AddDest(ss.dest)
        };
        ss.set = true;
        ss.plane_weight = w;
        self.plane(a);
    }

    fn sorry_del(&mut self) {
        let Some(ss) = &mut self.sorry else {
            return;
        };
        if !ss.set {
            return;
        }
        let (addr, port) = (ss.dest.addr, ss.dest.port);
        let a = if ss.inhibit {
            ss.plane_weight = 0;
            Action::SetWeight {
                addr,
                port,
                weight: 0,
            }
        } else {
            ss.set = false;
            Action::RemoveDest { addr, port }
        };
        self.plane(a);
    }

    /// Whether a real server's own change reaches the data plane: not while the sorry server
    /// stands in for all of them.
    fn pool_is_live(&self) -> bool {
        self.quorum_up || !self.sorry_active()
    }

    fn weigh_live(&self) -> i64 {
        self.servers
            .iter()
            .filter(|s| s.alive)
            .map(|s| i64::from(s.weight.max(0)))
            .sum()
    }

    fn rs_notify(&mut self, i: usize) {
        let Some(s) = self.servers.get(i) else {
            return;
        };
        let (cmd, reason) = if s.alive {
            (&s.cfg.notify_up, NotifyReason::ServerUp { server: i })
        } else {
            (&s.cfg.notify_down, NotifyReason::ServerDown { server: i })
        };
        if let Some(cmd) = cmd.clone() {
            self.actions.push_back(Action::RunNotify { cmd, reason });
        }
    }

    fn vs_notify(&mut self) {
        let (cmd, reason) = if self.quorum_up {
            (&self.quorum_up_cmd, NotifyReason::QuorumUp)
        } else {
            (&self.quorum_down_cmd, NotifyReason::QuorumDown)
        };
        if let Some(cmd) = cmd.clone() {
            self.actions.push_back(Action::RunNotify { cmd, reason });
        }
    }

    /// `perform_quorum_state()`: put every alive server back (`add`) or take them out.
    fn perform_quorum_state(&mut self, add: bool) {
        for i in 0..self.servers.len() {
            if !self.servers[i].alive {
                continue;
            }
            if add {
                self.plane_add(i, false);
            } else {
                self.plane_del(i, false);
            }
        }
    }

    /// `update_quorum_state()`.
    fn update_quorum_state(&mut self, init: bool) {
        let weight_sum = self.weigh_live();
        let h = i64::from(self.hysteresis);
        let threshold = i64::from(self.quorum) + if self.quorum_up { -h } else { h };
        let sorry_exists = self.sorry.is_some();
        if !self.quorum_up && weight_sum >= threshold {
            self.quorum_up = true;
            self.event(Event::QuorumGained {
                vs: self.vs,
                quorum: self.quorum,
                hysteresis: self.hysteresis,
                threshold,
                weight_sum,
            });
            if self.sorry_active() {
                if let Some(ss) = &self.sorry {
                    let e = Event::SorryServerOut {
                        ss: self.endpoint_of(ss.dest.addr, ss.dest.port),
                        vs: self.vs,
                        inhibit: ss.inhibit,
                    };
                    self.event(e);
                }
                self.sorry_del();
                if let Some(ss) = &mut self.sorry {
                    ss.alive = false;
                }
                self.perform_quorum_state(true);
            }
            self.vs_notify();
        } else if (self.quorum_up && (weight_sum == 0 || weight_sum < threshold))
            || (init && !self.quorum_up && sorry_exists && !self.sorry_active())
        {
            self.quorum_up = false;
            self.event(Event::QuorumLost {
                vs: self.vs,
                quorum: self.quorum,
                hysteresis: self.hysteresis,
                threshold,
                weight_sum,
                init,
            });
            if sorry_exists && !self.sorry_active() {
                if let Some(ss) = &self.sorry {
                    let e = Event::SorryServerIn {
                        ss: self.endpoint_of(ss.dest.addr, ss.dest.port),
                        vs: self.vs,
                        inhibit: ss.inhibit,
                    };
                    self.event(e);
                }
                self.perform_quorum_state(false);
                self.sorry_add();
                if let Some(ss) = &mut self.sorry {
                    ss.alive = true;
                }
            }
            self.vs_notify();
        }
    }

    /// `perform_svr_state()`.
    fn perform_server_state(&mut self, i: usize, alive: bool) {
        let Some(s) = self.servers.get(i) else {
            return;
        };
        if s.alive == alive {
            return;
        }
        let (rs, inhibit) = (self.endpoint(i), s.cfg.inhibit_on_failure);
        let e = if alive {
            Event::ServerUp {
                server: i,
                rs,
                vs: self.vs,
                inhibit,
            }
        } else {
            Event::ServerDown {
                server: i,
                rs,
                vs: self.vs,
                inhibit,
            }
        };
        self.event(e);
        if self.pool_is_live() {
            if alive {
                self.plane_add(i, false);
            } else {
                self.plane_del(i, false);
            }
        }
        self.servers[i].alive = alive;
        self.rs_notify(i);
        self.update_quorum_state(false);
    }

    /// `update_svr_checker_state()` + `set_checker_state()`.
    fn update_checker_state(&mut self, id: CheckerId, up: bool) {
        let Some(s) = self.servers.get_mut(id.server) else {
            return;
        };
        let num_failed = s.num_failed;
        let Some(c) = s.checkers.get_mut(id.checker) else {
            return;
        };
        if c.is_up == up {
            // The first result confirms the start state: keepalived notifies only for alpha
            // checkers (or a confirmed failure).
            let notify = !c.has_run && (c.cfg.alpha || !up);
            c.has_run = true;
            if notify {
                self.rs_notify(id.server);
            }
            return;
        }
        c.has_run = true;
        if up {
            // Up only when this was the last failed checker.
            if num_failed <= 1 {
                self.perform_server_state(id.server, true);
            }
        } else if num_failed == 0 {
            self.perform_server_state(id.server, false);
        }
        let Some(s) = self.servers.get_mut(id.server) else {
            return;
        };
        if let Some(c) = s.checkers.get_mut(id.checker) {
            c.is_up = up;
        }
        if up {
            s.num_failed = s.num_failed.saturating_sub(1);
        } else {
            s.num_failed += 1;
        }
    }

    /// `update_svr_wgt(.., update_quorum = true)`.
    fn update_server_weight(&mut self, i: usize, weight: i32) {
        let live = self.pool_is_live();
        let Some(s) = self.servers.get_mut(i) else {
            return;
        };
        let (old, new) = (s.weight.max(0), weight.max(0));
        s.weight = weight;
        if old == new {
            return;
        }
        let (active, set) = (s.alive, s.set);
        let (addr, port) = (s.cfg.dest.addr, s.cfg.dest.port);
        let rs = self.endpoint(i);
        self.event(Event::WeightChanged {
            server: i,
            rs,
            vs: self.vs,
            from: old,
            to: new,
            active,
        });
        if set && active && live {
            if let Some(s) = self.servers.get_mut(i) {
                s.plane_weight = new;
            }
            self.plane(Action::SetWeight {
                addr,
                port,
                weight: new,
            });
        }
        self.update_quorum_state(false);
    }
}
