//! Which entries are alive: a process that still exists with the start time it had at
//! registration, that still holds a listening socket on the entry's port, and a lease
//! that has not run out.
//!
//! The process table is a trait so that the shared test vectors can describe one; the real
//! one reads `/proc/<pid>/stat` on Linux, because a PID alone is not an identity: PIDs are
//! reused, and a zombie still has one.
//!
//! Ownership of the port ([`super::sockets`]) is what tells a server from a process that
//! closed its listener and lives on. Its cost is kept flat: one read of the LISTEN table
//! per judge, and a process-wide cache of the socket inode each (pid, port) was last
//! found to hold — while that inode still listens on the port, the process's descriptors
//! are not read again. (A process that passed its listener to a child and closed its own
//! copy still counts as the owner until the socket closes: a fork is not worth a
//! descriptor scan per entry per read.)
//!
//! A `/proc` entry that exists but cannot be read (a `hidepid` mount answers EACCES or
//! EPERM) says nothing about the process: the entry is `unknown` — shown, flagged by
//! `list --all`, and never pruned — rather than taken for "no such process".

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use super::model::{Entry, Timestamp};
use super::sockets::{self, ListenTable};

/// What the operating system says about a PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// No such process.
    Missing,
    /// The process has exited and waits to be reaped.
    Zombie,
    /// The process runs; its start time, where the platform tells it.
    Running { start_time: Option<u64> },
    /// The system would not say (`/proc/<pid>/stat` exists but is not readable).
    Unreadable(std::io::ErrorKind),
}

/// Whether a process holds a LISTEN socket on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listening {
    Yes,
    No,
    /// Its descriptors cannot be read (`/proc/<pid>/fd`: another user's, `hidepid`).
    Unreadable(std::io::ErrorKind),
    /// This platform (or this described world) cannot tell: taken as listening.
    Unchecked,
}

/// A view of the processes on this host.
pub trait ProcessTable {
    fn probe(&self, pid: u32) -> ProcessState;
    /// Whether process `pid` holds a LISTEN socket on TCP `port`. `kind` is the entry's:
    /// servers of one kind hold their listeners at one descriptor number, which a table
    /// may try first.
    fn listens(&self, pid: u32, port: u16, kind: &str) -> Listening;
}

impl<T: ProcessTable + ?Sized> ProcessTable for &T {
    fn probe(&self, pid: u32) -> ProcessState {
        (**self).probe(pid)
    }
    fn listens(&self, pid: u32, port: u16, kind: &str) -> Listening {
        (**self).listens(pid, port, kind)
    }
}

/// The real process table of this machine, as seen by one judge: the LISTEN table is
/// read at the first ownership question and kept for the judge's life, and each
/// process's descriptors are read at most once, and only as far as a question needs.
///
/// Before listing a process's descriptors, the judge tries the descriptor numbers at
/// which it last found listeners of the entry's kind (`guesses`): servers of one kind
/// (one program) open the same descriptors in the same order, so their listeners sit at
/// the same number, and one `readlink` that leads to one of the port's LISTEN sockets is
/// the same evidence as finding it in the listing. A cold `wsreg list` of 1,000 such
/// servers then reads one link each instead of listing 1,000 descriptor directories,
/// however many kinds they come in (docs/benchmarks.md, "Ownership"): kept per kind, the
/// guesses of one kind are not pushed out by another's. A wrong guess costs a
/// `readlink`, as dear as one of the listing's: a kind whose guesses miss
/// `GUESS_MISSES_MAX` times in a row (servers of that kind laid out differently) is
/// listed, as without guesses.
#[derive(Debug, Default)]
pub struct SystemProcesses {
    listening: OnceCell<Option<ListenTable>>,
    held: RefCell<HashMap<u32, Result<sockets::Descriptors, std::io::ErrorKind>>>,
    /// By entry kind: where its listeners were found.
    guesses: RefCell<HashMap<String, Guesses>>,
}

/// Where one kind's listeners were found, and how guessing fares for it.
#[derive(Debug, Default)]
struct Guesses {
    /// Descriptor numbers, most recent first (at most [`LISTENER_FD_GUESSES`]).
    fds: Vec<u32>,
    /// Processes in a row whose listener no guess found.
    misses: u32,
}

