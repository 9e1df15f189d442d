//! The etcd backend against a real three-member cluster (Debian's etcd-server, started by
//! scripts/etcd-cluster.sh on loopback ports, SIGKILLed when the test ends, pass or
//! fail): the same API over etcd, a failed member, a killed server, a partitioned one,
//! and a compaction. A missing etcd fails the test with the command that installs it.
//! Built with the `etcd` feature (./test.sh builds with every feature).
//!
//! "Another host" is a process in its own UTS namespace whose hostname differs
//! (`unshare -r -u`): for a reader its entry is remote, so only its lease can end it.
#![cfg(feature = "etcd")]

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Events, Listening, Proc, Registry, STEP, WSREG, get, ids};

/// The TTL of the leases in these tests.
const TTL: Duration = Duration::from_secs(2);
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/etcd-cluster.sh");

/// A three-member cluster, stopped (SIGKILL, by PID) when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    base: u16,
    backend: String,
}

impl Cluster {
    fn start() -> Cluster {
        let installed = Command::new("etcd")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "etcd is missing; install it with: sudo apt-get install -y etcd-server"
        );
        // Ports below the ephemeral range (32768 on), apart per test process; a start that
        // lost a race for them is tried again elsewhere.
        let mut failure = None;
        for attempt in 0..5u32 {
            let base = 20_000 + ((std::process::id() + attempt * 397) % 1_200) as u16 * 10;
            if !(base..base + 6).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
                continue;
            }
            let dir = tempfile::tempdir().expect("temp dir");
            let out = Command::new("bash")
                .arg(SCRIPT)
                .arg("start")
                .arg(dir.path())
                .arg(base.to_string())
                .output()
                .expect("run etcd-cluster.sh");
            if out.status.success() {
                let backend = String::from_utf8(out.stdout).unwrap().trim().to_owned();
                return Cluster { dir, base, backend };
            }
            failure = Some(out);
        }
        panic!("etcd-cluster.sh start failed: {failure:?}");
    }

    /// The backend URL of member `n` alone.
    fn member(&self, n: u16) -> String {
        format!("etcd://127.0.0.1:{}", self.base + n - 1)
    }

    fn script(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(SCRIPT)
            .arg(args[0])
            .arg(self.dir.path())
            .args(&args[1..])
            .output()
            .expect("run etcd-cluster.sh");
        assert!(out.status.success(), "etcd-cluster.sh {args:?}: {out:?}");
    }

    fn kill_member(&self, n: u16) {
        self.script(&["kill-member", &n.to_string()]);
    }

    fn restart_member(&self, n: u16) {
        self.script(&["restart-member", &n.to_string(), &self.base.to_string()]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// `wsreg ARGS…` on the cluster `backend`, with this test's TTL.
fn wsreg(reg: &Registry, backend: &str, args: &[&str]) -> Command {
    let mut cmd = reg.command(args);
    cmd.env("WSREG_BACKEND", backend)
        .env("WSREG_ETCD_TTL", TTL.as_secs().to_string());
    cmd
}

/// The same, run as another host would (its own hostname).
fn wsreg_elsewhere(reg: &Registry, backend: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["-r", "-u", "sh", "-c"])
        .arg(r#"echo wsreg-peer > /proc/sys/kernel/hostname && exec "$0" "$@""#)
        .arg(WSREG)
        .arg("--registry")
        .arg(reg.path())
        .args(args)
        .env("WSREG_BACKEND", backend)
        .env("WSREG_ETCD_TTL", TTL.as_secs().to_string())
        .env("WSREG_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// `wsreg serve` on `backend`, without health probes (the tests count list events).
fn serve_on(reg: &Registry, backend: &str) -> (Proc, Listening) {
    started(wsreg(
        reg,
        backend,
        &["serve", "--port", "0", "--health-interval", "0"],
    ))
}

fn started(cmd: Command) -> (Proc, Listening) {
    let mut proc = Proc::spawn(cmd);
    let listening = proc.listening();
    (proc, listening)
}

/// The next `servers` event whose ids satisfy `pred`, within `limit`; how long it took.
fn until(events: &Events, limit: Duration, pred: impl Fn(&[String]) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        let Some(doc) = events.try_next_servers(left) else {
            panic!("no such servers event within {limit:?}");
        };
        if pred(&ids(&doc)) {
            return start.elapsed();
        }
    }
}

fn api_ids(serve: &Listening) -> Vec<String> {
    let response = get(serve.addr, "/api/registry", &[("Host", &serve.host())]);
    assert_eq!(response.status, 200);
    ids(&response.json())
}

#[test]
fn servers_register_in_etcd_and_serve_lists_them_as_the_directory_does() {
    let cluster = Cluster::start();
    let reg = Registry::new();
    let (_serve, serve) = serve_on(&reg, &cluster.backend);
    let events = Events::subscribe(serve.addr, "/api/registry/events");
    assert_eq!(ids(&events.next_servers(STEP)), Vec::<String>::new());
    let (_echo, echo) = started(wsreg(
        &reg,
        &cluster.backend,
        &["echo", "--port", "0", "--project", "p"],
    ));
    let id = echo.id.clone().expect("an id");
    // An exact read: the registration returned before this request, so it is listed.
    assert_eq!(api_ids(&serve), vec![id.clone()]);
    until(&events, STEP, |ids| ids == [id.clone()]);

    // The same entry JSON as the directory's reader would give, from `list --json`.
    let out = wsreg(&reg, &cluster.backend, &["list", "--json"])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut served = get(serve.addr, "/api/registry", &[("Host", &serve.host())]).json();
    // The API adds each server's health (not probed here: unknown).
    for entry in served["servers"].as_array_mut().unwrap() {
        let health = entry.as_object_mut().unwrap().remove("health");
        assert_eq!(health.unwrap()["state"], "unknown");
    }
    assert_eq!(listed, served);
    assert_eq!(served["servers"][0]["project"], "p");
    assert_eq!(served["servers"][0]["url"], echo.url.as_str());

    // A process of another language: register, then unregister by id.
    let out = wsreg(
        &reg,
        &cluster.backend,
        &[
            "register",
            "--port",
            &common::own_port().to_string(),
            "--pid",
            &std::process::id().to_string(),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let other = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    until(&events, STEP, |ids| ids.contains(&other));
    let out = wsreg(&reg, &cluster.backend, &["unregister", &other])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    until(&events, STEP, |ids| ids == [id.clone()]);

    // A clean stop revokes the lease: gone at once, not after the TTL.
    _echo.signal(libc::SIGTERM);
    until(&events, Duration::from_secs(1), |ids| ids.is_empty());
}

#[test]
fn a_killed_server_is_gone_from_its_host_at_once_and_from_others_when_its_lease_ends() {
    let cluster = Cluster::start();
    let reg = Registry::new();
    // TTL 4 s here, so that "at once" and "at the lease's end" are told apart.
    let long = |mut cmd: Command| {
        cmd.env("WSREG_ETCD_TTL", "4");
        cmd
    };
    let (_here, here) = serve_on(&reg, &cluster.backend);
    let (_there, there) = started(long(wsreg_elsewhere(
        &reg,
        &cluster.backend,
        &["serve", "--port", "0", "--health-interval", "0"],
    )));
    let (echo_proc, echo) = started(long(wsreg_elsewhere(
        &reg,
        &cluster.backend,
        &["echo", "--port", "0"],
    )));
    let id = echo.id.clone().expect("an id");
    let here_events = Events::subscribe(here.addr, "/api/registry/events");
    let there_events = Events::subscribe(there.addr, "/api/registry/events");
    until(&here_events, STEP, |ids| ids == [id.clone()]);
    until(&there_events, STEP, |ids| ids == [id.clone()]);

    let leased = Leased::read(&cluster, &id, Duration::from_secs(4));
    echo_proc.signal(libc::SIGKILL);
    let killed = Instant::now();
    let own_host = until(&there_events, STEP, |ids| ids.is_empty());
    assert!(
        own_host < Duration::from_secs(1),
        "its own host saw the exit by pidfd, not by the lease ({own_host:?})"
    );
    assert_eq!(
        api_ids(&here),
        vec![id.clone()],
        "remote: the lease still runs"
    );
    leased.expired(&cluster, &here_events, killed);
}

#[test]
fn a_partitioned_server_is_gone_when_its_lease_ends_and_puts_itself_back_on_return() {
    let cluster = Cluster::start();
    let reg = Registry::new();
    let (_serve, serve) = serve_on(&reg, &cluster.backend);
    let events = Events::subscribe(serve.addr, "/api/registry/events");
    let (echo_proc, echo) = started(wsreg_elsewhere(
        &reg,
        &cluster.backend,
        &["echo", "--port", "0"],
    ));
    let id = echo.id.clone().expect("an id");
    until(&events, STEP, |ids| ids == [id.clone()]);

    // Stopped, it renews nothing: its lease runs out.
    let leased = Leased::read(&cluster, &id, TTL);
    echo_proc.signal(libc::SIGSTOP);
    leased.expired(&cluster, &events, Instant::now());
    // Back, it finds its lease expired and registers again (the registry is soft state).
    echo_proc.signal(libc::SIGCONT);
    until(&events, STEP, |ids| ids == [id.clone()]);
}

#[test]
fn a_failed_member_loses_no_entry_and_registrations_go_on() {
    let cluster = Cluster::start();
    let reg = Registry::new();
    let (_serve, serve) = serve_on(&reg, &cluster.backend);
    let events = Events::subscribe(serve.addr, "/api/registry/events");
    let (_first, first) = started(wsreg(&reg, &cluster.backend, &["echo", "--port", "0"]));
    let first = first.id.expect("an id");
    until(&events, STEP, |ids| ids == [first.clone()]);

    cluster.kill_member(1);
    let (_second, second) = started(wsreg(&reg, &cluster.backend, &["echo", "--port", "0"]));
    let second = second.id.expect("an id");
    until(&events, STEP, |ids| ids == [first.clone(), second.clone()]);
    // Both leases are renewed through the other members: nothing expires.
    assert!(
        events.quiet_for(TTL + Duration::from_secs(1)),
        "the list changed while both servers lived"
    );
    assert_eq!(api_ids(&serve), vec![first, second]);
}

#[test]
fn a_watch_that_missed_a_compacted_history_reads_everything_again() {
    let cluster = Cluster::start();
    let reg = Registry::new();
    // This `serve` reaches the cluster through member 3 only, so that member 3's
    // failure breaks its watch for as long as the test wants.
    let (_serve, serve) = serve_on(&reg, &cluster.member(3));
    let events = Events::subscribe(serve.addr, "/api/registry/events");
    let (first_proc, first) = started(wsreg(&reg, &cluster.member(1), &["echo", "--port", "0"]));
    let first = first.id.expect("an id");
    until(&events, STEP, |ids| ids == [first.clone()]);

    cluster.kill_member(3);
    stop_cleanly(first_proc);
    let (_second, second) = started(wsreg(&reg, &cluster.member(1), &["echo", "--port", "0"]));
    let second = second.id.expect("an id");
    compact(&cluster.member(1));
    cluster.restart_member(3);
    until(&events, STEP, |ids| ids == [second.clone()]);
}

/// Stops a server cleanly (SIGTERM: it revokes its lease) and waits for it to exit.
fn stop_cleanly(mut proc: Proc) {
    proc.signal(libc::SIGTERM);
    assert!(proc.wait_exit(STEP).success());
}

/// Compacts the cluster's history up to its current revision.
fn compact(member: &str) {
    with_client(member, async |client| {
        let revision = client
            .get("/", None)
            .await
            .expect("get")
            .header()
            .expect("a header")
            .revision();
        client.compact(revision, None).await.expect("compact");
    });
}

/// A server's key in etcd, as read while the server lived.
struct Leased {
    key: String,
    /// The cluster's revision when it was read: a watch from the next one misses nothing.
    revision: i64,
}

/// How long etcd may take to delete the key of a lease nobody renews. What the TTL
/// bounds is etcd's to keep: it looks for expired leases twice a second and deletes
/// their keys through a raft commit, a revocation that did not commit is retried 3 s
/// later, and a leader elected meanwhile renews every lease once. On a loaded machine
/// that took 11 s past the kill of a server with a 4 s lease, no leader elected. This
/// bound only catches a lease that somebody keeps renewing.
const EXPIRY: Duration = Duration::from_secs(60);

impl Leased {
    /// Reads server `id`'s key: it must be bound to a lease granted for `ttl`.
    fn read(cluster: &Cluster, id: &str, ttl: Duration) -> Leased {
        let key = format!("/wsreg/v2/servers/{id}");
        with_client(&cluster.member(1), async |client| {
            let got = client.get(key.as_str(), None).await.expect("get");
            let lease = got.kvs().first().expect("the server's key").lease();
            let granted = client
                .lease_time_to_live(lease, None)
                .await
                .expect("the lease's TTL")
                .granted_ttl();
            assert_eq!(
                granted,
                ttl.as_secs() as i64,
                "the lease is granted for the TTL"
            );
            let revision = got.header().expect("a header").revision();
            Leased { key, revision }
        })
    }

    /// Waits until etcd deletes the key, its server having stopped renewing the lease at
    /// `since`, then until the list that `events` reads drops the server.
    fn expired(&self, cluster: &Cluster, events: &Events, since: Instant) {
        let after = with_client(&cluster.member(1), async |client| {
            let from = etcd_client::WatchOptions::new().with_start_revision(self.revision + 1);
            let mut watch = client
                .watch(self.key.as_str(), Some(from))
                .await
                .expect("watch");
            let deleted = async {
                while let Some(response) = watch.message().await.expect("the watch") {
                    let events = response.events();
                    if events
                        .iter()
                        .any(|e| e.event_type() == etcd_client::EventType::Delete)
                    {
                        return;
                    }
                }
                panic!("the watch ended");
            };
            let waited = tokio::time::timeout(EXPIRY.saturating_sub(since.elapsed()), deleted);
            waited
                .await
                .expect("etcd deletes the key of a lease nobody renews");
            since.elapsed()
        });
        let lag = until(events, STEP, |ids| ids.is_empty());
        eprintln!(
            "etcd deleted the key {after:?} after its server stopped; gone from the list {lag:?} later"
        );
    }
}

/// Runs `f` with a client of `member` alone, to its end.
fn with_client<T>(member: &str, f: impl AsyncFnOnce(&mut etcd_client::Client) -> T) -> T {
    let endpoint = member.trim_start_matches("etcd://").to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let mut client = etcd_client::Client::connect([endpoint], None)
                .await
                .expect("connect");
            f(&mut client).await
        })
}

#[test]
fn beyond_loopback_only_with_token_auth_and_the_advertised_url_is_registered() {
    let reg = Registry::new();
    let out = reg.output(&["echo", "--port", "0", "--host", "0.0.0.0"]);
    assert!(!out.status.success(), "a non-loopback bind without auth");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--auth token"), "the reason: {stderr}");
    assert!(reg.ids().is_empty(), "nothing registered");

    let advertised = "ws://devbox.test:7000/";
    let mut echo = reg.spawn(&[
        "echo",
        "--port",
        "0",
        "--host",
        "0.0.0.0",
        "--auth",
        "token",
        "--advertise",
        advertised,
    ]);
    echo.line_where("the listening line", |l| l.contains(" listening on "));
    let listed = reg.list();
    assert_eq!(listed["servers"][0]["url"], advertised);
}

/// One etcd member that speaks TLS only and asks for a client certificate; SIGKILLed
/// (by PID) when dropped.
struct TlsMember {
    child: std::process::Child,
    dir: tempfile::TempDir,
    backend: String,
}

impl TlsMember {
    /// Makes a CA, a server and a client certificate (openssl), and starts the member.
    fn start() -> TlsMember {
        let dir = tempfile::tempdir().expect("temp dir");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("run openssl");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let ca = [
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=wsreg-test-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ];
        openssl(&[&["req", "-x509"], &ec[..], &ca[..]].concat());
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        for who in ["server", "client"] {
            let (key, csr, pem) = (
                format!("{who}-key.pem"),
                format!("{who}.csr"),
                format!("{who}.pem"),
            );
            openssl(
                &[
                    &["req"],
                    &ec[..],
                    &[
                        "-keyout",
                        &key,
                        "-out",
                        &csr,
                        "-subj",
                        &format!("/CN={who}"),
                    ],
                ]
                .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "ext.cnf",
                "-out",
                &pem,
            ]);
        }
        let base = 20_000 + (std::process::id() % 1_200) as u16 * 10 + 8;
        let (client, peer) = (
            format!("https://127.0.0.1:{base}"),
            format!("http://127.0.0.1:{}", base + 1),
        );
        let child = Command::new("etcd")
            .args(["--name", "tls", "--data-dir", "data"])
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("tls={peer}")])
            .args(["--cert-file", "server.pem", "--key-file", "server-key.pem"])
            .args(["--trusted-ca-file", "ca.pem", "--client-cert-auth"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        TlsMember {
            child,
            dir,
            backend: format!("etcd://127.0.0.1:{base}"),
        }
    }

    /// `--etcd-ca` and, with `client_cert`, `--etcd-cert` and `--etcd-key`.
    fn tls_args(&self, client_cert: bool) -> Vec<String> {
        let file = |name: &str| self.dir.path().join(name).display().to_string();
        let mut args = vec!["--etcd-ca".to_owned(), file("ca.pem")];
        if client_cert {
            args.extend(["--etcd-cert".to_owned(), file("client.pem")]);
            args.extend(["--etcd-key".to_owned(), file("client-key.pem")]);
        }
        args
    }
}

impl Drop for TlsMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tls_and_client_certificates_are_passed_through_to_etcd() {
    let member = TlsMember::start();
    let reg = Registry::new();
    let run = |client_cert: bool, args: &[&str]| {
        let tls = member.tls_args(client_cert);
        let mut all: Vec<&str> = tls.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        wsreg(&reg, &member.backend, &all)
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let pid = std::process::id().to_string();
    let port = common::own_port().to_string();
    // The member may still be starting: the first registration is retried for a while.
    let deadline = Instant::now() + STEP;
    let id = loop {
        let out = run(true, &["register", "--port", &port, "--pid", &pid]);
        if out.status.success() {
            break String::from_utf8(out.stdout).unwrap().trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no registration over TLS: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = run(true, &["list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&listed), vec![id]);
    let out = run(false, &["list", "--json"]);
    assert!(
        !out.status.success(),
        "without the client certificate: refused"
    );
}
