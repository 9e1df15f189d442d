//! A listed server really serves: a local entry is shown only while its process holds a
//! LISTEN socket on its port. Real processes, real sockets: a server that closes its
//! listener but lives on leaves the list within a second of the next read (pushed to
//! subscribers too), is listed dead with its reason, and is not pruned; `wsreg register`
//! refuses a port nothing listens on.

mod common;

use std::time::{Duration, Instant};

use common::{Events, Listening, Proc, Registry, STEP, get, ids, listening_process};

/// A `wsreg serve`, a process that listens, its entry, and an event stream that has
/// listed it.
struct Listed {
    serve: (Proc, Listening),
    server: Proc,
    port: u16,
    id: String,
    events: Events,
}

/// Starts `wsreg serve --health-interval <health>`, registers a listening process and
/// waits for the event stream to list it.
fn listed_listener(reg: &Registry, health: &str) -> Listed {
    let serve = reg.serve(&["--health-interval", health]);
    let (server, port) = listening_process();
    let out = reg.output(&[
        "register",
        "--port",
        &port.to_string(),
        "--pid",
        &server.pid().to_string(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let events = Events::subscribe(serve.1.addr, "/api/registry/events");
    let deadline = Instant::now() + STEP;
    while !ids(&events.next_servers(STEP)).contains(&id) {
        assert!(Instant::now() < deadline, "not listed while it listens");
    }
    Listed {
        serve,
        server,
        port,
        id,
        events,
    }
}

#[test]
fn a_server_that_closes_its_listener_is_unlisted_within_a_second_of_the_next_read() {
    let reg = Registry::new();
    let Listed {
        serve: (_serve, at),
        mut server,
        port,
        id,
        events,
    } = listed_listener(&reg, "0");
    let listed = |doc: &serde_json::Value| ids(doc).contains(&id);
    assert!(listed(&get(at.addr, "/api/registry", &[]).json()));

    server.write_line("close");
    server.line_where("closed", |l| l == "closed");
    // The next read: answered without it if the last check is a second old, else it is
    // checked again a second after the last check and the change is pushed.
    let read = Instant::now();
    let first = get(at.addr, "/api/registry", &[]).json();
    if listed(&first) {
        let doc = events.next_servers(Duration::from_millis(1500));
        assert!(!listed(&doc), "the push after the check drops it: {doc}");
    }
    let took = read.elapsed();
    println!("unlisted {took:?} after the first read that followed the close");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(!listed(&get(at.addr, "/api/registry", &[]).json()));
    assert!(!listed(&reg.list()), "`wsreg list` agrees");

    let all = reg.output(&["list", "--all", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    let entry = &all["servers"][0];
    assert_eq!(entry["live"], false);
    assert_eq!(entry["deadReason"], format!("not listening on {port}"));
    // Its process lives: the entry is hidden, not pruned (the process removes its own
    // file when it exits, and may listen again).
    let pruned = reg.output(&["prune"]);
    assert!(pruned.status.success());
    assert!(
        reg.store().entry_path(&id).exists(),
        "prune removed the entry of a live process"
    );
}

#[test]
fn a_process_that_never_listened_is_never_listed() {
    let reg = Registry::new();
    let (_serve, at) = reg.serve(&["--health-interval", "0"]);
    let (mut server, port) = listening_process();
    server.write_line("close");
    server.line_where("closed", |l| l == "closed");
    // Written by hand (`wsreg register` would refuse it), as a library in another
    // language could.
    let entry = wsreg::Server::for_pid("echo", port, server.pid() as u32);
    let store = reg.store();
    store.register(entry.entry()).unwrap();
    let events = Events::subscribe(at.addr, "/api/registry/events");
    assert_eq!(ids(&events.next_servers(STEP)), Vec::<String>::new());
    assert_eq!(
        ids(&get(at.addr, "/api/registry", &[]).json()),
        Vec::<String>::new()
    );
    assert_eq!(ids(&reg.list()), Vec::<String>::new());
}

#[test]
fn register_refuses_a_port_nothing_listens_on_and_names_port_and_process() {
    let reg = Registry::new();
    let (mut server, port) = listening_process();
    server.write_line("close");
    server.line_where("closed", |l| l == "closed");
    let pid = server.pid().to_string();
    let out = reg.output(&["register", "--port", &port.to_string(), "--pid", &pid]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("nothing listens on port {port}")) && err.contains(&pid),
        "{err}"
    );
    assert!(reg.ids().is_empty(), "nothing registered");
}

#[test]
fn register_names_the_descendant_that_listens() {
    let reg = Registry::new();
    // A shell whose child is the server, as `npm run dev` starts node.
    let mut shell = std::process::Command::new("sh")
        .args(["-c", "python3 -c \"$0\" & wait", PARENT_OF_LISTENER])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(shell.stdout.take().unwrap()));
    let port = lines.next().unwrap().unwrap();
    let out = reg.output(&[
        "register",
        "--port",
        &port,
        "--pid",
        &shell.id().to_string(),
    ]);
    let _ = shell.kill();
    assert!(out.status.success(), "{out:?}");
    let listed = reg.output(&["list", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let pid = doc["servers"][0]["pid"].as_u64().unwrap();
    assert_ne!(pid, u64::from(shell.id()), "the shell does not listen");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("descendant of pid {}", shell.id())),
        "{out:?}"
    );
    // The listener this test's shell started.
    common::kill(pid as u32, libc::SIGKILL).expect("SIGKILL to the listener");
    let _ = shell.wait();
}

/// A server that prints its port and stays.
const PARENT_OF_LISTENER: &str = "import socket, time
s = socket.create_server(('127.0.0.1', 0))
print(s.getsockname()[1], flush=True)
time.sleep(60)";

#[test]
fn with_a_page_open_a_closed_listener_is_dropped_by_the_health_rounds_without_a_read() {
    let reg = Registry::new();
    let Listed {
        serve: _serve,
        mut server,
        id,
        events,
        ..
    } = listed_listener(&reg, "1s");
    let listed = |doc: &serde_json::Value| ids(doc).contains(&id);
    server.write_line("close");
    server.line_where("closed", |l| l == "closed");
    let closed = Instant::now();
    // No GET from here on: only the subscriber's health rounds (every second) ask.
    while listed(&events.next_servers(STEP)) {
        assert!(closed.elapsed() < STEP, "still listed");
    }
    let took = closed.elapsed();
    println!("dropped {took:?} after the close, by the health rounds");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
