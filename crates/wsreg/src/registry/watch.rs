//! The live list, kept current by push: [`LiveWatch`] runs one thread that sleeps in one
//! `epoll_wait` on everything that can change the list — an inotify watch of the registry
//! directory, one of its parent (for the directory itself and the legacy file), a pidfd
//! per live local process ([`super::exits`]), a stop eventfd — and the next lease expiry.
//! While nothing changes, nothing runs.
//!
//! - **One change, one file.** An event names a file; only that file is read again, so a
//!   change costs the same with 1 or 10,000 entries. Each entry's JSON is kept, so the
//!   document is rebuilt by joining strings, not by serialising every entry.
//! - **One answer per change.** The live list and its JSON are built once per change and
//!   shared (`Arc`) by every `GET /api/registry`, every SSE subscriber and `wsreg watch`.
//! - **Exact reads.** [`LiveWatch::exact`] hands out the answer only while nothing is
//!   pending — no event queued on the epoll set and no round in progress — else it waits
//!   for the round to finish. A writer's `rename` queues its event before it returns, and
//!   a pidfd is readable the moment its process exits, so an answer never lists a server
//!   that exited, or misses one registered, before the request came.
//! - **Listening, checked on reads.** A local entry is shown only while its process holds
//!   a LISTEN socket on its port ([`Judge::listening`]). Nothing announces a closed
//!   listener, so new entries are checked when they arrive, and all of them again when
//!   a reader asks ([`LiveWatch::recheck_listeners`]: every exact read, every health
//!   round) — at most once a second, with one read of the LISTEN table for all. A
//!   process that stopped listening is held still: it may listen again.
//! - **Fallbacks that cost only where needed.** Without inotify (the per-user instance
//!   limit, or `WSREG_WATCH=poll`) the directory is compared by file identity every
//!   250 ms; a local entry whose exit cannot be watched is judged again every 500 ms; a
//!   missing parent directory is looked for every second. None runs otherwise.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use rustix::event::{EventfdFlags, PollFd, PollFlags, epoll, eventfd, poll};

use super::exits::{Intake, intake};
use super::inotify::{Inotify, ReadFlags, WatchFlags};
use super::liveness::{Judge, Verdict};
use super::model::{self, Entry};
use super::store::{
    FileId, FileRead, Skipped, Store, entry_file_name, names_in_base, warn_skipped,
};
use crate::error::{Error, Result};

/// Set to `poll` to compare the directory on a timer even where inotify works (the
/// fallback is otherwise used only when no inotify instance can be had).
pub const WATCH_ENV_VAR: &str = "WSREG_WATCH";
/// How often the directory is compared when it cannot be watched.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How often entries whose exit cannot be watched are judged again.
pub const UNWATCHED_TICK: Duration = Duration::from_millis(500);
/// How often a missing parent directory is looked for.
const MISSING_BASE_TICK: Duration = Duration::from_secs(1);
/// How often, at most, every entry's listening socket is checked again on readers' asks.
pub const RECHECK_EVERY: Duration = Duration::from_secs(1);
/// How long [`LiveWatch::exact`] waits for a round in progress, at most.
const EXACT_WAIT: Duration = Duration::from_secs(1);

const STOP: u64 = 0;
const INOTIFY: u64 = 1;
const KICK: u64 = 2;
/// epoll data of a pidfd: this bit plus the PID.
const PIDFD: u64 = 1 << 32;

/// Events in the parent: the directory and the legacy file appearing, changing, going.
/// No opens or reads: see `inotify`.
fn base_events() -> WatchFlags {
    WatchFlags::CREATE
        | WatchFlags::CLOSE_WRITE
        | WatchFlags::MOVED_TO
        | WatchFlags::MOVED_FROM
        | WatchFlags::DELETE
        | WatchFlags::ATTRIB
        | WatchFlags::ONLYDIR
}

/// Events in the directory: the same about its files, and the directory itself going
/// (its watch is not set through a symlink).
fn dir_events() -> WatchFlags {
    base_events() | WatchFlags::DELETE_SELF | WatchFlags::MOVE_SELF | WatchFlags::DONT_FOLLOW
}

/// The live list at one moment, and its canonical JSON, built once.
#[derive(Debug)]
pub struct Answer {
    /// The live entries, in registration order; shared with the watch's own copy, so a
    /// change to one of 10,000 entries copies no entry.
    pub live: Vec<Arc<Entry>>,
    /// `{"version":1,"servers":[…]}` for `live`.
    pub json: Arc<str>,
    /// A form of `json` that a transport builds once for all (the SSE event).
    framed: std::sync::OnceLock<Arc<str>>,
    /// When the first lease among `live` runs out.
    expires: Option<SystemTime>,
}

