//! keepalived's health checkers for a whole [`Plan`]: the probes (`TCP_CHECK`, `HTTP_GET`,
//! `MISC_CHECK`) run on a pool of threads, and [`HealthService`] feeds their results to one
//! [`lbcore::health::VirtualServerHealth`] per `virtual_server`, which decides everything
//! else (retries, alpha, quorum, sorry server, inhibit) with keepalived's semantics.
//!
//! # Design
//! - The timing lives in the core: each `VirtualServerHealth` says which checker is due
//!   (`delay_loop`, or `delay_before_retry` after a failure that is being retried) and counts
//!   the retries. [`HealthService`] turns `std::time::Instant` into the core's virtual time,
//!   hands due probes to the pool and feeds results back, so what happens is exactly what the
//!   core's deterministic tests show.
//! - The probe pool has one thread per checker, at most [`MAX_WORKERS`]; probes are
//!   blocking calls bounded by their own timeout (`connect_timeout`, `misc_timeout`), and a
//!   checker is never probed twice at once, so with one thread per checker no probe waits for
//!   another. Jobs go in over one `std::sync::mpsc` channel, results come back over another.
//! - Everything the data plane must do comes out of [`HealthService::poll`] as
//!   `(virtual server index, Action)` pairs, in order; the initial destinations come from
//!   [`HealthService::initial_dests`] and are not repeated as actions.
//!
//! # Guarantees
//! No `unsafe`, no panics on anything a server or script does. A probe never outlives its
//! timeout by more than a few milliseconds (MISC_CHECK: plus a 200 ms SIGTERM grace before
//! SIGKILL of the whole process group). Setup refuses what cannot run, naming `file:line`.
//! [`HealthService::shutdown`] (or dropping the service) kills the process group of every
//! MISC_CHECK command still running and does not wait for TCP/HTTP probes in flight: their
//! threads end when the probe does.
//!
//! # Not supported
//! `SSL_GET` (no TLS client: refused at setup), `status_code` ranges and `regex` (the parser
//! refuses or narrows them), `http_protocol` (we always send HTTP/1.0 with `Connection:
//! close`), `bind_port`, `bind_if`, `fwmark` on checks, `warmup` (first probes run at start),
//! `ha_suspend`, and the other checkers (`SMTP_CHECK`, `DNS_CHECK`, ...).
//!
//! # A daemon loop
//! ```no_run
//! use lbcore::balancer::{Balancer, BalancerConfig, ConfigError};
//! use lbcore::health::Action;
//! use lbcore_net::check::HealthService;
//!
//! # fn main() -> Result<(), String> {
//! let cfg_err = |e: ConfigError| e.to_string();
//! let parsed = lbcore_net::config::load_keepalived("/etc/keepalived/keepalived.conf".as_ref())
//!     .map_err(|d| format!("{d:?}"))?;
//! let plan = parsed.plan;
//! let mut lb = Balancer::new(BalancerConfig::default()).map_err(cfg_err)?;
//! let mut health = HealthService::new(&plan).map_err(|errs| errs.join("\n"))?;
//! for (i, vs) in plan.virtual_servers.iter().enumerate() {
//!     let svc = lb.add_service(vs.service).map_err(cfg_err)?;
//!     for d in health.initial_dests(i) {
//!         lb.add_dest(svc, d).map_err(cfg_err)?;
//!     }
//! }
//! loop {
//!     health.wait(std::time::Duration::from_secs(1));
//!     for (i, action) in health.poll() {
//!         let key = plan.virtual_servers[i].service.key;
//!         let Some(svc) = lb.find_service(&key) else { continue };
//!         match action {
//!             // A destination removed earlier may still be draining: edit it instead.
//!             Action::AddDest(d) => match lb.find_dest(svc, d.addr, d.port) {
//!                 Some(id) => lb.edit_dest(id, d).map_err(cfg_err)?,
//!                 None => drop(lb.add_dest(svc, d).map_err(cfg_err)?),
//!             },
//!             Action::RemoveDest { addr, port } => {
//!                 if let Some(id) = lb.find_dest(svc, addr, port) {
//!                     lb.remove_dest(id).map_err(cfg_err)?;
//!                 }
//!             }
//!             Action::SetWeight { addr, port, weight } => {
//!                 let id = lb.find_dest(svc, addr, port);
//!                 if let Some((id, info)) = id.and_then(|id| Some((id, lb.dest_info(id)?))) {
//!                     lb.edit_dest(id, info.config.weight(weight)).map_err(cfg_err)?;
//!                 }
//!             }
//!             Action::RunNotify { cmd, .. } => {
//!                 let _child = lbcore_net::check::spawn_notify(&cmd);
//!             }
//!             Action::Event(e) => eprintln!("{e}"),
//!         }
//!     }
//! #   break;
//! }
//! # Ok(()) }
//! ```

