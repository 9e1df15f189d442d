//! `Registration`: how a server joins the registry and stays in it while it lives.
//!
//! The registry is soft state, so a live server defends its own file: when it is
//! deleted, replaced, or no longer holds the entry (a corrupt write, a mistaken prune),
//! a keeper thread writes it back. The keeper watches **only its own file** — an inotify
//! watch on that file's inode for attribute changes, writes, moves and deletion, never
//! for opens or reads — so nothing a reader does, and nothing another server does, wakes
//! it: an idle server does not run. Each wake costs a `stat`; the file is read only if
//! its identity changed, and rewritten only if it no longer holds the entry.
//!
//! The per-user limit of inotify instances (often 128) cannot give one to each of 1,000
//! servers, and the user's editor and build tools need some too: a keeper takes one only
//! while [`INOTIFY_HEADROOM`] more remain, else it `stat`s its own file once a second
//! (no parse unless it changed), which costs about 1,000 cheap syscalls a second at
//! 1,000 servers and restores an entry within a second. Dropping the guard stops the keeper
//! first and then unlinks the file, so the two never race.
//!
//! With the etcd backend ([`Server::register_lease`]) the entry is a key under a lease
//! instead, renewed by its own thread and revoked on drop ([`crate::etcd::lease`]).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{EventfdFlags, PollFd, PollFlags, eventfd, poll};
use serde_json::{Map, Value};

use crate::error::{Chain, Result};
#[cfg(feature = "etcd")]
use crate::etcd::{EtcdConfig, HeldLease};
use crate::registry::inotify::{Inotify, WatchFlags};
use crate::registry::liveness::{hostname, start_time_of};
use crate::registry::model::{Entry, HealthCheck, Timestamp};
use crate::registry::store::{FileId, FileRead, Store};

/// How often a keeper without inotify looks at its file.
pub const FALLBACK_TICK: Duration = Duration::from_secs(1);
/// How many inotify instances a keeper leaves to the user's other programs (and to the
/// registry's readers): past that it keeps its file by the fallback tick.
pub const INOTIFY_HEADROOM: usize = 32;
/// How many times in a row a keeper writes its file back when it vanishes before it can
/// be watched; after that, the fallback tick looks again.
const RESTORE_ATTEMPTS: usize = 3;

/// Describes a server before it registers.
#[derive(Debug, Clone)]
pub struct Server {
    entry: Entry,
}

impl Server {
    /// A server of `kind` listening on `port`, run by this process.
    pub fn new(kind: &str, port: u16) -> Server {
        Server::for_pid(kind, port, std::process::id())
    }

    /// A server of `kind` on `port` run by another process of this host.
    pub fn for_pid(kind: &str, port: u16, pid: u32) -> Server {
        Server {
            entry: Entry {
                id: new_id(kind),
                kind: kind.to_owned(),
                name: None,
                project: None,
                session: None,
                host: Some(hostname().to_owned()),
                port,
                url: format!("ws://127.0.0.1:{port}/"),
                pid,
                pid_start_time: start_time_of(pid),
                started_at: Timestamp::now(),
                ttl_secs: None,
                heartbeat_at: None,
                meta: Map::new(),
                health_url: None,
                health: HealthCheck::Probe,
            },
        }
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.entry.name = Some(name.into());
        self
    }

    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.entry.project = Some(project.into());
        self
    }

    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.entry.session = Some(session.into());
        self
    }

    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.entry.url = url.into();
        self
    }

    pub fn meta(mut self, key: impl Into<String>, value: Value) -> Self {
        self.entry.meta.insert(key.into(), value);
        self
    }

    /// Has endpoints probe `url` (HTTP, 2xx is healthy) instead of a WebSocket handshake.
    pub fn health_url(mut self, url: impl Into<String>) -> Self {
        self.entry.health_url = Some(url.into());
        self
    }

    /// Asks endpoints never to probe this server.
    pub fn no_health_probe(mut self) -> Self {
        self.entry.health = HealthCheck::None;
        self
    }

    /// Makes the entry a lease of `ttl`, renewed by the keeper every third of it.
    pub fn lease(mut self, ttl: Duration) -> Self {
        self.entry.ttl_secs = Some(ttl.as_secs().max(1));
        self.entry.heartbeat_at = Some(self.entry.started_at);
        self
    }

    /// The entry as it will be written.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Writes the entry once, with no keeper: for a process that registers another one
    /// and exits (`wsreg register`).
    pub fn register_once(self, store: &Store) -> Result<Entry> {
        store.register(&self.entry)?;
        Ok(self.entry)
    }

    /// Registers the server and keeps its entry present until the guard is dropped.
    pub fn register(self, store: &Store) -> Result<Registration> {
        let verified = Some(store.register(&self.entry)?);
        let io = |op| crate::Error::io(op, store.dir());
        let stop = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| io("create an eventfd for")(e.into()))?;
        let keeper_stop = stop
            .as_fd()
            .try_clone_to_owned()
            .map_err(io("duplicate an eventfd for"))?;
        let inotify = match Inotify::new_leaving(INOTIFY_HEADROOM) {
            Ok(inotify) => Some((inotify, None)),
            Err(e) => {
                tracing::debug!(
                    "keeping {} by a stat every {FALLBACK_TICK:?} ({e})",
                    self.entry.id
                );
                None
            }
        };
        let leaving = Arc::new(AtomicBool::new(false));
        let keeper = Keeper {
            store: store.clone(),
            entry: self.entry.clone(),
            verified,
            inotify,
            leaving: leaving.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("wsreg-keeper".into())
            .spawn(move || keeper.run(keeper_stop))
            .map_err(io("start a thread for"))?;
        Ok(Registration {
            entry: self.entry,
            keeping: Keeping::File {
                store: store.clone(),
                stop,
                leaving,
                thread: Some(thread),
            },
        })
    }

    /// Registers the server in etcd: its entry is a key under a lease kept alive until
    /// the guard is dropped, which revokes it.
    #[cfg(feature = "etcd")]
    pub fn register_lease(self, config: Arc<EtcdConfig>) -> Result<Registration> {
        let lease = HeldLease::start(config, &self.entry)?;
        Ok(Registration {
            entry: self.entry,
            keeping: Keeping::Lease(Some(lease)),
        })
    }
}

