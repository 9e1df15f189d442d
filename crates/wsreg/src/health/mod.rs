//! Health: whether each listed server really answers, as the registry endpoint shows it
//! (`"health": {"state", "checkedAt", "latencyMs"}` on every entry of the API and of the
//! SSE events; see docs/api.md, "Health").
//!
//! A [`Monitor`] sits between the process's live list ([`Live`]: the directory's
//! [`LiveWatch`](crate::LiveWatch) or etcd's watch) and the HTTP handlers. It turns
//! each live list into a [`View`] — the entries with their health, and the document built
//! once for every reader — and, while at least one client is subscribed, probes every
//! live server each interval ([`probe`]), and a new one at once.
//!
//! - **A steady list costs nothing.** A new view is published only when the list or a
//!   state changes, never for a probe that confirms what was known; so `checkedAt` is
//!   the time of the probe that found the current state.
//! - **Probes never hold up the list.** They run in their own tasks and report back; a
//!   registration reaches subscribers as fast as without health.
//! - **One serialisation per entry change.** Each entry's JSON with its health is kept
//!   and reused while neither changes, so a state change costs a join of strings.
//! - The book of states is behind a std `Mutex`: it is held for microseconds, never
//!   across an await, and both the task and `GET` (building the view of an exact
//!   answer) use it.

pub mod probe;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, watch};

use crate::backend::Live;
use crate::registry::model::{self, Entry, HealthCheck, Timestamp};
use crate::registry::{Answer, Filter};

/// How often each server is probed by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// How long a probe may take before the server counts as unresponsive.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How many probes run at once.
const PARALLEL_PROBES: usize = 32;

/// A server's health as the API prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub state: State,
    /// The probe that found the current state.
    pub checked_at: Option<Timestamp>,
    /// That probe's duration, in microseconds (`None` when it failed).
    pub latency_us: Option<u64>,
}

/// What the last probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ok,
    Unresponsive,
    Unknown,
    None,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Unresponsive => "unresponsive",
            State::Unknown => "unknown",
            State::None => "none",
        }
    }
}

impl Health {
    /// Not probed (yet).
    pub const UNKNOWN: Health = Health {
        state: State::Unknown,
        checked_at: None,
        latency_us: None,
    };
    /// Never probed (the entry says `"health": "none"`).
    pub const NONE: Health = Health {
        state: State::None,
        ..Health::UNKNOWN
    };

    /// The result of one probe at `at` that took `took`.
    pub fn probed(result: &Result<(), probe::ProbeError>, at: Timestamp, took: Duration) -> Health {
        match result {
            Ok(()) => Health {
                state: State::Ok,
                checked_at: Some(at),
                latency_us: Some(took.as_micros() as u64),
            },
            Err(_) => Health {
                state: State::Unresponsive,
                checked_at: Some(at),
                latency_us: None,
            },
        }
    }

