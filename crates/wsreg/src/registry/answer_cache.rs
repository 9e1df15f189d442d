//! `AnswerCache`: the live list and its JSON document, reused for as long as it is
//! provably still exact, for endpoints that answer many reads (`GET /api/registry`).
//!
//! Reading the file and judging every entry per request costs a parse plus one
//! `/proc/<pid>/stat` read per entry: 40 ms with 1,000 entries (callgrind: 71 % parse,
//! 17 % liveness), which held `wsreg serve` to 34 requests/s. A cached answer is reused
//! only while all of these hold, so it is as exact as a fresh read:
//!
//! - the file is the same version (inode, size, mtime: every writer renames a new inode
//!   in), checked with one `stat`;
//! - no process behind a local entry has exited: each is held by a pidfd, opened
//!   *before* its start time is verified, so the descriptor is that very process and a
//!   reused PID cannot pass for it; one `poll(2)` over all of them asks;
//! - no lease has expired.
//!
//! Where pidfds cannot be had (another OS, an old kernel, more local entries than half
//! the descriptor limit, so that connections are never starved) nothing is cached and
//! every read judges afresh, as before. The cache raises the soft descriptor limit to
//! the hard one once, as Go's runtime does, since the default 1,024 is soon half used.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::liveness::{Judge, hostname};
use super::model::{self, Entry};
use super::store::Store;
use crate::error::Result;

/// One judged read of the registry.
#[derive(Debug)]
pub struct Answer {
    /// The live entries, in file order.
    pub live: Vec<Entry>,
    /// `model::to_json(&live)`, serialised once.
    pub json: Arc<str>,
    stamp: Option<FileStamp>,
    /// `None`: cannot tell when it goes stale, so it is never reused.
    watch: Option<Watch>,
}

#[derive(Debug)]
struct Watch {
    pidfds: Vec<OwnedFd>,
    expires: Option<SystemTime>,
}

/// What identifies one version of the file without reading it.
type FileStamp = (u64, u64, i64, i64);

pub struct AnswerCache {
    store: Store,
    last: Mutex<Option<Arc<Answer>>>,
}

impl AnswerCache {
    pub fn new(store: Store) -> AnswerCache {
        raise_fd_limit();
        AnswerCache {
            store,
            last: Mutex::new(None),
        }
    }

    /// The last answer if it is still exact; cheap (a `stat` and a `poll`), never blocks
    /// on the file.
    pub fn fresh(&self) -> Option<Arc<Answer>> {
        let last = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        last.still_exact(&self.store).then_some(last)
    }

    /// Reads and judges the registry now, and keeps the answer for `fresh`.
    pub fn refresh(&self) -> Result<Arc<Answer>> {
        let stamp = stamp(&self.store);
        let snapshot = self.store.read()?;
        // Opened before judging: see the module's comment.
        let pidfds = open_pidfds(&snapshot.entries);
        let watchable = pidfds.is_some();
        let mut slots = pidfds.unwrap_or_default().into_iter();
        let judge = Judge::system();
        let mut live = Vec::new();
        let mut kept_fds = Vec::new();
        for entry in snapshot.entries {
            let fd = slots.next().flatten();
            if judge.is_live(&entry) {
                live.push(entry);
                kept_fds.extend(fd);
            }
        }
        let expires = live.iter().filter_map(Entry::lease_expiry).min();
        let answer = Arc::new(Answer {
            json: model::to_json(&live).into(),
            live,
            stamp,
            watch: watchable.then_some(Watch {
                pidfds: kept_fds,
                expires,
            }),
        });
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer.clone());
        Ok(answer)
    }
}

impl Answer {
    fn still_exact(&self, store: &Store) -> bool {
        let Some(watch) = &self.watch else {
            return false;
        };
        self.stamp.is_some()
            && stamp(store) == self.stamp
            && watch.expires.is_none_or(|at| SystemTime::now() < at)
            && none_exited(&watch.pidfds)
    }
}

fn stamp(store: &Store) -> Option<FileStamp> {
    let m = std::fs::symlink_metadata(store.path()).ok()?;
    Some((m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

/// One slot per entry: a pidfd for a local entry whose process exists, `None` for the
/// others. `None` as a whole when a pidfd could not be opened for a reason other than
/// the process being gone.
fn open_pidfds(entries: &[Entry]) -> Option<Vec<Option<OwnedFd>>> {
    let here = hostname();
    let local = |e: &Entry| e.host.as_deref().is_none_or(|h| h == here);
    if entries.iter().filter(|e| local(e)).count() as u64 > fd_limit() / 2 {
        return None;
    }
    entries
        .iter()
        .map(|e| match local(e) {
            true => pidfd_open(e.pid),
            false => Some(None),
        })
        .collect()
}

/// `Some(Some(fd))`: the process's pidfd; `Some(None)`: no such process; `None`: pidfds
/// are not available here.
#[cfg(target_os = "linux")]
fn pidfd_open(pid: u32) -> Option<Option<OwnedFd>> {
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd >= 0 {
        // SAFETY: the descriptor was just returned to us and is owned by no one else.
        return Some(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }));
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => Some(None),
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
fn pidfd_open(_pid: u32) -> Option<Option<OwnedFd>> {
    None
}

/// Whether every process still runs: a pidfd polls readable once its process exits.
fn none_exited(pidfds: &[OwnedFd]) -> bool {
    if pidfds.is_empty() {
        return true;
    }
    let mut fds: Vec<libc::pollfd> = pidfds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    ready == 0
}

fn fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit structure.
    match unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } {
        0 => limit.rlim_cur,
        _ => 0,
    }
}

fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one rlimit structure.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::Server;

    #[test]
    fn an_answer_is_reused_only_while_the_file_and_its_processes_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("servers.json"));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        Server::for_pid("echo", 4000, child.id())
            .register_once(&store)
            .unwrap();
        let cache = AnswerCache::new(store.clone());
        assert_eq!(cache.refresh().unwrap().live.len(), 1);
        assert!(cache.fresh().is_some(), "nothing changed");

        Server::new("echo", 4001).register_once(&store).unwrap();
        assert!(cache.fresh().is_none(), "the file changed");
        assert_eq!(cache.refresh().unwrap().live.len(), 2);
        assert!(cache.fresh().is_some());

        child.kill().unwrap();
        child.wait().unwrap();
        assert!(cache.fresh().is_none(), "a listed process exited");
        let answer = cache.refresh().unwrap();
        assert_eq!(answer.live.len(), 1);
        assert_eq!(answer.live[0].port, 4001);
    }
}
