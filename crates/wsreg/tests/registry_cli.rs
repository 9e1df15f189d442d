//! The registry command line with real processes: a storm of concurrent registrations
//! loses nothing and never shows a reader a torn file; SIGKILLed servers vanish from the
//! list at once; errors are one clear line.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::own_port;

const WSREG: &str = env!("CARGO_BIN_EXE_wsreg");

fn wsreg(registry: &Path, args: &[&str]) -> Output {
    Command::new(WSREG)
        .arg("--registry")
        .arg(registry)
        .args(args)
        .env("WSREG_LOG", "warn")
        .output()
        .unwrap()
}

fn list_json(registry: &Path, extra: &[&str]) -> Value {
    let out = wsreg(registry, &[&["list", "--json"], extra].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn servers(doc: &Value) -> &Vec<Value> {
    doc["servers"].as_array().unwrap()
}

/// Starts `n` copies of `wsreg ARGS(i)`, each held at a shell `read` until all have said
/// (on stderr) that they are there, then releases them together. `exec` keeps this
/// process their parent, so a `register` without `--pid` registers this (live) test
/// process.
fn storm(registry: &Path, n: usize, args: impl Fn(usize) -> Vec<String>) -> Vec<Output> {
    let mut children: Vec<Child> = (0..n)
        .map(|i| {
            Command::new("sh")
                .arg("-c")
                .arg("echo ready >&2; read _ && exec \"$0\" \"$@\"")
                .arg(WSREG)
                .arg("--registry")
                .arg(registry)
                .args(args(i))
                .env("WSREG_LOG", "warn")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut stderrs: Vec<BufReader<ChildStderr>> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stderr.take().unwrap()))
        .collect();
    for err in &mut stderrs {
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
    }
    for child in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    children
        .into_iter()
        .zip(stderrs)
        .map(|(c, mut err)| {
            let mut output = c.wait_with_output().unwrap();
            err.read_to_end(&mut output.stderr).unwrap();
            output
        })
        .collect()
}

/// Reads the registry in a loop until stopped, through the real reader; fails on any
/// file it had to skip (a torn or empty entry file).
fn spawn_reader(path: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, usize)> {
    let store = wsreg::Store::new(path);
    std::thread::spawn(move || {
        let (mut reads, mut max_seen) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            let snapshot = store
                .read()
                .unwrap_or_else(|e| panic!("read #{reads}: {e}"));
            reads += 1;
            assert!(
                snapshot.skipped.is_empty(),
                "read #{reads}: {:?}",
                snapshot.skipped
            );
            max_seen = max_seen.max(snapshot.entries.len());
        }
        (reads, max_seen)
    })
}

#[test]
fn a_storm_of_100_registrations_and_100_unregistrations_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("servers.json");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = spawn_reader(&registry, stop.clone());

    let start = Instant::now();
    let outputs = storm(&registry, 100, |_| {
        vec!["register".into(), "--port".into(), own_port().to_string()]
    });
    let registered = start.elapsed();
    let mut ids: Vec<String> = outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8(o.stdout.clone())
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    let doc = list_json(&registry, &[]);
    let mut listed: Vec<String> = servers(&doc)
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    listed.sort();
    assert_eq!(listed.len(), 100);
    assert_eq!(listed, ids);

    let outputs = storm(&registry, 100, |i| {
        vec!["unregister".into(), ids[i].clone()]
    });
    for o in &outputs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(servers(&list_json(&registry, &[])).len(), 0);

    stop.store(true, Ordering::Relaxed);
    let (reads, max_seen) = reader
        .join()
        .expect("the reader never saw a torn or empty file");
    println!(
        "100 registrations in {registered:?}; the reader read the registry {reads} times, no file skipped"
    );
    assert!(reads > 0);
    assert_eq!(max_seen, 100);
}

