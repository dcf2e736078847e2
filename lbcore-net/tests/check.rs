//! `lbcore_net::check` against real sockets and processes on 127.0.0.1: std listeners that
//! accept, refuse or stay silent, a tiny HTTP server, and shell commands. Every timer is in
//! the 100-300 ms range, so each test takes about a second.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lbcore::config::{NoIncludes, Plan, parse_keepalived};
use lbcore::health::{Action, Event};
use lbcore::service::DestConfig;
use lbcore_net::check::{HealthService, md5_hex};

fn plan(conf: &str) -> Plan {
    match parse_keepalived("t.conf", conf, &mut NoIncludes) {
        Ok(p) => p.plan,
        Err(e) => panic!("{e:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A port on 127.0.0.1 nobody listens on (bound then closed: connecting is refused).
fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Polls `hs` until `done` holds for the actions so far, or panics after `limit`.
fn run_until(
    hs: &mut HealthService,
    limit: Duration,
    mut done: impl FnMut(&[Action]) -> bool,
) -> Vec<Action> {
    let start = Instant::now();
    let mut acts = Vec::new();
    loop {
        hs.wait(Duration::from_millis(20));
        acts.extend(hs.poll().into_iter().map(|(vs, a)| {
            assert_eq!(vs, 0);
            a
        }));
        if done(&acts) {
            return acts;
        }
        assert!(start.elapsed() < limit, "timed out; actions so far: {acts:#?}");
    }
}

/// Runs for `d` and returns every action.
fn run_for(hs: &mut HealthService, d: Duration) -> Vec<Action> {
    let start = Instant::now();
    run_until(hs, d + Duration::from_secs(5), |_| start.elapsed() >= d)
}

fn removes(acts: &[Action]) -> Vec<(IpAddr, u16)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::RemoveDest { addr, port } => Some((*addr, *port)),
            _ => None,
        })
        .collect()
}

fn plane(acts: &[Action]) -> Vec<Action> {
    acts.iter()
        .filter(|a| !matches!(a, Action::Event(_)))
        .cloned()
        .collect()
}

fn down_detail(acts: &[Action]) -> Vec<String> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Event(e @ Event::CheckDown { .. }) => Some(e.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn tcp_check_keeps_a_listening_server_and_removes_a_refusing_one() {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_port = up.local_addr().unwrap().port();
    let down_port = refused_port();
    let conf = format!(
        "virtual_server 192.0.2.1 80 {{
  delay_loop 0.1
  real_server 127.0.0.1 {up_port} {{
    TCP_CHECK {{
      connect_timeout 0.2
      retry 1
      delay_before_retry 0.1
    }}
  }}
  real_server 127.0.0.1 {down_port} {{
    TCP_CHECK {{
      connect_timeout 0.2
      retry 1
      delay_before_retry 0.1
    }}
  }}
}}
"
    );
    let mut hs = HealthService::new(&plan(&conf)).unwrap();
    assert_eq!(
        hs.initial_dests(0),
        vec![
            DestConfig::new(ip("127.0.0.1"), up_port),
            DestConfig::new(ip("127.0.0.1"), down_port),
        ]
    );
    let acts = run_for(&mut hs, Duration::from_millis(700));
    assert_eq!(removes(&acts), vec![(ip("127.0.0.1"), down_port)]);
    let down = down_detail(&acts);
    assert_eq!(down.len(), 1, "{acts:#?}");
    assert!(
        down[0].starts_with(&format!(
            "TCP_CHECK on service [127.0.0.1]:tcp:{down_port} failed after 1 retries."
        )),
        "{}",
        down[0]
    );
    assert!(down[0].contains("refused"), "{}", down[0]);
    assert!(hs.health(0).unwrap().server_alive(0).unwrap());
    drop(up);
    hs.shutdown();
}

/// A server that accepts and never answers, to make HTTP probes time out.
fn silent_server() -> (u16, Arc<Mutex<Vec<TcpStream>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = Arc::clone(&held);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    (port, held)
}

