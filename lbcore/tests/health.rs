//! Virtual-time stories for `lbcore::health`: each test configures one virtual server, feeds
//! probe results at exact instants and asserts the exact sequence of data-plane actions,
//! notify commands and events that keepalived would produce.

use std::net::IpAddr;

use lbcore::health::{
    Action, CheckKind, CheckResult, CheckerConfig, CheckerId, Endpoint, Event, HealthConfig, NotifyReason,
    ServerConfig, VirtualServerHealth, VsName,
};
use lbcore::service::{DestConfig, Protocol, ServiceConfig, ServiceKey};
use lbcore::time::{Duration, Instant};

use CheckResult::{Failure, Success, SuccessWeight};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vs_key() -> ServiceKey {
    ServiceConfig::tcp(ip("192.0.2.10"), 80).key
}

fn vs() -> VsName {
    VsName(vs_key())
}

fn ep(last: u8) -> Endpoint {
    Endpoint {
        addr: ip(&format!("10.0.0.{last}")),
        port: 80,
        proto: Protocol::Tcp,
    }
}

fn dest(last: u8, weight: i32) -> DestConfig {
    DestConfig::new(ip(&format!("10.0.0.{last}")), 80).weight(weight)
}

/// A TCP checker probing every 10 s, retrying after 1 s.
fn tcp(retry: u32) -> CheckerConfig {
    CheckerConfig {
        retry,
        delay_loop: Duration::from_secs(10),
        delay_before_retry: Duration::from_secs(1),
        ..CheckerConfig::new(CheckKind::Tcp)
    }
}

fn server(last: u8, weight: i32, checkers: Vec<CheckerConfig>) -> ServerConfig {
    ServerConfig {
        checkers,
        ..ServerConfig::new(dest(last, weight))
    }
}

