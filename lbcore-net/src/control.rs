//! The daemon's control socket: a Unix stream socket on which `lbd show` asks for the
//! `ipvsadm -Ln` family of listings and the VRRP instance states.
//!
//! Protocol: the client sends one request line, the server answers with text and closes the
//! connection. An answer that starts with `error: ` is a refusal (unknown request). Requests:
//!
//! - `list [stats|rate|conns] [exact]`: `ipvsadm -Ln`, `-Ln --stats`, `-Ln --rate`, `-Lnc`
//!   (`exact` = `--exact`), byte for byte as ipvsadm prints them;
//! - `vrrp`: one line per VRRP instance, `NAME STATE` (keepalived's state names);
//! - `counters`: one `name value` line per counter: the balancer's packet and connection
//!   counters, every drop reason with a non-zero count (`drop.REASON`), the driver's counters
//!   (`driver.NAME`).
//!
//! The server answers each connection on its own short-lived thread with a read timeout, so a
//! stuck client cannot stall the daemon.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Default path of the control socket.
pub const DEFAULT_SOCKET: &str = "/run/lbd.sock";

/// A parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// An `ipvsadm -Ln` listing.
    List {
        /// Which columns.
        format: ListKind,
        /// `--exact`.
        exact: bool,
    },
    /// VRRP instance states.
    Vrrp,
    /// Packet, drop and driver counters.
    Counters,
}

/// Which `ipvsadm -L` listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// `-Ln`.
    Plain,
    /// `-Ln --stats`.
    Stats,
    /// `-Ln --rate`.
    Rate,
    /// `-Lnc`.
    Conns,
}

impl Request {
    /// Parses a request line.
    pub fn parse(line: &str) -> Result<Request, String> {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("list") => {
                let (mut format, mut exact) = (ListKind::Plain, false);
                for w in words {
                    match w {
                        "stats" => format = ListKind::Stats,
                        "rate" => format = ListKind::Rate,
                        "conns" => format = ListKind::Conns,
                        "exact" => exact = true,
                        other => return Err(format!("unknown list option '{other}'")),
                    }
                }
                Ok(Request::List { format, exact })
            }
            Some("vrrp") if words.next().is_none() => Ok(Request::Vrrp),
            Some("counters") if words.next().is_none() => Ok(Request::Counters),
            _ => Err(format!("unknown request '{}'", line.trim())),
        }
    }

    /// The request line for this request (without the newline).
    pub fn line(&self) -> String {
        match self {
            Request::Vrrp => "vrrp".into(),
            Request::Counters => "counters".into(),
            Request::List { format, exact } => {
                let mut s = String::from("list");
                s.push_str(match format {
                    ListKind::Plain => "",
                    ListKind::Stats => " stats",
                    ListKind::Rate => " rate",
                    ListKind::Conns => " conns",
                });
                if *exact {
                    s.push_str(" exact");
                }
                s
            }
        }
    }
}

/// Answers requests; implemented by the daemon.
pub trait Responder: Send + Sync + 'static {
    /// The text answering `req`.
    fn respond(&self, req: Request) -> String;
}

/// A listening control socket. Dropping it stops the listener and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds `path` (replacing a stale socket file) and starts answering with `responder`.
    /// A socket on which another daemon still answers is not taken over: that is an error
    /// (`AddrInUse`), as a second keepalived refuses to start over a live pid file.
    pub fn start(path: &Path, responder: Arc<dyn Responder>) -> io::Result<ControlServer> {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "another lbd answers on {}: stop it, or give this one its own --control PATH",
                    path.display()
                ),
            ));
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("lbd-control".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let responder = Arc::clone(&responder);
                    let _ = std::thread::Builder::new()
                        .name("lbd-control-conn".into())
                        .spawn(move || serve(conn, &*responder));
                }
            })?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(conn: UnixStream, responder: &dyn Responder) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
    let mut line = String::new();
    let mut reader = BufReader::new(conn.take(4096));
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let answer = match Request::parse(&line) {
        Ok(req) => responder.respond(req),
        Err(e) => format!("error: {e}\n"),
    };
    let mut conn = reader.into_inner().into_inner();
    let _ = conn.write_all(answer.as_bytes());
}

/// Sends `req` to the daemon at `path` and returns its answer; an `error: ` answer becomes
/// an error.
pub fn query(path: &Path, req: Request) -> io::Result<String> {
    let mut conn = UnixStream::connect(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot reach lbd at {}: {e} (is it running? see --control)",
                path.display()
            ),
        )
    })?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.write_all(format!("{}\n", req.line()).as_bytes())?;
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)?;
    if let Some(e) = answer.strip_prefix("error: ") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            e.trim_end().to_string(),
        ));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl Responder for Echo {
        fn respond(&self, req: Request) -> String {
            format!("{req:?}\n")
        }
    }

    #[test]
    fn requests_round_trip() {
        for req in [
            Request::Vrrp,
            Request::Counters,
            Request::List {
                format: ListKind::Plain,
                exact: false,
            },
            Request::List {
                format: ListKind::Stats,
                exact: true,
            },
            Request::List {
                format: ListKind::Rate,
                exact: false,
            },
            Request::List {
                format: ListKind::Conns,
                exact: false,
            },
        ] {
            assert_eq!(Request::parse(&req.line()), Ok(req));
        }
        assert!(Request::parse("list bogus").is_err());
        assert!(Request::parse("reboot").is_err());
        assert!(Request::parse("").is_err());
    }

    #[test]
    fn server_answers_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("lbd-control-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lbd.sock");
        let server = ControlServer::start(&path, Arc::new(Echo)).unwrap();
        let answer = query(&path, Request::Vrrp).unwrap();
        assert_eq!(answer, "Vrrp\n");
        let mut raw = UnixStream::connect(&path).unwrap();
        raw.write_all(b"frobnicate\n").unwrap();
        let mut text = String::new();
        raw.read_to_string(&mut text).unwrap();
        assert_eq!(text, "error: unknown request 'frobnicate'\n");
        let second = ControlServer::start(&path, Arc::new(Echo));
        assert_eq!(
            second.err().map(|e| e.kind()),
            Some(io::ErrorKind::AddrInUse),
            "a live socket is not taken over"
        );
        drop(server);
        assert!(!path.exists(), "socket file removed");
        assert!(query(&path, Request::Vrrp).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
