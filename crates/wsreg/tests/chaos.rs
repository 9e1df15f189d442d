//! Chaos: 50 `wsreg echo` servers under random SIGKILL, SIGTERM and start for
//! `WSREG_CHAOS_SECS` seconds (default 30, what CI runs), while three readers observe:
//! `wsreg watch --json`, an SSE subscriber of `wsreg serve`, and a loop that reads the
//! registry directory through the real reader. At the end the live list (API, SSE and
//! watch alike) equals the set of processes still alive, exactly; no reader ever saw an
//! unparseable file or line.
//!
//! Printed: the actions (kills, terms, starts), the events each reader saw, and how long
//! the SSE list took to reflect each change: a SIGKILL is pushed by its process's pidfd
//! (the divergence proper: a dead server still listed), a SIGTERM by the server's own
//! unregistration, a start by its registration (which includes the process starting up).
//!
//! The page observes the same chaos in Chromium in `e2e/chaos.test.js` (a browser test,
//! run by `npm test`); the SSE subscriber below reads the very stream the page reads.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Events, Proc, Registry, STEP, get};

const SERVERS: usize = 50;

/// A small deterministic generator (xorshift64*), seeded from the clock and printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

fn pids(doc: &serde_json::Value) -> BTreeSet<u32> {
    doc["servers"]
        .as_array()
        .expect("a servers array")
        .iter()
        .map(|s| s["pid"].as_u64().expect("a pid") as u32)
        .collect()
}

/// Each SSE event: when it arrived, and the PIDs it listed.
type Seen = Vec<(Instant, BTreeSet<u32>)>;

enum Action {
    Killed(u32),
    Terminated(u32),
    Started(u32),
}

