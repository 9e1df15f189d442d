//! Health probes of `wsreg serve`, against real servers: a stopped server (SIGSTOP)
//! becomes `unresponsive` and comes back `ok` after SIGCONT, both pushed as events within
//! 7 s at the default interval; a server that accepts TCP but never answers the upgrade,
//! and a `healthUrl` that answers 500, are `unresponsive`; `"health": "none"` is never
//! probed; nobody subscribed means nothing probed; and a steady list sends no event.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Events, Registry, STEP, get};
use serde_json::Value;

/// The bound the issue sets on noticing a stop and a recovery at the default interval
/// (5 s between rounds, 1 s per probe), with slack for a loaded machine.
const NOTICE: Duration = Duration::from_secs(7);

/// The health state of server `id` in a document, if it is listed.
fn state_of(doc: &Value, id: &str) -> Option<String> {
    doc["servers"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == id)
        .map(|s| s["health"]["state"].as_str().unwrap_or_default().to_owned())
}

/// Waits for an event in which `id` has `state`; returns it and how long it took.
fn wait_for_state(events: &Events, id: &str, state: &str, limit: Duration) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let left = limit.saturating_sub(started.elapsed());
        let doc = events
            .try_next_servers(left)
            .unwrap_or_else(|| panic!("{id} not {state} within {limit:?}"));
        if state_of(&doc, id).as_deref() == Some(state) {
            return (doc, started.elapsed());
        }
    }
}

/// A TCP listener that accepts and holds every connection, never answering; it counts
/// the connections.
fn silent_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (port, accepted)
}

/// An HTTP server answering every request with `status`; it counts the requests.
fn http_server(status: u16) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            count.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    (port, served)
}

#[test]
fn a_stopped_server_is_marked_unresponsive_and_recovers_after_sigcont() {
    let reg = Registry::new();
    // The default interval (5 s): the bound below is the one users get.
    let (_serve, at) = reg.serve(&[]);
    let events = Events::subscribe(at.addr, "/api/registry/events");
    let (echo, listening) = reg.echo(&[]);
    let id = listening.id.unwrap();
    let (doc, took) = wait_for_state(&events, &id, "ok", NOTICE);
    println!("new server → ok in {took:?}");
    let health = &doc["servers"][0]["health"];
    assert!(health["latencyMs"].as_f64().is_some(), "{health}");
    assert!(health["checkedAt"].as_str().is_some(), "{health}");

    echo.signal(libc::SIGSTOP);
    let (doc, took) = wait_for_state(&events, &id, "unresponsive", NOTICE);
    println!("SIGSTOP → unresponsive in {took:?}");
    assert_eq!(doc["servers"][0]["health"]["latencyMs"], Value::Null);
    // Still listed: it may recover.
    assert_eq!(
        common::ids(&get(at.addr, "/api/registry", &[]).json()),
        vec![id.clone()]
    );

    echo.signal(libc::SIGCONT);
    let (_, took) = wait_for_state(&events, &id, "ok", NOTICE);
    println!("SIGCONT → ok in {took:?}");
}

#[test]
fn silence_after_connect_and_a_failing_health_url_are_unresponsive_and_none_is_never_probed() {
    let reg = Registry::new();
    let store = reg.store();
    let (_serve, at) = reg.serve(&["--health-interval", "300ms"]);

    let (silent_port, _) = silent_listener();
    let silent = wsreg::Server::new("silent", silent_port)
        .register(&store)
        .unwrap();
    let (ok_port, ok_served) = http_server(204);
    let healthy = wsreg::Server::new("web", ok_port)
        .health_url(format!("http://127.0.0.1:{ok_port}/healthz"))
        .register(&store)
        .unwrap();
    let (failing_port, _) = http_server(500);
    let failing = wsreg::Server::new("web", failing_port)
        .health_url(format!("http://127.0.0.1:{failing_port}/healthz"))
        .register(&store)
        .unwrap();
    let (quiet_port, quiet_accepted) = silent_listener();
    let opted_out = wsreg::Server::new("quiet", quiet_port)
        .no_health_probe()
        .register(&store)
        .unwrap();

    // Nobody subscribed: nothing is probed, every state is unknown (or none).
    let doc = get(at.addr, "/api/registry", &[]).json();
    assert_eq!(state_of(&doc, silent.id()).as_deref(), Some("unknown"));
    assert_eq!(state_of(&doc, opted_out.id()).as_deref(), Some("none"));
    assert_eq!(
        ok_served.load(Ordering::SeqCst),
        0,
        "probed with nobody subscribed"
    );

    let events = Events::subscribe(at.addr, "/api/registry/events");
    let (doc, took) = wait_for_state(&events, silent.id(), "unresponsive", STEP);
    println!("accepts but never upgrades → unresponsive in {took:?}");
    let settled = |doc: &Value| {
        state_of(doc, healthy.id()).as_deref() == Some("ok")
            && state_of(doc, failing.id()).as_deref() == Some("unresponsive")
    };
    let mut doc = doc;
    let started = Instant::now();
    while !settled(&doc) {
        assert!(started.elapsed() < STEP, "health URLs not probed: {doc}");
        doc = events.next_servers(STEP);
    }
    assert_eq!(state_of(&doc, opted_out.id()).as_deref(), Some("none"));
    assert!(ok_served.load(Ordering::SeqCst) >= 1);

    // A steady list sends nothing, however many rounds run: the next event is the next
    // change (a new registration), and by then several rounds have probed.
    let rounds_before = ok_served.load(Ordering::SeqCst);
    let probed_again = || ok_served.load(Ordering::SeqCst) >= rounds_before + 3;
    common::eventually("three more rounds", STEP, probed_again);
    let (late_port, _) = http_server(200);
    let late = wsreg::Server::new("web", late_port)
        .health_url(format!("http://127.0.0.1:{late_port}/"))
        .register(&store)
        .unwrap();
    let next = events.next_servers(STEP);
    assert_eq!(
        state_of(&next, late.id()).as_deref(),
        Some("unknown"),
        "the first event after a steady spell is the registration: {next}"
    );
    assert_eq!(
        quiet_accepted.load(Ordering::SeqCst),
        0,
        "\"health\": \"none\" was probed"
    );
    drop(events);
}