fn cfg(servers: Vec<ServerConfig>) -> HealthConfig {
    HealthConfig {
        servers,
        ..HealthConfig::new(vs_key())
    }
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn id(server: usize, checker: usize) -> CheckerId {
    CheckerId { server, checker }
}

fn drain(h: &mut VirtualServerHealth) -> Vec<Action> {
    std::iter::from_fn(|| h.poll_action()).collect()
}

/// Only data-plane changes and notify commands.
fn plane(h: &mut VirtualServerHealth) -> Vec<Action> {
    drain(h)
        .into_iter()
        .filter(|a| !matches!(a, Action::Event(_)))
        .collect()
}

fn probes(h: &mut VirtualServerHealth, now: Instant) -> Vec<CheckerId> {
    std::iter::from_fn(|| h.poll_probe(now)).collect()
}

/// Hands out the probe of `c` at `now` and feeds `r` back.
fn run(h: &mut VirtualServerHealth, now: Instant, c: CheckerId, r: CheckResult) {
    let got = probes(h, now);
    assert!(got.contains(&c), "{c:?} not due at {now:?}: {got:?}");
    for other in got {
        // Probes we do not care about in this step succeed.
        let res = if other == c { r } else { Success };
        assert!(h.handle_result(now, other, res));
    }
}

fn remove(last: u8) -> Action {
    Action::RemoveDest {
        addr: ip(&format!("10.0.0.{last}")),
        port: 80,
    }
}

fn set_weight(last: u8, weight: i32) -> Action {
    Action::SetWeight {
        addr: ip(&format!("10.0.0.{last}")),
        port: 80,
        weight,
    }
}

fn notify(cmd: &str, reason: NotifyReason) -> Action {
    Action::RunNotify {
        cmd: cmd.to_string(),
        reason,
    }
}

#[test]
fn without_alpha_everything_starts_up_and_quorum_up_runs() {
    let mut c = cfg(vec![server(1, 1, vec![tcp(1)]), server(2, 3, vec![tcp(1)])]);
    c.quorum_up = Some("/bin/up".into());
    let mut h = VirtualServerHealth::new(c, t(0));
    assert_eq!(h.dests(), vec![dest(1, 1), dest(2, 3)]);
    assert!(h.quorum_up());
    assert_eq!(
        drain(&mut h),
        vec![
            Action::Event(Event::QuorumGained {
                vs: vs(),
                quorum: 1,
                hysteresis: 0,
                threshold: 1,
                weight_sum: 4,
            }),
            notify("/bin/up", NotifyReason::QuorumUp),
        ]
    );
    // Every checker's first probe is due at construction, in configuration order.
    assert_eq!(h.poll_timeout(), Some(t(0)));
    assert_eq!(probes(&mut h, t(0)), vec![id(0, 0), id(1, 0)]);
    assert_eq!(h.poll_timeout(), None, "both in flight");
    assert!(h.handle_result(t(5), id(0, 0), Success));
    // First success of a checker that is already up: logged, nothing else.
    assert_eq!(
        drain(&mut h),
        vec![Action::Event(Event::CheckUp {
            id: id(0, 0),
            kind: CheckKind::Tcp,
            rs: ep(1),
            detail: String::new(),
        })]
    );
    assert_eq!(h.poll_timeout(), Some(t(10_005)));
}

#[test]
fn retry_failures_are_absorbed_then_the_server_is_removed() {
    let mut s = server(1, 1, vec![tcp(2)]);
    s.notify_down = Some("/bin/down 1".into());
    s.notify_up = Some("/bin/up 1".into());
    let mut h = VirtualServerHealth::new(cfg(vec![s, server(2, 1, vec![])]), t(0));
    drain(&mut h);
    // Probe 1 (t=0) and retries 1 and 2 (t=1 s, t=2 s) fail: only the third counts.
    run(&mut h, t(0), id(0, 0), Failure);
    assert_eq!(drain(&mut h), vec![]);
    assert_eq!(h.poll_timeout(), Some(t(1_000)), "delay_before_retry");
    assert_eq!(probes(&mut h, t(999)), vec![], "not due yet");
    run(&mut h, t(1_000), id(0, 0), Failure);
    assert_eq!(drain(&mut h), vec![]);
    assert_eq!(h.poll_timeout(), Some(t(2_000)));
    run(&mut h, t(2_000), id(0, 0), Failure);
    let acts = drain(&mut h);
    assert_eq!(
        acts,
        vec![
            Action::Event(Event::CheckDown {
                id: id(0, 0),
                kind: CheckKind::Tcp,
                rs: ep(1),
                retries: 2,
                detail: String::new(),
            }),
            Action::Event(Event::ServerDown {
                server: 0,
                rs: ep(1),
                vs: vs(),
                inhibit: false,
            }),
            remove(1),
            notify("/bin/down 1", NotifyReason::ServerDown { server: 0 }),
        ]
    );
    let Action::Event(e) = &acts[0] else { panic!() };
    assert_eq!(
        e.to_string(),
        "TCP_CHECK on service [10.0.0.1]:tcp:80 failed after 2 retries."
    );
    let Action::Event(e) = &acts[1] else { panic!() };
    assert_eq!(
        e.to_string(),
        "Removing service [10.0.0.1]:tcp:80 from VS [192.0.2.10]:tcp:80"
    );
    assert_eq!(h.server_alive(0), Some(false));
    assert_eq!(h.dests(), vec![dest(2, 1)]);
    // A down checker is probed every delay_loop and not retried.
    assert_eq!(h.poll_timeout(), Some(t(12_000)));
    run(&mut h, t(12_000), id(0, 0), Failure);
    assert_eq!(drain(&mut h), vec![]);
    assert_eq!(h.poll_timeout(), Some(t(22_000)));
    // It comes back with the first success.
    run(&mut h, t(22_000), id(0, 0), Success);
    assert_eq!(
        plane(&mut h),
        vec![
            Action::AddDest(dest(1, 1)),
            notify("/bin/up 1", NotifyReason::ServerUp { server: 0 }),
        ]
    );
    assert_eq!(h.dests(), vec![dest(1, 1), dest(2, 1)]);
}

#[test]
fn a_success_between_failures_resets_the_retry_count() {
    let mut h = VirtualServerHealth::new(cfg(vec![server(1, 1, vec![tcp(1)])]), t(0));
    drain(&mut h);
    run(&mut h, t(0), id(0, 0), Failure);
    run(&mut h, t(1_000), id(0, 0), Success);
    assert_eq!(h.poll_timeout(), Some(t(11_000)));
    run(&mut h, t(11_000), id(0, 0), Failure);
    assert_eq!(plane(&mut h), vec![], "one failure after a success is a retry");
    run(&mut h, t(12_000), id(0, 0), Failure);
    assert_eq!(plane(&mut h), vec![remove(1)]);
}

#[test]
fn retry_zero_fails_at_the_first_failure() {
    let mut h = VirtualServerHealth::new(cfg(vec![server(1, 1, vec![tcp(0)])]), t(0));
    drain(&mut h);
    run(&mut h, t(0), id(0, 0), Failure);
    let acts = drain(&mut h);
    assert!(acts.contains(&remove(1)), "{acts:?}");
    let Action::Event(e) = &acts[0] else { panic!() };
    assert_eq!(e.to_string(), "TCP_CHECK on service [10.0.0.1]:tcp:80 failed.");
}

#[test]
fn alpha_starts_down_until_the_first_success() {
    let alpha = CheckerConfig {
        alpha: true,
        ..tcp(1)
    };
    let mut s = server(1, 2, vec![alpha.clone()]);
    s.notify_down = Some("/bin/down".into());
    let mut h = VirtualServerHealth::new(cfg(vec![s, server(2, 1, vec![alpha])]), t(0));
    assert_eq!(h.dests(), vec![]);
    assert!(!h.quorum_up());
    assert_eq!(
        drain(&mut h),
        vec![],
        "no quorum_down at start without a sorry server"
    );
    // A failure of an alpha checker is not retried and confirms the server down (notify).
    assert_eq!(probes(&mut h, t(0)), vec![id(0, 0), id(1, 0)]);
    h.handle_result(t(0), id(0, 0), Failure);
    let acts = drain(&mut h);
    assert!(matches!(acts[0], Action::Event(Event::CheckDown { .. })));
    assert_eq!(
        acts[1..],
        [notify("/bin/down", NotifyReason::ServerDown { server: 0 })]
    );
    assert_eq!(h.poll_timeout(), Some(t(10_000)));
    // Server 10.0.0.2 (index 1) passes: added, quorum gained.
    h.handle_result(t(0), id(1, 0), Success);
    assert_eq!(
        drain(&mut h),
        vec![
            Action::Event(Event::CheckUp {
                id: id(1, 0),
                kind: CheckKind::Tcp,
                rs: ep(2),
                detail: String::new(),
            }),
            Action::Event(Event::ServerUp {
                server: 1,
                rs: ep(2),
                vs: vs(),
                inhibit: false,
            }),
            Action::AddDest(dest(2, 1)),
            Action::Event(Event::QuorumGained {
                vs: vs(),
                quorum: 1,
                hysteresis: 0,
                threshold: 1,
                weight_sum: 1,
            }),
        ]
    );
    // Server 0 still failing at 10 s: no retry, no new notify.
    assert_eq!(probes(&mut h, t(10_000)), vec![id(0, 0), id(1, 0)]);
    h.handle_result(t(10_000), id(0, 0), Failure);
    h.handle_result(t(10_000), id(1, 0), Success);
    assert_eq!(drain(&mut h), vec![]);
    assert_eq!(h.dests(), vec![dest(2, 1)]);
}

#[test]
fn alpha_with_inhibit_starts_at_weight_zero() {
    let alpha = CheckerConfig {
        alpha: true,
        ..tcp(1)
    };
    let mut s = server(1, 5, vec![alpha]);
    s.inhibit_on_failure = true;
    let mut h = VirtualServerHealth::new(cfg(vec![s]), t(0));
    assert_eq!(h.dests(), vec![dest(1, 0)]);
    run(&mut h, t(0), id(0, 0), Success);
    let acts = drain(&mut h);
    let Action::Event(e) = &acts[1] else { panic!() };
    assert_eq!(
        e.to_string(),
        "Enabling service [10.0.0.1]:tcp:80 of VS [192.0.2.10]:tcp:80"
    );
    assert_eq!(acts[2], set_weight(1, 5));
    assert_eq!(h.dests(), vec![dest(1, 5)]);
}

#[test]
fn inhibit_on_failure_sets_weight_zero_instead_of_removing() {
    let mut s = server(1, 4, vec![tcp(0)]);
    s.inhibit_on_failure = true;
    let mut h = VirtualServerHealth::new(cfg(vec![s, server(2, 1, vec![tcp(0)])]), t(0));
    drain(&mut h);
    run(&mut h, t(0), id(0, 0), Failure);
    let acts = drain(&mut h);
    assert_eq!(
        acts[1],
        Action::Event(Event::ServerDown {
            server: 0,
            rs: ep(1),
            vs: vs(),
            inhibit: true,
        })
    );
    assert_eq!(acts[2], set_weight(1, 0));
    assert_eq!(h.dests(), vec![dest(1, 0), dest(2, 1)]);
    run(&mut h, t(10_000), id(0, 0), Success);
    assert_eq!(plane(&mut h), vec![set_weight(1, 4)]);
    // Without inhibit: removed, then added.
    run(&mut h, t(20_000), id(1, 0), Failure);
    assert_eq!(plane(&mut h), vec![remove(2)]);
    run(&mut h, t(30_000), id(1, 0), Success);
    assert_eq!(plane(&mut h), vec![Action::AddDest(dest(2, 1))]);
}

/// One probe round at `now`: the servers in `down` fail, the others pass. Returns the
/// data-plane actions and notifies.
fn round(h: &mut VirtualServerHealth, now: Instant, down: &[usize]) -> Vec<Action> {
    for c in probes(h, now) {
        let r = if down.contains(&c.server) {
            Failure
        } else {
            Success
        };
        assert!(h.handle_result(now, c, r));
    }
    plane(h)
}

#[test]
fn quorum_with_hysteresis() {
    // Four servers of weight 1, quorum 3, hysteresis 1: gained at >= 4, lost at < 2.
    let mut c = cfg((1..=4).map(|i| server(i, 1, vec![tcp(0)])).collect());
    c.quorum = 3;
    c.hysteresis = 1;
    c.quorum_up = Some("up".into());
    c.quorum_down = Some("down".into());
    let mut h = VirtualServerHealth::new(c, t(0));
    assert!(h.quorum_up());
    assert_eq!(plane(&mut h), vec![notify("up", NotifyReason::QuorumUp)]);
    assert_eq!(round(&mut h, t(0), &[0]), vec![remove(1)]);
    assert_eq!(
        round(&mut h, t(10_000), &[0, 1]),
        vec![remove(2)],
        "sum 2 is not < 3-1"
    );
    assert!(h.quorum_up());
    // Server 3 fails too: 1 < 2, quorum lost.
    assert_eq!(
        round(&mut h, t(20_000), &[0, 1, 2]),
        vec![remove(3), notify("down", NotifyReason::QuorumDown)]
    );
    assert!(!h.quorum_up());
    let lost = Event::QuorumLost {
        vs: vs(),
        quorum: 3,
        hysteresis: 1,
        threshold: 2,
        weight_sum: 1,
        init: false,
    };
    assert_eq!(
        lost.to_string(),
        "Lost quorum 3-1=2 > 1 for VS [192.0.2.10]:tcp:80"
    );
    // Back one by one: sums 2 and 3 are below 3+1, 4 regains.
    assert_eq!(
        round(&mut h, t(30_000), &[0, 1]),
        vec![Action::AddDest(dest(3, 1))]
    );
    assert!(!h.quorum_up());
    assert_eq!(round(&mut h, t(40_000), &[0]), vec![Action::AddDest(dest(2, 1))]);
    assert!(!h.quorum_up(), "sum 3 < 3+1");
    assert_eq!(
        round(&mut h, t(50_000), &[]),
        vec![Action::AddDest(dest(1, 1)), notify("up", NotifyReason::QuorumUp),]
    );
    assert!(h.quorum_up());
}

#[test]
fn quorum_without_hysteresis_flips_at_the_quorum() {
    let mut c = cfg((1..=3).map(|i| server(i, 1, vec![tcp(0)])).collect());
    c.quorum = 2;
    c.quorum_down = Some("down".into());
    c.quorum_up = Some("up".into());
    let mut h = VirtualServerHealth::new(c, t(0));
    drain(&mut h);
    assert_eq!(round(&mut h, t(0), &[0]), vec![remove(1)]);
    assert!(h.quorum_up(), "2 >= 2");
    assert_eq!(
        round(&mut h, t(10_000), &[0, 1]),
        vec![remove(2), notify("down", NotifyReason::QuorumDown)]
    );
    assert_eq!(
        round(&mut h, t(20_000), &[0]),
        vec![Action::AddDest(dest(2, 1)), notify("up", NotifyReason::QuorumUp),]
    );
}

#[test]
fn sorry_server_replaces_the_pool_and_leaves_when_quorum_returns() {
    let mut c = cfg(vec![server(1, 1, vec![tcp(0)]), server(2, 1, vec![tcp(0)])]);
    c.quorum = 2;
    c.sorry_server = Some(dest(99, 1));
    let mut h = VirtualServerHealth::new(c, t(0));
    assert_eq!(h.dests(), vec![dest(1, 1), dest(2, 1)]);
    drain(&mut h);
    // Server 1 fails: 1 < 2, the sorry server takes over and server 2 leaves the pool.
    let due = probes(&mut h, t(0));
    assert_eq!(due, vec![id(0, 0), id(1, 0)]);
    h.handle_result(t(0), id(0, 0), Failure);
    let acts = drain(&mut h);
    let texts: Vec<String> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            "TCP_CHECK on service [10.0.0.1]:tcp:80 failed.",
            "Removing service [10.0.0.1]:tcp:80 from VS [192.0.2.10]:tcp:80",
            "Lost quorum 2-0=2 > 1 for VS [192.0.2.10]:tcp:80",
            "Adding sorry server [10.0.0.99]:tcp:80 to VS [192.0.2.10]:tcp:80",
        ]
    );
    assert_eq!(
        acts.into_iter()
            .filter(|a| !matches!(a, Action::Event(_)))
            .collect::<Vec<_>>(),
        vec![remove(1), remove(2), Action::AddDest(dest(99, 1))]
    );
    assert!(h.sorry_active());
    assert_eq!(h.dests(), vec![dest(99, 1)]);
    // Server 2's own result changes nothing while the sorry server stands in.
    h.handle_result(t(0), id(1, 0), Success);
    assert_eq!(plane(&mut h), vec![]);
    // Server 1 is back: quorum regained, the sorry server leaves, both come back.
    run(&mut h, t(10_000), id(0, 0), Success);
    let acts = drain(&mut h);
    assert_eq!(
        acts.iter()
            .filter(|a| !matches!(a, Action::Event(Event::CheckUp { .. })))
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            Action::Event(Event::ServerUp {
                server: 0,
                rs: ep(1),
                vs: vs(),
                inhibit: false,
            }),
            Action::Event(Event::QuorumGained {
                vs: vs(),
                quorum: 2,
                hysteresis: 0,
                threshold: 2,
                weight_sum: 2,
            }),
            Action::Event(Event::SorryServerOut {
                ss: ep(99),
                vs: vs(),
                inhibit: false,
            }),
            remove(99),
            Action::AddDest(dest(1, 1)),
            Action::AddDest(dest(2, 1)),
        ]
    );
    assert!(!h.sorry_active());
    assert_eq!(h.dests(), vec![dest(1, 1), dest(2, 1)]);
}

