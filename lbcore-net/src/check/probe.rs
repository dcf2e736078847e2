//! The probes behind keepalived's checkers: `TCP_CHECK` (a connect), `HTTP_GET` (a GET per
//! url, status and optional MD5 digest of the body) and `MISC_CHECK` (a shell command with a
//! timeout). Each probe is one blocking call bounded by its timeout; it never panics and
//! turns every failure into a [`ProbeOutcome`] with a human-readable detail.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lbcore::config::{CheckPlan, RealServerPlan, VirtualServerPlan};
use lbcore::health::CheckResult;
use md5::{Digest, Md5};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use socket2::{Domain, Socket, Type};

/// keepalived's default `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most an HTTP response may be before the probe gives up on it (keepalived streams the
/// body into the hash; we buffer, so we bound it).
pub const MAX_HTTP_RESPONSE: usize = 16 << 20;

/// How long a timed-out MISC_CHECK gets between SIGTERM and SIGKILL (keepalived: 2 s; we
/// keep probes short, the group is killed either way).
const MISC_TERM_GRACE: Duration = Duration::from_millis(200);

/// What to probe, resolved from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeSpec {
    /// `TCP_CHECK`: connect to `target` within `timeout`.
    Tcp {
        /// `connect_ip:connect_port`, defaulting to the real server's.
        target: SocketAddr,
        /// `bindto`.
        bind: Option<IpAddr>,
        /// `connect_timeout`.
        timeout: Duration,
    },
    /// `HTTP_GET`: every url must answer with the expected status (and digest) within
    /// `timeout` per request.
    Http {
        /// `connect_ip:connect_port`, defaulting to the real server's.
        target: SocketAddr,
        /// `bindto`.
        bind: Option<IpAddr>,
        /// `connect_timeout`: bounds each whole request (connect, send, read).
        timeout: Duration,
        /// The `Host:` header value.
        host: String,
        /// The `url` blocks.
        urls: Vec<UrlSpec>,
    },
    /// `MISC_CHECK`: `/bin/sh -c cmd`, killed (its whole process group) after `timeout`.
    Misc {
        /// `misc_path`.
        cmd: String,
        /// `misc_timeout`, defaulting to the virtual server's `delay_loop` as keepalived.
        timeout: Duration,
        /// `misc_dynamic`.
        dynamic: bool,
    },
}

/// One `url { path; status_code; digest }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlSpec {
    /// Request path.
    pub path: String,
    /// Expected status; `None`: any 2xx (keepalived's default 200-299).
    pub status: Option<u16>,
    /// Expected MD5 of the body, 32 lowercase hex digits.
    pub digest: Option<String>,
}

/// The result of one probe and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// What the health state takes.
    pub result: CheckResult,
    /// For the log: "connection refused", "url /: status 503", "exited with status 1", ...
    pub detail: String,
}

impl ProbeOutcome {
    fn ok(detail: impl Into<String>) -> Self {
        ProbeOutcome {
            result: CheckResult::Success,
            detail: detail.into(),
        }
    }
    fn fail(detail: impl Into<String>) -> Self {
        ProbeOutcome {
            result: CheckResult::Failure,
            detail: detail.into(),
        }
    }
}

impl ProbeSpec {
    /// The probe a parsed check describes, or `file:line: reason` for what cannot run here
    /// (`SSL_GET`, no port to connect to).
    pub fn from_plan(check: &CheckPlan, rs: &RealServerPlan, vs: &VirtualServerPlan) -> Result<Self, String> {
        let common = match check {
            CheckPlan::Tcp(c) => c,
            CheckPlan::Http { common, .. } | CheckPlan::Misc { common, .. } => common,
        };
        let target = || -> Result<SocketAddr, String> {
            let ip = common.connect_ip.unwrap_or(rs.dest.addr);
            let port = common.connect_port.unwrap_or(rs.dest.port);
            if port == 0 {
                return Err(format!(
                    "{}: the real server has no port: set connect_port",
                    common.origin
                ));
            }
            Ok(SocketAddr::new(ip, port))
        };
        let timeout = common.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        match check {
            CheckPlan::Tcp(_) => Ok(ProbeSpec::Tcp {
                target: target()?,
                bind: common.bind_to,
                timeout,
            }),
            CheckPlan::Http { tls: true, .. } => Err(format!(
                "{}: SSL_GET is not supported (no TLS client): use HTTP_GET or TCP_CHECK",
                common.origin
            )),
            CheckPlan::Http {
                urls, virtualhost, ..
            } => {
                let target = target()?;
                Ok(ProbeSpec::Http {
                    target,
                    bind: common.bind_to,
                    timeout,
                    host: host_header(virtualhost.as_deref(), target),
                    urls: urls
                        .iter()
                        .map(|u| UrlSpec {
                            path: u.path.clone(),
                            status: u.status_code,
                            digest: u.digest.as_ref().map(|d| d.to_ascii_lowercase()),
                        })
                        .collect(),
                })
            }
            CheckPlan::Misc {
                path,
                timeout,
                dynamic,
                ..
            } => Ok(ProbeSpec::Misc {
                cmd: path.clone(),
                timeout: timeout.unwrap_or(vs.delay_loop),
                dynamic: *dynamic,
            }),
        }
    }

