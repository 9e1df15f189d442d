//! The live list from etcd, kept current by push: get the prefix, then watch it from the
//! revision the get returned. [`EtcdWatch`] hands out the same [`Answer`]s as the
//! directory's [`LiveWatch`](crate::LiveWatch), built by the same model functions, so
//! the API's bytes do not depend on the backend.
//!
//! - **Resume, don't re-read.** When the watch breaks (a member died, the connection
//!   dropped) it is opened again from the revision after the last event taken in, on
//!   whichever member answers: nothing is missed and nothing read twice. Only when etcd
//!   says that revision is compacted away is the prefix read again in full.
//! - **Same-host entries still get the PID check.** An entry of this host is judged at
//!   intake (PID + start time) and its process held by a pidfd, in one epoll set that
//!   the watch's runtime waits on: a SIGKILLed local server vanishes at once, not at its
//!   lease's end. Another host's entry ends with its lease (etcd deletes the key).
//! - **Exact reads.** [`EtcdWatch::exact`] asks etcd for its current revision and waits
//!   (a second at most) until the watch has taken in every event up to it, asking etcd
//!   for a progress report when the revision moved outside the prefix; and while a held
//!   process's exit is pending, for that too. An answer then never misses a server
//!   registered, or lists one revoked, before the request came.
//! - **Idle is free.** One watch stream and the epoll set; no timer runs while nothing
//!   changes (the retry after a failed connection is the only sleep).

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, KeyValue, WatchOptions, WatchResponse};
use rustix::event::{PollFd, PollFlags, epoll, poll};
use tokio::sync::{mpsc, oneshot, watch};

use super::config::{EtcdConfig, EtcdError};
use super::members::Members;
use crate::error::Chain;
use crate::registry::exits::{Intake, intake};
use crate::registry::liveness::{Judge, Verdict};
use crate::registry::model::{self, Entry, MAX_ENTRY_FILE_BYTES};
use crate::registry::watch::Answer;
use crate::sys::SharedFd;

/// How long [`EtcdWatch::exact`] waits for the watch to catch up, at most.
const EXACT_WAIT: Duration = Duration::from_secs(1);
/// How long to wait before connecting again after a failure.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// Publishes the live list from etcd whenever it changes; stops its thread when dropped.
pub struct EtcdWatch {
    answers: watch::Receiver<Arc<Answer>>,
    /// The revision up to which every event has been taken in.
    applied: watch::Receiver<i64>,
    /// Asks the thread for a progress report from etcd.
    progress: mpsc::UnboundedSender<()>,
    members: Members,
    prefix: String,
    exits: Arc<OwnedFd>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EtcdWatch {
    /// Connects and reads the prefix; the first list is read before this returns.
    pub fn spawn(config: Arc<EtcdConfig>) -> Result<EtcdWatch, EtcdError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("wsreg-etcd-watch".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => return drop(ready_tx.send(Err(EtcdError::Thread(e)))),
                };
                runtime.block_on(async move {
                    match Reader::start(config).await {
                        Ok((reader, started)) => {
                            let _ = ready_tx.send(Ok(started));
                            reader.run(stop_rx, progress_rx).await;
                        }
                        Err(e) => drop(ready_tx.send(Err(e))),
                    }
                });
            })
            .map_err(EtcdError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(started)) => Ok(EtcdWatch {
                answers: started.answers,
                applied: started.applied,
                progress: progress_tx,
                members: started.members,
                prefix: started.prefix,
                exits: started.exits,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(EtcdError::StreamEnded { op: "watch" })
            }
        }
    }

    /// A receiver of answers: `borrow()` is the current one, `changed()` awaits the next.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Answer>> {
        self.answers.clone()
    }

    /// The last published answer.
    pub fn current(&self) -> Arc<Answer> {
        self.answers.borrow().clone()
    }

    /// The answer, exact at the time of the call (see the module's doc); when etcd
    /// cannot be asked, the last published one.
    pub async fn exact(&self) -> Arc<Answer> {
        let deadline = tokio::time::Instant::now() + EXACT_WAIT;
        let mut applied = self.applied.clone();
        let options = GetOptions::new()
            .with_prefix()
            .with_keys_only()
            .with_limit(1);
        let revision = self.members.call("get", |mut c| {
            let (prefix, options) = (self.prefix.clone(), options.clone());
            async move { c.get(prefix, Some(options)).await }
        });
        let target = match revision.await {
            Ok(answer) => answer.header().map_or(0, |h| h.revision()),
            Err(e) => {
                tracing::debug!("exact read: {}", Chain(&e));
                return self.current();
            }
        };
        loop {
            let behind = *applied.borrow_and_update() < target;
            if !behind && !exits_pending(&self.exits) {
                return self.current();
            }
            if behind {
                let _ = self.progress.send(());
            }
            if tokio::time::timeout_at(deadline, applied.changed())
                .await
                .is_err()
            {
                return self.current();
            }
        }
    }
}

