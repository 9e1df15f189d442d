//! Helpers shared by the integration tests: a temporary registry, `wsreg` processes that
//! are killed (by PID) when dropped, the line a server prints when it listens, and a
//! minimal HTTP/1.0 client (one request per connection, the body ends with the
//! connection, so streamed responses need no chunk decoding).
//!
//! Every wait is bounded. Each test binary uses a subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The binary under test.
pub const WSREG: &str = env!("CARGO_BIN_EXE_wsreg");

/// The longest any single step of a test may take.
pub const STEP: Duration = Duration::from_secs(10);

/// A registry file in a fresh temporary directory, removed on drop.
pub struct Registry {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Registry {
    pub fn new() -> Registry {
        let dir = tempfile::tempdir().expect("create a temp dir");
        // The parent of a registry the user names must exist: make it, as a user would.
        std::fs::create_dir(dir.path().join("reg")).expect("create reg/");
        let path = dir.path().join("reg").join("servers.json");
        Registry { _dir: dir, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registry as the library sees it: its directory and legacy file.
    pub fn store(&self) -> wsreg::Store {
        wsreg::Store::new(&self.path)
    }

    /// `wsreg --registry <this> ARGS…`, with stdout piped.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(WSREG);
        cmd.arg("--registry")
            .arg(&self.path)
            .args(args)
            .env("WSREG_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd
    }

    /// Runs `wsreg ARGS…` to its end (at most [`STEP`]), capturing stdout and stderr.
    /// The pipes are read while it runs (a large output would otherwise fill the pipe
    /// and stall it); past [`STEP`] it is killed, by its PID.
    pub fn output(&self, args: &[&str]) -> std::process::Output {
        let child = self
            .command(args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wsreg");
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(STEP) {
            Ok(output) => output.expect("collect output"),
            Err(_) => {
                // The child started above, not yet reaped (its waiter is still waiting).
                let _ = kill(pid, libc::SIGKILL);
                panic!("wsreg {args:?} still running after {STEP:?}");
            }
        }
    }

    /// Starts `wsreg ARGS…` against this registry.
    pub fn spawn(&self, args: &[&str]) -> Proc {
        Proc::spawn(self.command(args))
    }

    /// Starts `wsreg echo --port 0 ARGS…` and waits until it listens.
    pub fn echo(&self, args: &[&str]) -> (Proc, Listening) {
        let mut all = vec!["echo", "--port", "0"];
        all.extend_from_slice(args);
        let mut proc = self.spawn(&all);
        let listening = proc.listening();
        (proc, listening)
    }

    /// Starts `wsreg serve --port 0 ARGS…` and waits until it listens.
    pub fn serve(&self, args: &[&str]) -> (Proc, Listening) {
        let mut all = vec!["serve", "--port", "0"];
        all.extend_from_slice(args);
        let mut proc = self.spawn(&all);
        let listening = proc.listening();
        (proc, listening)
    }

    /// The live servers as `wsreg list --json` prints them.
    pub fn list(&self) -> serde_json::Value {
        let out = self.output(&["list", "--json"]);
        assert!(out.status.success(), "wsreg list failed: {out:?}");
        serde_json::from_slice(&out.stdout).expect("wsreg list --json prints JSON")
    }

    /// The ids of the live servers.
    pub fn ids(&self) -> Vec<String> {
        ids(&self.list())
    }
}

/// The ids in a `{"version":1,"servers":[…]}` document.
pub fn ids(doc: &serde_json::Value) -> Vec<String> {
    doc["servers"]
        .as_array()
        .expect("a servers array")
        .iter()
        .map(|s| s["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// What a server's listening line says: `<label> listening on <url>[ id <id>]`.
#[derive(Debug, Clone)]
pub struct Listening {
    pub url: String,
    pub id: Option<String>,
    pub addr: SocketAddr,
}

impl Listening {
    fn parse(line: &str) -> Option<Listening> {
        let rest = line.split_once(" listening on ")?.1;
        let mut words = rest.split_whitespace();
        let url = words.next()?.to_owned();
        let id = match (words.next(), words.next()) {
            (Some("id"), Some(id)) => Some(id.to_owned()),
            _ => None,
        };
        let authority = url.split("://").nth(1)?.trim_end_matches('/');
        let addr = authority.parse().ok()?;
        Some(Listening { url, id, addr })
    }

    /// `host:port`, as a Host header value.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

/// A running `wsreg` process; killed with SIGKILL (by its PID) when dropped.
pub struct Proc {
    child: Child,
    lines: Receiver<String>,
    exited: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd.spawn().expect("start wsreg");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Proc {
            child,
            lines,
            exited: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Writes `line` and a newline to the process's stdin (spawned with a piped stdin).
    pub fn write_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("piped stdin");
        writeln!(stdin, "{line}").expect("write to the process's stdin");
        stdin.flush().expect("flush");
    }

    /// The next stdout line that satisfies `pred`, within [`STEP`].
    pub fn line_where(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within {STEP:?}"),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!("wsreg exited ({status:?}) before printing {what}")
                }
            }
        }
    }

    /// Waits for the next listening line.
    pub fn listening(&mut self) -> Listening {
        let line = self.line_where("listening line", |l| Listening::parse(l).is_some());
        Listening::parse(&line).expect("parsed above")
    }

    /// Sends a signal to this process (and only this one).
    pub fn signal(&self, signal: i32) {
        let pid = self.pid() as u32;
        if let Err(e) = kill(pid, signal) {
            panic!("kill({pid}, {signal}): {e}");
        }
    }

    /// The exit status, if the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wsreg (pid {}) still running after {limit:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A stand-in server: a process that listens on a loopback port of its own and does
/// nothing else, killed when dropped (readers show an entry only while its process
/// listens on the entry's port). Returns it and its port. A `close` line on its stdin
/// ([`Proc::write_line`]) closes the listener (it answers `closed`) and it lives on.
pub fn listening_process() -> (Proc, u16) {
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import socket, sys, time\n\
         s = socket.create_server(('127.0.0.1', 0))\n\
         print(s.getsockname()[1], flush=True)\n\
         for line in sys.stdin:\n\
         \x20   if line.strip() == 'close':\n\
         \x20       s.close()\n\
         \x20       print('closed', flush=True)\n\
         time.sleep(600)",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    let mut process = Proc::spawn(cmd);
    let port = process.line_where("its port", |l| l.parse::<u16>().is_ok());
    (process, port.parse().expect("checked above"))
}

/// A loopback port this test process listens on while it runs: for entries that name
/// this process (the default `--pid` of `wsreg register` run from a test).
/// Sends `signal` (a `libc::SIG*` number) to `pid`: a process the test started.
pub fn kill(pid: u32, signal: i32) -> std::io::Result<()> {
    use rustix::process::{Pid, Signal, kill_process};
    let pid = Pid::from_raw(pid as i32).ok_or(std::io::ErrorKind::InvalidInput)?;
    let signal = Signal::from_named_raw(signal).ok_or(std::io::ErrorKind::InvalidInput)?;
    Ok(kill_process(pid, signal)?)
}

/// Raises this process's soft limit on open files (children inherit it) to at least
/// `want`, within the hard limit; panics when the hard limit is lower.
pub fn raise_nofile(want: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let max = limit.maximum.unwrap_or(u64::MAX);
    if limit.current.is_some_and(|current| current < want) {
        limit.current = Some(want.min(max));
        setrlimit(Resource::Nofile, limit).expect("setrlimit(RLIMIT_NOFILE)");
    }
    assert!(max >= want, "RLIMIT_NOFILE hard limit below {want}");
}

pub fn own_port() -> u16 {
    static LISTENER: std::sync::LazyLock<std::net::TcpListener> =
        std::sync::LazyLock::new(|| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"));
    LISTENER.local_addr().expect("bound").port()
}

/// Polls `check` every 5 ms until it holds, for at most `limit`; returns the time taken.
pub fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An HTTP response, as far as the tests look at it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// Sends `GET path` with `Host: <addr>` unless `headers` names a Host, and reads the
/// head; the returned stream is positioned at the start of the body.
pub fn request(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, BufReader<TcpStream>) {
    request_with(addr, "GET", path, headers)
}

fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, BufReader<TcpStream>) {
    let mut head = format!("{method} {path} HTTP/1.0\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut reader = open(addr, head.as_bytes());
    let (status, headers) = read_head(&mut reader);
    (status, headers, reader)
}

/// Sends `raw` on a new connection; the reader is where the answer starts.
fn open(addr: SocketAddr, raw: &[u8]) -> BufReader<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, STEP).expect("connect");
    stream.set_read_timeout(Some(STEP)).expect("set timeout");
    (&stream).write_all(raw).expect("send request");
    BufReader::new(stream)
}

/// Reads a response's status line and headers.
fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("read status");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("a header line");
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    (status, headers)
}

/// `GET path` and the whole response.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    send(addr, "GET", path, headers)
}

/// `METHOD path` (no body) and the whole response.
pub fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let (status, headers, mut reader) = request_with(addr, method, path, headers);
    let mut body = String::new();
    reader.read_to_string(&mut body).expect("read body");
    Response {
        status,
        headers,
        body,
    }
}

/// A Server-Sent Events subscription read on its own thread.
pub struct Events {
    events: Receiver<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub status: u16,
}

impl Events {
    pub fn subscribe(addr: SocketAddr, path: &str) -> Events {
        let (status, headers, reader) = request(addr, path, &[("Accept", "text/event-stream")]);
        reader
            .get_ref()
            .set_read_timeout(None)
            .expect("clear timeout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut event, mut data) = (String::from("message"), Vec::<String>::new());
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if line.is_empty() {
                    if !data.is_empty() && tx.send((event.clone(), data.join("\n"))).is_err() {
                        return;
                    }
                    event = "message".into();
                    data.clear();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim_start().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                }
            }
        });
        Events {
            events,
            headers,
            status,
        }
    }

