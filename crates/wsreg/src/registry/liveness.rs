//! Which entries are alive: a process that still exists with the start time it had at
//! registration, and a lease that has not run out.
//!
//! The process table is a trait so that the shared test vectors can describe one; the real
//! one reads `/proc/<pid>/stat` on Linux, because a PID alone is not an identity: PIDs are
//! reused, and a zombie still has one.
//!
//! A `/proc` entry that exists but cannot be read (a `hidepid` mount answers EACCES or
//! EPERM) says nothing about the process: the entry is `unknown` — shown, flagged by
//! `list --all`, and never pruned — rather than taken for "no such process".

use std::fmt;
use std::sync::OnceLock;
use std::time::SystemTime;

use super::model::{Entry, Timestamp};

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

/// A view of the processes on this host.
pub trait ProcessTable {
    fn probe(&self, pid: u32) -> ProcessState;
}

/// The real process table of this machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemProcesses;

impl ProcessTable for SystemProcesses {
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
    match SystemProcesses.probe(pid) {
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
    PidReused { actual: u64, expected: u64 },
    LeaseExpired { at: Timestamp },
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
    processes: &'a dyn ProcessTable,
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
            processes: &SystemProcesses,
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
            processes,
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
        if let Some(at) = entry.lease_expiry().filter(|at| *at <= self.now) {
            return Verdict::Dead(DeadReason::LeaseExpired { at: Timestamp(at) });
        }
        let local = entry.host.as_deref().is_none_or(|h| h == self.hostname);
        if !local {
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
            SystemProcesses.probe(me),
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