impl Answer {
    /// The answer listing `live` (each entry with its [`model::entry_json`]) in
    /// registration order. Every source of the live list — the directory's watch and
    /// etcd's — builds its answers here, so their bytes agree.
    pub(crate) fn of(mut live: Vec<(&Arc<Entry>, &str)>) -> Answer {
        live.sort_by(|a, b| model::order_key(a.0).cmp(&model::order_key(b.0)));
        let expires = live.iter().filter_map(|(e, _)| e.lease_expiry()).min();
        let json = model::document_from_parts(live.iter().map(|(_, json)| *json));
        Answer {
            live: live.into_iter().map(|(e, _)| Arc::clone(e)).collect(),
            framed: std::sync::OnceLock::new(),
            json: json.into(),
            expires,
        }
    }

    /// `json` framed by `frame`, built by the first caller and shared with the others:
    /// one change to 1,000 subscribers costs one framing.
    pub fn framed(&self, frame: impl FnOnce(&str) -> String) -> Arc<str> {
        self.framed.get_or_init(|| frame(&self.json).into()).clone()
    }
}

/// What the thread and the readers share to tell whether an answer is exact.
struct Pending {
    /// Set while the thread takes in a round of events.
    busy: AtomicBool,
    /// Set while the directory cannot be watched (no inotify, or no directory yet):
    /// then no event says that something changed, and a reader asks for a look.
    degraded: AtomicBool,
    /// Written to ask the thread for a look now.
    kick: OwnedFd,
    epoll: OwnedFd,
    /// Set by a reader that wants the listeners checked again; cleared by the check.
    recheck: AtomicBool,
    /// When listeners were last checked, in milliseconds since `epoch`.
    rechecked_at: AtomicU64,
    epoch: Instant,
}

impl Pending {
    fn millis(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn now(&self) -> bool {
        if self.busy.load(Ordering::SeqCst) {
            return true;
        }
        let mut fds = [PollFd::new(&self.epoll, PollFlags::IN)];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&zero)).unwrap_or(0) > 0
    }
}

/// Publishes the live list whenever it changes; stops its thread when dropped.
pub struct LiveWatch {
    answers: tokio::sync::watch::Receiver<Arc<Answer>>,
    rounds: tokio::sync::watch::Receiver<u64>,
    pending: Arc<Pending>,
    stop: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl LiveWatch {
    /// Starts watching; the first list is read before this returns.
    pub fn spawn(store: Store) -> Result<LiveWatch> {
        // The directory is made as a writer would make it, so that it can be watched
        // from the start (the first registration then arrives as an event); a
        // symlinked or foreign directory is refused now, with its reason.
        if let Err(e) = store.prepare_dir() {
            match e {
                Error::Symlink { .. }
                | Error::ForeignOwner { .. }
                | Error::NotADirectory { .. } => {
                    return Err(e);
                }
                e => tracing::debug!("{}", crate::error::Chain(&e)),
            }
        }
        let io = |op| Error::io(op, store.dir());
        let epoll_fd = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|e| io("create an epoll set for")(e.into()))?;
        let stop = Arc::new(
            eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| io("create an eventfd for")(e.into()))?,
        );
        epoll::add(
            &epoll_fd,
            &*stop,
            epoll::EventData::new_u64(STOP),
            epoll::EventFlags::IN,
        )
        .map_err(|e| io("watch")(e.into()))?;
        let kick = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|e| io("create an eventfd for")(e.into()))?;
        epoll::add(
            &epoll_fd,
            &kick,
            epoll::EventData::new_u64(KICK),
            epoll::EventFlags::IN,
        )
        .map_err(|e| io("watch")(e.into()))?;
        let pending = Arc::new(Pending {
            busy: AtomicBool::new(false),
            degraded: AtomicBool::new(true),
            kick,
            epoll: epoll_fd,
            recheck: AtomicBool::new(false),
            rechecked_at: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let mut state = State::new(store.clone(), pending.clone());
        state.arm();
        state.rescan();
        state.check_listeners(false);
        state.note_degraded();
        let first = Arc::new(state.answer());
        let (answers_tx, answers) = tokio::sync::watch::channel(first);
        let (rounds_tx, rounds) = tokio::sync::watch::channel(0u64);
        let thread = std::thread::Builder::new()
            .name("wsreg-watch".into())
            .spawn(move || state.run(answers_tx, rounds_tx))
            .map_err(io("start a thread for"))?;
        Ok(LiveWatch {
            answers,
            rounds,
            pending,
            stop,
            thread: Some(thread),
        })
    }

    /// A receiver of answers: `borrow()` is the current one, `changed()` awaits the next.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<Answer>> {
        self.answers.clone()
    }

    /// The last published answer (it may miss a change being taken in right now).
    pub fn current(&self) -> Arc<Answer> {
        self.answers.borrow().clone()
    }

    /// Asks for every entry's listening socket to be checked again: now if the last
    /// check is [`RECHECK_EVERY`] old, else that long after it. Does not wait.
    pub fn recheck_listeners(&self) {
        if !self.pending.recheck.swap(true, Ordering::SeqCst) {
            let _ = rustix::io::write(&self.pending.kick, &1u64.to_ne_bytes());
        }
    }

    /// The answer, exact at the time of the call: when a change is being taken in, this
    /// waits for it (microseconds, bounded by a second); when the directory cannot be
    /// watched, it asks the thread to look first. Listeners are checked again (see
    /// [`LiveWatch::recheck_listeners`]) before the answer when the last check is a
    /// second old, else within a second after it.
    pub async fn exact(&self) -> Arc<Answer> {
        let deadline = tokio::time::Instant::now() + EXACT_WAIT;
        let mut rounds = self.rounds.clone();
        rounds.borrow_and_update();
        self.recheck_listeners();
        if self.pending.degraded.load(Ordering::SeqCst) {
            let _ = rustix::io::write(&self.pending.kick, &1u64.to_ne_bytes());
        }
        loop {
            let answer = self.current();
            let expired = answer.expires.is_some_and(|at| at <= SystemTime::now());
            if !expired && !self.pending.now() {
                return answer;
            }
            if tokio::time::timeout_at(deadline, rounds.changed())
                .await
                .is_err()
            {
                return self.current();
            }
        }
    }
}

