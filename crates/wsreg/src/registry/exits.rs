//! Learning of a local server's exit the moment it happens, from a pidfd: a descriptor
//! of one process that polls readable once the process has exited, SIGKILL included.
//! A watcher holds one per live local process, so a crash is pushed, not found on a
//! timer.
//!
//! The pidfd is opened *before* the entry's start time is checked: then the descriptor
//! is known to be the registered process itself, and a PID reused by a later process
//! cannot pass for it. Where no pidfd can be had (an old kernel, the descriptor limit),
//! the caller falls back to judging the entry again on a tick.

use std::os::fd::OwnedFd;

use rustix::process::{Pid, PidfdFlags, pidfd_open};

use super::liveness::{DeadReason, Judge, hostname};
use super::model::Entry;

/// What a watcher knows of an entry's liveness at intake.
#[derive(Debug)]
pub enum Intake {
    /// Live, and its process's exit will be signalled by this pidfd.
    Held(OwnedFd),
    /// Live, and nothing local to hold: another host's entry (only its lease can end it).
    Remote,
    /// Live, but its exit cannot be watched: judge it again on a tick.
    Unwatched,
    /// Dead already.
    Dead(DeadReason),
}

/// Judges `entry`'s process (and lease) now and, when it is alive and local, holds the
/// process. Whether it listens on its port is the caller's next question
/// ([`Judge::listening`]): a process alive but not listening is still held, since it may
/// listen again.
pub fn intake(entry: &Entry, judge: &Judge<'_>) -> Intake {
    let local = entry.host.as_deref().is_none_or(|h| h == hostname());
    if !local {
        return match judge.check_process(entry) {
            Ok(()) => Intake::Remote,
            Err(dead) => Intake::Dead(dead),
        };
    }
    let fd = Pid::from_raw(entry.pid as i32).map(|pid| pidfd_open(pid, PidfdFlags::empty()));
    match (fd, judge.check_process(entry)) {
        (_, Err(dead)) => Intake::Dead(dead),
        (Some(Ok(fd)), Ok(())) => Intake::Held(fd),
        // Gone between the open and the check: the check saw it first.
        (Some(Err(rustix::io::Errno::SRCH)), Ok(())) => Intake::Dead(DeadReason::NoSuchProcess),
        (_, Ok(())) => Intake::Unwatched,
    }
}
