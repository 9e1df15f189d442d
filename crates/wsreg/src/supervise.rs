//! Supervising a server written in any language (`wsreg run -- CMD…`): give it a free
//! loopback port, register it once it accepts connections, keep it registered while it
//! lives, pass signals on, and report how it ended.
//!
//! Decisions that are not obvious:
//! - The port is found by binding port 0 and closing the socket; the command binds it a
//!   moment later. Another process could take it in between, and a TCP connect cannot
//!   tell: so once the port accepts connections, the LISTEN socket's owner is looked up
//!   ([`crate::registry::sockets`]). It must be the command or a descendant of it; a
//!   stranger is an error, never a registration.
//! - The entry names the PID of the process that listens (the command, or e.g. node
//!   under `npm run dev`), not ours, so readers judge the server's own liveness; our
//!   keeper thread puts the entry back if it vanishes, and it is removed as soon as the
//!   command ends.
//! - SIGINT and SIGTERM are taken by a thread (signal-hook, which tells who sent them;
//!   it sleeps until one comes). A signal sent with `kill` (to our PID) is forwarded to
//!   the command through a pidfd, so it can never reach a process that reused the PID
//!   after the command was reaped; one the kernel generated for the terminal's process
//!   group (Ctrl-C) already reached the command, which shares our group, so it is not
//!   sent a second time (a second Ctrl-C means "force quit" to many servers).

use std::ffi::OsString;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{PidfdFlags, pidfd_open, pidfd_send_signal};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;

use crate::backend::Backend;
use crate::registration::{Registration, Server};
use crate::registry::sockets::{self, Listener};

/// How often the command's port is probed while it starts.
const PROBE_EVERY: Duration = Duration::from_millis(25);

/// What to run and how to register it.
#[derive(Debug, Clone)]
pub struct Supervised {
    /// The program and its arguments.
    pub command: Vec<OsString>,
    /// The entry's kind.
    pub kind: String,
    pub name: Option<String>,
    pub project: Option<String>,
    /// The environment variable that carries the port.
    pub port_env: String,
    /// The loopback address the command is expected to listen on.
    pub host: IpAddr,
    /// How long the command may take to accept connections.
    pub ready_timeout: Duration,
}

/// Why supervising failed. How the command itself ended is not an error: see [`Outcome`].
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("no command given")]
    NoCommand,
    #[error("cannot find a free port on {host}")]
    FreePort {
        host: IpAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start {program}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("{program} exited ({status}) before it accepted connections on {addr}")]
    ExitedEarly {
        program: String,
        status: Outcome,
        addr: SocketAddr,
    },
    #[error(
        "{program} did not accept connections on {addr} within {timeout:?} (it must listen on the port in ${port_env}); stopped it"
    )]
    NotReady {
        program: String,
        addr: SocketAddr,
        timeout: Duration,
        port_env: String,
    },
    #[error(
        "{addr} was taken by another process{} before {program} listened on it: not registered; stopped {program}",
        owner.map(sockets::describe).unwrap_or_default()
    )]
    PortTaken {
        program: String,
        addr: SocketAddr,
        owner: Option<u32>,
    },
    #[error("cannot register {program}")]
    Register {
        program: String,
        #[source]
        source: crate::Error,
    },
    #[error("cannot wait for {program}")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot take over SIGINT and SIGTERM")]
    Signals(#[source] io::Error),
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signalled(i32),
}

impl Outcome {
    fn of(status: ExitStatus) -> Outcome {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, Some(sig)) => Outcome::Signalled(sig),
            (None, None) => Outcome::Exited(1),
        }
    }

    /// The exit code a shell would report: the code, or 128 + the signal number.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Exited(code) => code as u8,
            Outcome::Signalled(sig) => (128 + sig) as u8,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Exited(code) => write!(f, "exit status {code}"),
            Outcome::Signalled(sig) => write!(f, "killed by signal {sig}"),
        }
    }
}

/// A port on `host` that nothing listens on right now.
pub fn free_port(host: IpAddr) -> Result<u16, SuperviseError> {
    TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| SuperviseError::FreePort { host, source })
}

/// Runs the command to its end; `on_ready` is told the registered entry's id and port.
pub fn run(
    spec: &Supervised,
    backend: &Backend,
    on_ready: impl FnOnce(&Registration),
) -> Result<Outcome, SuperviseError> {
    let (program, args) = spec
        .command
        .split_first()
        .ok_or(SuperviseError::NoCommand)?;
    let program_name = program.to_string_lossy().into_owned();
    let forwarder = SignalForwarder::start()?;
    let port = free_port(spec.host)?;
    let mut child = Command::new(program)
        .args(args)
        .env(&spec.port_env, port.to_string())
        .spawn()
        .map_err(|source| SuperviseError::Spawn {
            program: program_name.clone(),
            source,
        })?;
    forwarder.forward_to(&child);
    let addr = SocketAddr::new(spec.host, port);
    let wait_err = |source| SuperviseError::Wait {
        program: program_name.clone(),
        source,
    };
    match wait_until_listening(&mut child, addr, spec.ready_timeout).map_err(wait_err)? {
        Startup::Listening => {}
        Startup::Exited(status) => {
            return Err(SuperviseError::ExitedEarly {
                program: program_name,
                status,
                addr,
            });
        }
        Startup::TimedOut => {
            stop(&mut child);
            return Err(SuperviseError::NotReady {
                program: program_name,
                addr,
                timeout: spec.ready_timeout,
                port_env: spec.port_env.clone(),
            });
        }
    }
    // The process that really listens: the command or a descendant (`npm run dev` runs
    // node as a grandchild); a stranger that took the port is an error, not an entry.
    let listener = match sockets::listener_in_tree(child.id(), port) {
        Listener::Ours(pid) => pid,
        Listener::Stranger(owner) => {
            stop(&mut child);
            return Err(SuperviseError::PortTaken {
                program: program_name,
                addr,
                owner,
            });
        }
        // The port answered a connect but has no LISTEN socket in this network
        // namespace's table now (closed since): registered, and shown once it listens.
        Listener::Nobody => {
            tracing::warn!(
                "no listening socket on port {port} in /proc/net: registering {program_name} itself; \
                 readers show it only while it listens there"
            );
            child.id()
        }
        Listener::Unchecked => child.id(),
    };
    if listener != child.id() {
        forwarder.also_to(listener);
    }
    let registration = match register(spec, port, listener, backend) {
        Ok(r) => r,
        Err(source) => {
            stop(&mut child);
            return Err(SuperviseError::Register {
                program: program_name,
                source,
            });
        }
    };
    on_ready(&registration);
    let status = child.wait().map_err(wait_err)?;
    drop(forwarder);
    drop(registration);
    Ok(Outcome::of(status))
}

