//! `Registration`: how a server joins the registry and stays in it while it lives.
//!
//! The registry is soft state, so a live server defends its own entry: a keeper thread
//! watches the registry directory and, when the entry has vanished (file deleted, moved
//! aside as corrupt, pruned by mistake), writes it back. It rewrites nothing while the
//! entry is present; between events it only `stat`s the file. Dropping the guard stops the
//! keeper first and then removes the entry, so the two never race.

use std::os::unix::fs::MetadataExt;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value};

use crate::error::Result;
use crate::registry::liveness::{hostname, start_time_of};
use crate::registry::model::{Entry, Timestamp};
use crate::registry::store::Store;
use crate::registry::watch::{DirWatch, Stopper, Wake};

/// How often the keeper looks at the file when no event came (a safety net for watches
/// that were lost, e.g. with their directory).
const SAFETY_TICK: Duration = Duration::from_millis(250);

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
        store.register(self.entry.clone())?;
        Ok(self.entry)
    }

    /// Registers the server and keeps its entry present until the guard is dropped.
    pub fn register(self, store: &Store) -> Result<Registration> {
        let entry = self.register_once(store)?;
        let watch = DirWatch::new(store);
        let stopper = watch.stopper();
        let keeper = Keeper {
            store: store.clone(),
            entry: entry.clone(),
            watch,
        };
        let thread = std::thread::Builder::new()
            .name("wsreg-keeper".into())
            .spawn(move || keeper.run())
            .map_err(crate::Error::io("start a thread for", store.dir()))?;
        Ok(Registration {
            store: store.clone(),
            entry,
            stopper,
            thread: Some(thread),
        })
    }
}

/// A live registration: while it exists the entry is kept in the registry; dropping it
/// removes the entry.
pub struct Registration {
    store: Store,
    entry: Entry,
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
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
        self.stop_keeper();
        self.store.unregister(&self.entry.id).map(drop)
    }

    fn stop_keeper(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stopper.stop();
            let _ = thread.join();
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop_keeper();
            if let Err(e) = self.store.unregister(&self.entry.id) {
                tracing::warn!(
                    "cannot unregister {}: {}",
                    self.entry.id,
                    crate::error::Chain(&e)
                );
            }
        }
    }
}

/// The keeper thread's state.
struct Keeper {
    store: Store,
    entry: Entry,
    watch: DirWatch,
}

/// What identifies one version of the file without reading it.
type FileStamp = Option<(u64, u64, i64, i64)>;

impl Keeper {
    fn run(mut self) {
        let renew_every = self.entry.ttl_secs.map(|t| Duration::from_secs(t) / 3);
        let mut next_renewal = renew_every.map(|d| Instant::now() + d);
        let mut verified: FileStamp = self.stamp();
        loop {
            let timeout = next_renewal.map_or(SAFETY_TICK, |at| {
                at.saturating_duration_since(Instant::now())
                    .min(SAFETY_TICK)
            });
            let wake = self.watch.wait(timeout);
            if wake == Wake::Stop {
                return;
            }
            if let (Some(at), Some(every)) = (next_renewal, renew_every)
                && Instant::now() >= at
            {
                self.renew();
                next_renewal = Some(Instant::now() + every);
                verified = self.stamp();
                continue;
            }
            let stamp = self.stamp();
            if wake == Wake::Timeout && stamp == verified && stamp.is_some() {
                continue;
            }
            match self.ensure_present() {
                Ok(()) => verified = self.stamp(),
                Err(e) => tracing::warn!(
                    "cannot restore {}: {}",
                    self.entry.id,
                    crate::error::Chain(&e)
                ),
            }
        }
    }

    fn stamp(&self) -> FileStamp {
        let m = std::fs::symlink_metadata(self.store.path()).ok()?;
        Some((m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
    }

    fn ensure_present(&self) -> Result<()> {
        let snapshot = self.store.read()?;
        if snapshot.corrupt.is_none() && snapshot.entries.iter().any(|e| e.id == self.entry.id) {
            return Ok(());
        }
        let restored = self.store.update(|entries| {
            let missing = !entries.iter().any(|e| e.id == self.entry.id);
            if missing {
                entries.push(self.entry.clone());
            }
            Ok(missing)
        })?;
        if restored {
            tracing::info!(
                "{}: entry {} was missing; put it back",
                self.store.path().display(),
                self.entry.id
            );
        }
        Ok(())
    }

    fn renew(&mut self) {
        let now = Timestamp::now();
        self.entry.heartbeat_at = Some(now);
        let entry = self.entry.clone();
        let result = self.store.update(|entries| {
            match entries.iter_mut().find(|e| e.id == entry.id) {
                Some(e) => e.heartbeat_at = Some(now),
                None => entries.push(entry),
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(
                "cannot renew the lease of {}: {}",
                self.entry.id,
                crate::error::Chain(&e)
            );
        }
    }
}

/// A new unique, URL-safe id: the kind, then 13 base-32 characters from the clock, the PID
/// and the process's random hash seed.
fn new_id(kind: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut n = h.finish();
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut id = String::with_capacity(kind.len() + 14);
    id.push_str(kind);
    id.push('-');
    for _ in 0..13 {
        id.push(ALPHABET[(n & 31) as usize] as char);
        n >>= 5;
    }
    id
}