/// How many descriptor numbers a judge tries before it lists a process's descriptors.
const LISTENER_FD_GUESSES: usize = 4;
/// After this many misses in a row, a judge stops guessing for that kind.
const GUESS_MISSES_MAX: u32 = 8;

/// The inode of the LISTEN socket each (pid, port) was last found to hold. A static, not
/// a judge's field: judges are short-lived (one per read), the knowledge is not. A std
/// Mutex: it is held for a lookup, never across I/O.
static KNOWN_OWNERS: Mutex<Option<HashMap<(u32, u16), u64>>> = Mutex::new(None);
/// Past this many pairs the cache starts over (it only saves descriptor reads).
const KNOWN_OWNERS_MAX: usize = 1 << 16;

impl SystemProcesses {
    /// The first of `inodes` held at a descriptor number where listeners of `kind` were
    /// found before; `None` when no guess leads to one (or may not be read: the listing
    /// then says why).
    fn guess(&self, pid: u32, kind: &str, inodes: &[u64]) -> Option<u64> {
        let mut guesses = self.guesses.borrow_mut();
        let guesses = guesses.get_mut(kind)?;
        if guesses.misses >= GUESS_MISSES_MAX {
            return None;
        }
        let found = guesses.fds.iter().find_map(|&fd| {
            sockets::socket_at(pid, fd)
                .ok()
                .flatten()
                .filter(|inode| inodes.contains(inode))
        });
        guesses.misses = match found {
            Some(_) => 0,
            None => guesses.misses + 1,
        };
        found
    }

    /// Notes that a listener of `kind` was found at `fd`: it is tried first from now on.
    fn found_at(&self, kind: &str, fd: u32) {
        let mut guesses = self.guesses.borrow_mut();
        let fds = match guesses.get_mut(kind) {
            Some(guesses) => &mut guesses.fds,
            None => &mut guesses.entry(kind.to_owned()).or_default().fds,
        };
        fds.retain(|&f| f != fd);
        fds.insert(0, fd);
        fds.truncate(LISTENER_FD_GUESSES);
    }

    fn known_owner(pid: u32, port: u16) -> Option<u64> {
        let known = KNOWN_OWNERS.lock().unwrap_or_else(|e| e.into_inner());
        known.as_ref()?.get(&(pid, port)).copied()
    }

    fn remember_owner(pid: u32, port: u16, inode: Option<u64>) {
        let mut known = KNOWN_OWNERS.lock().unwrap_or_else(|e| e.into_inner());
        let known = known.get_or_insert_with(HashMap::new);
        match inode {
            Some(inode) => {
                if known.len() >= KNOWN_OWNERS_MAX {
                    known.clear();
                }
                known.insert((pid, port), inode);
            }
            None => {
                known.remove(&(pid, port));
            }
        }
    }
}