#[test]
fn sorry_server_at_start_when_alpha_keeps_everything_down() {
    let mut c = cfg(vec![server(
        1,
        1,
        vec![CheckerConfig {
            alpha: true,
            ..tcp(0)
        }],
    )]);
    c.sorry_server = Some(dest(99, 1));
    c.sorry_server_inhibit = true;
    c.quorum_down = Some("down".into());
    let mut h = VirtualServerHealth::new(c, t(0));
    assert_eq!(h.dests(), vec![dest(99, 1)]);
    let acts = drain(&mut h);
    assert_eq!(
        acts[0].clone(),
        Action::Event(Event::QuorumLost {
            vs: vs(),
            quorum: 1,
            hysteresis: 0,
            threshold: 1,
            weight_sum: 0,
            init: true,
        })
    );
    let Action::Event(e) = &acts[1] else { panic!() };
    assert_eq!(
        e.to_string(),
        "Enabling sorry server [10.0.0.99]:tcp:80 to VS [192.0.2.10]:tcp:80"
    );
    assert_eq!(acts[2..], [notify("down", NotifyReason::QuorumDown)]);
    // The server passes: sorry server inhibited (weight 0, kept), server added.
    run(&mut h, t(0), id(0, 0), Success);
    assert_eq!(
        plane(&mut h),
        vec![set_weight(99, 0), Action::AddDest(dest(1, 1))]
    );
    assert_eq!(h.dests(), vec![dest(1, 1), dest(99, 0)]);
}