    /// `{"state":…,"checkedAt":…,"latencyMs":…}`.
    pub fn to_json(&self) -> String {
        let mut json = format!(r#"{{"state":"{}","checkedAt":"#, self.state.as_str());
        match self.checked_at {
            Some(at) => write!(json, r#""{at}""#),
            None => write!(json, "null"),
        }
        .expect("writing to a String");
        match self.latency_us {
            Some(us) => write!(json, r#","latencyMs":{}.{}}}"#, us / 1000, us % 1000 / 100),
            None => write!(json, r#","latencyMs":null}}"#),
        }
        .expect("writing to a String");
        json
    }
}

/// The live list with each entry's health, and its document, built once.
#[derive(Debug)]
pub struct View {
    /// The live entries, in registration order.
    pub live: Vec<Arc<Entry>>,
    /// Each entry's health, in the same order.
    pub health: Vec<Health>,
    /// Each entry's JSON as the API prints it, in the same order.
    parts: Vec<Arc<str>>,
    /// `{"version":1,"servers":[…]}` for all of them.
    pub json: Arc<str>,
    framed: OnceLock<Arc<str>>,
    /// The watch's answer this view was built from.
    source: Arc<Answer>,
}

impl View {
    /// `json` framed by `frame`, built by the first caller and shared with the others.
    pub fn framed(&self, frame: impl FnOnce(&str) -> String) -> Arc<str> {
        self.framed.get_or_init(|| frame(&self.json).into()).clone()
    }

    /// The JSON parts of the entries `filter` selects, in order.
    pub fn selected(&self, filter: &Filter) -> Vec<Arc<str>> {
        self.live
            .iter()
            .zip(&self.parts)
            .filter(|(e, _)| filter.matches(e))
            .map(|(_, part)| part.clone())
            .collect()
    }

    /// The document of the entries `filter` selects.
    pub fn filtered_json(&self, filter: &Filter) -> String {
        model::document_from_parts(self.selected(filter).iter().map(|p| &**p))
    }
}

/// One entry's printed JSON, kept while neither the entry nor its health changes.
struct Part {
    entry: Arc<Entry>,
    health: Health,
    json: Arc<str>,
}

/// The states found so far, and the parts and view built from them.
#[derive(Default)]
struct Book {
    states: HashMap<String, Health>,
    parts: HashMap<String, Part>,
    last: Option<Arc<View>>,
}

impl Book {
    /// The view of `answer` with the states known now; the last one when nothing changed.
    fn view(&mut self, answer: &Arc<Answer>) -> Arc<View> {
        if let Some(last) = self
            .last
            .as_ref()
            .filter(|v| Arc::ptr_eq(&v.source, answer))
        {
            return last.clone();
        }
        let mut parts = HashMap::with_capacity(answer.live.len());
        let mut health = Vec::with_capacity(answer.live.len());
        let mut jsons = Vec::with_capacity(answer.live.len());
        for entry in &answer.live {
            let h = match entry.health {
                HealthCheck::None => Health::NONE,
                HealthCheck::Probe => self
                    .states
                    .get(&entry.id)
                    .copied()
                    .unwrap_or(Health::UNKNOWN),
            };
            let part = match self.parts.remove(&entry.id) {
                Some(p) if Arc::ptr_eq(&p.entry, entry) && p.health == h => p,
                _ => Part {
                    entry: entry.clone(),
                    health: h,
                    json: printed(entry, &h).into(),
                },
            };
            health.push(h);
            jsons.push(part.json.clone());
            parts.insert(entry.id.clone(), part);
        }
        self.parts = parts;
        // States of entries that left go with them.
        let parts = &self.parts;
        self.states.retain(|id, _| parts.contains_key(id));
        let view = Arc::new(View {
            live: answer.live.clone(),
            json: model::document_from_parts(jsons.iter().map(|p| &**p)).into(),
            parts: jsons,
            health,
            framed: OnceLock::new(),
            source: answer.clone(),
        });
        self.last = Some(view.clone());
        view
    }

    /// Records a probe's result for `entry`; whether the state changed. A result for an
    /// entry that is no longer listed as it was probed is dropped: found by id in the
    /// last view's parts, so a round of N results costs N lookups, not N scans of N.
    fn record(&mut self, entry: &Arc<Entry>, health: Health) -> bool {
        let listed = self
            .parts
            .get(&entry.id)
            .is_some_and(|p| Arc::ptr_eq(&p.entry, entry));
        let changed = listed
            && self
                .states
                .get(&entry.id)
                .is_none_or(|h| h.state != health.state);
        if changed {
            self.states.insert(entry.id.clone(), health);
            self.last = None;
        }
        changed
    }

    /// Forgets every state (nobody is subscribed any more).
    fn forget(&mut self) {
        if !self.states.is_empty() {
            self.states.clear();
            self.last = None;
        }
    }
}

/// An entry's canonical JSON with `health` as its last key, in place of the file's own
/// `"health":"none"` where it has one.
fn printed(entry: &Entry, health: &Health) -> String {
    let json = model::entry_json(entry);
    let body = json
        .strip_suffix(r#","health":"none"}"#)
        .or_else(|| json.strip_suffix('}'))
        .expect("an entry serialises as an object");
    format!(r#"{body},"health":{}}}"#, health.to_json())
}

/// What the task and the handlers share.
struct Shared {
    watch: Arc<Live>,
    book: Mutex<Book>,
    views: watch::Sender<Arc<View>>,
    subscribers: AtomicUsize,
    /// Told when the number of subscribers goes from 0 to 1 or back.
    subscribers_changed: Notify,
}

impl Shared {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        // A panic while holding it leaves states and cached parts, still consistent.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the view of the watch's current answer, when it differs.
    fn publish(&self) {
        let view = self.book().view(&self.watch.current());
        self.views.send_if_modified(|old| {
            let changed = old.json != view.json;
            *old = view;
            changed
        });
    }
}

/// The health layer of one endpoint; stops its task when dropped.
pub struct Monitor {
    shared: Arc<Shared>,
    interval: Duration,
    /// Started by the first subscriber: only subscribers need views pushed, and it
    /// needs the runtime, which the endpoint may be made before.
    task: OnceLock<tokio::task::JoinHandle<()>>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

/// A subscriber's claim on probing: probes run while at least one is held.
pub struct Subscription {
    shared: Arc<Shared>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.shared.subscribers.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.subscribers_changed.notify_one();
        }
    }
}

impl Monitor {
    /// The layer over `watch`, probing every `interval` while anyone is
    /// subscribed; a zero interval never probes (every state is `unknown`).
    pub fn new(watch: Arc<Live>, interval: Duration) -> Monitor {
        let mut book = Book::default();
        let first = book.view(&watch.current());
        let shared = Arc::new(Shared {
            watch,
            book: Mutex::new(book),
            views: watch::channel(first).0,
            subscribers: AtomicUsize::new(0),
            subscribers_changed: Notify::new(),
        });
        Monitor {
            shared,
            interval,
            task: OnceLock::new(),
        }
    }

    /// The current view, exact at the time of the call (see [`Live::exact`]).
    pub async fn exact(&self) -> Arc<View> {
        let answer = self.shared.watch.exact().await;
        self.shared.book().view(&answer)
    }

    /// Views as they change, and the claim that keeps probes running. Call it within
    /// the runtime.
    pub fn subscribe(&self) -> (watch::Receiver<Arc<View>>, Subscription) {
        self.task
            .get_or_init(|| tokio::spawn(run(self.shared.clone(), self.interval)));
        if self.shared.subscribers.fetch_add(1, Ordering::SeqCst) == 0 {
            self.shared.subscribers_changed.notify_one();
        }
        let subscription = Subscription {
            shared: self.shared.clone(),
        };
        // The view of the list now: the task publishes changes only, and it may not have
        // run since the list last changed (it starts with the first subscriber).
        self.shared.publish();
        (self.shared.views.subscribe(), subscription)
    }
}

/// A probe's result, sent back to the task.
struct Probed {
    entry: Arc<Entry>,
    health: Health,
}

/// The task: follows the watch, runs probe rounds while anyone is subscribed, records
/// their results and publishes what changed.
async fn run(shared: Arc<Shared>, interval: Duration) {
    let mut answers = shared.watch.subscribe();
    let (results_tx, mut results) = mpsc::unbounded_channel::<Probed>();
    let probing = !interval.is_zero();
    // Entries being probed, so that a round does not probe one twice.
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut next_round: Option<tokio::time::Instant> = None;
    loop {
        let subscribed = probing && shared.subscribers.load(Ordering::SeqCst) > 0;
        let round_due = async {
            match next_round {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = answers.changed() => {
                if changed.is_err() {
                    return;
                }
                answers.borrow_and_update();
                shared.publish();
                if subscribed {
                    // New entries are probed at once, not at the next round.
                    let known = shared.book();
                    let new: Vec<Arc<Entry>> = shared.watch.current().live.iter()
                        .filter(|e| e.health == HealthCheck::Probe && !known.states.contains_key(&e.id))
                        .cloned()
                        .collect();
                    drop(known);
                    start_probes(new, &mut in_flight, &results_tx);
                }
            }
            () = shared.subscribers_changed.notified() => {
                let subscribed = probing && shared.subscribers.load(Ordering::SeqCst) > 0;
                match (subscribed, next_round.is_some()) {
                    (true, false) => next_round = Some(tokio::time::Instant::now()),
                    (false, true) => {
                        next_round = None;
                        shared.book().forget();
                        shared.publish();
                    }
                    _ => {}
                }
            }
            () = round_due => {
                next_round = Some(tokio::time::Instant::now() + interval);
                // A server that closed its listener is dropped from the list too.
                shared.watch.recheck_listeners();
                let live: Vec<Arc<Entry>> = shared.watch.current().live.iter()
                    .filter(|e| e.health == HealthCheck::Probe)
                    .cloned()
                    .collect();
                start_probes(live, &mut in_flight, &results_tx);
            }
            Some(probed) = results.recv() => {
                in_flight.remove(&probed.entry.id);
                // A result that comes after the last subscriber left, or for an entry
                // that is gone (see `record`), is not recorded.
                if next_round.is_some() && shared.book().record(&probed.entry, probed.health) {
                    shared.publish();
                }
            }
        }
    }
}

/// Probes `entries` in a task of their own, at most [`PARALLEL_PROBES`] at a time.
fn start_probes(
    entries: Vec<Arc<Entry>>,
    in_flight: &mut HashSet<String>,
    results: &mpsc::UnboundedSender<Probed>,
) {
    let entries: Vec<Arc<Entry>> = entries
        .into_iter()
        .filter(|e| in_flight.insert(e.id.clone()))
        .collect();
    if entries.is_empty() {
        return;
    }
    let results = results.clone();
    tokio::spawn(async move {
        futures_util::stream::iter(entries)
            .map(|entry| async move {
                let started = Instant::now();
                let at = Timestamp::now();
                let result = probe::probe(&entry, PROBE_TIMEOUT).await;
                if let Err(e) = &result {
                    tracing::debug!("health probe of {} ({}): {e}", entry.id, entry.url);
                }
                let health = Health::probed(&result, at, started.elapsed());
                Probed { entry, health }
            })
            .buffer_unordered(PARALLEL_PROBES)
            .for_each(|probed| {
                let _ = results.send(probed);
                async {}
            })
            .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_prints_as_the_api_says() {
        assert_eq!(
            Health::UNKNOWN.to_json(),
            r#"{"state":"unknown","checkedAt":null,"latencyMs":null}"#
        );
        let at = Timestamp::parse("2026-11-25T12:00:05.120Z").unwrap();
        let ok = Health::probed(&Ok(()), at, Duration::from_micros(1_234_567));
        assert_eq!(
            ok.to_json(),
            r#"{"state":"ok","checkedAt":"2026-11-25T12:00:05.120Z","latencyMs":1234.5}"#
        );
        let failed = Health::probed(&Err(probe::ProbeError::Closed), at, Duration::ZERO);
        assert_eq!(
            failed.to_json(),
            r#"{"state":"unresponsive","checkedAt":"2026-11-25T12:00:05.120Z","latencyMs":null}"#
        );
    }

    #[test]
    fn health_replaces_the_files_own_field_as_the_last_key() {
        let doc = r#"{"servers":[{"id":"a","port":1,"pid":1,"health":"none","healthUrl":"http://127.0.0.1:1/"},{"id":"b","port":2,"pid":1}]}"#;
        let entries = model::parse(doc.as_bytes()).unwrap().entries;
        let none: serde_json::Value =
            serde_json::from_str(&printed(&entries[0], &Health::NONE)).unwrap();
        assert_eq!(none["health"]["state"], "none");
        assert_eq!(none["healthUrl"], "http://127.0.0.1:1/");
        let plain = printed(&entries[1], &Health::UNKNOWN);
        assert!(
            plain.ends_with(
                r#""meta":{},"health":{"state":"unknown","checkedAt":null,"latencyMs":null}}"#
            ),
            "{plain}"
        );
    }
}
