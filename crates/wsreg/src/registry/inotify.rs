//! A small, safe wrapper over Linux inotify (through rustix) for the registry's watches:
//! the directory (readers), its parent (the directory and the legacy file appearing),
//! and a keeper's own entry file.
//!
//! Callers name the events they want, and none of them asks for `IN_OPEN`, `IN_ACCESS` or
//! `IN_CLOSE_NOWRITE`: in version 1 a watch that woke on opens made every reader's read
//! wake every other watcher, which read the file in turn, for ever. The descriptor is
//! non-blocking, so it fits in an epoll set or a `poll` beside other descriptors.

use std::ffi::OsString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use rustix::fs::inotify::{self, CreateFlags};
pub use rustix::fs::inotify::{ReadFlags, WatchFlags};

/// One inotify instance.
pub struct Inotify {
    fd: OwnedFd,
    buf: Vec<MaybeUninit<u8>>,
}

/// One event: which watch, what happened, and the name in a watched directory.
#[derive(Debug, Clone)]
pub struct Event {
    pub wd: i32,
    pub flags: ReadFlags,
    pub name: Option<OsString>,
}

impl Inotify {
    /// A new instance; fails with `EMFILE` past the per-user limit
    /// (`fs.inotify.max_user_instances`).
    pub fn new() -> io::Result<Inotify> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
        Ok(Inotify {
            fd,
            buf: vec![MaybeUninit::uninit(); 16 * 1024],
        })
    }

    /// A new instance, but only while at least `headroom` more could still be had: the
    /// per-user limit is shared with the user's editor and build tools, and 1,000
    /// servers must not take the last instances from them. Probed by opening that many
    /// more and closing them at once (about a microsecond each).
    pub fn new_leaving(headroom: usize) -> io::Result<Inotify> {
        let inotify = Inotify::new()?;
        let probes = (0..headroom)
            .map(|_| inotify::init(CreateFlags::CLOEXEC))
            .collect::<Result<Vec<OwnedFd>, _>>();
        match probes {
            Ok(_) => Ok(inotify),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("fewer than {headroom} inotify instances left for this user"),
            )),
        }
    }

    /// Watches `path` for `flags`; returns the watch descriptor.
    pub fn add(&self, path: &Path, flags: WatchFlags) -> io::Result<i32> {
        Ok(inotify::add_watch(&self.fd, path, flags)?)
    }

    /// Stops a watch (it may be gone already: the kernel drops the watch of a deleted
    /// file by itself).
    pub fn remove(&self, wd: i32) {
        let _ = inotify::remove_watch(&self.fd, wd);
    }

    /// Every event queued now (none when nothing is queued).
    pub fn read(&mut self) -> io::Result<Vec<Event>> {
        let mut events = Vec::new();
        let mut reader = inotify::Reader::new(&self.fd, &mut self.buf);
        loop {
            match reader.next() {
                Ok(e) => events.push(Event {
                    wd: e.wd(),
                    flags: e.events(),
                    name: e
                        .file_name()
                        .map(|n| OsString::from_vec(n.to_bytes().to_vec())),
                }),
                Err(rustix::io::Errno::AGAIN) => return Ok(events),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl AsFd for Inotify {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
