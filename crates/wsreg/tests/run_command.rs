//! `wsreg run -- CMD…` with a real Node server (`examples/node-server.js`): it is listed
//! once it listens, reachable over WebSocket, unlisted when it ends, and its exit status
//! (or 128 + the signal that killed it) is wsreg's.
//!
//! Needs Node.js and the repository's npm packages (`npm ci` at the root) for `ws`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const WSREG: &str = env!("CARGO_BIN_EXE_wsreg");
const WAIT: Duration = Duration::from_secs(15);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn node_server() -> PathBuf {
    let root = repo_root();
    assert!(
        root.join("node_modules/ws").is_dir(),
        "node_modules/ws is missing: run `npm ci` at the repository root"
    );
    root.join("examples/node-server.js")
}

/// `wsreg --registry R run ARGS…` in the background.
fn start_run(registry: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(WSREG)
        .arg("--registry")
        .arg(registry)
        .arg("run")
        .args(args)
        .envs(env.iter().copied())
        .env("WSREG_LOG", "warn")
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn live_servers(registry: &Path) -> Vec<Value> {
    let out = Command::new(WSREG)
        .arg("--registry")
        .arg(registry)
        .args(["list", "--json"])
        .env("WSREG_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["servers"].as_array().unwrap().clone()
}

/// Waits (bounded) until `wsreg list --json` satisfies `done`, and returns that list.
fn wait_for_list(registry: &Path, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let servers = live_servers(registry);
        if done(&servers) {
            return servers;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {servers:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("wsreg run did not exit within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to `pid`, one of this test's own processes.
fn kill(pid: u32, signal: libc::c_int) {
    common::kill(pid, signal).unwrap_or_else(|e| panic!("kill({pid}, {signal}): {e}"));
}

async fn echo_roundtrip(url: &str) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::text("hello from the test")).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply, Message::text("hello from the test"));
}

#[tokio::test]
async fn a_node_server_is_listed_reachable_and_unlisted_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("servers.json");
    let server = node_server();
    let mut run = start_run(
        &registry,
        &[
            "--name",
            "node-echo",
            "--project",
            "demo",
            "--",
            "node",
            server.to_str().unwrap(),
        ],
        &[],
    );
    let servers = wait_for_list(&registry, "the node server", |s| !s.is_empty());
    assert_eq!(servers.len(), 1);
    let entry = &servers[0];
    assert_eq!(entry["name"], "node-echo");
    assert_eq!(entry["project"], "demo");
    assert_eq!(entry["kind"], "ws");
    let node_pid = entry["pid"].as_u64().unwrap() as u32;
    assert_ne!(
        node_pid,
        run.id(),
        "the entry names the command's PID, not wsreg's"
    );
    let url = entry["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("ws://127.0.0.1:{}/", entry["port"]));

    echo_roundtrip(&url).await;

    // SIGTERM to wsreg reaches node, which closes and exits 0; the entry goes with it.
    kill(run.id(), libc::SIGTERM);
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(live_servers(&registry).is_empty());
    assert!(
        !Path::new(&format!("/proc/{node_pid}")).exists(),
        "node was not stopped"
    );
}

#[test]
fn the_exit_status_is_passed_through() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("servers.json");
    let server = node_server();
    let mut run = start_run(
        &registry,
        &["--", "node", server.to_str().unwrap()],
        &[("EXIT_AFTER_MS", "3000"), ("EXIT_CODE", "3")],
    );
    wait_for_list(&registry, "the node server", |s| s.len() == 1);
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(3), "{status}");
    assert!(live_servers(&registry).is_empty());
}

#[test]
fn death_by_signal_exits_128_plus_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("servers.json");
    let server = node_server();
    let mut run = start_run(&registry, &["--", "node", server.to_str().unwrap()], &[]);
    let servers = wait_for_list(&registry, "the node server", |s| s.len() == 1);
    kill(servers[0]["pid"].as_u64().unwrap() as u32, libc::SIGKILL);
    let status = wait_exit(&mut run);
    assert_eq!(status.code(), Some(128 + libc::SIGKILL), "{status}");
    assert!(live_servers(&registry).is_empty());
}