#[test]
fn fifty_servers_under_random_kills_and_starts_end_listed_exactly() {
    let seconds: u64 = std::env::var("WSREG_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("chaos: {SERVERS} servers, {seconds} s, seed {seed}");
    let mut rng = Rng(seed);
    let reg = Registry::new();
    let (_serve, serve) = reg.serve(&[]);
    let stop = Arc::new(AtomicBool::new(false));

    // Reader 1: the SSE stream, every event timestamped.
    let events = Events::subscribe(serve.addr, "/api/registry/events");
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let sse = {
        let (seen, stop) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(doc) = events.try_next_servers(Duration::from_millis(100)) {
                    seen.lock().unwrap().push((Instant::now(), pids(&doc)));
                }
            }
        })
    };
    // Reader 2: wsreg watch --json, every line a document.
    let mut watch = reg
        .command(&["watch", "--json"])
        .spawn()
        .expect("start watch");
    let watch_out = BufReader::new(watch.stdout.take().unwrap());
    let watch_last: Arc<Mutex<Option<BTreeSet<u32>>>> = Arc::default();
    let watch_lines = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (last, lines) = (watch_last.clone(), watch_lines.clone());
        std::thread::spawn(move || {
            for line in watch_out.lines() {
                let Ok(line) = line else { return };
                let doc: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("watch printed a line that is not JSON ({e})"));
                *last.lock().unwrap() = Some(pids(&doc));
                lines.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Reader 3: the directory, through the real reader, as fast as it goes: no entry
    // file may ever be skipped (torn or empty).
    let file_reads = Arc::new(AtomicU64::new(0));
    let raw = {
        let (store, stop, reads) = (reg.store(), stop.clone(), file_reads.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let snapshot = store.read().expect("the registry reads");
                assert!(
                    snapshot.skipped.is_empty(),
                    "a reader saw an unparseable file: {:?}",
                    snapshot.skipped
                );
                reads.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    let mut running: Vec<Proc> = (0..SERVERS)
        .map(|_| reg.spawn(&["echo", "--port", "0"]))
        .collect();
    let mut exiting: Vec<Proc> = Vec::new();
    let mut actions: Vec<(Instant, Action)> = running
        .iter()
        .map(|p| (Instant::now(), Action::Started(p.pid() as u32)))
        .collect();
    let (mut kills, mut terms, mut starts) = (0, 0, SERVERS);
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10 + rng.below(40) as u64));
        // Start with probability (55 - n) / 20, so the population hovers near 45 and
        // never passes 50; otherwise SIGKILL or SIGTERM, alike.
        let n = running.len();
        let choice = match n < SERVERS && rng.below(20) + n < SERVERS + 5 {
            true => 2,
            false => rng.below(2),
        };
        match choice {
            0 | 1 => {
                let proc = running.swap_remove(rng.below(running.len()));
                let pid = proc.pid() as u32;
                if choice == 0 {
                    proc.signal(libc::SIGKILL);
                    actions.push((Instant::now(), Action::Killed(pid)));
                    kills += 1;
                } else {
                    proc.signal(libc::SIGTERM);
                    actions.push((Instant::now(), Action::Terminated(pid)));
                    terms += 1;
                }
                exiting.push(proc);
            }
            _ => {
                let proc = reg.spawn(&["echo", "--port", "0"]);
                actions.push((Instant::now(), Action::Started(proc.pid() as u32)));
                starts += 1;
                running.push(proc);
            }
        }
        exiting.retain_mut(|p| p.try_status().is_none());
    }
    // Let the exiting ones finish; the survivors are the truth.
    for proc in &mut exiting {
        proc.wait_exit(STEP);
    }
    let alive: BTreeSet<u32> = running.iter().map(|p| p.pid() as u32).collect();
    let settled = Instant::now();
    let api = || pids(&get(serve.addr, "/api/registry", &[]).json());
    if std::panic::catch_unwind(|| {
        common::eventually("the API lists exactly the live processes", STEP, || {
            api() == alive
        })
    })
    .is_err()
    {
        let listed = api();
        let all = reg.output(&["list", "--all", "--json"]);
        panic!(
            "listed but not alive: {:?}; alive but not listed: {:?}\n{}",
            listed.difference(&alive).collect::<Vec<_>>(),
            alive.difference(&listed).collect::<Vec<_>>(),
            String::from_utf8_lossy(&all.stdout)
        );
    }
    common::eventually("the SSE stream shows exactly them", STEP, || {
        seen.lock()
            .unwrap()
            .last()
            .is_some_and(|(_, p)| *p == alive)
    });
    common::eventually("wsreg watch shows exactly them", STEP, || {
        watch_last.lock().unwrap().as_ref() == Some(&alive)
    });
    let converged = settled.elapsed();
    stop.store(true, Ordering::Relaxed);
    sse.join().expect("the SSE reader");
    raw.join()
        .expect("the raw file reader never saw an unparseable file");
    let _ = watch.kill();
    let _ = watch.wait();
    watcher.join().expect("every watch line was JSON");

    // How long the SSE list took to reflect each action.
    let seen = seen.lock().unwrap();
    let mut lag: HashMap<&str, Vec<Duration>> = HashMap::new();
    for (at, action) in &actions {
        let (kind, pid, want) = match action {
            Action::Killed(pid) => ("SIGKILL→gone", pid, false),
            Action::Terminated(pid) => ("SIGTERM→gone", pid, false),
            Action::Started(pid) => ("start→listed", pid, true),
        };
        let reflected = seen
            .iter()
            .find(|(t, p)| t >= at && p.contains(pid) == want)
            .map(|(t, _)| *t - *at);
        // A server stopped before it ever registered is never listed: nothing to measure.
        if let Some(d) = reflected {
            lag.entry(kind).or_default().push(d);
        }
    }
    println!(
        "chaos figures: {kills} SIGKILL, {terms} SIGTERM, {starts} starts; {} alive at the end",
        alive.len()
    );
    println!(
        "readers: {} SSE events, {} watch lines, {} reads of the directory, 0 files skipped",
        seen.len(),
        watch_lines.load(Ordering::Relaxed),
        file_reads.load(Ordering::Relaxed)
    );
    let mut killed_max = Duration::ZERO;
    for (kind, mut v) in lag {
        v.sort();
        let max = v.last().copied().unwrap_or_default();
        if kind.starts_with("SIGKILL") {
            killed_max = max;
        }
        println!(
            "divergence (SSE) {kind}: median {:?}, p99 {:?}, max {max:?} over {} changes",
            v[v.len() / 2],
            v[(v.len() * 99 / 100).min(v.len() - 1)],
            v.len()
        );
    }
    println!("after the last action all readers agreed within {converged:?}");
    // Only a SIGKILL makes a listed entry false: the process is dead at once, and only
    // its pidfd tells the readers. A SIGTERMed server is alive and rightly listed until
    // it has unregistered; a started one unlisted until it has registered.
    assert!(
        killed_max < Duration::from_secs(3),
        "a killed server stayed listed {killed_max:?}"
    );
}