#[test]
fn misc_dynamic_weights_change_the_pool_and_the_quorum() {
    let misc = CheckerConfig {
        delay_loop: Duration::from_secs(5),
        ..CheckerConfig::new(CheckKind::Misc)
    };
    assert_eq!(misc.retry, 0, "keepalived's MISC_CHECK default");
    let mut c = cfg(vec![server(1, 1, vec![misc])]);
    c.quorum = 3;
    let mut h = VirtualServerHealth::new(c, t(0));
    assert!(!h.quorum_up(), "weight 1 < quorum 3");
    assert_eq!(h.dests(), vec![dest(1, 1)]);
    drain(&mut h);
    run(&mut h, t(0), id(0, 0), SuccessWeight(5));
    let acts = drain(&mut h);
    let Action::Event(e) = &acts[0] else { panic!() };
    assert_eq!(
        e.to_string(),
        "Changing weight from 1 to 5 for active service [10.0.0.1]:tcp:80 of VS [192.0.2.10]:tcp:80"
    );
    assert_eq!(acts[1], set_weight(1, 5));
    assert!(matches!(
        acts[2],
        Action::Event(Event::QuorumGained { weight_sum: 5, .. })
    ));
    assert_eq!(h.server_weight(0), Some(5));
    // Same weight again: nothing.
    run(&mut h, t(5_000), id(0, 0), SuccessWeight(5));
    assert_eq!(drain(&mut h), vec![]);
    // Weight 0: quiesced, quorum lost (sum 0).
    run(&mut h, t(10_000), id(0, 0), SuccessWeight(0));
    let acts = plane(&mut h);
    assert_eq!(acts, vec![set_weight(1, 0)]);
    assert!(!h.quorum_up());
    // A failure (exit 1) removes it; the next weight applies when it comes back.
    run(&mut h, t(15_000), id(0, 0), Failure);
    assert_eq!(plane(&mut h), vec![remove(1)]);
    run(&mut h, t(20_000), id(0, 0), SuccessWeight(7));
    assert_eq!(plane(&mut h), vec![Action::AddDest(dest(1, 7))]);
    assert!(h.quorum_up());
}