impl Drop for LiveWatch {
    fn drop(&mut self) {
        let _ = rustix::io::write(&*self.stop, &1u64.to_ne_bytes());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An entry the thread knows of, its JSON, and whether it is live.
struct Tracked {
    entry: Arc<Entry>,
    json: Box<str>,
    file: Option<FileId>,
    state: Liveness,
    /// Whether its process holds a LISTEN socket on its port (a live local entry).
    owner: Owner,
}

impl Tracked {
    fn shown(&self) -> bool {
        self.state != Liveness::Dead && self.owner != Owner::NotListening
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Not asked yet: a new entry, asked before the round's answer.
    Unchecked,
    /// Listening, or nothing to ask (another host's entry, an unreadable `/proc`).
    Listening,
    /// Its process lives but does not listen on the port: not shown.
    NotListening,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Liveness {
    /// Live; its end comes by pidfd, lease or (remote) lease only.
    Live,
    /// Live, but its exit must be looked for on a tick.
    Unwatched,
    Dead,
}

/// The thread's state.
struct State {
    store: Store,
    pending: Arc<Pending>,
    inotify: Option<Inotify>,
    dir_wd: Option<i32>,
    base_wd: Option<i32>,
    /// Entries of the directory, by id (= file name without `.json`).
    files: HashMap<String, Tracked>,
    /// Files passed over, by name, with the version warned about.
    skipped: HashMap<String, FileId>,
    legacy: Vec<Tracked>,
    legacy_file: Option<FileId>,
    /// Live local processes: their pidfd and the ids of their entries.
    processes: HashMap<u32, (OwnedFd, HashSet<String>)>,
    next_expiry: Option<SystemTime>,
    /// When the listeners are to be checked again (a reader asked within a second of the
    /// last check).
    recheck_due: Option<Instant>,
    /// Directory entries whose `owner` is `Unchecked`, by id, and whether legacy entries
    /// are: a round checks these, not every entry.
    unchecked: Vec<String>,
    legacy_unchecked: bool,
    dirty: bool,
}

impl State {
    fn new(store: Store, pending: Arc<Pending>) -> State {
        let inotify = match std::env::var_os(WATCH_ENV_VAR).is_some_and(|v| v == "poll") {
            true => None,
            false => match Inotify::new() {
                Ok(i) => Some(i),
                Err(e) => {
                    tracing::info!(
                        "watching {} by comparing it every {POLL_EVERY:?} ({e})",
                        store.dir().display()
                    );
                    None
                }
            },
        };
        if let Some(inotify) = &inotify {
            let _ = epoll::add(
                &pending.epoll,
                inotify.as_fd(),
                epoll::EventData::new_u64(INOTIFY),
                epoll::EventFlags::IN,
            );
        }
        State {
            store,
            pending,
            inotify,
            dir_wd: None,
            base_wd: None,
            files: HashMap::new(),
            skipped: HashMap::new(),
            legacy: Vec::new(),
            legacy_file: None,
            processes: HashMap::new(),
            next_expiry: None,
            recheck_due: None,
            unchecked: Vec::new(),
            legacy_unchecked: false,
            dirty: true,
        }
    }

    /// Sets the inotify watches that are missing (the parent, then the directory).
    fn arm(&mut self) {
        let Some(inotify) = &self.inotify else {
            return;
        };
        if self.base_wd.is_none() {
            self.base_wd = inotify.add(self.store.base_dir(), base_events()).ok();
        }
        if self.dir_wd.is_none() {
            self.dir_wd = inotify.add(self.store.dir(), dir_events()).ok();
        }
    }

    fn run(
        mut self,
        answers: tokio::sync::watch::Sender<Arc<Answer>>,
        rounds: tokio::sync::watch::Sender<u64>,
    ) {
        let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
        let mut round = 0u64;
        loop {
            let timeout = self.timeout();
            let timeout = timeout.and_then(|d| rustix::event::Timespec::try_from(d).ok());
            events.clear();
            if let Err(e) = epoll::wait(
                &self.pending.epoll,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            ) && e != rustix::io::Errno::INTR
            {
                tracing::error!("watching {}: {e}; stopped", self.store.dir().display());
                return;
            }
            self.pending.busy.store(true, Ordering::SeqCst);
            for event in &events {
                match event.data.u64() {
                    STOP => return,
                    INOTIFY => self.take_inotify_events(),
                    KICK => self.kicked(),
                    data => self.process_exited((data & !PIDFD) as u32),
                }
            }
            self.tick();
            self.recheck_if_due();
            if !self.unchecked.is_empty() || self.legacy_unchecked {
                self.check_listeners(false);
            }
            if std::mem::take(&mut self.dirty) {
                let answer = Arc::new(self.answer());
                if *answer.json != *answers.borrow().json {
                    answers.send_replace(answer);
                }
            }
            self.note_degraded();
            self.pending.busy.store(false, Ordering::SeqCst);
            round += 1;
            rounds.send_replace(round);
        }
    }

    /// How long the next wait may last: until the first lease runs out, or a fallback's
    /// tick; forever when nothing needs a clock.
    fn timeout(&self) -> Option<Duration> {
        let mut ticks = Vec::new();
        if self.inotify.is_none() {
            ticks.push(POLL_EVERY);
        } else if self.base_wd.is_none() || self.dir_wd.is_none() {
            ticks.push(MISSING_BASE_TICK);
        }
        let unwatched = |t: &Tracked| t.state == Liveness::Unwatched;
        if self.files.values().any(unwatched) || self.legacy.iter().any(unwatched) {
            ticks.push(UNWATCHED_TICK);
        }
        if let Some(at) = self.next_expiry {
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            ticks.push(left + Duration::from_millis(1));
        }
        if let Some(at) = self.recheck_due {
            ticks.push(at.saturating_duration_since(Instant::now()));
        }
        ticks.into_iter().min()
    }

    /// Tells readers whether events can be trusted to announce every change.
    fn note_degraded(&self) {
        let degraded = self.inotify.is_none() || self.dir_wd.is_none();
        self.pending.degraded.store(degraded, Ordering::SeqCst);
    }

    /// A reader asked for a look (the directory cannot be watched): the next `tick`
    /// compares it.
    fn kicked(&mut self) {
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.pending.kick, &mut buf);
        if self.inotify.is_some() && self.dir_wd.is_none() {
            self.arm();
            self.rescan();
        }
        if self.pending.recheck.load(Ordering::SeqCst) && self.recheck_due.is_none() {
            let last = Duration::from_millis(self.pending.rechecked_at.load(Ordering::SeqCst));
            self.recheck_due = Some(self.pending.epoch + last + RECHECK_EVERY);
        }
    }

    /// Checks every entry's listener when a reader's ask has come due.
    fn recheck_if_due(&mut self) {
        if self.recheck_due.is_some_and(|at| at <= Instant::now()) {
            self.recheck_due = None;
            self.check_listeners(true);
        }
    }

    /// Asks whether each live local entry's process listens on its port: every one
    /// (`all`, a reader's recheck) or the new ones. One judge, so one read of the
    /// LISTEN table for all of them.
    fn check_listeners(&mut self, all: bool) {
        if all {
            let now = self.pending.millis(Instant::now());
            self.pending.rechecked_at.store(now, Ordering::SeqCst);
            self.pending.recheck.store(false, Ordering::SeqCst);
        }
        let judge = Judge::system();
        let unchecked = std::mem::take(&mut self.unchecked);
        let legacy = std::mem::take(&mut self.legacy_unchecked) || all;
        let mut changed = false;
        let mut check = |t: &mut Tracked| {
            if t.state == Liveness::Dead {
                return;
            }
            let owner = match judge.listening(&t.entry) {
                Verdict::Dead(_) => Owner::NotListening,
                Verdict::Live | Verdict::Unknown(_) => Owner::Listening,
            };
            changed |= owner != t.owner;
            t.owner = owner;
        };
        match all {
            true => self.files.values_mut().for_each(&mut check),
            false => {
                for id in &unchecked {
                    if let Some(t) = self.files.get_mut(id) {
                        check(t);
                    }
                }
            }
        }
        if legacy {
            self.legacy.iter_mut().for_each(&mut check);
        }
        self.dirty |= changed;
    }

    /// What the clock says: fallbacks' ticks and expired leases.
    fn tick(&mut self) {
        if self.inotify.is_none() {
            self.rescan();
        } else if self.base_wd.is_none() || self.dir_wd.is_none() {
            let had_dir = self.dir_wd.is_some();
            self.arm();
            if self.dir_wd.is_some() != had_dir {
                self.rescan();
            }
        }
        let now = SystemTime::now();
        let judge = Judge::system();
        let legacy = self.legacy.iter_mut();
        for t in self.files.values_mut().chain(legacy) {
            let recheck = t.state == Liveness::Unwatched
                || (t.state == Liveness::Live
                    && t.entry.lease_expiry().is_some_and(|at| at <= now));
            if recheck && judge.check_process(&t.entry).is_err() {
                t.state = Liveness::Dead;
                self.dirty = true;
            }
        }
    }

    fn take_inotify_events(&mut self) {
        let Some(inotify) = self.inotify.as_mut() else {
            return;
        };
        let events = match inotify.read() {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!("reading inotify events: {e}");
                return;
            }
        };
        let (dir_name, legacy_name) = names_in_base(&self.store);
        let mut rescan = false;
        for event in events {
            if event.flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                rescan = true;
            } else if Some(event.wd) == self.dir_wd {
                if event
                    .flags
                    .intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::IGNORED)
                {
                    self.dir_wd = None;
                    rescan = true;
                } else if let Some(name) = &event.name
                    && let Some(skipped) = self.refresh_file(name)
                {
                    tracing::warn!("{skipped}");
                }
            } else if Some(event.wd) == self.base_wd {
                match &event.name {
                    Some(name) if *name == dir_name => rescan = true,
                    Some(name) if *name == legacy_name => self.refresh_legacy(),
                    _ if event.flags.contains(ReadFlags::IGNORED) => {
                        self.base_wd = None;
                        rescan = true;
                    }
                    _ => {}
                }
            }
        }
        if rescan {
            self.arm();
            self.rescan();
        }
    }