    /// Runs the probe once, blocking for at most about its timeout.
    pub fn run(&self) -> ProbeOutcome {
        self.run_tracked(None)
    }

    /// [`run`](Self::run), registering a MISC_CHECK command in `running` while it runs.
    pub(crate) fn run_tracked(&self, running: Option<&Running>) -> ProbeOutcome {
        match self {
            ProbeSpec::Tcp {
                target,
                bind,
                timeout,
            } => match connect(*target, *bind, *timeout) {
                Ok(_) => ProbeOutcome::ok(""),
                Err(e) => ProbeOutcome::fail(e),
            },
            ProbeSpec::Http {
                target,
                bind,
                timeout,
                host,
                urls,
            } => {
                for u in urls {
                    if let Err(e) = http_get(*target, *bind, *timeout, host, u) {
                        return ProbeOutcome::fail(format!("url {}: {e}", u.path));
                    }
                }
                ProbeOutcome::ok("")
            }
            ProbeSpec::Misc {
                cmd,
                timeout,
                dynamic,
            } => run_misc(cmd, *timeout, *dynamic, running),
        }
    }
}

/// keepalived's `Host:`: the virtualhost or the address (IPv6 in brackets), plus `:port`
/// unless the port is 80.
fn host_header(virtualhost: Option<&str>, target: SocketAddr) -> String {
    let host = match (virtualhost, target.ip()) {
        (Some(v), _) => v.to_string(),
        (None, IpAddr::V4(a)) => a.to_string(),
        (None, IpAddr::V6(a)) => format!("[{a}]"),
    };
    if target.port() == 80 {
        host
    } else {
        format!("{host}:{}", target.port())
    }
}

fn connect(target: SocketAddr, bind: Option<IpAddr>, timeout: Duration) -> Result<TcpStream, String> {
    let sock =
        Socket::new(Domain::for_address(target), Type::STREAM, None).map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = bind {
        sock.bind(&SocketAddr::new(ip, 0).into())
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    // socket2 does the non-blocking connect + poll and restores blocking mode.
    sock.connect_timeout(&target.into(), timeout)
        .map_err(|e| format!("connect to {target}: {e}"))?;
    Ok(sock.into())
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("timed out".to_string())
    } else {
        Ok(left)
    }
}

/// One GET; `Ok` when the status (and digest) match.
fn http_get(
    target: SocketAddr,
    bind: Option<IpAddr>,
    timeout: Duration,
    host: &str,
    url: &UrlSpec,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut s = connect(target, bind, timeout)?;
    // HTTP/1.0 as keepalived sends by default: the server closes after the body.
    let req = format!(
        "GET {} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        url.path
    );
    s.set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    s.write_all(req.as_bytes()).map_err(|e| format!("send: {e}"))?;
    let mut resp = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        s.set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| e.to_string())?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                resp.extend_from_slice(&buf[..n]);
                if resp.len() > MAX_HTTP_RESPONSE {
                    return Err("response too large".to_string());
                }
                if response_complete(&resp) {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timed out reading the response".to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let (status, body) = parse_response(&resp)?;
    let status_ok = match url.status {
        Some(want) => status == want,
        None => (200..300).contains(&status),
    };
    if !status_ok {
        let want = url
            .status
            .map_or_else(|| "200-299".to_string(), |w| w.to_string());
        return Err(format!("status {status}, expected {want}"));
    }
    if let Some(want) = &url.digest {
        let got = md5_hex(body);
        if &got != want {
            return Err(format!("digest {got}, expected {want}"));
        }
    }
    Ok(())
}