#[test]
fn all_checkers_must_pass() {
    let mut s = server(1, 1, vec![tcp(0), tcp(0)]);
    s.notify_up = Some("up".into());
    s.notify_down = Some("down".into());
    let mut h = VirtualServerHealth::new(cfg(vec![s]), t(0));
    drain(&mut h);
    let both = probes(&mut h, t(0));
    assert_eq!(both, vec![id(0, 0), id(0, 1)]);
    h.handle_result(t(0), id(0, 0), Failure);
    assert_eq!(
        plane(&mut h),
        vec![remove(1), notify("down", NotifyReason::ServerDown { server: 0 })]
    );
    h.handle_result(t(0), id(0, 1), Failure);
    // The second checker going down changes nothing server-wide (no second notify).
    assert_eq!(plane(&mut h), vec![]);
    assert_eq!(h.checker_up(id(0, 1)), Some(false));
    let both = probes(&mut h, t(10_000));
    assert_eq!(both, vec![id(0, 0), id(0, 1)]);
    h.handle_result(t(10_000), id(0, 0), Success);
    assert_eq!(plane(&mut h), vec![], "one of two is not enough");
    assert_eq!(h.server_alive(0), Some(false));
    h.handle_result(t(10_000), id(0, 1), Success);
    assert_eq!(
        plane(&mut h),
        vec![
            Action::AddDest(dest(1, 1)),
            notify("up", NotifyReason::ServerUp { server: 0 }),
        ]
    );
}

