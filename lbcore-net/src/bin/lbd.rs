//! `lbd`: the lbcore daemon. Runs a keepalived.conf — VRRP instances like keepalived, and the
//! virtual servers on one interface through the AF_PACKET driver with keepalived's health
//! checks — or an `ipvsadm-save` rules file; `lbd show` prints `ipvsadm -Ln` style listings
//! from the running daemon.
//!
//! ```text
//! lbd -f FILE [options]                   run FILE until SIGTERM / SIGINT; SIGHUP reloads
//! lbd --ipvsadm-rules FILE -i IF [opts]   run the services of an ipvsadm-save file
//! lbd check -f FILE                       print every diagnostic; exit 1 on errors
//! lbd show [-c|--stats|--rate] [--exact] [--vrrp]
//! lbd --version | -h
//! ```

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use lbcore::config::Plan;
use lbcore_net::control::{self, ListKind, Request};
use lbcore_net::lb::{LbDaemon, Settings};
use lbcore_net::vrrp::{Runner, check_plan};
use tracing::level_filters::LevelFilter;

const USAGE: &str = "\
lbd: the lbcore load-balancer daemon (keepalived.conf or ipvsadm rules in, ipvsadm -Ln out)

Usage:
  lbd -f FILE [options]     run FILE: vrrp_instance / vrrp_sync_group / vrrp_script blocks as
                            keepalived does, virtual_server blocks on the data plane with their
                            health checks
  lbd --ipvsadm-rules FILE --interface IF [options]
                            run the services of an ipvsadm-save file (no VRRP, no checks)
  lbd check -f FILE         check FILE: print every diagnostic as file:line: reason,
                            exit 1 if there is an error, 0 otherwise
  lbd show [-c | --stats | --rate] [--exact] [--vrrp | --counters] [--control PATH]
                            print the running daemon's table as ipvsadm -Ln [-c|--stats|--rate]
                            does (or the VRRP instance states, or the packet, drop and
                            driver counters)
  lbd --version             print the version
  lbd -h | --help           print this help

