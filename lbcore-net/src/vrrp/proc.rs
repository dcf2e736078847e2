//! Child processes, never waited for in the loop: notify scripts (spawned and reaped later)
//! and `vrrp_script` trackers (spawned every `interval`, killed at their `timeout`, results
//! counted with keepalived's `rise` / `fall` rules).
//!
//! Everything runs through `/bin/sh -c`, in its own process group so that a hung script is
//! killed together with its children.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lbcore::config::ScriptPlan;

use crate::sys;

/// Spawn `cmd` through `/bin/sh -c`, with `args` as `"$@"` (passed as separate arguments,
/// never re-parsed by the shell), stdin and stdout closed, stderr inherited.
pub fn spawn_shell(cmd: &str, args: &[&str]) -> io::Result<Child> {
    let line = if args.is_empty() {
        cmd.to_string()
    } else {
        format!("{cmd} \"$@\"")
    };
    Command::new("/bin/sh")
        .arg("-c")
        .arg(line)
        .arg("sh")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
}

/// Notify scripts still running, reaped without blocking.
#[derive(Default)]
pub struct Notifiers {
    children: Vec<(Child, String)>,
}

impl Notifiers {
    /// Run `cmd` with `args`; a failure to start is logged.
    pub fn run(&mut self, cmd: &str, args: &[&str]) {
        let what = if args.is_empty() {
            cmd.to_string()
        } else {
            format!("{cmd} {}", args.join(" "))
        };
        match spawn_shell(cmd, args) {
            Ok(c) => {
                tracing::debug!("notify: started {what}");
                self.children.push((c, what));
            }
            Err(e) => tracing::warn!("notify: cannot run {what}: {e}"),
        }
    }