mod probe;

use probe::Running;

pub use probe::{DEFAULT_CONNECT_TIMEOUT, MAX_HTTP_RESPONSE, ProbeOutcome, ProbeSpec, UrlSpec, md5_hex};

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lbcore::config::Plan;
use lbcore::health::{Action, CheckerId, VirtualServerHealth};
use lbcore::service::{DestConfig, ServiceKey};

/// The most probe threads a [`HealthService`] starts.
pub const MAX_WORKERS: usize = 64;

/// A probe to run: which virtual server and checker it answers for.
struct Job {
    vs: usize,
    id: CheckerId,
    spec: Arc<ProbeSpec>,
}

/// A finished probe.
struct Done {
    vs: usize,
    id: CheckerId,
    outcome: ProbeOutcome,
    at: Instant,
}

/// A fixed set of threads running probes: jobs in over one channel, results out over
/// another. Dropping it closes the job channel; each thread ends after its current probe.
struct ProbePool {
    jobs: Option<Sender<Job>>,
    results: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    running: Arc<Running>,
}

impl ProbePool {
    fn new(threads: usize) -> std::io::Result<Self> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        // std's Receiver is single-consumer: the workers take turns on it.
        let job_rx = Arc::new(Mutex::new(job_rx));
        let running = Arc::new(Running::default());
        let mut workers = Vec::new();
        for n in 0..threads.clamp(1, MAX_WORKERS) {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let running = Arc::clone(&running);
            let h = std::thread::Builder::new()
                .name(format!("lbd-check-{n}"))
                .spawn(move || {
                    loop {
                        // A poisoned lock means another worker panicked inside recv(): the
                        // receiver itself is still sound.
                        let job = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        let Ok(job) = job else {
                            return;
                        };
                        let outcome = job.spec.run_tracked(Some(&running));
                        let done = Done {
                            vs: job.vs,
                            id: job.id,
                            outcome,
                            at: Instant::now(),
                        };
                        if done_tx.send(done).is_err() {
                            return;
                        }
                    }
                })?;
            workers.push(h);
        }
        Ok(ProbePool {
            jobs: Some(job_tx),
            results: done_rx,
            workers,
            running,
        })
    }

    fn submit(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            // Fails only when every worker has gone, i.e. after shutdown.
            let _ = tx.send(job);
        }
    }

    fn threads(&self) -> usize {
        self.workers.len()
    }
}

impl Drop for ProbePool {
    fn drop(&mut self) {
        // Closing the job channel lets each worker end after its current probe; we do not
        // wait for them (a TCP or HTTP probe may take up to its timeout). MISC_CHECK commands
        // are killed now rather than left running after us.
        self.jobs = None;
        self.running.kill_all();
    }
}

struct VsEntry {
    key: ServiceKey,
    health: VirtualServerHealth,
    /// `specs[server][checker]`.
    specs: Vec<Vec<Arc<ProbeSpec>>>,
    initial: Vec<DestConfig>,
}

/// The health checks of every `virtual_server` of a [`Plan`], driven on real time.
///
/// Call [`wait`](Self::wait) (or sleep at most until [`next_timeout`](Self::next_timeout)),
/// then [`poll`](Self::poll), and apply the actions in order.
pub struct HealthService {
    epoch: Instant,
    vss: Vec<VsEntry>,
    pool: ProbePool,
    pending: VecDeque<Done>,
}

impl HealthService {
    /// Sets up every virtual server of `plan` and starts the probe threads. Errors are
    /// `file:line: reason`, all of them; nothing runs then.
    pub fn new(plan: &Plan) -> Result<Self, Vec<String>> {
        Self::new_migrated(plan, None)
    }

