//! Noticing changes: a watch of the registry *directory* (the file is replaced by
//! `rename`, so a watch on the file itself would die with the first write), and on top of
//! it a stream of live lists for servers and the command line.
//!
//! The watch runs on a plain thread fed by `notify`, not on a tokio task: the keeper of a
//! [`crate::Registration`] must work in programs without a runtime, and a thread that
//! blocks on a channel costs nothing while nothing happens. Liveness changes that touch no
//! file (a SIGKILLed server) are caught by re-judging the cached entries on a short tick;
//! that reads `/proc`, never the registry.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use super::liveness::Judge;
use super::model::Entry;
use super::store::{Snapshot, Store};

/// How long a burst of file events is gathered before the registry is read again.
pub const DEBOUNCE: Duration = Duration::from_millis(5);
/// How often cached entries are re-judged for liveness.
pub const LIVENESS_TICK: Duration = Duration::from_millis(500);

/// Set to `poll` to use the polling fallback even where the OS can watch directories
/// (the fallback is otherwise used only when the OS watch cannot be created).
pub const WATCH_ENV_VAR: &str = "WSREG_WATCH";

/// What woke a [`DirWatch::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The registry file (or its directory) changed.
    Changed,
    /// Nothing happened before the timeout.
    Timeout,
    /// The owner asked the thread to stop.
    Stop,
}

enum Signal {
    Changed,
    Stop,
}

/// A watch on the registry directory, filtered to events about the registry file.
/// It re-arms itself when the directory is deleted and created again.
pub(crate) struct DirWatch {
    dir: PathBuf,
    file_name: OsString,
    tx: Sender<Signal>,
    rx: Receiver<Signal>,
    watcher: Option<Box<dyn Watcher + Send>>,
    dir_inode: Option<u64>,
}

/// Stops the thread that owns a [`DirWatch`]; cloneable, usable from any thread.
#[derive(Clone)]
pub(crate) struct Stopper(Sender<Signal>);

impl Stopper {
    pub(crate) fn stop(&self) {
        let _ = self.0.send(Signal::Stop);
    }
}

impl DirWatch {
    pub(crate) fn new(store: &Store) -> DirWatch {
        let (tx, rx) = mpsc::channel();
        let mut watch = DirWatch {
            dir: store.dir().to_owned(),
            file_name: store.file_name(),
            tx,
            rx,
            watcher: None,
            dir_inode: None,
        };
        watch.arm();
        watch
    }

    pub(crate) fn stopper(&self) -> Stopper {
        Stopper(self.tx.clone())
    }

    /// (Re)creates the OS watch when the directory exists and is not the one watched.
    fn arm(&mut self) {
        let inode = fs::metadata(&self.dir).ok().map(|m| m.ino());
        if inode == self.dir_inode && self.watcher.is_some() {
            return;
        }
        self.dir_inode = inode;
        self.watcher = None;
        // A missing directory is awaited through its parent, so the first registration
        // after a reader started on a fresh machine is seen at once, not at the next tick.
        let target = match (inode, self.dir.parent()) {
            (Some(_), _) => self.dir.clone(),
            (None, Some(parent)) if parent.is_dir() => parent.to_owned(),
            (None, _) => return,
        };
        let tx = self.tx.clone();
        let dir = self.dir.clone();
        let file_name = self.file_name.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            let relevant = match res {
                Ok(event) => event.paths.iter().any(|p| concerns(p, &dir, &file_name)),
                Err(_) => true,
            };
            if relevant {
                let _ = tx.send(Signal::Changed);
            }
        };
        let native = match std::env::var_os(WATCH_ENV_VAR).is_some_and(|v| v == "poll") {
            true => Err(notify::Error::generic(&format!("{WATCH_ENV_VAR}=poll"))),
            false => notify::recommended_watcher(handler.clone()),
        };
        let watcher: notify::Result<Box<dyn Watcher + Send>> = match native {
            Ok(w) => Ok(Box::new(w)),
            Err(e) => {
                tracing::info!("watching {} by polling ({e})", self.dir.display());
                let config = notify::Config::default()
                    .with_poll_interval(Duration::from_millis(250))
                    .with_compare_contents(true);
                notify::PollWatcher::new(handler, config).map(|w| Box::new(w) as _)
            }
        };
        match watcher {
            Ok(mut w) => match w.watch(&target, RecursiveMode::NonRecursive) {
                Ok(()) => self.watcher = Some(w),
                Err(e) => tracing::warn!("cannot watch {}: {e}", target.display()),
            },
            Err(e) => tracing::warn!("cannot watch {}: {e}", self.dir.display()),
        }
    }

    /// Waits up to `timeout` for a change, then gathers the rest of its burst.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Wake {
        let first = match self.rx.recv_timeout(timeout) {
            Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return Wake::Stop,
            Ok(Signal::Changed) => Wake::Changed,
            Err(RecvTimeoutError::Timeout) => {
                let had = self.dir_inode;
                self.arm();
                // The directory appeared, vanished or was replaced: that is a change too.
                return if self.dir_inode != had {
                    Wake::Changed
                } else {
                    Wake::Timeout
                };
            }
        };
        let until = Instant::now() + DEBOUNCE;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(Signal::Stop) => return Wake::Stop,
                Ok(Signal::Changed) => {}
                Err(_) => break,
            }
        }
        self.arm();
        first
    }
}

fn concerns(path: &Path, dir: &Path, file_name: &OsString) -> bool {
    path == dir || (path.file_name() == Some(file_name.as_os_str()) && path.parent() == Some(dir))
}

/// A live list of entries that changes over time.
pub type LiveList = Arc<Vec<Entry>>;

/// Publishes the live list whenever it changes; stops its thread when dropped.
pub struct LiveWatch {
    rx: tokio::sync::watch::Receiver<LiveList>,
    stopper: Stopper,
    thread: Option<JoinHandle<()>>,
}

impl LiveWatch {
    /// Starts watching; the first list is read before this returns.
    pub fn spawn(store: Store) -> crate::Result<LiveWatch> {
        let mut watch = DirWatch::new(&store);
        let mut snapshot = store.read()?;
        let mut live = Arc::new(snapshot.live());
        let (tx, rx) = tokio::sync::watch::channel(live.clone());
        let stopper = watch.stopper();
        let dir = store.dir().to_owned();
        let thread = std::thread::Builder::new()
            .name("wsreg-watch".into())
            .spawn(move || {
                loop {
                    match watch.wait(LIVENESS_TICK) {
                        Wake::Stop => return,
                        Wake::Changed => match store.read() {
                            Ok(s) => snapshot = s,
                            Err(e) => {
                                tracing::warn!("{}", crate::error::Chain(&e));
                                snapshot = Snapshot::default();
                            }
                        },
                        Wake::Timeout => {}
                    }
                    let judge = Judge::system();
                    let now: Vec<Entry> = snapshot
                        .entries
                        .iter()
                        .filter(|e| judge.is_live(e))
                        .cloned()
                        .collect();
                    if *live != now {
                        live = Arc::new(now);
                        if tx.send(live.clone()).is_err() {
                            return;
                        }
                    }
                }
            })
            .map_err(crate::Error::io("start a thread for", dir))?;
        Ok(LiveWatch {
            rx,
            stopper,
            thread: Some(thread),
        })
    }

    /// A receiver of live lists: `borrow()` is the current one, `changed()` awaits the next.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<LiveList> {
        self.rx.clone()
    }

    /// The current live list.
    pub fn current(&self) -> LiveList {
        self.rx.borrow().clone()
    }
}

impl Drop for LiveWatch {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