impl ProcessTable for SystemProcesses {
    #[cfg(target_os = "linux")]
    fn listens(&self, pid: u32, port: u16, kind: &str) -> Listening {
        let Some(table) = self.listening.get_or_init(|| ListenTable::read().ok()) else {
            return Listening::Unchecked;
        };
        let inodes = table.on(port);
        if inodes.is_empty() {
            // Nothing listens on the port: no descriptor to read.
            Self::remember_owner(pid, port, None);
            return Listening::No;
        }
        if let Some(known) = Self::known_owner(pid, port)
            && inodes.contains(&known)
        {
            return Listening::Yes;
        }
        // A process listed already answers from what was read of it; guess only anew.
        if !self.held.borrow().contains_key(&pid)
            && let Some(inode) = self.guess(pid, kind, inodes)
        {
            Self::remember_owner(pid, port, Some(inode));
            return Listening::Yes;
        }
        let mut held = self.held.borrow_mut();
        let held = held
            .entry(pid)
            .or_insert_with(|| sockets::Descriptors::of(pid).map_err(|e| e.kind()));
        let found = match held {
            Ok(descriptors) => descriptors.find(inodes).map_err(|e| e.kind()),
            Err(kind) => Err(*kind),
        };
        match found {
            Ok(owned) => {
                Self::remember_owner(pid, port, owned.map(|f| f.inode));
                match owned {
                    Some(found) => {
                        self.found_at(kind, found.fd);
                        Listening::Yes
                    }
                    None => Listening::No,
                }
            }
            // Gone since its stat was read: it holds nothing.
            Err(std::io::ErrorKind::NotFound) => Listening::No,
            Err(kind) => Listening::Unreadable(kind),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn listens(&self, _pid: u32, _port: u16, _kind: &str) -> Listening {
        Listening::Unchecked
    }

    #[cfg(target_os = "linux")]
    fn probe(&self, pid: u32) -> ProcessState {
        use std::io::Read;
        // One read of a buffer larger than any stat line (its command name is at most 64
        // bytes), not read_to_string's stat and four growing reads: a cold `list` of
        // 10,000 entries pays this once per entry.
        let mut buf = [0u8; 1024];
        let read =
            std::fs::File::open(format!("/proc/{pid}/stat")).and_then(|mut f| f.read(&mut buf));
        match read {
            Ok(n) => std::str::from_utf8(&buf[..n])
                .ok()
                .and_then(parse_stat)
                .unwrap_or(ProcessState::Running { start_time: None }),
            // ESRCH: the process ended between the open and the read.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(3) => {
                ProcessState::Missing
            }
            Err(e) => ProcessState::Unreadable(e.kind()),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn probe(&self, pid: u32) -> ProcessState {
        let exists = rustix::process::Pid::from_raw(pid as i32).is_some_and(|pid| {
            match rustix::process::test_kill_process(pid) {
                Ok(()) => true,
                Err(e) => e == rustix::io::Errno::PERM,
            }
        });
        match exists {
            true => ProcessState::Running { start_time: None },
            false => ProcessState::Missing,
        }
    }
}

/// Reads the state (field 3) and start time (field 22) of `/proc/<pid>/stat`. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(stat: &str) -> Option<ProcessState> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return Some(ProcessState::Zombie);
    }
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcessState::Running {
        start_time: Some(start_time),
    })
}

/// The start time of a process of this host, as recorded in `pidStartTime`.
pub fn start_time_of(pid: u32) -> Option<u64> {
    match SystemProcesses::default().probe(pid) {
        ProcessState::Running { start_time } => start_time,
        _ => None,
    }
}

/// This machine's hostname, read once.
pub fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    })
}

/// Why an entry is dead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadReason {
    NoSuchProcess,
    Zombie,
    PidReused {
        actual: u64,
        expected: u64,
    },
    LeaseExpired {
        at: Timestamp,
    },
    /// The process lives but holds no LISTEN socket on the entry's port. Hidden, but not
    /// pruned: the process may listen again, and removes its own file when it exits.
    NotListening {
        port: u16,
    },
}

impl DeadReason {
    /// Whether the entry's server is gone for good (its file may be pruned).
    pub fn is_final(&self) -> bool {
        !matches!(self, DeadReason::NotListening { .. })
    }
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeadReason::NoSuchProcess => f.write_str("no such process"),
            DeadReason::Zombie => f.write_str("zombie"),
            DeadReason::PidReused { actual, expected } => {
                write!(f, "pid reused (start time {actual}, expected {expected})")
            }
            DeadReason::LeaseExpired { at } => write!(f, "lease expired at {at}"),
            DeadReason::NotListening { port } => write!(f, "not listening on {port}"),
        }
    }
}

/// What a judge finds of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Live,
    /// Shown, but its process could not be checked (why, for `list --all`); never pruned.
    Unknown(String),
    Dead(DeadReason),
}

/// Judges entries against a process table, a hostname and a clock.
pub struct Judge<'a> {
    processes: Box<dyn ProcessTable + 'a>,
    hostname: &'a str,
    now: SystemTime,
    /// What each PID was found to be, once per judge ("this machine, now"): servers of
    /// one process share it.
    seen: std::cell::RefCell<std::collections::HashMap<u32, ProcessState>>,
}