    /// Compares the whole directory (and the legacy file) by file identity: what
    /// changed is read again, what vanished is dropped. For the first read, a lost
    /// event queue and the polling fallback.
    fn rescan(&mut self) {
        let mut seen = HashSet::new();
        let mut skipped = Vec::new();
        let usable = match self.store.check_readable() {
            Ok(exists) => exists,
            Err(e) => {
                tracing::error!("{e}; listing nothing from it");
                false
            }
        };
        if let Some(names) = usable
            .then(|| std::fs::read_dir(self.store.dir()).ok())
            .flatten()
        {
            for name in names.flatten().map(|d| d.file_name()) {
                if let Some(id) = entry_file_name(&name).and_then(|n| n.strip_suffix(".json")) {
                    seen.insert(id.to_owned());
                    let path = self.store.dir().join(&name);
                    let known = self.files.get(id).and_then(|t| t.file);
                    let was_skipped = self.skipped.get(name.to_str().unwrap_or_default()).copied();
                    let now = FileId::at(&path);
                    if now.is_none() || (now != known && now != was_skipped) {
                        skipped.extend(self.refresh_file(&name));
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .files
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.forget(&id);
        }
        self.skipped
            .retain(|name, _| seen.contains(name.strip_suffix(".json").unwrap_or_default()));
        warn_skipped(&skipped);
        if FileId::at(self.store.legacy_path()) != self.legacy_file {
            self.refresh_legacy();
        }
    }

    /// Reads one file of the directory again; returns what it newly passed over.
    fn refresh_file(&mut self, name: &OsStr) -> Option<Skipped> {
        let id = entry_file_name(name).and_then(|n| n.strip_suffix(".json"))?;
        let id = id.to_owned();
        match self.store.read_entry(name) {
            FileRead::NotAnEntry => None,
            FileRead::Missing => {
                self.forget(&id);
                None
            }
            FileRead::Entry(entry, file) => {
                if self.files.get(&id).is_some_and(|t| t.file == Some(file)) {
                    return None;
                }
                self.skipped.remove(&format!("{id}.json"));
                self.forget(&id);
                let tracked = self.track(entry, Some(file));
                self.unchecked.push(id.clone());
                self.files.insert(id, tracked);
                self.dirty = true;
                None
            }
            FileRead::Skipped(skipped, file) => {
                self.forget(&id);
                let known = self.skipped.insert(format!("{id}.json"), file) == Some(file);
                (!known).then_some(*skipped)
            }
        }
    }

    fn refresh_legacy(&mut self) {
        self.legacy_file = FileId::at(self.store.legacy_path());
        let (entries, skipped) = self.store.read_legacy();
        warn_skipped(&skipped);
        for old in std::mem::take(&mut self.legacy) {
            self.release(&old);
        }
        self.legacy = entries.into_iter().map(|e| self.track(e, None)).collect();
        self.legacy_unchecked = true;
        self.dirty = true;
    }

    /// Judges a new entry and holds its process.
    fn track(&mut self, entry: Entry, file: Option<FileId>) -> Tracked {
        let state = match intake(&entry, &Judge::system()) {
            Intake::Held(fd) => {
                self.hold(entry.pid, fd, &entry.id);
                Liveness::Live
            }
            Intake::Remote => Liveness::Live,
            Intake::Unwatched => Liveness::Unwatched,
            Intake::Dead(_) => Liveness::Dead,
        };
        Tracked {
            json: model::entry_json(&entry).into(),
            entry: Arc::new(entry),
            file,
            state,
            owner: Owner::Unchecked,
        }
    }

    fn hold(&mut self, pid: u32, fd: OwnedFd, id: &str) {
        let (_, ids) = self.processes.entry(pid).or_insert_with(|| {
            let added = epoll::add(
                &self.pending.epoll,
                &fd,
                epoll::EventData::new_u64(PIDFD | u64::from(pid)),
                epoll::EventFlags::IN,
            );
            if let Err(e) = added {
                tracing::warn!("cannot watch process {pid}: {e}");
            }
            (fd, HashSet::new())
        });
        ids.insert(id.to_owned());
    }

    /// Drops the directory entry `id`, if known.
    fn forget(&mut self, id: &str) {
        if let Some(old) = self.files.remove(id) {
            self.release(&old);
            self.dirty = true;
        }
    }

    fn release(&mut self, t: &Tracked) {
        if let Some((_, ids)) = self.processes.get_mut(&t.entry.pid) {
            ids.remove(&t.entry.id);
            if ids.is_empty()
                && let Some((fd, _)) = self.processes.remove(&t.entry.pid)
            {
                let _ = epoll::delete(&self.pending.epoll, &fd);
            }
        }
    }

    /// A held process exited: every entry it had is dead.
    fn process_exited(&mut self, pid: u32) {
        let Some((fd, ids)) = self.processes.remove(&pid) else {
            return;
        };
        let _ = epoll::delete(&self.pending.epoll, &fd);
        for t in self.files.values_mut().chain(self.legacy.iter_mut()) {
            if t.entry.pid == pid && ids.contains(&t.entry.id) {
                t.state = Liveness::Dead;
            }
        }
        self.dirty = true;
    }

    /// The live list now, in registration order, with its JSON.
    fn answer(&mut self) -> Answer {
        let mut live: Vec<&Tracked> = self.files.values().filter(|t| t.shown()).collect();
        live.extend(
            self.legacy
                .iter()
                .filter(|t| t.shown() && !self.files.contains_key(&t.entry.id)),
        );
        let answer = Answer::of(live.into_iter().map(|t| (&t.entry, &*t.json)).collect());
        self.next_expiry = answer.expires;
        answer
    }
}