    /// [`HealthService::new`] for a reload: checkers unchanged since `old` keep their state
    /// (see [`VirtualServerHealth::new_migrated`]).
    pub fn new_migrated(plan: &Plan, old: Option<&HealthService>) -> Result<Self, Vec<String>> {
        let epoch = Instant::now();
        let mut errors = Vec::new();
        let mut vss = Vec::new();
        let mut checkers = 0usize;
        for vs in &plan.virtual_servers {
            let mut specs = Vec::new();
            for rs in &vs.real_servers {
                let mut per_rs = Vec::new();
                for c in &rs.checks {
                    match ProbeSpec::from_plan(c, rs, vs) {
                        Ok(s) => per_rs.push(Arc::new(s)),
                        Err(e) => errors.push(e),
                    }
                }
                checkers += per_rs.len();
                specs.push(per_rs);
            }
            let prev = old.and_then(|o| o.vss.iter().find(|e| e.key == vs.service.key));
            let health = VirtualServerHealth::new_migrated(
                lbcore::health::HealthConfig::from_plan(vs),
                lbcore::time::Instant::ZERO,
                prev.map(|e| &e.health),
            );
            let initial = health.dests();
            vss.push(VsEntry {
                key: vs.service.key,
                health,
                specs,
                initial,
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let pool = ProbePool::new(checkers).map_err(|e| vec![format!("probe threads: {e}")])?;
        Ok(HealthService {
            epoch,
            vss,
            pool,
            pending: VecDeque::new(),
        })
    }

    /// Number of virtual servers (indexes match `plan.virtual_servers`).
    pub fn len(&self) -> usize {
        self.vss.len()
    }

    /// Whether the plan had no virtual server.
    pub fn is_empty(&self) -> bool {
        self.vss.is_empty()
    }

    /// The destinations virtual server `vs` starts with (real servers without `alpha` at their
    /// weight, inhibited ones at 0, or the sorry server), as computed at construction.
    pub fn initial_dests(&self, vs: usize) -> Vec<DestConfig> {
        self.vss.get(vs).map(|v| v.initial.clone()).unwrap_or_default()
    }

    /// The service key of virtual server `vs`.
    pub fn service(&self, vs: usize) -> Option<ServiceKey> {
        self.vss.get(vs).map(|v| v.key)
    }

    /// The health state of virtual server `vs` (for `show`-style output).
    pub fn health(&self, vs: usize) -> Option<&VirtualServerHealth> {
        self.vss.get(vs).map(|v| &v.health)
    }

    /// Number of probe threads.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// When a probe is next due (`None`: none scheduled, e.g. all in flight).
    pub fn next_timeout(&self) -> Option<Instant> {
        self.vss
            .iter()
            .filter_map(|v| v.health.poll_timeout())
            .min()
            .map(|t| self.epoch + Duration::from_nanos(t.as_nanos()))
    }

    /// Blocks until a probe result arrives, a probe is due, or `max` has passed.
    pub fn wait(&mut self, max: Duration) {
        if !self.pending.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut until = now + max;
        if let Some(t) = self.next_timeout() {
            until = until.min(t);
        }
        match self
            .pool
            .results
            .recv_timeout(until.saturating_duration_since(now))
        {
            Ok(d) => self.pending.push_back(d),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
    }

    fn core_time(&self, t: Instant) -> lbcore::time::Instant {
        let nanos = t.saturating_duration_since(self.epoch).as_nanos();
        lbcore::time::Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Feeds every finished probe to the health states, starts every due probe, and returns
    /// what the data plane must do, in order. Never blocks.
    pub fn poll(&mut self) -> Vec<(usize, Action)> {
        while let Ok(d) = self.pool.results.try_recv() {
            self.pending.push_back(d);
        }
        while let Some(d) = self.pending.pop_front() {
            let at = self.core_time(d.at);
            if let Some(v) = self.vss.get_mut(d.vs) {
                v.health
                    .handle_result_detail(at, d.id, d.outcome.result, &d.outcome.detail);
            }
        }
        let now = self.core_time(Instant::now());
        let mut out = Vec::new();
        for (i, v) in self.vss.iter_mut().enumerate() {
            while let Some(id) = v.health.poll_probe(now) {
                let spec = v.specs.get(id.server).and_then(|s| s.get(id.checker));
                match spec {
                    Some(spec) => self.pool.submit(Job {
                        vs: i,
                        id,
                        spec: Arc::clone(spec),
                    }),
                    // Cannot happen (specs mirror the plan); answer so it is not stuck.
                    None => {
                        v.health
                            .handle_result(now, id, lbcore::health::CheckResult::Failure);
                    }
                }
            }
            while let Some(a) = v.health.poll_action() {
                out.push((i, a));
            }
        }
        out
    }

    /// Stops probing and returns keepalived's shutdown actions (every destination removed;
    /// with `omega`, the down notifiers). Probe threads end after their current probe.
    pub fn shutdown(mut self) -> Vec<(usize, Action)> {
        let mut out = Vec::new();
        for (i, v) in self.vss.iter_mut().enumerate() {
            v.health.shutdown();
            while let Some(a) = v.health.poll_action() {
                out.push((i, a));
            }
        }
        out
    }
}

/// Starts a notify command as keepalived does (`/bin/sh -c CMD`, not waited for). The caller
/// should reap the child (or drop it: it then becomes a zombie until the daemon exits).
pub fn spawn_notify(cmd: &str) -> std::io::Result<Child> {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .spawn()
}