impl Drop for EtcdWatch {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether a held process has exited and the thread has not taken it in yet.
fn exits_pending(epoll_fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(epoll_fd, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero)).unwrap_or(0) > 0
}

/// What the thread hands the guard once the first list is read.
struct Started {
    answers: watch::Receiver<Arc<Answer>>,
    applied: watch::Receiver<i64>,
    members: Members,
    prefix: String,
    exits: Arc<OwnedFd>,
}

/// An entry known to the thread, its JSON, and whether it is live.
struct Tracked {
    entry: Arc<Entry>,
    json: Box<str>,
    live: bool,
}

/// The thread's state.
struct Reader {
    prefix: String,
    members: Members,
    /// Entries by id.
    entries: HashMap<String, Tracked>,
    /// Live local processes: their pidfd and the ids of their entries.
    processes: HashMap<u32, (OwnedFd, HashSet<String>)>,
    exits: Arc<OwnedFd>,
    /// The revision up to which every event has been taken in.
    revision: i64,
    answers: watch::Sender<Arc<Answer>>,
    applied: watch::Sender<i64>,
}

impl Reader {
    /// Connects and reads the prefix in full.
    async fn start(config: Arc<EtcdConfig>) -> Result<(Reader, Started), EtcdError> {
        let members = Members::connect(&config).await?;
        let exits = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map(Arc::new)
            .map_err(|e| EtcdError::Thread(e.into()))?;
        let (answers, answers_rx) = watch::channel(Arc::new(Answer::of(Vec::new())));
        let (applied, applied_rx) = watch::channel(0);
        let prefix = config.servers_prefix();
        let mut reader = Reader {
            prefix: prefix.clone(),
            members: members.clone(),
            entries: HashMap::new(),
            processes: HashMap::new(),
            exits: exits.clone(),
            revision: 0,
            answers,
            applied,
        };
        reader.read_all().await?;
        let started = Started {
            answers: answers_rx,
            applied: applied_rx,
            members,
            prefix,
            exits,
        };
        Ok((reader, started))
    }