#[test]
fn stale_and_unknown_results_are_ignored() {
    let mut h = VirtualServerHealth::new(cfg(vec![server(1, 1, vec![tcp(0)])]), t(0));
    drain(&mut h);
    assert!(!h.handle_result(t(0), id(0, 0), Failure), "not in flight");
    assert!(!h.handle_result(t(0), id(3, 0), Failure));
    assert!(!h.handle_result(t(0), id(0, 7), Failure));
    assert_eq!(drain(&mut h), vec![]);
    assert_eq!(probes(&mut h, t(0)), vec![id(0, 0)]);
    assert!(h.handle_result(t(0), id(0, 0), Success));
    assert!(!h.handle_result(t(0), id(0, 0), Failure), "already answered");
}

#[test]
fn shutdown_with_omega_runs_down_notifiers() {
    let mut s1 = server(1, 1, vec![tcp(0)]);
    s1.notify_down = Some("down1".into());
    s1.inhibit_on_failure = true;
    let mut s2 = server(2, 1, vec![tcp(0)]);
    s2.notify_down = Some("down2".into());
    let mut c = cfg(vec![s1, s2]);
    c.omega = true;
    c.quorum_down = Some("qdown".into());
    let mut h = VirtualServerHealth::new(c.clone(), t(0));
    drain(&mut h);
    h.shutdown();
    assert_eq!(
        plane(&mut h),
        vec![
            remove(1),
            notify("down1", NotifyReason::ServerDown { server: 0 }),
            remove(2),
            notify("down2", NotifyReason::ServerDown { server: 1 }),
            notify("qdown", NotifyReason::QuorumDown),
        ]
    );
    assert_eq!(h.poll_probe(t(0)), None);
    assert_eq!(h.poll_timeout(), None);
    // Without omega: the same removals, no notify.
    c.omega = false;
    let mut h = VirtualServerHealth::new(c, t(0));
    drain(&mut h);
    h.shutdown();
    assert_eq!(plane(&mut h), vec![remove(1), remove(2)]);
}