Options:
  -f, --use-file FILE       the keepalived.conf to use
      --ipvsadm-rules FILE  the ipvsadm-save file to use instead
  -i, --interface IF        the data-plane interface (default: the interface of the
                            vrrp_instance holding a virtual server's VIP)
      --control PATH        the control socket (default /run/lbd.sock)
      --laddr IP            a FULLNAT local address (repeat for more)
      --conn-capacity N     connection-table capacity (default 1048576: 64 MiB, in 2 MiB
                            pages where the kernel's transparent huge pages allow)
      --no-host-filter      do not install the nftables rules that keep the host's stack
                            off the balanced traffic
      --offload ipvs        let the kernel's IPVS forward: lbd programs it over netlink from
                            the same configuration (diff-based), runs the health checks and
                            VRRP, and has no data plane of its own
  -l, --log-console         log to the console (stderr; the default and only choice)
  -v, --verbose             log debug messages too (also: LBD_LOG=debug|info|warn|error)
      --pid-file PATH       write the daemon's pid to PATH (removed at exit)

Signals: SIGTERM / SIGINT stop cleanly (priority-0 adverts, VIPs removed, notify_stop run);
SIGHUP re-reads the file: virtual servers and real servers are converged with the fewest
changes (established connections stay); a file with errors is reported and changes nothing.
";

#[derive(Debug, Default)]
struct Args {
    check: bool,
    show: Option<Request>,
    file: Option<PathBuf>,
    rules: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    interface: Option<String>,
    control: Option<PathBuf>,
    laddrs: Vec<IpAddr>,
    conn_capacity: Option<usize>,
    no_host_filter: bool,
    offload_ipvs: bool,
    verbose: bool,
    help: bool,
    version: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    let mut first = true;
    let (mut list, mut exact, mut vrrp, mut counters) = (ListKind::Plain, false, false, false);
    let mut show = false;
    while let Some(arg) = it.next() {
        let (arg, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = |name: &str| match &inline {
            Some(v) => Ok(v.clone()),
            None => it.next().ok_or_else(|| format!("{name} needs a value")),
        };
        match arg.as_str() {
            "check" if first => a.check = true,
            "show" if first => show = true,
            "-f" | "--use-file" => a.file = Some(PathBuf::from(value(&arg)?)),
            "--ipvsadm-rules" => a.rules = Some(PathBuf::from(value(&arg)?)),
            "--pid-file" => a.pid_file = Some(PathBuf::from(value(&arg)?)),
            "-i" | "--interface" => a.interface = Some(value(&arg)?),
            "--control" => a.control = Some(PathBuf::from(value(&arg)?)),
            "--laddr" => {
                let v = value(&arg)?;
                a.laddrs
                    .push(v.parse().map_err(|_| format!("--laddr {v}: not an IP address"))?);
            }
            "--conn-capacity" => {
                let v = value(&arg)?;
                a.conn_capacity = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("--conn-capacity {v}: not a positive number"))?,
                );
            }
            "--no-host-filter" => a.no_host_filter = true,
            "--offload" => match value(&arg)?.as_str() {
                "ipvs" => a.offload_ipvs = true,
                other => return Err(format!("--offload {other}: the only offload is ipvs")),
            },
            "-l" | "--log-console" => {}
            "-v" | "--verbose" => a.verbose = true,
            "-h" | "--help" => a.help = true,
            "-V" | "--version" => a.version = true,
            // `lbd show` takes ipvsadm's listing flags.
            "-c" | "--connection" | "-Lnc" | "-lnc" if show => list = ListKind::Conns,
            "--stats" if show => list = ListKind::Stats,
            "--rate" if show => list = ListKind::Rate,
            "--exact" if show => exact = true,
            "--vrrp" if show => vrrp = true,
            "--counters" if show => counters = true,
            "-L" | "-n" | "-Ln" | "-ln" | "--list" | "--numeric" if show => {}
            s => return Err(format!("unknown argument {s:?}")),
        }
        first = false;
    }
    if show {
        a.show = Some(if vrrp {
            Request::Vrrp
        } else if counters {
            Request::Counters
        } else {
            Request::List { format: list, exact }
        });
    }
    Ok(a)
}

fn init_logging(verbose: bool) {
    let level = match std::env::var("LBD_LOG").ok().as_deref().map(str::trim) {
        Some("trace") => LevelFilter::TRACE,
        Some("debug") => LevelFilter::DEBUG,
        Some("warn") => LevelFilter::WARN,
        Some("error") => LevelFilter::ERROR,
        _ if verbose => LevelFilter::DEBUG,
        _ => LevelFilter::INFO,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lbd: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!("lbd {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(req) = args.show {
        return show(&args, req);
    }
    if args.check {
        let Some(file) = args.file.clone() else {
            eprintln!("lbd: no configuration file (-f FILE)\n\n{USAGE}");
            return ExitCode::from(2);
        };
        return check(&args, &file);
    }
    match (&args.file, &args.rules) {
        (Some(_), Some(_)) => {
            eprintln!("lbd: -f and --ipvsadm-rules exclude each other\n\n{USAGE}");
            ExitCode::from(2)
        }
        (None, None) => {
            eprintln!("lbd: no configuration file (-f FILE or --ipvsadm-rules FILE)\n\n{USAGE}");
            ExitCode::from(2)
        }
        _ => run(&args),
    }
}

fn show(args: &Args, req: Request) -> ExitCode {
    let path = args
        .control
        .clone()
        .unwrap_or_else(|| PathBuf::from(control::DEFAULT_SOCKET));
    match control::query(&path, req) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lbd show: {e}");
            ExitCode::from(1)
        }
    }
}