/// How the command's start ended.
enum Startup {
    Listening,
    Exited(Outcome),
    TimedOut,
}

/// Probes `addr` until it accepts a connection, the command exits or the time is up.
fn wait_until_listening(
    child: &mut Child,
    addr: SocketAddr,
    timeout: Duration,
) -> io::Result<Startup> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Startup::Exited(Outcome::of(status)));
        }
        if TcpStream::connect_timeout(&addr, PROBE_EVERY).is_ok() {
            return Ok(Startup::Listening);
        }
        if Instant::now() >= deadline {
            return Ok(Startup::TimedOut);
        }
        std::thread::sleep(PROBE_EVERY);
    }
}

fn register(
    spec: &Supervised,
    port: u16,
    pid: u32,
    backend: &Backend,
) -> crate::Result<Registration> {
    let mut server = Server::for_pid(&spec.kind, port, pid).url(ws_url(spec.host, port));
    if let Some(name) = &spec.name {
        server = server.name(name.clone());
    }
    if let Some(project) = &spec.project {
        server = server.project(project.clone());
    }
    backend.register(server)
}

/// `ws://host:port/`, with brackets around an IPv6 address.
fn ws_url(host: IpAddr, port: u16) -> String {
    format!("ws://{}/", SocketAddr::new(host, port))
}

/// Ends a command that will not be registered: SIGTERM, then SIGKILL after a grace period.
fn stop(child: &mut Child) {
    const GRACE: Duration = Duration::from_secs(3);
    // Not reaped yet (only `wait` reaps), so the PID is still the child's.
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(PROBE_EVERY);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The thread that takes SIGINT and SIGTERM and forwards those sent with `kill` to the
/// command, through a pidfd. Dropping it stops the thread.
struct SignalForwarder {
    target: Arc<Mutex<Target>>,
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalForwarder {
    fn start() -> Result<SignalForwarder, SuperviseError> {
        let mut signals =
            SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM]).map_err(SuperviseError::Signals)?;
        let handle = signals.handle();
        let target = Arc::new(Mutex::new(Target::Starting(Vec::new())));
        let thread = std::thread::Builder::new()
            .name("wsreg-signals".into())
            .spawn({
                let target = target.clone();
                move || {
                    for origin in signals.forever() {
                        // Cause::Kernel: generated for the terminal's process group,
                        // which the command is in too: it has it already.
                        if matches!(origin.cause, Cause::Sent(_)) {
                            lock(&target).take(origin.signal);
                        }
                    }
                }
            })
            .map_err(SuperviseError::Signals)?;
        Ok(SignalForwarder {
            target,
            handle,
            thread: Some(thread),
        })
    }

    /// Sets the process to forward to, and sends it the signals that came before it.
    /// Called right after the spawn, before anything can reap the child, so the pidfd
    /// is the child's: once it is reaped, a signal through it fails (`ESRCH`) instead of
    /// reaching a process that was given the same PID.
    fn forward_to(&self, child: &Child) {
        let Some(pidfd) = open_pidfd(child.id()) else {
            return;
        };
        let mut target = lock(&self.target);
        if let Target::Starting(pending) =
            std::mem::replace(&mut *target, Target::Running(vec![pidfd]))
        {
            pending.into_iter().for_each(|signo| target.take(signo));
        }
    }

    /// Forwards to `pid` too: the descendant that listens, when it is not the command
    /// (`sh -c 'node …'`), which a signal to the command alone would leave running.
    fn also_to(&self, pid: u32) {
        if let (Some(pidfd), Target::Running(pidfds)) = (open_pidfd(pid), &mut *lock(&self.target))
        {
            pidfds.push(pidfd);
        }
    }
}

fn open_pidfd(pid: u32) -> Option<OwnedFd> {
    let pidfd = rustix::process::Pid::from_raw(pid as i32)
        .and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok());
    if pidfd.is_none() {
        tracing::warn!(
            "cannot open a pidfd for process {pid}: signals sent to wsreg run are not forwarded to it"
        );
    }
    pidfd
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(target: &Mutex<Target>) -> std::sync::MutexGuard<'_, Target> {
    target.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where signals go.
enum Target {
    /// The command has not started: signals wait here.
    Starting(Vec<i32>),
    /// The pidfds of the command and of the descendant that listens.
    Running(Vec<OwnedFd>),
}

impl Target {
    fn take(&mut self, signo: i32) {
        match self {
            Target::Starting(pending) => pending.push(signo),
            Target::Running(pidfds) => {
                tracing::debug!("forwarding signal {signo} to the command");
                if let Some(sig) = rustix::process::Signal::from_named_raw(signo) {
                    for pidfd in pidfds.iter() {
                        let _ = pidfd_send_signal(pidfd, sig);
                    }
                }
            }
        }
    }
}