/// A live registration: while it exists the entry is kept in the registry; dropping it
/// removes the entry.
pub struct Registration {
    entry: Entry,
    keeping: Keeping,
}

/// What keeps the entry present.
enum Keeping {
    /// A keeper thread defends the entry file.
    File {
        store: Store,
        stop: OwnedFd,
        /// Set before the file is removed, so that the keeper does not put it back.
        leaving: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    },
    /// The entry is an etcd key under this lease (`None` once revoked).
    #[cfg(feature = "etcd")]
    Lease(Option<HeldLease>),
}

impl Registration {
    /// The registered entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The entry's id.
    pub fn id(&self) -> &str {
        &self.entry.id
    }

    /// Stops keeping the entry and removes it, reporting a failure to remove it.
    pub fn unregister(mut self) -> Result<()> {
        self.leave()
    }

    /// Removes the file first, then stops the keeper. In that order because the keeper's
    /// inotify instance takes a kernel grace period (about 14 ms, measured) to close:
    /// readers see the server gone at once, not after it. The keeper, told first, puts
    /// nothing back; a restore it had already begun is undone by the second unlink.
    /// A lease is revoked, which deletes its key.
    fn leave(&mut self) -> Result<()> {
        let (store, stop, leaving, thread) = match &mut self.keeping {
            #[cfg(feature = "etcd")]
            Keeping::Lease(lease) => {
                return lease.take().map_or(Ok(()), |l| Ok(l.revoke()?));
            }
            Keeping::File {
                store,
                stop,
                leaving,
                thread,
            } => (store, stop, leaving, thread),
        };
        let Some(thread) = thread.take() else {
            return Ok(());
        };
        leaving.store(true, Ordering::SeqCst);
        let removed = store.unregister(&self.entry.id);
        let _ = rustix::io::write(&*stop, &1u64.to_ne_bytes());
        let _ = thread.join();
        store.unregister(&self.entry.id)?;
        removed.map(drop)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Err(e) = self.leave() {
            tracing::warn!("cannot unregister {}: {}", self.entry.id, Chain(&e));
        }
    }
}

/// What a keeper asks inotify about its own file: anything that can change what the
/// file holds or whether it is there. Not opens, not reads.
fn own_file_events() -> WatchFlags {
    WatchFlags::ATTRIB
        | WatchFlags::MODIFY
        | WatchFlags::CLOSE_WRITE
        | WatchFlags::MOVE_SELF
        | WatchFlags::DELETE_SELF
}

/// The keeper thread's state.
struct Keeper {
    store: Store,
    entry: Entry,
    /// The version of the file that is known to hold the entry.
    verified: Option<FileId>,
    inotify: Option<(Inotify, Option<i32>)>,
    /// The registration is being removed: put nothing back.
    leaving: Arc<AtomicBool>,
}