/// A tiny HTTP/1.0 server: `/ok` answers `status` with body "hello" (status settable at
/// run time), `/missing` answers 404, anything else 500. Records the requests and counts the
/// non-2xx answers to `/ok`.
struct HttpServer {
    port: u16,
    status: Arc<AtomicU32>,
    failures: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

fn http_server() -> HttpServer {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let status = Arc::new(AtomicU32::new(200));
    let failures = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (st, fl, rq) = (status.clone(), failures.clone(), requests.clone());
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let req = String::from_utf8_lossy(&req).to_string();
            let path = req.split(' ').nth(1).unwrap_or("").to_string();
            rq.lock().unwrap().push(req);
            let (code, body) = match path.as_str() {
                "/ok" => {
                    let c = st.load(Ordering::SeqCst);
                    if !(200..300).contains(&c) {
                        fl.fetch_add(1, Ordering::SeqCst);
                    }
                    (c, "hello")
                }
                "/missing" => (404, "nope"),
                _ => (500, "?"),
            };
            let resp = format!("HTTP/1.0 {code} X\r\nContent-Type: text/plain\r\n\r\n{body}");
            let _ = s.write_all(resp.as_bytes());
        }
    });
    HttpServer {
        port,
        status,
        failures,
        requests,
    }
}

#[test]
fn http_get_status_digest_and_timeout() {
    let srv = http_server();
    let (silent, _held) = silent_server();
    let p = srv.port;
    let good = md5_hex(b"hello");
    let bad = md5_hex(b"bye");
    // Every real server is a different loopback address; the checks all go to our servers.
    let conf = format!(
        "virtual_server 192.0.2.1 80 {{
  delay_loop 0.1
  real_server 127.0.0.11 80 {{
    HTTP_GET {{
      url {{
        path /ok
        digest {good}
      }}
      connect_ip 127.0.0.1
      connect_port {p}
      connect_timeout 0.2
      retry 1
      delay_before_retry 0.1
    }}
  }}
  real_server 127.0.0.12 80 {{
    HTTP_GET {{
      url {{
        path /ok
        digest {bad}
      }}
      connect_ip 127.0.0.1
      connect_port {p}
      connect_timeout 0.2
      retry 1
      delay_before_retry 0.1
    }}
  }}
  real_server 127.0.0.13 80 {{
    HTTP_GET {{
      url {{
        path /missing
      }}
      connect_ip 127.0.0.1
      connect_port {p}
      connect_timeout 0.2
      retry 1
      delay_before_retry 0.1
    }}
  }}
  real_server 127.0.0.14 80 {{
    HTTP_GET {{
      url {{
        path /missing
        status_code 404
      }}
      url {{
        path /ok
      }}
      virtualhost www.example.com
      connect_ip 127.0.0.1
      connect_port {p}
      connect_timeout 0.2
      retry 1
      delay_before_retry 0.1
    }}
  }}
  real_server 127.0.0.15 80 {{
    HTTP_GET {{
      url {{
        path /
      }}
      connect_ip 127.0.0.1
      connect_port {silent}
      connect_timeout 0.2
      retry 1
      delay_before_retry 0.1
    }}
  }}
}}
"
    );
    let mut hs = HealthService::new(&plan(&conf)).unwrap();
    let started = Instant::now();
    let acts = run_until(&mut hs, Duration::from_secs(4), |a| removes(a).len() >= 3);
    let mut gone = removes(&acts);
    gone.sort();
    assert_eq!(
        gone,
        vec![
            (ip("127.0.0.12"), 80),
            (ip("127.0.0.13"), 80),
            (ip("127.0.0.15"), 80),
        ]
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the silent one waited"
    );
    let details = down_detail(&acts).join("\n");
    assert!(
        details.contains(&format!("url /ok: digest {good}, expected {bad}")),
        "{details}"
    );
    assert!(details.contains("status 404, expected 200-299"), "{details}");
    assert!(details.contains("timed out"), "{details}");
    // Let a few more rounds run: the good ones stay.
    let more = run_for(&mut hs, Duration::from_millis(300));
    assert_eq!(removes(&more), vec![]);
    let reqs = srv.requests.lock().unwrap().clone();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET /ok HTTP/1.0\r\n") && r.contains(&format!("Host: 127.0.0.1:{p}\r\n"))),
        "{reqs:#?}"
    );
    assert!(
        reqs.iter()
            .any(|r| r.contains(&format!("Host: www.example.com:{p}\r\n"))),
        "{reqs:#?}"
    );
    hs.shutdown();
}

