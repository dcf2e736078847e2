//! `lbd`: the lbcore daemon. For now it runs the VRRP part of a keepalived.conf, like
//! `keepalived -P` (virtual_server blocks are parsed but not run yet).
//!
//! ```text
//! lbd -f FILE [-l] [--pid-file PATH] [-v]   run VRRP from FILE until SIGTERM / SIGINT
//! lbd check -f FILE                          print every diagnostic; exit 1 on errors
//! lbd --version | -h
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use lbcore_net::vrrp::{Runner, check_plan};
use tracing::level_filters::LevelFilter;

const USAGE: &str = "\
lbd: the lbcore load-balancer daemon (VRRP from keepalived.conf, like keepalived -P)

Usage:
  lbd -f FILE [options]     run the vrrp_instance / vrrp_sync_group / vrrp_script blocks of FILE
  lbd check -f FILE         check FILE: print every diagnostic as file:line: reason,
                            exit 1 if there is an error, 0 otherwise
  lbd --version             print the version
  lbd -h | --help           print this help

Options:
  -f, --use-file FILE       the keepalived.conf to use
  -l, --log-console         log to the console (stderr; the default and only choice)
  -v, --verbose             log debug messages too (also: LBD_LOG=debug|info|warn|error)
      --pid-file PATH       write the daemon's pid to PATH (removed at exit)

Signals: SIGTERM / SIGINT stop cleanly (priority-0 adverts, VIPs removed, notify_stop run);
SIGHUP is logged (reload is not supported yet).
";

#[derive(Debug, Default)]
struct Args {
    check: bool,
    file: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    verbose: bool,
    help: bool,
    version: bool,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    let mut first = true;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "check" if first => a.check = true,
            "-f" | "--use-file" => a.file = Some(PathBuf::from(value(&arg)?)),
            "--pid-file" => a.pid_file = Some(PathBuf::from(value(&arg)?)),
            "-l" | "--log-console" => {}
            "-v" | "--verbose" => a.verbose = true,
            "-h" | "--help" => a.help = true,
            "-V" | "--version" => a.version = true,
            s if s.starts_with("--use-file=") => a.file = Some(PathBuf::from(&s["--use-file=".len()..])),
            s if s.starts_with("--pid-file=") => a.pid_file = Some(PathBuf::from(&s["--pid-file=".len()..])),
            s => return Err(format!("unknown argument {s:?}")),
        }
        first = false;
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
    let Some(file) = args.file.clone() else {
        eprintln!("lbd: no configuration file (-f FILE)\n\n{USAGE}");
        return ExitCode::from(2);
    };
    if args.check {
        check(&file)
    } else {
        run(&args, &file)
    }
}

fn check(file: &std::path::Path) -> ExitCode {
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
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run(args: &Args, file: &std::path::Path) -> ExitCode {
    init_logging(args.verbose);
    tracing::info!(
        "lbd {} starting (VRRP) with {}",
        env!("CARGO_PKG_VERSION"),
        file.display()
    );
    let parsed = match lbcore_net::config::load_keepalived(file) {
        Ok(p) => p,
        Err(diags) => {
            for d in &diags {
                tracing::error!("{d}");
            }
            tracing::error!("configuration has errors: not starting");
            return ExitCode::from(1);
        }
    };
    for d in &parsed.warnings {
        tracing::warn!("{d}");
    }
    let plan = parsed.plan;
    if !plan.virtual_servers.is_empty() {
        tracing::info!(
            "{} virtual_server block(s) parsed but not run yet: lbd runs VRRP only for now",
            plan.virtual_servers.len()
        );
    }
    if plan.instances.is_empty() {
        tracing::warn!(
            "no vrrp_instance in {}: nothing to do but wait for a signal",
            file.display()
        );
    }
    if let Some(p) = &args.pid_file
        && let Err(e) = std::fs::write(p, format!("{}\n", std::process::id()))
    {
        tracing::error!("cannot write pid file {}: {e}", p.display());
        return ExitCode::from(1);
    }
    let code = match Runner::new(plan).and_then(Runner::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            for line in e.to_string().lines() {
                tracing::error!("{line}");
            }
            ExitCode::from(1)
        }
    };
    if let Some(p) = &args.pid_file {
        let _ = std::fs::remove_file(p);
    }
    code
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
    }
}