#[test]
fn the_probe_passes_the_servers_own_guard_and_its_handshake() {
    // `wsreg echo` refuses cross-site origins and foreign Host names: a probe that is
    // `ok` against it went through both checks and a real upgrade, ping and pong. With
    // --auth token it answers 401 to a probe, which carries no token: that is an answer,
    // so `ok`; a stopped one is `unresponsive` all the same.
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&["--health-interval", "300ms"]);
    let events = Events::subscribe(at.addr, "/api/registry/events");
    let (_open, open_at) = reg.echo(&[]);
    let (locked, locked_at) = reg.echo(&["--auth", "token"]);
    let (open_id, locked_id) = (open_at.id.unwrap(), locked_at.id.unwrap());
    let started = Instant::now();
    loop {
        let doc = events.next_servers(STEP);
        if state_of(&doc, &open_id).as_deref() == Some("ok")
            && state_of(&doc, &locked_id).as_deref() == Some("ok")
        {
            break;
        }
        assert!(started.elapsed() < STEP, "not settled: {doc}");
    }
    locked.signal(libc::SIGSTOP);
    wait_for_state(&events, &locked_id, "unresponsive", STEP);
    locked.signal(libc::SIGCONT);
}

#[test]
fn list_health_probes_each_server_once() {
    let reg = Registry::new();
    let (_up, up) = reg.echo(&[]);
    let (stopped, down) = reg.echo(&[]);
    stopped.signal(libc::SIGSTOP);
    let out = reg.output(&["list", "--health", "--json"]);
    stopped.signal(libc::SIGCONT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state_of(&doc, &up.id.unwrap()).as_deref(), Some("ok"));
    assert_eq!(
        state_of(&doc, &down.id.unwrap()).as_deref(),
        Some("unresponsive")
    );
    let table = reg.output(&["list", "--health"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.lines().next().unwrap().ends_with("HEALTH"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains(" ok ")).count(),
        2,
        "{text}"
    );
}

/// Sends a probe's handshake (with or without the probe mark) and a ping to a Yjs
/// server; returns the opcodes of the frames it sends back up to and with the pong.
fn frames_before_pong(addr: std::net::SocketAddr, marked: bool) -> Vec<u8> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(STEP)).unwrap();
    let mark = if marked { "X-Wsreg-Probe: 1\r\n" } else { "" };
    write!(
        stream,
        "GET /room HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{mark}\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        buf.push(byte[0]);
    }
    assert!(
        buf.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // A masked ping with an empty payload.
    stream.write_all(&[0x89, 0x80, 1, 2, 3, 4]).unwrap();
    let mut opcodes = Vec::new();
    loop {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).unwrap();
        let len = match head[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                stream.read_exact(&mut l).unwrap();
                u16::from_be_bytes(l) as usize
            }
            127 => panic!("a huge frame"),
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).unwrap();
        opcodes.push(head[0] & 0x0f);
        if head[0] & 0x0f == 0xA {
            return opcodes;
        }
    }
}

#[test]
fn a_probe_is_answered_before_the_server_and_opens_no_yjs_room() {
    let reg = Registry::new();
    let mut yjs = reg.spawn(&["yjs", "--port", "0"]);
    let at = yjs.listening();
    // A client gets the room's first sync message before the pong; a probe gets only
    // the pong.
    assert_eq!(frames_before_pong(at.addr, false).first(), Some(&0x2));
    assert_eq!(frames_before_pong(at.addr, true), vec![0xA]);
}