#[test]
fn misc_check_exit_codes_dynamic_weight_and_timeout() {
    let conf = "virtual_server 192.0.2.1 80 {
  delay_loop 0.2
  real_server 127.0.0.21 80 {
    MISC_CHECK {
      misc_path \"exit 0\"
    }
  }
  real_server 127.0.0.22 80 {
    MISC_CHECK {
      misc_path \"exit 1\"
    }
  }
  real_server 127.0.0.23 80 {
    MISC_CHECK {
      misc_path \"exit 5\"
      misc_dynamic
    }
  }
  real_server 127.0.0.24 80 {
    MISC_CHECK {
      misc_path \"sleep 10\"
      misc_timeout 0.3
    }
  }
}
";
    let mut hs = HealthService::new(&plan(conf)).unwrap();
    let started = Instant::now();
    let acts = run_until(&mut hs, Duration::from_secs(3), |a| removes(a).len() >= 2);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "sleep 10 was killed: {elapsed:?}"
    );
    let mut gone = removes(&acts);
    gone.sort();
    assert_eq!(gone, vec![(ip("127.0.0.22"), 80), (ip("127.0.0.24"), 80)]);
    assert!(
        plane(&acts).contains(&Action::SetWeight {
            addr: ip("127.0.0.23"),
            port: 80,
            weight: 3,
        }),
        "{acts:#?}"
    );
    let details = down_detail(&acts).join("\n");
    assert!(details.contains("exited with status 1"), "{details}");
    assert!(details.contains("timed out"), "{details}");
    let h = hs.health(0).unwrap();
    assert_eq!(h.server_alive(0), Some(true));
    assert_eq!(h.server_weight(2), Some(3));
    hs.shutdown();
}

#[test]
fn a_server_going_down_is_removed_after_its_retries_and_comes_back() {
    let srv = http_server();
    let p = srv.port;
    let conf = format!(
        "virtual_server 192.0.2.1 80 {{
  delay_loop 0.3
  quorum_down \"echo down\"
  real_server 127.0.0.31 80 {{
    notify_down \"echo rs down\"
    notify_up \"echo rs up\"
    HTTP_GET {{
      url {{
        path /ok
      }}
      connect_ip 127.0.0.1
      connect_port {p}
      connect_timeout 0.2
      retry 2
      delay_before_retry 0.1
    }}
  }}
}}
"
    );
    let mut hs = HealthService::new(&plan(&conf)).unwrap();
    let rs = DestConfig::new(ip("127.0.0.31"), 80);
    assert_eq!(hs.initial_dests(0), vec![rs]);
    // First probe passes.
    run_until(&mut hs, Duration::from_secs(2), |a| {
        a.iter()
            .any(|a| matches!(a, Action::Event(Event::CheckUp { .. })))
    });
    // The server breaks: three failed probes (the first and two retries), then removal.
    srv.status.store(503, Ordering::SeqCst);
    let acts = run_until(&mut hs, Duration::from_secs(3), |a| !removes(a).is_empty());
    assert_eq!(srv.failures.load(Ordering::SeqCst), 3, "1 probe + retry 2");
    assert_eq!(
        plane(&acts),
        vec![
            Action::RemoveDest {
                addr: rs.addr,
                port: 80,
            },
            Action::RunNotify {
                cmd: "echo rs down".into(),
                reason: lbcore::health::NotifyReason::ServerDown { server: 0 },
            },
            Action::RunNotify {
                cmd: "echo down".into(),
                reason: lbcore::health::NotifyReason::QuorumDown,
            },
        ]
    );
    let down = down_detail(&acts);
    assert!(
        down[0].starts_with("HTTP_GET on service [127.0.0.31]:tcp:80 failed after 2 retries."),
        "{down:?}"
    );
    // It recovers: one success is enough.
    srv.status.store(200, Ordering::SeqCst);
    let acts = run_until(&mut hs, Duration::from_secs(3), |a| {
        a.iter().any(|a| matches!(a, Action::AddDest(_)))
    });
    assert_eq!(
        plane(&acts),
        vec![
            Action::AddDest(rs),
            Action::RunNotify {
                cmd: "echo rs up".into(),
                reason: lbcore::health::NotifyReason::ServerUp { server: 0 },
            },
        ]
    );
    let out = hs.shutdown();
    assert_eq!(
        out.iter()
            .filter(|(_, a)| !matches!(a, Action::Event(_)))
            .cloned()
            .collect::<Vec<_>>(),
        vec![(
            0,
            Action::RemoveDest {
                addr: rs.addr,
                port: 80,
            }
        )],
        "no omega: no notify at shutdown"
    );
}