/// Whether a response with a `Content-Length` is all there (so a server that keeps the
/// connection open does not cost us the timeout).
fn response_complete(resp: &[u8]) -> bool {
    let Some(end) = find(resp, b"\r\n\r\n") else {
        return false;
    };
    match content_length(&resp[..end]) {
        Some(len) => resp.len() >= end + 4 + len,
        None => false,
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if k.trim().eq_ignore_ascii_case("content-length") {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status code and the body (cut at `Content-Length` when given).
fn parse_response(resp: &[u8]) -> Result<(u16, &[u8]), String> {
    let end = find(resp, b"\r\n\r\n").ok_or("no complete response header")?;
    let head = std::str::from_utf8(&resp[..end]).map_err(|_| "response header is not text")?;
    let status_line = head.split("\r\n").next().unwrap_or("");
    let mut parts = status_line.split_ascii_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("bad status line '{status_line}'"));
    };
    if !version.starts_with("HTTP/") {
        return Err(format!("bad status line '{status_line}'"));
    }
    let status: u16 = code
        .parse()
        .map_err(|_| format!("bad status line '{status_line}'"))?;
    let mut body = &resp[end + 4..];
    if let Some(len) = content_length(&resp[..end]) {
        body = &body[..len.min(body.len())];
    }
    Ok((status, body))
}

/// MD5 as keepalived's `genhash` prints it: 32 lowercase hex digits.
pub fn md5_hex(data: &[u8]) -> String {
    let digest = Md5::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The process groups of the MISC_CHECK commands running now, so that shutdown can kill
/// them. Reaping a child and killing its group both happen under the lock, so a group id is
/// never signalled after its leader was reaped (when the id could be reused).
#[derive(Default)]
pub(crate) struct Running(Mutex<HashSet<i32>>);

impl Running {
    fn lock(&self) -> MutexGuard<'_, HashSet<i32>> {
        // The set stays consistent even if a holder panicked: insert/remove are atomic.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SIGKILL to every running command's process group.
    pub(crate) fn kill_all(&self) {
        let mut g = self.lock();
        for pg in g.drain() {
            let _ = killpg(Pid::from_raw(pg), Signal::SIGKILL);
        }
    }
}

fn run_misc(cmd: &str, timeout: Duration, dynamic: bool, running: Option<&Running>) -> ProbeOutcome {
    let deadline = Instant::now() + timeout;
    // Its own process group, so that a timeout kills whatever the script started too.
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return ProbeOutcome::fail(format!("cannot run /bin/sh: {e}")),
    };
    let pg = i32::try_from(child.id()).unwrap_or(0);
    let pgid = Pid::from_raw(pg);
    if let Some(r) = running {
        r.lock().insert(pg);
    }
    // try_wait, and forget the group once the leader is reaped, atomically w.r.t. kill_all.
    let poll = |child: &mut std::process::Child| {
        let mut g = running.map(Running::lock);
        let res = child.try_wait();
        if !matches!(res, Ok(None))
            && let Some(g) = g.as_mut()
        {
            g.remove(&pg);
        }
        res
    };
    let status = loop {
        match poll(&mut child) {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return ProbeOutcome::fail(format!("wait: {e}")),
        }
        let now = Instant::now();
        if now >= deadline {
            // keepalived: SIGTERM to the group, then SIGKILL.
            let _ = killpg(pgid, Signal::SIGTERM);
            let grace = now + MISC_TERM_GRACE;
            while Instant::now() < grace {
                if let Ok(Some(_)) = poll(&mut child) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            {
                let mut g = running.map(Running::lock);
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                if let Some(g) = g.as_mut() {
                    g.remove(&pg);
                }
            }
            return ProbeOutcome::fail("timed out");
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
    };
    match (status.code(), status.signal()) {
        (Some(0), _) => ProbeOutcome::ok(""),
        (Some(code @ 2..=255), _) if dynamic => ProbeOutcome {
            result: CheckResult::SuccessWeight((code - 2) as u32),
            detail: format!("exited with status {code}"),
        },
        (Some(code), _) => ProbeOutcome::fail(format!("exited with status {code}")),
        (None, Some(sig)) => ProbeOutcome::fail(format!("due to signal {sig}")),
        (None, None) => ProbeOutcome::fail("ended without a status"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_rfc1321_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn host_header_as_keepalived() {
        let v4: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:8080".parse().unwrap();
        assert_eq!(host_header(None, v4), "10.0.0.1");
        assert_eq!(host_header(None, v6), "[2001:db8::1]:8080");
        assert_eq!(host_header(Some("www.example.com"), v6), "www.example.com:8080");
    }

    #[test]
    fn parse_response_cuts_at_content_length() {
        let r = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(parse_response(r).unwrap(), (404, &b"abc"[..]));
        assert!(response_complete(r));
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.0 200 OK\r\n").is_err());
    }
}