    async fn run(
        mut self,
        mut stop: oneshot::Receiver<()>,
        mut progress: mpsc::UnboundedReceiver<()>,
    ) {
        let exits = match SharedFd::readable(self.exits.clone()) {
            Ok(exits) => exits,
            Err(e) => {
                tracing::error!("cannot wait for local servers' exits: {e}");
                return;
            }
        };
        let mut full_read = false;
        loop {
            if full_read {
                if let Err(e) = self.read_all().await {
                    tracing::warn!("reading {} from etcd: {}", self.prefix, Chain(&e));
                    if retry_later(&mut stop).await {
                        return;
                    }
                    continue;
                }
                full_read = false;
            }
            let options = WatchOptions::new()
                .with_prefix()
                .with_start_revision(self.revision + 1);
            let opened = self.members.call("watch", |mut c| {
                let (prefix, options) = (self.prefix.clone(), options.clone());
                async move { c.watch(prefix, Some(options)).await }
            });
            let stream = match opened.await {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!("watching {} in etcd: {}", self.prefix, Chain(&e));
                    if retry_later(&mut stop).await {
                        return;
                    }
                    continue;
                }
            };
            let (mut requests, mut responses) = stream.split();
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    Some(()) = progress.recv() => {
                        let _ = requests.request_progress().await;
                    }
                    ready = exits.readable() => {
                        if let Ok(mut ready) = ready {
                            self.take_exits();
                            ready.clear_ready();
                        }
                        self.publish();
                    }
                    message = responses.message() => match message {
                        Ok(Some(response)) if response.canceled() => {
                            tracing::info!(
                                "the watch of {} was cancelled ({}; compacted at {}): reading it in full",
                                self.prefix,
                                response.cancel_reason(),
                                response.compact_revision(),
                            );
                            full_read = true;
                            break;
                        }
                        Ok(Some(response)) => {
                            self.take_response(&response);
                            self.publish();
                        }
                        Ok(None) => {
                            tracing::info!("the watch of {} ended; resuming", self.prefix);
                            break;
                        }
                        Err(e) => {
                            tracing::info!("the watch of {} broke ({e}); resuming", self.prefix);
                            break;
                        }
                    },
                }
            }
            if retry_later(&mut stop).await {
                return;
            }
        }
    }

    /// Reads every entry under the prefix and replaces what was known.
    async fn read_all(&mut self) -> Result<(), EtcdError> {
        let mut answer = self
            .members
            .call("get", |mut c| {
                let prefix = self.prefix.clone();
                async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        let revision = answer.header().map_or(0, |h| h.revision());
        for id in self.entries.keys().cloned().collect::<Vec<_>>() {
            self.forget(&id);
        }
        // One judge for the whole answer: one read of the LISTEN sockets for all.
        let judge = Judge::system();
        for kv in answer.take_kvs() {
            self.put(&kv, &judge);
        }
        self.revision = revision;
        self.publish();
        Ok(())
    }

    /// Takes in one watch response: its events, or the progress it reports.
    fn take_response(&mut self, response: &WatchResponse) {
        if response.created() {
            return;
        }
        let events = response.events();
        let judge = Judge::system();
        for event in events {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => self.put(kv, &judge),
                EventType::Delete => {
                    if let Some(id) = self.id_of(kv) {
                        self.forget(&id);
                    }
                }
            }
            self.revision = self.revision.max(kv.mod_revision());
        }
        if events.is_empty() {
            // A progress report: every event up to its revision has been sent.
            let reported = response.header().map_or(0, |h| h.revision());
            self.revision = self.revision.max(reported);
        }
    }

    fn id_of(&self, kv: &KeyValue) -> Option<String> {
        let key = kv.key_str().ok()?;
        key.strip_prefix(&self.prefix).map(str::to_owned)
    }

    /// A key was put: its entry replaces the one of the same id, or is passed over with
    /// a warning when it is not a valid entry (the key's owner puts it right).
    fn put(&mut self, kv: &KeyValue, judge: &Judge<'_>) {
        let Some(id) = self.id_of(kv) else { return };
        self.forget(&id);
        let key = kv.key_str().unwrap_or_default();
        if kv.value().len() as u64 > MAX_ENTRY_FILE_BYTES {
            tracing::warn!("{key}: over {MAX_ENTRY_FILE_BYTES} bytes; skipped");
            return;
        }
        let entry = match model::parse_entry_file(kv.value(), &format!("{id}.json")) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!("{key}: {e}; skipped");
                return;
            }
        };
        let alive = match intake(&entry, judge) {
            Intake::Held(fd) => {
                self.hold(entry.pid, fd, &id);
                true
            }
            // No pidfd to be had (an old kernel, the descriptor limit): the lease ends it.
            Intake::Remote | Intake::Unwatched => true,
            Intake::Dead(_) => false,
        };
        // Judged once, as it comes: a local server that does not listen on its port is
        // held (its exit still ends it) but not shown.
        let live = alive && !matches!(judge.listening(&entry), Verdict::Dead(_));
        let tracked = Tracked {
            json: model::entry_json(&entry).into(),
            entry: Arc::new(entry),
            live,
        };
        self.entries.insert(id, tracked);
    }

    fn hold(&mut self, pid: u32, fd: OwnedFd, id: &str) {
        let (_, ids) = self.processes.entry(pid).or_insert_with(|| {
            let added = epoll::add(
                &*self.exits,
                fd.as_fd(),
                epoll::EventData::new_u64(u64::from(pid)),
                epoll::EventFlags::IN,
            );
            if let Err(e) = added {
                tracing::warn!("cannot watch process {pid}: {e}");
            }
            (fd, HashSet::new())
        });
        ids.insert(id.to_owned());
    }

    /// Drops the entry `id`, and its hold on its process when it was the last.
    fn forget(&mut self, id: &str) {
        let Some(old) = self.entries.remove(id) else {
            return;
        };
        let pid = old.entry.pid;
        if let Some((_, ids)) = self.processes.get_mut(&pid) {
            ids.remove(id);
            if ids.is_empty()
                && let Some((fd, _)) = self.processes.remove(&pid)
            {
                let _ = epoll::delete(&*self.exits, &fd);
            }
        }
    }

    /// Held processes exited: every entry they had is dead.
    fn take_exits(&mut self) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(16);
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let _ = epoll::wait(
            &*self.exits,
            rustix::buffer::spare_capacity(&mut events),
            Some(&zero),
        );
        for event in &events {
            let pid = event.data.u64() as u32;
            let Some((fd, ids)) = self.processes.remove(&pid) else {
                continue;
            };
            let _ = epoll::delete(&*self.exits, &fd);
            for id in ids {
                if let Some(t) = self.entries.get_mut(&id) {
                    t.live = false;
                }
            }
        }
    }

    /// Publishes the live list when it changed, and the revision taken in.
    fn publish(&mut self) {
        let live: Vec<(&Arc<Entry>, &str)> = self
            .entries
            .values()
            .filter(|t| t.live)
            .map(|t| (&t.entry, &*t.json))
            .collect();
        let answer = Answer::of(live);
        if *answer.json != *self.answers.borrow().json {
            self.answers.send_replace(Arc::new(answer));
        }
        let revision = self.revision;
        self.applied.send_modify(|r| *r = revision);
    }
}

/// Waits [`RETRY_AFTER`] before the next attempt; says whether to stop instead.
async fn retry_later(stop: &mut oneshot::Receiver<()>) -> bool {
    tokio::select! {
        _ = stop => true,
        () = tokio::time::sleep(RETRY_AFTER) => false,
    }
}
