//! Benchmark 3: the registry itself. The per-operation latencies come from the criterion
//! benches in `crates/wsreg/benches/registry.rs` (run by `bench/run.sh` just before
//! this), read back from criterion's estimates; the storm is run here, for wsreg's
//! locked writers and for the prototype's unlocked ones.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use super::{Env, Outcome, Side};
use crate::report::{Section, Table, Target, num};
use crate::storm;

/// The entry counts the criterion benches use.
const SIZES: [u32; 2] = [10, 1000];
const OPERATIONS: [&str; 3] = ["register", "unregister", "list"];
const STORM_WRITERS: usize = 200;

pub fn run(env: &Env) -> Result<Outcome> {
    let mut sections = vec![criterion_section(env)];
    let mut table = Table::new(&[
        "writers",
        "all listed after (ms)",
        "all writers done after (ms)",
        "entries lost",
    ]);
    let mut targets = Vec::new();
    for side in Side::BOTH {
        let registry = env.fresh_registry();
        let outcome = storm::run(STORM_WRITERS, &registry, |port| {
            writer(env, side, &registry, port)
        })
        .with_context(|| format!("the storm of {}", writer_name(side)))?;
        let listed = outcome
            .all_listed
            .map_or("never".into(), |d| num(d.as_secs_f64() * 1e3, 0));
        table.row(vec![
            format!("{} × {}", outcome.writers, writer_name(side)),
            listed.clone(),
            num(outcome.all_done.as_secs_f64() * 1e3, 0),
            format!(
                "{} of {}{}",
                outcome.lost,
                outcome.writers,
                if outcome.corrupt {
                    " (file left corrupt)"
                } else {
                    ""
                }
            ),
        ]);
        if side == Side::Wsreg {
            targets.push(Target {
                name: "200-server storm".into(),
                goal: "0 lost, all listed within 1 s".into(),
                achieved: format!("{} lost, all listed after {listed} ms", outcome.lost),
                met: outcome.lost == 0
                    && outcome
                        .all_listed
                        .is_some_and(|d| d <= Duration::from_secs(1)),
            });
        }
    }
    sections.push(Section {
        title: "3b. Storm: 200 registrations released at the same instant".into(),
        text: format!(
            "{STORM_WRITERS} writer processes are started and each says `ready`; then one \
             line to each one's stdin releases them together, and the file is polled every \
             0.5 ms by an observer that counts the entries (by port) whatever their format. \
             wsreg's writers call `Server::register_once` (lock, read, write a temp file, \
             fsync, rename, fsync the directory); the baseline's do the prototype's unlocked \
             read-modify-write (`bench/baseline/storm-register.js`)."
        ),
        table: Some(table),
    });
    Ok(Outcome { sections, targets })
}

fn writer(env: &Env, side: Side, registry: &std::path::Path, port: u16) -> Command {
    let pid = std::process::id().to_string();
    match side {
        Side::Wsreg => {
            let mut cmd = Command::new(&env.harness);
            cmd.arg("storm-writer")
                .arg("--registry")
                .arg(registry)
                .args(["--port", &port.to_string(), "--pid", &pid]);
            cmd
        }
        Side::Baseline => {
            let mut cmd = env.node(registry, "baseline/storm-register.js", &[]);
            cmd.env("WSREG_BENCH_PID", pid)
                .env("WSREG_BENCH_PORT", port.to_string());
            cmd
        }
    }
}

fn writer_name(side: Side) -> &'static str {
    match side {
        Side::Wsreg => "wsreg (`Server::register_once`)",
        Side::Baseline => "Node prototype",
    }
}

/// The criterion medians, or a note saying they are missing.
fn criterion_section(env: &Env) -> Section {
    let mut table = Table::new(&["operation", "10 entries (µs)", "1,000 entries (µs)"]);
    let mut missing = Vec::new();
    for op in OPERATIONS {
        let mut row = vec![format!("`{op}`")];
        for size in SIZES {
            let path = env.repo.join(format!(
                "target/criterion/registry/{op}/{size}/new/estimates.json"
            ));
            match median_ns(&path) {
                Some(ns) => row.push(num(ns / 1e3, 1)),
                None => {
                    missing.push(path.display().to_string());
                    row.push("–".into());
                }
            }
        }
        table.row(row);
    }
    let mut text = "Criterion medians (`cargo bench -p wsreg --bench registry`), on a registry \
        file in `target/` on this machine's disk. `register` and `unregister` are whole \
        locked writes through `Store` (lock, read, judge liveness, write a temp file, fsync, \
        rename, fsync the directory); `list` is `Store::live` (read, parse, judge liveness)."
        .to_owned();
    if !missing.is_empty() {
        text.push_str(&format!("\n\nMissing estimates: {}.", missing.join(", ")));
    }
    Section {
        title: "3. Registry operations".into(),
        text,
        table: Some(table),
    }
}

fn median_ns(path: &std::path::Path) -> Option<f64> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}