fn check(args: &Args, file: &Path) -> ExitCode {
    let parsed = match lbcore_net::config::load_keepalived(file) {
        Ok(p) => p,
        Err(diags) => {
            for d in &diags {
                println!("{d}");
            }
            return ExitCode::from(1);
        }
    };
    for d in &parsed.warnings {
        println!("{d}");
    }
    let (warnings, errors) = check_plan(&parsed.plan);
    for w in &warnings {
        println!("{w}");
    }
    for e in &errors {
        println!("{e}");
    }
    let vs_errors = check_virtual_servers(&parsed.plan, &args.laddrs);
    for e in &vs_errors {
        println!("{e}");
    }
    if errors.is_empty() && vs_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What `lbd` would refuse in the virtual servers at start: checks that cannot run here
/// (`SSL_GET`, ...) and services or destinations the balancer does not accept (e.g. FULLNAT
/// without `--laddr`), each as `file:line: reason`.
fn check_virtual_servers(plan: &Plan, laddrs: &[IpAddr]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut local_addrs = heapless::Vec::new();
    for a in laddrs {
        let _ = local_addrs.push(*a);
    }
    let config = lbcore::balancer::BalancerConfig {
        conn_capacity: 1,
        max_services: plan.virtual_servers.len().max(1),
        local_addrs,
        // The interface's addresses are not known here: any will do for the check.
        tunnel_source_v4: Some(std::net::Ipv4Addr::new(192, 0, 2, 1)),
        tunnel_source_v6: Some(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        ..Default::default()
    };
    let scratch = match lbcore::balancer::Balancer::new(config) {
        Ok(b) => b,
        Err(e) => return vec![format!("balancer: {e}")],
    };
    for vs in &plan.virtual_servers {
        for rs in &vs.real_servers {
            for c in &rs.checks {
                if let Err(e) = lbcore_net::check::ProbeSpec::from_plan(c, rs, vs) {
                    errors.push(e);
                }
            }
        }
        let desired = lbcore_net::lb::trial_service(vs);
        if let Err(e) = lbcore::config::apply::check(&scratch, &[desired]) {
            errors.push(format!("{}: {e}", vs.origin));
        }
    }
    errors
}

/// Reads the configuration the daemon was started with, logging every diagnostic; `None`
/// when it has errors.
fn load(args: &Args) -> Option<Plan> {
    let (path, parsed) = match (&args.file, &args.rules) {
        (Some(f), _) => (f, lbcore_net::config::load_keepalived(f)),
        (None, Some(r)) => (r, lbcore_net::config::load_ipvsadm_rules(r)),
        (None, None) => return None,
    };
    match parsed {
        Ok(p) => {
            for d in &p.warnings {
                tracing::warn!("{d}");
            }
            Some(p.plan)
        }
        Err(diags) => {
            for d in &diags {
                tracing::error!("{d}");
            }
            tracing::error!("{} has errors", path.display());
            None
        }
    }
}

fn run(args: &Args) -> ExitCode {
    init_logging(args.verbose);
    let file: &Path = args
        .file
        .as_deref()
        .or(args.rules.as_deref())
        .unwrap_or(Path::new(""));
    tracing::info!(
        "lbd {} starting with {}",
        env!("CARGO_PKG_VERSION"),
        file.display()
    );
    let Some(plan) = load(args) else {
        tracing::error!("configuration has errors: not starting");
        return ExitCode::from(1);
    };
    if plan.instances.is_empty() && plan.virtual_servers.is_empty() {
        tracing::warn!(
            "no vrrp_instance and no virtual_server in {}: nothing to do but wait for a signal",
            file.display()
        );
    }
    if let Some(p) = &args.pid_file
        && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
    {
        tracing::error!("cannot write pid file {}: {e}", p.display());
        return ExitCode::from(1);
    }
    let code = run_plan(args, plan);
    if let Some(p) = &args.pid_file {
        let _ = std::fs::remove_file(p);
    }
    code
}

fn run_plan(args: &Args, plan: Plan) -> ExitCode {
    let mut settings = Settings {
        interface: args.interface.clone(),
        local_addrs: args.laddrs.clone(),
        host_filter: !args.no_host_filter,
        offload_ipvs: args.offload_ipvs,
        ..Settings::default()
    };
    if let Some(c) = &args.control {
        settings.control = c.clone();
    }
    if let Some(n) = args.conn_capacity {
        settings.conn_capacity = n;
    }
    let states = Arc::new(Mutex::new(Vec::new()));
    // The runner drives the main loop (signals included) even without VRRP instances.
    let mut runner = match Runner::new(plan.clone()) {
        Ok(r) => r,
        Err(e) => {
            for line in e.to_string().lines() {
                tracing::error!("{line}");
            }
            return ExitCode::from(1);
        }
    };
    runner.publish_states(Arc::clone(&states));
    let plan_vrrp = plan.clone();
    let lb = match LbDaemon::start(plan, &settings, states) {
        Ok(lb) => lb,
        Err(e) => {
            for line in e.lines() {
                tracing::error!("{line}");
            }
            return ExitCode::from(1);
        }
    };
    let owned = Args {
        file: args.file.clone(),
        rules: args.rules.clone(),
        ..Args::default()
    };
    let vrrp_at_start = (
        plan_vrrp.instances.clone(),
        plan_vrrp.sync_groups.clone(),
        plan_vrrp.scripts.clone(),
    );
    let reload = lb.reload_handle(Arc::new(move || {
        let plan = load(&owned)?;
        if (&plan.instances, &plan.sync_groups, &plan.scripts)
            != (&vrrp_at_start.0, &vrrp_at_start.1, &vrrp_at_start.2)
        {
            tracing::warn!(
                "the VRRP part of the file (vrrp_instance, vrrp_sync_group, vrrp_script; line numbers included) differs from the one lbd started with: VRRP changes need a restart, the instances keep running as started"
            );
        }
        Some(plan)
    }));
    runner.on_reload(move || {
        tracing::info!("SIGHUP: reloading");
        reload.reload();
    });
    let result = runner.run();
    lb.stop();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            for line in e.to_string().lines() {
                tracing::error!("{line}");
            }
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn arguments() {
        let a = args("-f /etc/k.conf -l --pid-file /run/lbd.pid").unwrap();
        assert_eq!(a.file.as_deref(), Some(std::path::Path::new("/etc/k.conf")));
        assert_eq!(a.pid_file.as_deref(), Some(std::path::Path::new("/run/lbd.pid")));
        assert!(!a.check);
        let a = args("check --use-file=k.conf").unwrap();
        assert!(a.check);
        assert_eq!(a.file.as_deref(), Some(std::path::Path::new("k.conf")));
        assert!(args("-f").is_err());
        assert!(args("-f k.conf check").is_err(), "check is a subcommand, first");
        assert!(args("--frobnicate").is_err());
        assert!(args("--version").unwrap().version);
        assert!(args("-h").unwrap().help);
        let a = args("--ipvsadm-rules r.rules -i eth0 --laddr 10.0.0.9 --laddr=10.0.0.10 --conn-capacity 4096 --no-host-filter --control /tmp/x.sock").unwrap();
        assert_eq!(a.rules.as_deref(), Some(std::path::Path::new("r.rules")));
        assert_eq!(a.interface.as_deref(), Some("eth0"));
        assert_eq!(a.laddrs.len(), 2);
        assert_eq!(a.conn_capacity, Some(4096));
        assert!(a.no_host_filter);
        assert!(args("--laddr nope").is_err());
        assert!(args("--conn-capacity 0").is_err());
        assert!(args("--offload ipvs").unwrap().offload_ipvs);
        assert!(args("--offload=ipvs").unwrap().offload_ipvs);
        assert!(args("--offload xdp").is_err());
    }

    #[test]
    fn show_takes_ipvsadm_flags() {
        assert_eq!(
            args("show").unwrap().show,
            Some(Request::List {
                format: ListKind::Plain,
                exact: false
            })
        );
        assert_eq!(
            args("show -Ln --stats --exact").unwrap().show,
            Some(Request::List {
                format: ListKind::Stats,
                exact: true
            })
        );
        assert_eq!(
            args("show -c --control /tmp/s").unwrap().show,
            Some(Request::List {
                format: ListKind::Conns,
                exact: false
            })
        );
        assert_eq!(
            args("show --rate").unwrap().show,
            Some(Request::List {
                format: ListKind::Rate,
                exact: false
            })
        );
        assert_eq!(args("show --vrrp").unwrap().show, Some(Request::Vrrp));
        assert_eq!(args("show --counters").unwrap().show, Some(Request::Counters));
        assert!(args("--stats").is_err(), "listing flags only after show");
    }
}
