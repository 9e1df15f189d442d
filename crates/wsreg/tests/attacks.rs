//! The attack suite (docs/security.md): real `wsreg` processes on loopback, attacked the
//! way a hostile web page, a careless user or a noisy local process would.
//!
//! - every server and route (API, SSE, page, client library, echo, yjs) refuses a
//!   DNS-rebinding `Host`, a cross-site `Origin` and a cross-site `no-cors` script load;
//! - a world-writable registry file is repaired by the next writer, with a warning;
//! - a 100 MB registry file is not read, and moved aside whole by a writer;
//! - deeply nested JSON is refused as corrupt, without a crash;
//! - 10,000 entries are listed correctly and quickly;
//! - header and body floods get 431/413-or-close, and the server answers the next client;
//! - 2,000 idle half-open connections do not keep a normal client from its answers.
//!
//! Every loop is bounded in count and time; all traffic is to 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use common::{
    Events, Listening, Registry, STEP, eventually, exchange, get, request, upgrade_status,
};

const EVIL_HOST: &str = "evil.example";
const EVIL_ORIGIN: &str = "http://evil.example";

/// The headers a cross-site `<script src>` (no CORS) sends: no `Origin`, but the fetch
/// metadata says where it comes from.
const NO_CORS_SCRIPT: [(&str, &str); 3] = [
    ("Sec-Fetch-Site", "cross-site"),
    ("Sec-Fetch-Mode", "no-cors"),
    ("Sec-Fetch-Dest", "script"),
];

fn refused(r: &common::Response, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.body);
    assert!(r.json()["error"].is_string(), "{what}");
    assert_eq!(r.header("access-control-allow-origin"), None, "{what}");
}

#[tokio::test]
async fn every_server_and_route_refuses_rebinding_cross_site_and_no_cors_requests() {
    let reg = Registry::new();
    let (_serve, serve) = reg.serve(&[]);
    let (_echo, echo) = reg.echo(&[]);
    let mut yjs_proc = reg.spawn(&["yjs", "--port", "0"]);
    let yjs = yjs_proc.listening();
    let routes = [
        "/api/registry",
        "/api/registry/events",
        "/",
        "/index.html",
        "/app.js",
        "/wsreg-client/src/index.js",
    ];
    for path in routes {
        let (status, _, _) = request(serve.addr, path, &[]);
        assert_eq!(status, 200, "{path} answers a same-site request");
        refused(&get(serve.addr, path, &[("Host", EVIL_HOST)]), path);
        refused(
            &get(serve.addr, path, &[("Host", "evil.example:5173")]),
            path,
        );
        refused(&get(serve.addr, path, &[("Origin", EVIL_ORIGIN)]), path);
        refused(&get(serve.addr, path, &NO_CORS_SCRIPT), path);
    }
    for url in [echo.url.clone(), format!("{}room", yjs.url)] {
        assert_eq!(upgrade_status(&url, &[]).await, 101, "{url}");
        assert_eq!(upgrade_status(&url, &[("Host", EVIL_HOST)]).await, 403);
        assert_eq!(upgrade_status(&url, &[("Origin", EVIL_ORIGIN)]).await, 403);
        assert_eq!(upgrade_status(&url, &NO_CORS_SCRIPT).await, 403, "{url}");
        // A plain GET (a script or image load) of a WebSocket server is refused too.
        let addr = listening_addr(&url);
        refused(&get(addr, "/", &NO_CORS_SCRIPT), &url);
        refused(&get(addr, "/", &[("Host", EVIL_HOST)]), &url);
    }
}

fn listening_addr(url: &str) -> SocketAddr {
    let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    authority.parse().unwrap()
}