impl Judge<'static> {
    /// This machine, now.
    pub fn system() -> Judge<'static> {
        Judge {
            processes: Box::new(SystemProcesses::default()),
            hostname: hostname(),
            now: SystemTime::now(),
            seen: Default::default(),
        }
    }
}

impl<'a> Judge<'a> {
    /// A judge for a described world (the shared test vectors).
    pub fn new(processes: &'a dyn ProcessTable, hostname: &'a str, now: SystemTime) -> Self {
        Judge {
            processes: Box::new(processes),
            hostname,
            now,
            seen: Default::default(),
        }
    }

    /// `Ok` when the entry is shown (live, or unknown), else why it is dead.
    pub fn check(&self, entry: &Entry) -> Result<(), DeadReason> {
        match self.verdict(entry) {
            Verdict::Live | Verdict::Unknown(_) => Ok(()),
            Verdict::Dead(reason) => Err(reason),
        }
    }

    /// Live, unknown (and why) or dead (and why).
    pub fn verdict(&self, entry: &Entry) -> Verdict {
        match self.process_verdict(entry) {
            Verdict::Live => self.listening(entry),
            verdict => verdict,
        }
    }

    /// `Ok` when the entry's process (and lease) are alive, whether or not it listens:
    /// for watchers that hold the process first and ask [`Judge::listening`] after.
    pub fn check_process(&self, entry: &Entry) -> Result<(), DeadReason> {
        match self.process_verdict(entry) {
            Verdict::Live | Verdict::Unknown(_) => Ok(()),
            Verdict::Dead(reason) => Err(reason),
        }
    }

    /// Whether the entry's process holds a LISTEN socket on its port: live, unknown (its
    /// descriptors cannot be read) or dead. Another host's entry is live: its PID and
    /// port say nothing here.
    pub fn listening(&self, entry: &Entry) -> Verdict {
        if !self.is_local(entry) {
            return Verdict::Live;
        }
        match self.processes.listens(entry.pid, entry.port, &entry.kind) {
            Listening::Yes | Listening::Unchecked => Verdict::Live,
            Listening::No => Verdict::Dead(DeadReason::NotListening { port: entry.port }),
            Listening::Unreadable(kind) => Verdict::Unknown(format!(
                "cannot read /proc/{}/fd: {}",
                entry.pid,
                std::io::Error::from(kind)
            )),
        }
    }

    /// Whether the entry is this host's (its PID means something here).
    pub fn is_local(&self, entry: &Entry) -> bool {
        entry.host.as_deref().is_none_or(|h| h == self.hostname)
    }

    /// The lease, then (on this host) the process: everything but the port.
    fn process_verdict(&self, entry: &Entry) -> Verdict {
        if let Some(at) = entry.lease_expiry().filter(|at| *at <= self.now) {
            return Verdict::Dead(DeadReason::LeaseExpired { at: Timestamp(at) });
        }
        if !self.is_local(entry) {
            return Verdict::Live;
        }
        let state = *self
            .seen
            .borrow_mut()
            .entry(entry.pid)
            .or_insert_with(|| self.processes.probe(entry.pid));
        match state {
            ProcessState::Missing => Verdict::Dead(DeadReason::NoSuchProcess),
            ProcessState::Zombie => Verdict::Dead(DeadReason::Zombie),
            ProcessState::Running {
                start_time: Some(actual),
            } => match entry.pid_start_time {
                Some(expected) if expected != actual => {
                    Verdict::Dead(DeadReason::PidReused { actual, expected })
                }
                _ => Verdict::Live,
            },
            ProcessState::Running { start_time: None } => Verdict::Live,
            ProcessState::Unreadable(kind) => Verdict::Unknown(format!(
                "cannot read /proc/{}/stat: {}",
                entry.pid,
                std::io::Error::from(kind)
            )),
        }
    }