    /// The next `servers` event's document, within `limit`.
    pub fn next_servers(&self, limit: Duration) -> serde_json::Value {
        self.try_next_servers(limit)
            .unwrap_or_else(|| panic!("no servers event within {limit:?}"))
    }

    /// The next `servers` event's document, or `None` if none comes within `limit`.
    pub fn try_next_servers(&self, limit: Duration) -> Option<serde_json::Value> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((event, data)) if event == "servers" => {
                    return Some(serde_json::from_str(&data).expect("servers event holds JSON"));
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!("the event stream ended"),
            }
        }
    }

    /// Whether another event arrives within `limit`.
    pub fn quiet_for(&self, limit: Duration) -> bool {
        self.events.recv_timeout(limit).is_err()
    }
}

/// Sends `raw` (a whole request, as bytes) on a new connection and reads one HTTP/1.x
/// response: its body by `Content-Length`, else to the end of the connection.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut reader = open(addr, raw);
    let (status, headers) = read_head(&mut reader);
    let mut response = Response {
        status,
        headers,
        body: String::new(),
    };
    match response.header("content-length").map(str::parse::<u64>) {
        Some(Ok(len)) => (&mut reader)
            .take(len)
            .read_to_string(&mut response.body)
            .expect("read body"),
        _ => reader
            .read_to_string(&mut response.body)
            .expect("read body"),
    };
    response
}

/// The status of a WebSocket handshake to `url` with these extra headers: 101 when it
/// upgraded; a refusal must carry a JSON error body.
pub async fn upgrade_status(url: &str, headers: &[(&str, &str)]) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
    let mut request = url.into_client_request().expect("a WebSocket URL");
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    let result = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time");
    match result {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("\"error\""), "a JSON refusal: {body}");
            response.status().as_u16()
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// The inputs kept in `fuzz/regressions/<target>/`, sorted; fails when there are none.
pub fn fuzz_regressions(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    files
}