#[test]
fn from_plan_applies_keepalived_defaults() {
    let conf = "virtual_server 192.0.2.10 80 {\n  delay_loop 7\n  alpha\n  real_server 10.0.0.1 80 {\n    weight 3\n    TCP_CHECK {\n      connect_timeout 2\n    }\n    HTTP_GET {\n      url {\n        path /\n      }\n      retry 4\n    }\n    MISC_CHECK {\n      misc_path \"/bin/true\"\n      delay_loop 2\n    }\n  }\n}\n";
    let parsed = lbcore::config::parse_keepalived("k.conf", conf, &mut lbcore::config::NoIncludes).unwrap();
    let h = VirtualServerHealth::from_plan(&parsed.plan.virtual_servers[0], t(0));
    let cfgs: Vec<CheckerConfig> = h
        .checker_ids()
        .map(|i| h.checker_config(i).unwrap().clone())
        .collect();
    assert_eq!(
        cfgs,
        vec![
            CheckerConfig {
                kind: CheckKind::Tcp,
                retry: 1,
                delay_loop: Duration::from_secs(7),
                delay_before_retry: Duration::from_secs(1),
                alpha: true,
            },
            CheckerConfig {
                kind: CheckKind::Http,
                retry: 4,
                delay_loop: Duration::from_secs(7),
                delay_before_retry: Duration::from_secs(3),
                alpha: true,
            },
            CheckerConfig {
                kind: CheckKind::Misc,
                retry: 0,
                delay_loop: Duration::from_secs(2),
                delay_before_retry: Duration::from_secs(1),
                alpha: true,
            },
        ]
    );
    assert_eq!(h.dests(), vec![], "alpha");
}

/// A reload (keepalived's `migrate_checkers`): a server that is down stays out, a changed
/// checker starts afresh, and a new server starts up.
#[test]
fn reload_keeps_the_state_of_unchanged_checkers() {
    let mut h = VirtualServerHealth::new(
        cfg(vec![server(1, 1, vec![tcp(0)]), server(2, 1, vec![tcp(0)])]),
        t(0),
    );
    assert_eq!(h.dests(), vec![dest(1, 1), dest(2, 1)]);
    while h.poll_probe(t(0)).is_some() {}
    assert!(h.handle_result(t(10), id(0, 0), Success));
    assert!(h.handle_result(t(10), id(1, 0), Failure));
    drain(&mut h);
    assert_eq!(h.dests(), vec![dest(1, 1)], "server 2 is down");

    // Same checkers: server 2 stays out; a third server starts up.
    let again = cfg(vec![
        server(1, 1, vec![tcp(0)]),
        server(2, 1, vec![tcp(0)]),
        server(3, 1, vec![tcp(0)]),
    ]);
    let m = VirtualServerHealth::new_migrated(again, t(0), Some(&h));
    assert_eq!(m.dests(), vec![dest(1, 1), dest(3, 1)]);
    assert_eq!(m.server_alive(1), Some(false));

    // Server 2's checker changed (another retry count): it starts afresh, up.
    let changed = cfg(vec![server(1, 1, vec![tcp(0)]), server(2, 1, vec![tcp(2)])]);
    let m = VirtualServerHealth::new_migrated(changed, t(0), Some(&h));
    assert_eq!(m.dests(), vec![dest(1, 1), dest(2, 1)]);
}
