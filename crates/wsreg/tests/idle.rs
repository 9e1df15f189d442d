//! Idle is free: 50 registered `wsreg echo` servers and a `wsreg serve` with two SSE
//! subscribers, while nothing changes, use next to no CPU together. A loose bound (0.5
//! CPU-s in 5 s), there to catch any feedback loop for good: in registry v1 a watch that
//! woke on every read made idle servers wake each other, and 100 of them saturated two
//! cores.
//!
//! The 5 s is the measuring window, not a wait for something to happen.

mod common;

use std::time::Duration;

use common::{Events, Registry, STEP, eventually};

/// The CPU time a process has used, in clock ticks (utime + stime).
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("a running process");
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn fifty_idle_servers_and_a_watching_endpoint_use_next_to_no_cpu() {
    let reg = Registry::new();
    // Health probes are a cost by design while a page is open (tests/health.rs); here
    // nothing may run.
    let (serve_proc, serve) = reg.serve(&["--health-interval", "0"]);
    let echoes: Vec<_> = (0..50).map(|_| reg.echo(&[])).collect();
    let events = [
        Events::subscribe(serve.addr, "/api/registry/events"),
        Events::subscribe(serve.addr, "/api/registry/events?kind=echo"),
    ];
    eventually("all 50 listed", STEP, || reg.ids().len() == 50);
    for e in &events {
        eventually("the subscriber has all 50", STEP, || {
            e.try_next_servers(Duration::from_millis(100))
                .is_some_and(|doc| common::ids(&doc).len() == 50)
        });
    }
    let pids: Vec<i32> = echoes
        .iter()
        .map(|(p, _)| p.pid())
        .chain([serve_proc.pid()])
        .collect();
    let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    std::thread::sleep(Duration::from_secs(5));
    let after: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let used = (after - before) as f64 / hz;
    println!("50 idle echo servers + serve with 2 subscribers: {used:.3} CPU-s over 5 s");
    assert!(used <= 0.5, "idle servers used {used:.3} CPU-s in 5 s");
    for e in &events {
        assert!(
            e.try_next_servers(Duration::ZERO).is_none(),
            "an event while nothing changed"
        );
    }
}