#[test]
fn a_world_writable_registry_file_is_repaired_by_the_next_writer_with_a_warning() {
    let reg = Registry::new();
    let (echo, _) = reg.echo(&[]);
    drop(echo);
    std::fs::set_permissions(reg.path(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = reg.output(&["register", "--port", "4000", "--pid", "1"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&reg.path().display().to_string()) && stderr.contains("666"),
        "the warning names the file and its old mode: {stderr}"
    );
    assert_eq!(std::fs::metadata(reg.path()).unwrap().mode() & 0o777, 0o600);
}

/// Creates the registry's directory, private, for a test that writes the file itself.
fn private_dir(reg: &Registry) {
    let dir = reg.path().parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// The resident-set high-water mark of a process, in kB.
fn peak_rss_kb(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_100_mb_registry_file_is_not_read_and_is_moved_aside_whole_by_a_writer() {
    let reg = Registry::new();
    let (serve_proc, serve) = reg.serve(&[]);
    let before = peak_rss_kb(serve_proc.pid());
    let events = Events::subscribe(serve.addr, "/api/registry/events");
    events.next_servers(STEP);
    // A real 100 MB file (not sparse): a valid start, then 100 MB of digits.
    let size = 100 * 1024 * 1024;
    let mut big = br#"{"version":1,"servers":[{"id":"x","port":1,"pid":1,"meta":{"pad":""#.to_vec();
    big.resize(size, b'7');
    private_dir(&reg);
    std::fs::write(reg.path(), &big).unwrap();
    drop(big);
    let started = Instant::now();
    let r = get(serve.addr, "/api/registry", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["servers"], serde_json::json!([]));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let grown = peak_rss_kb(serve_proc.pid()).saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "serve read it: its peak RSS grew by {grown} kB"
    );
    // A writer moves it aside, whole, and registers.
    let (_echo, echo) = reg.echo(&[]);
    let aside: Vec<_> = std::fs::read_dir(reg.path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("servers.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::metadata(&aside[0]).unwrap().len(), size as u64);
    let doc = events.next_servers(STEP);
    assert_eq!(common::ids(&doc), [echo.id.unwrap()], "serve keeps working");
    println!(
        "100 MB file: answered in {:?}, serve RSS +{grown} kB",
        started.elapsed()
    );
}

#[test]
fn deeply_nested_json_is_corrupt_not_a_crash() {
    let reg = Registry::new();
    let (mut serve_proc, serve) = reg.serve(&[]);
    let depth = 200_000;
    let nested_servers = format!(
        r#"{{"version":1,"servers":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let nested_meta = format!(
        r#"{{"version":1,"servers":[{{"id":"a","port":1,"pid":1,"meta":{}1{}}}]}}"#,
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    );
    private_dir(&reg);
    for doc in [nested_servers, nested_meta] {
        std::fs::write(reg.path(), &doc).unwrap();
        let r = get(serve.addr, "/api/registry", &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["servers"], serde_json::json!([]));
        let out = reg.output(&["list", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("corrupt"), "{stderr}");
        let out = reg.output(&["prune"]);
        assert!(out.status.success(), "a writer moves it aside: {out:?}");
    }
    assert!(
        serve_proc.try_status().is_none(),
        "serve is still running after both"
    );
}

fn start_time_of(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    after_comm.split(' ').nth(19).unwrap().parse().unwrap()
}

#[test]
fn ten_thousand_entries_are_listed_correctly_and_quickly() {
    let reg = Registry::new();
    let (_serve, serve) = reg.serve(&[]);
    let pid = std::process::id();
    let start = start_time_of(pid);
    let servers: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            serde_json::json!({
                "id": format!("echo-{i:05}"), "kind": if i % 2 == 0 { "echo" } else { "yjs" },
                "port": 1 + i % 65000, "pid": pid, "pidStartTime": start,
                "startedAt": "2026-11-25T12:00:00.000Z",
                "name": format!("server {i}"), "project": format!("p{}", i % 10),
            })
        })
        .collect();
    let doc = serde_json::json!({"version": 1, "servers": servers});
    private_dir(&reg);
    std::fs::write(reg.path(), doc.to_string()).unwrap();
    let started = Instant::now();
    let r = get(serve.addr, "/api/registry", &[]);
    let api = started.elapsed();
    let ids = common::ids(&r.json());
    assert_eq!(ids.len(), 10_000);
    assert!(
        ids.iter()
            .enumerate()
            .all(|(i, id)| *id == format!("echo-{i:05}"))
    );
    let r = get(serve.addr, "/api/registry?kind=yjs&project=p1", &[]);
    assert_eq!(common::ids(&r.json()).len(), 1000);
    let started = Instant::now();
    let listed = reg.list();
    let cli = started.elapsed();
    assert_eq!(common::ids(&listed), ids);
    println!("10,000 entries: GET /api/registry {api:?}, wsreg list --json {cli:?}");
    assert!(
        api < Duration::from_secs(10) && cli < Duration::from_secs(10),
        "too slow"
    );
    // A writer keeps all of them and adds one.
    let (_echo, echo) = reg.echo(&[]);
    eventually("10,001 listed", STEP, || {
        common::ids(&get(serve.addr, "/api/registry", &[]).json()).len() == 10_001
    });
    assert_eq!(reg.ids().last(), echo.id.as_ref());
}

/// The server still answers a normal request.
fn still_answers(at: &Listening) {
    let r = get(at.addr, "/api/registry", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Sends `head` (then `body_bytes` bytes of body, as far as the server reads) and returns
/// the status it answered with, or None if it closed the connection without one.
fn flood(addr: SocketAddr, head: &[u8], body_bytes: usize) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, STEP).unwrap();
    stream.set_write_timeout(Some(STEP)).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    let _ = stream.write_all(head);
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < body_bytes && stream.write_all(&chunk).is_ok() {
        sent += chunk.len();
    }
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

#[test]
fn header_and_body_floods_are_refused_and_the_server_answers_the_next_client() {
    let reg = Registry::new();
    let (mut serve_proc, serve) = reg.serve(&[]);
    let host = serve.host();
    // One header of 1 MiB.
    let huge = format!(
        "GET /api/registry HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let status = flood(serve.addr, huge.as_bytes(), 0);
    assert!(matches!(status, None | Some(431) | Some(400)), "{status:?}");
    still_answers(&serve);
    // 20,000 small headers.
    let mut many = format!("GET /api/registry HTTP/1.1\r\nHost: {host}\r\n");
    for i in 0..20_000 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let status = flood(serve.addr, many.as_bytes(), 0);
    assert!(matches!(status, None | Some(431) | Some(400)), "{status:?}");
    still_answers(&serve);
    // A 1 GB body announced, 64 MB sent: answered without reading it all.
    let body = format!(
        "POST /api/registry HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1073741824\r\n\r\n"
    );
    let started = Instant::now();
    let status = flood(serve.addr, body.as_bytes(), 64 << 20);
    assert!(matches!(status, None | Some(405) | Some(413)), "{status:?}");
    assert!(started.elapsed() < STEP);
    // A chunked body that never ends, to a WebSocket server.
    let (_echo, echo) = reg.echo(&[]);
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        echo.host()
    );
    let status = flood(echo.addr, chunked.as_bytes(), 16 << 20);
    assert!(status.is_none_or(|s| (400..500).contains(&s)), "{status:?}");
    still_answers(&serve);
    assert!(serve_proc.try_status().is_none(), "serve is still running");
    let r = exchange(
        echo.addr,
        format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            echo.host()
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 426, "echo still answers: {}", r.body);
}

/// Raises this process's open-file limit (children inherit it) to at least `want`.
fn raise_nofile(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= want,
        "RLIMIT_NOFILE hard limit below {want}"
    );
}

#[test]
fn two_thousand_idle_half_open_connections_do_not_starve_a_normal_client() {
    raise_nofile(4_600);
    let reg = Registry::new();
    let (_serve, serve) = reg.serve(&[]);
    let events = Events::subscribe(serve.addr, "/api/registry/events");
    events.next_servers(STEP);
    let started = Instant::now();
    let mut idle = Vec::with_capacity(2_000);
    for i in 0..2_000 {
        let mut stream = TcpStream::connect_timeout(&serve.addr, STEP).expect("connect");
        // A third say nothing, a third stop mid-request-line, a third mid-headers.
        let partial = match i % 3 {
            0 => String::new(),
            1 => "GET /api/reg".to_owned(),
            _ => format!(
                "GET /api/registry HTTP/1.1\r\nHost: {}\r\nX-Slow: ",
                serve.host()
            ),
        };
        stream.write_all(partial.as_bytes()).unwrap();
        idle.push(stream);
    }
    let opened = started.elapsed();
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        still_answers(&serve);
        worst = worst.max(t.elapsed());
    }
    // The event stream still pushes: a new registration arrives.
    let (_echo, echo) = reg.echo(&[]);
    let doc = events.next_servers(STEP);
    assert_eq!(common::ids(&doc), [echo.id.unwrap()]);
    println!("2,000 half-open connections opened in {opened:?}; worst answer {worst:?}");
    assert!(worst < Duration::from_secs(1), "{worst:?}");
    drop(idle);
}
