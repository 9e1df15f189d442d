//! The cost of a registered server: time from `spawn` to its entry in the registry file,
//! and its resident memory once idle.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::observed;
use crate::proc;
use crate::spawned::Spawned;

/// How long a server is left alone before its memory is read.
const SETTLE: Duration = Duration::from_millis(1000);

#[derive(Debug)]
pub struct Outcome {
    /// Spawn → entry on disk, one per run, in milliseconds.
    pub registered_ms: Vec<f64>,
    /// Idle resident memory, one per run, in KiB.
    pub idle_rss_kib: Vec<u64>,
    /// Its anonymous part, one per run, in KiB.
    pub idle_anon_kib: Vec<u64>,
}

/// Starts the server `runs` times, one at a time.
pub fn measure(registry: &Path, runs: usize, server: impl Fn() -> Command) -> Result<Outcome> {
    let mut outcome = Outcome {
        registered_ms: Vec::new(),
        idle_rss_kib: Vec::new(),
        idle_anon_kib: Vec::new(),
    };
    for _ in 0..runs {
        let mut s = Spawned::start(server(), "the server")?;
        let deadline = s.started + Duration::from_secs(10);
        while !observed::has_pid(registry, s.pid()) {
            if Instant::now() > deadline || s.exited() {
                bail!("the server did not register within 10 s");
            }
            std::thread::sleep(Duration::from_micros(250));
        }
        outcome
            .registered_ms
            .push(s.started.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(SETTLE);
        if let Some(rss) = proc::rss_kib(s.pid()) {
            outcome.idle_rss_kib.push(rss);
        }
        if let Some(anon) = proc::rss_anon_kib(s.pid()) {
            outcome.idle_anon_kib.push(anon);
        }
        s.stop();
    }
    Ok(outcome)
}