impl Keeper {
    fn run(mut self, stop: OwnedFd) {
        let renew_every = self.entry.ttl_secs.map(|t| Duration::from_secs(t) / 3);
        let mut next_renewal = renew_every.map(|d| Instant::now() + d);
        self.arm();
        // The file may have gone between the registration and the watch.
        if let Err(e) = self.ensure_present() {
            tracing::warn!("cannot restore {}: {}", self.entry.id, Chain(&e));
        }
        loop {
            let unwatched = self.inotify.as_ref().is_none_or(|(_, wd)| wd.is_none());
            let fallback = unwatched.then_some(FALLBACK_TICK);
            let renewal = next_renewal.map(|at| at.saturating_duration_since(Instant::now()));
            let timeout = [fallback, renewal].into_iter().flatten().min();
            if self.wait(&stop, timeout) {
                return;
            }
            if let (Some(at), Some(every)) = (next_renewal, renew_every)
                && Instant::now() >= at
            {
                self.entry.heartbeat_at = Some(Timestamp::now());
                next_renewal = Some(Instant::now() + every);
                self.verified = None;
            }
            if let Err(e) = self.ensure_present() {
                tracing::warn!("cannot restore {}: {}", self.entry.id, Chain(&e));
            }
        }
    }

    /// Sleeps until an event about the file, the stop signal, or the timeout; says
    /// whether to stop.
    fn wait(&mut self, stop: &OwnedFd, timeout: Option<Duration>) -> bool {
        let timeout = timeout.and_then(|d| rustix::event::Timespec::try_from(d).ok());
        let mut fds = vec![PollFd::new(stop, PollFlags::IN)];
        if let Some((inotify, _)) = &self.inotify {
            fds.push(PollFd::new(inotify, PollFlags::IN));
        }
        let _ = poll(&mut fds, timeout.as_ref());
        if fds[0].revents().contains(PollFlags::IN) {
            return true;
        }
        if let Some((inotify, _)) = &mut self.inotify {
            // What happened does not matter: the file is looked at either way.
            let _ = inotify.read();
        }
        false
    }

    /// Watches the file as it is now (a rewrite renames a new inode in); false when the
    /// file could not be watched (it is gone again).
    fn arm(&mut self) -> bool {
        let path = self.store.entry_path(&self.entry.id);
        let Some((inotify, wd)) = &mut self.inotify else {
            return true;
        };
        if let Some(old) = wd.take() {
            inotify.remove(old);
        }
        *wd = inotify.add(&path, own_file_events()).ok();
        wd.is_some()
    }

    /// Rewrites the file unless it is the version known to hold the entry, or holds it.
    fn ensure_present(&mut self) -> Result<()> {
        if self.leaving.load(Ordering::SeqCst) {
            return Ok(());
        }
        let path = self.store.entry_path(&self.entry.id);
        let now = FileId::at(&path);
        if now.is_some() && now == self.verified {
            return Ok(());
        }
        if now.is_some()
            && let FileRead::Entry(found, file) =
                self.store.read_entry(path.file_name().unwrap_or_default())
            && found == self.entry
        {
            self.verified = Some(file);
            if self.inotify.as_ref().is_some_and(|(_, wd)| wd.is_none()) {
                self.arm();
            }
            return Ok(());
        }
        let restored = now.is_none() || self.verified.is_some();
        // A file removed again before it could be watched (its directory being removed
        // file by file) is written again now, not at the fallback tick.
        for _ in 0..RESTORE_ATTEMPTS {
            self.verified = Some(self.store.write(&self.entry)?);
            if self.arm() {
                break;
            }
        }
        if restored {
            tracing::info!(
                "{}: entry {} was missing or changed; wrote it back",
                self.store.dir().display(),
                self.entry.id
            );
        }
        Ok(())
    }
}

/// A new unique, URL-safe id that sorts in creation order, as a ULID does: the kind, then
/// 10 base-32 characters of the millisecond clock and 3 of a per-process counter, both
/// most significant first (readers list entries of the same `startedAt` millisecond by
/// id, so a process's servers keep the order it registered them in), then 9 of
/// randomness from the process's hash seed, the PID and the clock.
fn new_id(kind: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(since_epoch.as_nanos());
    h.write_u32(std::process::id());
    h.write_u64(count);
    let mut id = String::with_capacity(kind.len() + 23);
    id.push_str(kind);
    id.push('-');
    let mut push = |value: u64, chars: u32| {
        for i in (0..chars).rev() {
            id.push(ALPHABET[((value >> (5 * i)) & 31) as usize] as char);
        }
    };
    push(since_epoch.as_millis() as u64, 10);
    push(count, 3);
    push(h.finish(), 9);
    id
}

#[cfg(test)]
mod tests {
    use super::new_id;

    #[test]
    fn ids_sort_in_creation_order_and_are_unique() {
        let ids: Vec<String> = (0..5_000).map(|_| new_id("echo")).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids, "creation order, no duplicate");
        assert!(ids.iter().all(|id| id.len() == "echo-".len() + 22));
    }
}
