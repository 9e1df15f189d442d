//! The attack suite (docs/security.md): real `wsreg` processes on loopback, attacked the
//! way a hostile web page, a careless user or a noisy local process would.
//!
//! - every server and route (API, SSE, page, client library, echo, yjs) refuses a
//!   DNS-rebinding `Host`, a cross-site `Origin` and a cross-site `no-cors` script load;
//! - a world-writable registry directory is repaired by the next writer, with a warning;
//! - a 100 MB entry file and a 100 MB legacy file are not read, and left whole;
//! - deeply nested JSON is an invalid entry (or legacy file), without a crash;
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
    Events, Listening, Registry, STEP, eventually, exchange, get, raise_nofile, request,
    upgrade_status,
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
fn a_world_writable_registry_directory_is_repaired_by_the_next_writer_with_a_warning() {
    let reg = Registry::new();
    let dir = reg.store().dir().to_owned();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = reg.output(&["register", "--port", &common::own_port().to_string()]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&dir.display().to_string()) && stderr.contains("777"),
        "the warning names the directory and its old mode: {stderr}"
    );
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
}

/// Creates the registry's directory, private, for a test that writes files itself.
fn private_dir(reg: &Registry) -> std::path::PathBuf {
    let dir = reg.store().dir().to_owned();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
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
fn a_100_mb_entry_file_and_a_100_mb_legacy_file_are_not_read_and_left_whole() {
    let reg = Registry::new();
    let (serve_proc, serve) = reg.serve(&[]);
    let before = peak_rss_kb(serve_proc.pid());
    let events = Events::subscribe(serve.addr, "/api/registry/events");
    events.next_servers(STEP);
    // Real 100 MB files (not sparse): a valid start, then 100 MB of digits.
    let size = 100 * 1024 * 1024;
    let mut big = br#"{"version":2,"id":"big","port":1,"pid":1,"meta":{"pad":""#.to_vec();
    big.resize(size, b'7');
    let dir = private_dir(&reg);
    std::fs::write(dir.join("big.json"), &big).unwrap();
    std::fs::write(reg.store().legacy_path(), &big).unwrap();
    drop(big);
    let started = Instant::now();
    let r = get(serve.addr, "/api/registry", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["servers"], serde_json::json!([]));
    let answered = started.elapsed();
    let grown = peak_rss_kb(serve_proc.pid()).saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "serve read them: its peak RSS grew by {grown} kB"
    );
    let out = reg.output(&["list", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("big.json: skipped: 104857600 bytes, over the limit"),
        "{stderr}"
    );
    // A writer registers beside them, and serve keeps working.
    let (_echo, echo) = reg.echo(&[]);
    let doc = events.next_servers(STEP);
    assert_eq!(common::ids(&doc), [echo.id.unwrap()], "serve keeps working");
    assert_eq!(
        std::fs::metadata(dir.join("big.json")).unwrap().len(),
        size as u64
    );
    assert_eq!(
        std::fs::metadata(reg.store().legacy_path()).unwrap().len(),
        size as u64
    );
    println!("100 MB files: answered in {answered:?}, serve RSS +{grown} kB");
}

#[test]
fn deeply_nested_json_is_an_invalid_entry_not_a_crash() {
    let reg = Registry::new();
    let (mut serve_proc, serve) = reg.serve(&[]);
    let dir = private_dir(&reg);
    // An entry file under the size limit, and a legacy file far past serde's depth.
    let nested_meta = |depth: usize, version: u32| {
        format!(
            r#"{{"version":{version},"id":"a","port":1,"pid":1,"meta":{}1{}}}"#,
            r#"{"a":"#.repeat(depth),
            "}".repeat(depth)
        )
    };
    std::fs::write(dir.join("a.json"), nested_meta(10_000, 2)).unwrap();
    let depth = 200_000;
    let nested_servers = format!(
        r#"{{"version":1,"servers":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    std::fs::write(reg.store().legacy_path(), nested_servers).unwrap();
    let r = get(serve.addr, "/api/registry", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["servers"], serde_json::json!([]));
    let out = reg.output(&["list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a.json: skipped: not valid JSON: recursion limit"),
        "{stderr}"
    );
    assert!(
        stderr.contains("legacy file not read: not valid JSON"),
        "{stderr}"
    );
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
    let port = common::own_port();
    let dir = private_dir(&reg);
    for i in 0..10_000 {
        let entry = serde_json::json!({
            "version": 2,
            "id": format!("echo-{i:05}"), "kind": if i % 2 == 0 { "echo" } else { "yjs" },
            "port": port, "pid": pid, "pidStartTime": start,
            "startedAt": "2026-11-25T12:00:00.000Z",
            "name": format!("server {i}"), "project": format!("p{}", i % 10),
        });
        std::fs::write(dir.join(format!("echo-{i:05}.json")), entry.to_string()).unwrap();
    }
    let started = Instant::now();
    eventually("10,000 listed", STEP, || {
        common::ids(&get(serve.addr, "/api/registry", &[]).json()).len() == 10_000
    });
    let api = started.elapsed();
    let ids = common::ids(&get(serve.addr, "/api/registry", &[]).json());
    assert!(
        ids.iter()
            .enumerate()
            .all(|(i, id)| *id == format!("echo-{i:05}")),
        "ordered by startedAt, then id"
    );
    let r = get(serve.addr, "/api/registry?kind=yjs&project=p1", &[]);
    assert_eq!(common::ids(&r.json()).len(), 1000);
    let started = Instant::now();
    let listed = reg.list();
    let cli = started.elapsed();
    assert_eq!(common::ids(&listed), ids);
    println!(
        "10,000 entries: all in serve's answer {api:?} after the writes, wsreg list --json {cli:?}"
    );
    // A writer adds one; it is the newest, so it comes last.
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