    /// Whether the entry is live.
    pub fn is_live(&self, entry: &Entry) -> bool {
        self.check(entry).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::parse;
    use std::collections::HashMap;
    use std::time::Duration;

    struct Table(HashMap<u32, ProcessState>);
    impl ProcessTable for Table {
        fn probe(&self, pid: u32) -> ProcessState {
            self.0.get(&pid).copied().unwrap_or(ProcessState::Missing)
        }
        fn listens(&self, _pid: u32, port: u16, _kind: &str) -> Listening {
            match port {
                1 => Listening::Yes,
                2 => Listening::Unreadable(std::io::ErrorKind::PermissionDenied),
                _ => Listening::No,
            }
        }
    }

    fn entry(extra: &str) -> Entry {
        let doc = format!(
            r#"{{"version":1,"servers":[{{"id":"e","kind":"echo","host":"devbox","port":1,"pid":10,
            "pidStartTime":500,"startedAt":"2026-11-25T12:00:00.000Z"{extra}}}]}}"#
        );
        parse(doc.as_bytes()).unwrap().entries.remove(0)
    }

    fn at(s: &str) -> SystemTime {
        Timestamp::parse(s).unwrap().0
    }

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let stat =
            "123 (a) b) c) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(
            parse_stat(stat),
            Some(ProcessState::Running {
                start_time: Some(98765)
            })
        );
        assert_eq!(parse_stat("9 (x) Z 1 9 9"), Some(ProcessState::Zombie));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_running_with_a_start_time() {
        let me = std::process::id();
        assert!(matches!(
            SystemProcesses::default().probe(me),
            ProcessState::Running {
                start_time: Some(_)
            }
        ));
    }

    #[test]
    fn pid_reuse_and_missing_processes_are_dead() {
        let now = at("2026-11-25T12:00:30Z");
        let same = Table(HashMap::from([(
            10,
            ProcessState::Running {
                start_time: Some(500),
            },
        )]));
        let reused = Table(HashMap::from([(
            10,
            ProcessState::Running {
                start_time: Some(501),
            },
        )]));
        let zombie = Table(HashMap::from([(10, ProcessState::Zombie)]));
        let none = Table(HashMap::new());
        let e = entry("");
        assert_eq!(Judge::new(&same, "devbox", now).check(&e), Ok(()));
        assert_eq!(
            Judge::new(&reused, "devbox", now).check(&e),
            Err(DeadReason::PidReused {
                actual: 501,
                expected: 500
            })
        );
        assert_eq!(
            Judge::new(&zombie, "devbox", now).check(&e),
            Err(DeadReason::Zombie)
        );
        assert_eq!(
            Judge::new(&none, "devbox", now).check(&e),
            Err(DeadReason::NoSuchProcess)
        );
        // Another host: the PID says nothing.
        assert_eq!(Judge::new(&none, "laptop", now).check(&e), Ok(()));
        // A process the system will not describe is shown, flagged unknown.
        let hidden = Table(HashMap::from([(
            10,
            ProcessState::Unreadable(std::io::ErrorKind::PermissionDenied),
        )]));
        let judge = Judge::new(&hidden, "devbox", now);
        assert_eq!(judge.check(&e), Ok(()));
        assert_eq!(
            judge.verdict(&e),
            Verdict::Unknown("cannot read /proc/10/stat: permission denied".into())
        );
    }

    #[test]
    fn a_local_process_that_does_not_listen_on_its_port_is_hidden_not_final() {
        let now = at("2026-11-25T12:00:30Z");
        let table = Table(HashMap::from([(
            10,
            ProcessState::Running {
                start_time: Some(500),
            },
        )]));
        let judge = Judge::new(&table, "devbox", now);
        let on = |port: u16| {
            let mut e = entry("");
            e.port = port;
            e
        };
        assert_eq!(judge.verdict(&on(1)), Verdict::Live);
        let dead = judge.check(&on(3)).unwrap_err();
        assert_eq!(dead.to_string(), "not listening on 3");
        assert!(!dead.is_final());
        assert_eq!(judge.check_process(&on(3)), Ok(()));
        assert_eq!(
            judge.verdict(&on(2)),
            Verdict::Unknown("cannot read /proc/10/fd: permission denied".into())
        );
        // Another host's port says nothing here.
        let remote = Judge::new(&table, "laptop", now);
        assert_eq!(remote.verdict(&on(3)), Verdict::Live);
    }

    #[test]
    fn this_process_listens_on_its_socket_and_not_once_closed() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        assert_eq!(
            SystemProcesses::default().listens(me, port, "k"),
            Listening::Yes
        );
        // Again, from the cache of known owners.
        assert_eq!(
            SystemProcesses::default().listens(me, port, "k"),
            Listening::Yes
        );
        drop(listener);
        assert_eq!(
            SystemProcesses::default().listens(me, port, "k"),
            Listening::No
        );
    }

    #[test]
    fn a_listener_at_a_guessed_descriptor_is_found_without_listing_the_rest() {
        use std::os::fd::AsRawFd;
        let me = std::process::id();
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        let judge = SystemProcesses::default();
        // A wrong guess (stdin is no listener) costs a readlink; the listing finds it.
        judge.found_at("k", 0);
        assert_eq!(judge.listens(me, port, "k"), Listening::Yes);
        assert_eq!(
            judge.held.borrow().len(),
            1,
            "listed after the guess failed"
        );
        assert_eq!(judge.guesses.borrow()["k"].fds[0], first.as_raw_fd() as u32);

        // A fresh judge that guesses the listener's descriptor lists nothing.
        let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let judge = SystemProcesses::default();
        judge.found_at("k", second.as_raw_fd() as u32);
        let port = second.local_addr().unwrap().port();
        // Not another kind's guess: that kind's servers are laid out otherwise.
        assert_eq!(judge.listens(me, port, "other"), Listening::Yes);
        assert_eq!(
            judge.held.borrow().len(),
            1,
            "listed: no guess for its kind"
        );
        let judge = SystemProcesses::default();
        judge.found_at("k", second.as_raw_fd() as u32);
        assert_eq!(judge.listens(me, port, "k"), Listening::Yes);
        assert!(judge.held.borrow().is_empty(), "the guess was enough");

        // A guess that leads to another port's listener is not taken for this port's.
        let third = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let judge = SystemProcesses::default();
        judge.found_at("k", second.as_raw_fd() as u32);
        let port = third.local_addr().unwrap().port();
        assert_eq!(judge.listens(me, port, "k"), Listening::Yes);
        assert_eq!(
            judge.held.borrow().len(),
            1,
            "found by the listing, not the guess"
        );

        // Misses in a row: the judge stops guessing for that kind (no readlink of a
        // wrong number), not for another.
        let judge = SystemProcesses::default();
        judge.found_at("k", 0);
        judge.found_at("other", 0);
        let misses = |kind: &str| judge.guesses.borrow()[kind].misses;
        let set_misses =
            |kind: &str, n| judge.guesses.borrow_mut().get_mut(kind).unwrap().misses = n;
        set_misses("k", GUESS_MISSES_MAX);
        assert_eq!(judge.guess(me, "k", &[u64::MAX]), None);
        assert_eq!(misses("k"), GUESS_MISSES_MAX, "not tried");
        assert_eq!(judge.guess(me, "other", &[u64::MAX]), None);
        assert_eq!(misses("other"), 1, "the other kind still guesses");
        set_misses("k", GUESS_MISSES_MAX - 1);
        assert_eq!(judge.guess(me, "k", &[u64::MAX]), None);
        assert_eq!(misses("k"), GUESS_MISSES_MAX, "tried, missed");
    }

    #[test]
    fn an_expired_lease_is_dead() {
        let table = Table(HashMap::from([(
            10,
            ProcessState::Running {
                start_time: Some(500),
            },
        )]));
        let e = entry(r#","ttlSecs":10,"heartbeatAt":"2026-11-25T12:00:25.000Z""#);
        let before = Judge::new(&table, "devbox", at("2026-11-25T12:00:34.999Z"));
        assert_eq!(before.check(&e), Ok(()));
        let after = Judge::new(&table, "devbox", at("2026-11-25T12:00:35Z"));
        let reason = after.check(&e).unwrap_err();
        assert_eq!(
            reason.to_string(),
            "lease expired at 2026-11-25T12:00:35.000Z"
        );
        // Without a heartbeat the lease runs from startedAt; on another host too.
        let e = entry(r#","ttlSecs":10"#);
        let later = Judge::new(
            &table,
            "laptop",
            at("2026-11-25T12:00:10Z") + Duration::ZERO,
        );
        assert!(later.check(&e).is_err());
    }
}