#[test]
fn tcp_check_sees_a_server_restart() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let conf = format!(
        "virtual_server 192.0.2.1 80 {{
  delay_loop 0.1
  real_server 127.0.0.1 {port} {{
    TCP_CHECK {{
      connect_timeout 0.2
      retry 1
      delay_before_retry 0.1
    }}
  }}
}}
"
    );
    let mut hs = HealthService::new(&plan(&conf)).unwrap();
    run_for(&mut hs, Duration::from_millis(250));
    drop(l);
    let acts = run_until(&mut hs, Duration::from_secs(2), |a| !removes(a).is_empty());
    assert!(down_detail(&acts)[0].contains("after 1 retries"), "{acts:#?}");
    // std sets SO_REUSEADDR, so the same port can be listened on again at once.
    let _l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let acts = run_until(&mut hs, Duration::from_secs(2), |a| {
        a.iter().any(|a| matches!(a, Action::AddDest(_)))
    });
    assert_eq!(
        plane(&acts),
        vec![Action::AddDest(DestConfig::new(ip("127.0.0.1"), port))]
    );
    hs.shutdown();
}

#[test]
fn ssl_get_is_refused_at_setup_with_file_and_line() {
    let conf = "virtual_server 192.0.2.1 443 {
  real_server 127.0.0.1 443 {
    SSL_GET {
      url {
        path /
      }
    }
  }
}
";
    let errs = match HealthService::new(&plan(conf)) {
        Ok(_) => panic!("SSL_GET accepted"),
        Err(e) => e,
    };
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("t.conf:3: SSL_GET is not supported"),
        "{errs:?}"
    );
}

/// A listener whose accept queue is full: Linux drops further SYNs, so a connect to it
/// hangs until the checker's `connect_timeout`.
fn full_backlog_listener() -> (socket2::Socket, Vec<TcpStream>, u16) {
    use socket2::{Domain, Socket, Type};
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
        .unwrap();
    l.listen(0).unwrap();
    let port = l.local_addr().unwrap().as_socket().unwrap().port();
    let mut fill = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(50),
        ) {
            Ok(s) => fill.push(s),
            Err(_) => break,
        }
    }
    (l, fill, port)
}

#[test]
fn tcp_check_times_out_on_a_server_that_does_not_answer_syns() {
    let (_l, _fill, port) = full_backlog_listener();
    let conf = format!(
        "virtual_server 192.0.2.1 80 {{
  delay_loop 0.1
  real_server 127.0.0.1 {port} {{
    TCP_CHECK {{
      connect_timeout 0.15
      retry 1
      delay_before_retry 0.1
    }}
  }}
}}
"
    );
    let mut hs = HealthService::new(&plan(&conf)).unwrap();
    let started = Instant::now();
    let acts = run_until(&mut hs, Duration::from_secs(3), |a| !removes(a).is_empty());
    // Two timed-out connects (0.15 s each) and the retry delay (0.1 s) in between.
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    let down = down_detail(&acts);
    assert!(down[0].contains("timed out"), "{down:?}");
    hs.shutdown();
}

/// Whether `pid` is still running (a zombie waiting for its reaper does not count).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
    }
}

#[test]
fn shutdown_kills_running_misc_commands_and_their_children() {
    let dir = std::env::temp_dir().join(format!("lbcore-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pids = dir.join("pids");
    let conf = format!(
        "virtual_server 192.0.2.1 80 {{
  delay_loop 1
  real_server 127.0.0.41 80 {{
    MISC_CHECK {{
      misc_path \"sleep 10 & echo $$ $! > {p}.tmp; mv {p}.tmp {p}; wait\"
      misc_timeout 10
    }}
  }}
}}
",
        p = pids.display()
    );
    let mut hs = HealthService::new(&plan(&conf)).unwrap();
    let start = Instant::now();
    let text = loop {
        hs.wait(Duration::from_millis(20));
        hs.poll();
        if let Ok(t) = std::fs::read_to_string(&pids) {
            break t;
        }
        assert!(start.elapsed() < Duration::from_secs(3), "the command never ran");
    };
    let ids: Vec<u32> = text.split_whitespace().map(|s| s.parse().unwrap()).collect();
    assert_eq!(ids.len(), 2, "{text}");
    assert!(ids.iter().all(|&p| running(p)));
    hs.shutdown();
    let start = Instant::now();
    while ids.iter().any(|&p| running(p)) {
        assert!(start.elapsed() < Duration::from_secs(2), "still running: {ids:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