#[test]
fn a_command_that_exits_before_listening_is_reported_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("servers.json");
    let out = Command::new(WSREG)
        .arg("--registry")
        .arg(&registry)
        .args(["run", "--", "sh", "-c", "exit 5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sh exited (exit status 5) before it accepted connections"),
        "{stderr}"
    );
    assert!(live_servers(&registry).is_empty());
}

#[test]
fn the_port_goes_in_the_named_variable_and_a_silent_command_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("servers.json");
    let out = Command::new(WSREG)
        .arg("--registry")
        .arg(&registry)
        .args(["run", "--port-env", "MY_PORT", "--ready-timeout", "1", "--"])
        .args(["sh", "-c", "echo \"port=$MY_PORT\"; exec sleep 30"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let port: u16 = stdout
        .trim()
        .strip_prefix("port=")
        .unwrap()
        .parse()
        .unwrap();
    assert!(port > 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "did not accept connections on 127.0.0.1:{port} within 1s"
        )),
        "{stderr}"
    );
}

/// `sh -c 'node server.js; true'`: the shell stays, node is its child (as under
/// `npm run dev`); the entry must name node, which owns the listening socket.
#[test]
fn the_process_that_listens_is_registered_even_as_a_grandchild() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("servers.json");
    let server = node_server();
    let script = format!("node '{}'; true", server.display());
    let mut run = start_run(&registry, &["--", "sh", "-c", &script], &[]);
    let servers = wait_for_list(&registry, "the node grandchild", |s| s.len() == 1);
    let pid = servers[0]["pid"].as_u64().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(
        comm.trim(),
        "node",
        "the entry names pid {pid} ({comm:?}), not node"
    );
    // A SIGTERM sent to wsreg run reaches node too, not only the shell.
    kill(run.id(), libc::SIGTERM);
    wait_exit(&mut run);
    let node_gone = Instant::now() + WAIT;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            Instant::now() < node_gone,
            "node {pid} still runs after wsreg run ended"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(live_servers(&registry).is_empty());
}

/// The port is taken, between `wsreg run`'s pick and the command's bind, by a process
/// that is not the command's: a daemon (double fork, so init adopts it; it binds only once
/// the python the command ran is gone, so that it is never the command's descendant while
/// it listens) that the command starts on `$PORT` before doing nothing itself. The port accepts connections, yet it is
/// not the command's server: no registration, a clear error, the command stopped.
#[test]
fn a_port_taken_by_a_stranger_is_an_error_never_a_registration() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("servers.json");
    let pidfile = dir.path().join("stranger.pid");
    let stranger = format!(
        r#"import os, socket, sys, time
first = os.getpid()
if os.fork(): sys.exit(0)
os.setsid()
if os.fork(): sys.exit(0)
# Not a descendant of the command any more: the first python has exited and been reaped.
while os.path.exists(f"/proc/{{first}}"): time.sleep(0.001)
s = socket.socket(); s.bind(("127.0.0.1", int(os.environ["PORT"]))); s.listen()
open("{}", "w").write(str(os.getpid()))
time.sleep(30)"#,
        pidfile.display()
    );
    let script = "python3 -c \"$STRANGER\" </dev/null >/dev/null 2>&1; exec sleep 30";
    let out = Command::new(WSREG)
        .arg("--registry")
        .arg(&registry)
        .args(["run", "--", "sh", "-c", script])
        .env("STRANGER", &stranger)
        .env("WSREG_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stranger_pid: u32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("the stranger wrote its pid");
    kill(stranger_pid, libc::SIGKILL);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("was taken by another process")
            && stderr.contains(&format!("pid {stranger_pid}"))
            && stderr.contains("not registered"),
        "{stderr}"
    );
    assert!(
        live_servers(&registry).is_empty(),
        "the stranger was registered"
    );
}