    /// Reap the finished ones (logging a failure status).
    pub fn reap(&mut self) {
        self.children.retain_mut(|(c, what)| match c.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    tracing::warn!("notify: {what} exited with {status}");
                }
                false
            }
            Ok(None) => true,
            Err(_) => false,
        });
    }

    /// Number still running.
    pub fn running(&self) -> usize {
        self.children.len()
    }

    /// Wait (polling) until all finished or `limit` passed; the rest are left running.
    pub fn wait_all(&mut self, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            self.reap();
            if self.children.is_empty() || Instant::now() >= end {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// What a `vrrp_script` is doing.
enum Run {
    Idle {
        next_at: Instant,
    },
    Running {
        child: Child,
        started: Instant,
        deadline: Instant,
    },
}

/// One `vrrp_script`: its schedule, the running child if any, and keepalived's result
/// counting.
pub struct Tracker {
    /// The script's name (for logs).
    pub name: String,
    command: String,
    interval: Duration,
    timeout: Duration,
    rise: u32,
    fall: u32,
    run: Run,
    /// Current verdict (starts OK, as keepalived's tracked scripts in their initial state).
    good: bool,
    /// No result yet: the first failure counts at once (keepalived's `SCRIPT_INIT_STATE_INIT`).
    init: bool,
    /// Consecutive results against the current verdict.
    against: u32,
}

impl Tracker {
    /// A tracker for `plan`, first run at `start`.
    pub fn new(plan: &ScriptPlan, start: Instant) -> Tracker {
        let interval = plan.interval.max(Duration::from_millis(10));
        Tracker {
            name: plan.name.clone(),
            command: plan.script.clone(),
            interval,
            timeout: plan.timeout.unwrap_or(interval).max(Duration::from_millis(10)),
            rise: plan.rise.max(1),
            fall: plan.fall.max(1),
            run: Run::Idle { next_at: start },
            good: true,
            init: true,
            against: 0,
        }
    }

    /// The current verdict.
    pub fn good(&self) -> bool {
        self.good
    }

    /// When [`Tracker::service`] next has something to do (a run to start, a timeout).
    /// A running child's exit also wakes the loop (SIGCHLD).
    pub fn next_event(&self) -> Instant {
        match &self.run {
            Run::Idle { next_at } => *next_at,
            Run::Running { deadline, .. } => *deadline,
        }
    }

    /// Reap, time out or start the script as due at `now`. Returns `Some(verdict)` when the
    /// verdict changed.
    pub fn service(&mut self, now: Instant) -> Option<bool> {
        let mut changed = None;
        if let Run::Running {
            child,
            started,
            deadline,
        } = &mut self.run
        {
            let result = match child.try_wait() {
                Ok(Some(status)) => Some(status.success()),
                Ok(None) if now >= *deadline => {
                    tracing::warn!("VRRP_Script({}) timed out", self.name);
                    let _ = sys::kill_process_group(child.id(), libc::SIGKILL);
                    // SIGKILL cannot be caught: the shell is gone in a moment; reap it then.
                    let _ = child.wait();
                    Some(false)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!("VRRP_Script({}) cannot be waited for: {e}", self.name);
                    Some(false)
                }
            };
            if let Some(ok) = result {
                let next_at = (*started + self.interval).max(now);
                self.run = Run::Idle { next_at };
                changed = self.result(ok);
            }
        }
        if let Run::Idle { next_at } = self.run
            && now >= next_at
        {
            match spawn_shell(&self.command, &[]) {
                Ok(child) => {
                    self.run = Run::Running {
                        child,
                        started: now,
                        deadline: now + self.timeout,
                    };
                }
                Err(e) => {
                    tracing::warn!("VRRP_Script({}) cannot be started: {e}", self.name);
                    self.run = Run::Idle {
                        next_at: now + self.interval,
                    };
                    changed = changed.or(self.result(false));
                }
            }
        }
        changed
    }

    /// Count one result (keepalived `vrrp_script_child_thread`): `fall` failures in a row
    /// turn a good script bad, `rise` successes in a row turn a bad one good; before the first
    /// result, one failure is enough.
    fn result(&mut self, ok: bool) -> Option<bool> {
        let init = std::mem::replace(&mut self.init, false);
        if ok == self.good {
            self.against = 0;
            return None;
        }
        self.against += 1;
        let needed = if ok { self.rise } else { self.fall };
        if self.against >= needed || (init && !ok) {
            self.good = ok;
            self.against = 0;
            if ok {
                tracing::info!("VRRP_Script({}) succeeded", self.name);
            } else {
                tracing::info!("VRRP_Script({}) failed", self.name);
            }
            return Some(ok);
        }
        None
    }

    /// Kill a running script (shutting down).
    pub fn stop(&mut self) {
        if let Run::Running { child, .. } = &mut self.run {
            let _ = sys::kill_process_group(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
        self.run = Run::Idle {
            next_at: Instant::now() + Duration::from_secs(3600),
        };
    }
}

#[cfg(test)]
mod tests {
    use lbcore::config::Origin;

    use super::*;

    fn plan(rise: u32, fall: u32) -> ScriptPlan {
        ScriptPlan {
            name: "chk".into(),
            script: "true".into(),
            interval: Duration::from_secs(1),
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise,
            fall,
            user: None,
            origin: Origin::default(),
        }
    }

    #[test]
    fn rise_and_fall_count_consecutive_results_and_the_first_failure_counts_at_once() {
        let mut t = Tracker::new(&plan(2, 3), Instant::now());
        assert_eq!(
            t.result(false),
            Some(false),
            "first result: a failure counts at once"
        );
        assert_eq!(t.result(true), None);
        assert_eq!(t.result(false), None, "a failure resets the rise count");
        assert_eq!(t.result(true), None);
        assert_eq!(t.result(true), Some(true), "two successes in a row");
        assert_eq!(t.result(false), None);
        assert_eq!(t.result(false), None);
        assert_eq!(t.result(true), None, "a success resets the fall count");
        assert_eq!(t.result(false), None);
        assert_eq!(t.result(false), None);
        assert_eq!(t.result(false), Some(false), "three failures in a row");
        assert!(!t.good());

        let mut t = Tracker::new(&plan(1, 2), Instant::now());
        assert_eq!(t.result(true), None, "starts good");
        assert_eq!(t.result(false), None, "after the first result, fall counts");
        assert_eq!(t.result(false), Some(false));
    }

    #[test]
    fn a_script_runs_without_blocking_and_a_hung_one_is_killed_at_its_timeout() {
        let mut p = plan(1, 1);
        p.script = "exit 3".into();
        let start = Instant::now();
        let mut t = Tracker::new(&p, start);
        assert_eq!(t.service(start), None, "started, not finished");
        let mut verdict = None;
        while verdict.is_none() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
            verdict = t.service(Instant::now());
        }
        assert_eq!(verdict, Some(false));

        let mut p = plan(1, 1);
        p.script = "sleep 30".into();
        p.timeout = Some(Duration::from_millis(100));
        let start = Instant::now();
        let mut t = Tracker::new(&p, start);
        t.service(start);
        assert_eq!(t.next_event(), start + Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(120));
        let before = Instant::now();
        assert_eq!(t.service(Instant::now()), Some(false), "timed out = failed");
        assert!(
            before.elapsed() < Duration::from_secs(2),
            "killed, not waited for"
        );
    }

    #[test]
    fn notify_arguments_are_passed_unparsed() {
        let dir = std::env::temp_dir().join(format!("lbcore-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let mut n = Notifiers::default();
        n.run(
            &format!("printf '%s|' >{}", out.display()),
            &["INSTANCE", "VI 1; rm -rf /", "MASTER", "100"],
        );
        n.wait_all(Duration::from_secs(5));
        assert_eq!(n.running(), 0);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "INSTANCE|VI 1; rm -rf /|MASTER|100|"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