#[test]
fn a_sigkilled_server_is_hidden_at_once_and_listed_dead_with_all() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("servers.json");
    let (mut server, port) = common::listening_process();
    let pid = server.pid().to_string();
    let out = wsreg(
        &registry,
        &[
            "register",
            "--port",
            &port.to_string(),
            "--pid",
            &pid,
            "--name",
            "victim",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(servers(&list_json(&registry, &[])).len(), 1);

    server.signal(libc::SIGKILL);
    // Not yet reaped: a zombie, already dead to readers.
    let stat = format!("/proc/{}/stat", server.pid());
    let zombie = Instant::now();
    while !std::fs::read_to_string(&stat).unwrap().contains(") Z ") {
        assert!(
            zombie.elapsed() < Duration::from_secs(5),
            "not a zombie after 5 s"
        );
        std::thread::yield_now();
    }
    assert_eq!(
        servers(&list_json(&registry, &[])).len(),
        0,
        "no prune needed"
    );
    let all = list_json(&registry, &["--all"]);
    assert_eq!(servers(&all)[0]["live"], false);
    assert_eq!(servers(&all)[0]["deadReason"], "zombie");

    server.wait_exit(Duration::from_secs(5));
    let all = list_json(&registry, &["--all"]);
    assert_eq!(servers(&all)[0]["deadReason"], "no such process");
    let table = String::from_utf8(wsreg(&registry, &["list", "--all"]).stdout).unwrap();
    assert!(table.contains("dead: no such process"), "{table}");
    assert!(table.contains("victim"), "{table}");

    let out = wsreg(&registry, &["prune"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 file removed"));
    assert_eq!(servers(&list_json(&registry, &["--all"])).len(), 0);
}

#[test]
fn filters_select_by_project_and_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("servers.json");
    for (kind, project) in [("echo", "a"), ("yjs", "a"), ("echo", "b")] {
        let out = wsreg(
            &registry,
            &[
                "register",
                "--port",
                &own_port().to_string(),
                "--kind",
                kind,
                "--project",
                project,
            ],
        );
        assert!(out.status.success());
    }
    let count = |args: &[&str]| servers(&list_json(&registry, args)).len();
    assert_eq!(count(&[]), 3);
    assert_eq!(count(&["--project", "a"]), 2);
    assert_eq!(count(&["--kind", "echo"]), 2);
    assert_eq!(count(&["--project", "a", "--kind", "echo"]), 1);
}

#[test]
fn list_json_is_the_canonical_document() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("servers.json");
    let out = wsreg(
        &registry,
        &[
            "register",
            "--port",
            &own_port().to_string(),
            "--name",
            "n",
            "--meta",
            "tool=\"x\"",
        ],
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let doc = list_json(&registry, &[]);
    assert_eq!(doc["version"], 1);
    let keys: Vec<&str> = servers(&doc)[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "kind",
            "name",
            "project",
            "session",
            "host",
            "port",
            "url",
            "pid",
            "pidStartTime",
            "startedAt",
            "ttlSecs",
            "heartbeatAt",
            "meta"
        ]
    );
    assert_eq!(servers(&doc)[0]["id"], id.as_str());
    assert_eq!(servers(&doc)[0]["meta"]["tool"], "x");
    assert_eq!(
        servers(&doc)[0]["url"],
        format!("ws://127.0.0.1:{}/", own_port())
    );
}

#[test]
fn errors_are_one_line_naming_the_file_and_exit_non_zero() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let registry = tmp.path().join("servers");
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&target, &registry).unwrap();
    let port = own_port().to_string();
    for args in [&["list"][..], &["register", "--port", &port], &["prune"]] {
        let out = wsreg(&registry, args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("wsreg: "), "{err}");
        assert!(
            err.contains(&format!("{}: it is a symbolic link", registry.display())),
            "{err}"
        );
    }

    let registry = tmp.path().join("ok.json");
    let out = wsreg(&registry, &["unregister", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no entry with id \"nope\""));
    let out = wsreg(&registry, &["register", "--port", "1", "--pid", "4194304"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no running process with pid 4194304"));
    let out = wsreg(
        &registry,
        &["register", "--port", &port, "--kind", "Bad Kind"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("kind must be a lowercase word"));
    let out = wsreg(&registry, &["register", "--port", "0"]);
    assert!(!out.status.success());
}

#[test]
fn watch_prints_a_line_per_change() {
    watch_sees_changes("native");
}

#[test]
fn watch_by_polling_sees_changes_too() {
    watch_sees_changes("poll");
}

fn watch_sees_changes(mode: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let registry = tmp.path().join("servers.json");
    let mut watch = Command::new(WSREG)
        .arg("--registry")
        .arg(&registry)
        .args(["watch", "--json"])
        .env("WSREG_WATCH", mode)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let next = || {
        serde_json::from_str::<Value>(&rx.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap()
    };
    assert_eq!(servers(&next()).len(), 0);
    let started = Instant::now();
    let out = wsreg(&registry, &["register", "--port", &own_port().to_string()]);
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let doc = next();
    println!(
        "watch ({mode}) saw the registration {} ms after it started",
        started.elapsed().as_millis()
    );
    assert_eq!(servers(&doc)[0]["id"], id.as_str());
    wsreg(&registry, &["unregister", &id]);
    assert_eq!(servers(&next()).len(), 0);
    common::kill(watch.id(), libc::SIGINT).expect("SIGINT to wsreg watch");
    assert!(watch.wait().unwrap().success());
}

/// Each cause is printed once: an error's text does not repeat its source, which the
/// edge prints after it (issue 16: "No such file or directory (os error 2)" came twice).
#[test]
fn an_errors_cause_is_printed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let registry = file.join("servers");
    let cases: [(&[&str], &str); 3] = [
        (&["list"], "Not a directory (os error 20)"),
        (&["echo"], "Not a directory (os error 20)"),
        // TEST-NET-1 (RFC 5737): no interface of this machine has it.
        (
            &["echo", "--host", "192.0.2.1"],
            "Cannot assign requested address (os error 99)",
        ),
    ];
    for (args, cause) in cases {
        let out = wsreg(&registry, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.matches(cause).count(), 1, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn a_given_registry_whose_parent_is_missing_is_an_error_for_writers_and_a_warning_for_readers() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir").join("deeper");
    let registry = missing.join("servers.json");
    let port = own_port().to_string();
    for args in [&["register", "--port", &port][..], &["echo"]] {
        let out = wsreg(&registry, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("its parent does not exist"), "{args:?}: {err}");
    }
    assert!(
        !tmp.path().join("no-such-dir").exists(),
        "a writer created the chain of directories"
    );
    // The same path through the environment variable.
    let out = Command::new(WSREG)
        .args(["register", "--port", &port])
        .env("WSREG_REGISTRY", &registry)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!tmp.path().join("no-such-dir").exists());

    let out = wsreg(&registry, &["list"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such directory"), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn the_default_registry_is_created_with_its_parents() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(WSREG)
        .args(["register", "--port", &own_port().to_string()])
        .env("HOME", home.path())
        .env_remove("WSREG_REGISTRY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home.path().join(".peer-plan").is_dir());
}

#[test]
fn register_help_says_the_default_pid_is_the_parent() {
    let out = Command::new(WSREG)
        .args(["register", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("PARENT of `wsreg register`"), "{help}");
}

#[test]
fn register_refuses_a_port_another_process_listens_on() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("servers.json");
    // This test process listens; a `sleep` is the process that would be registered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = other.id().to_string();
    let refused = wsreg(&registry, &["register", "--port", &port, "--pid", &pid]);
    let _ = other.kill();
    let _ = other.wait();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "registered a stranger's port");
    let me = std::process::id();
    assert!(
        err.contains(&format!("port {port} is held by another process (pid {me}"))
            && err.contains(&format!("not by pid {pid} or its children: not registered")),
        "{err}"
    );
    assert!(servers(&list_json(&registry, &["--all"])).is_empty());
    // The process that listens (this one, the parent of `wsreg register`) may.
    let ok = wsreg(&registry, &["register", "--port", &port]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(servers(&list_json(&registry, &[])).len(), 1);
    drop(listener);
}
