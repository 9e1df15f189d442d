//! Benchmark 3: the registry's operations. The per-operation latencies of this tree come
//! from the criterion benches in `crates/wsreg/benches/registry.rs` (run by
//! `bench/run.sh` just before this), read back from criterion's estimates.
//!
//! The v1 build has no criterion bench at 10,000 entries, so both builds are also timed
//! the same way here: `wsreg register` and `wsreg unregister` as commands, on a registry
//! holding 10 or 10,000 other live entries, less the same binary's start-up (`wsreg
//! --version`). That like-for-like figure gives the v2-vs-v1 ratio.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Env, Outcome, Side, median};
use crate::fill;
use crate::report::{Better, Section, Table, Target, num, of_target, vs};

/// The entry counts the criterion benches use.
const SIZES: [u32; 3] = [10, 1000, 10_000];
const OPERATIONS: [&str; 3] = ["register", "unregister", "list"];
/// The entry counts of issue 11's target, timed as commands for both builds.
const CLI_SIZES: [usize; 2] = [10, 10_000];
/// Below this a command's net time is start-up noise (the medians of two process runs
/// on a shared machine): a v2-vs-v1 ratio from a smaller figure is a lower bound.
const NET_RESOLUTION_US: f64 = 500.0;
/// Criterion's target: 100 µs.
const GOAL_US: f64 = 100.0;

pub fn run(env: &Env) -> Result<Outcome> {
    let (criterion, medians) = criterion_section(env);
    let runs = env.pick(15, 5);
    let mut table = Table::new(&[
        "build",
        "entries",
        "start-up (`--version`) ms",
        "`register` command ms",
        "net µs",
        "`unregister` command ms",
        "net µs",
    ]);
    // (side, size) → (register net µs, unregister net µs)
    let mut net = Vec::new();
    for side in [Side::Wsreg, Side::V1] {
        for size in CLI_SIZES {
            match cli_times(env, side, size, runs) {
                Ok(t) => {
                    table.row(vec![
                        Env::name(side, "endpoint").replace("serve", "register"),
                        num(size as f64, 0),
                        num(t.startup_ms, 2),
                        num(t.register_ms, 2),
                        num((t.register_ms - t.startup_ms) * 1e3, 0),
                        num(t.unregister_ms, 2),
                        num((t.unregister_ms - t.startup_ms) * 1e3, 0),
                    ]);
                    net.push((
                        side,
                        size,
                        (t.register_ms - t.startup_ms) * 1e3,
                        (t.unregister_ms - t.startup_ms) * 1e3,
                    ));
                }
                Err(e) => {
                    eprintln!("    {} with {size} entries: {e:#}", Env::name(side, "echo"));
                    table.row(vec![
                        Env::name(side, "endpoint").replace("serve", "register"),
                        num(size as f64, 0),
                        format!("failed: {e:#}"),
                    ]);
                }
            }
        }
    }
    // Rows: v2 with each of CLI_SIZES, then v1 with each.
    for (i, size) in CLI_SIZES.into_iter().enumerate() {
        let label = format!("v2 vs v1, {} entries", num(size as f64, 0));
        table.compare(&label, i, i + CLI_SIZES.len(), 2);
    }
    let mut targets = Vec::new();
    for (i, op) in ["register", "unregister"].into_iter().enumerate() {
        let crit = |size: u32| {
            medians
                .iter()
                .find(|(o, s, _)| *o == op && *s == size)
                .map(|(_, _, us)| *us)
        };
        let cli = |side: Side, size: usize| {
            net.iter()
                .find(|(s, n, _, _)| *s == side && *n == size)
                .map(|t| if i == 0 { t.2 } else { t.3 })
        };
        let pair = |a: Option<f64>, b: Option<f64>, unit: &str| {
            format!(
                "{} / {} {unit}",
                a.map_or("–".into(), |x| num(x, 1)),
                b.map_or("–".into(), |x| num(x, 1))
            )
        };
        let (c10, c10k) = (crit(10), crit(10_000));
        let worst = c10.zip(c10k).map(|(a, b)| a.max(b));
        let ratio = |size| match (cli(Side::Wsreg, size), cli(Side::V1, size)) {
            (Some(w), Some(b)) if w.max(b) < NET_RESOLUTION_US => {
                format!("≈ (both < {} ms)", NET_RESOLUTION_US / 1e3)
            }
            (Some(w), Some(b)) => vs(w, b, Better::Lower, NET_RESOLUTION_US),
            _ => "–".into(),
        };
        let met = worst.is_some_and(|w| w <= GOAL_US);
        targets.push(Target {
            issue: 11,
            name: format!("`{op}`, median, with 10 / 10,000 other entries"),
            goal: "≤ 100 µs both (criterion)".into(),
            achieved: format!(
                "{} (criterion); as a command, net: {}",
                pair(c10, c10k, "µs"),
                pair(cli(Side::Wsreg, 10), cli(Side::Wsreg, 10_000), "µs")
            ),
            v1: format!(
                "as a command, net: {}",
                pair(cli(Side::V1, 10), cli(Side::V1, 10_000), "µs")
            ),
            node: "– (the prototype has no such operation)".into(),
            vs_v1: format!("{} / {} (commands)", ratio(10), ratio(10_000)),
            vs_node: "–".into(),
            of_target: worst.map_or("–".into(), |w| of_target(w, GOAL_US)),
            met,
            why: if met {
                String::new()
            } else {
                format!("criterion medians {}", pair(c10, c10k, "µs"))
            },
        });
    }
    Ok(Outcome {
        sections: vec![
            criterion,
            Section {
                title: "3a. Registry operations as commands, v2 against v1".into(),
                text: format!(
                    "`wsreg --registry R register --port P --pid <this runner> --kind bench` \
                     and `wsreg unregister ID`, each run {runs} times on a registry of 10 or \
                     10,000 other live entries (v2: one file each; v1: one `servers.json`), \
                     median wall time from `spawn` to exit; net = that less the median of \
                     `wsreg --version` (the binary's start-up). v1's commands lock, read and \
                     judge the whole file, rewrite it and fsync twice; v2's write one temp \
                     file and rename it, or unlink one file."
                ),
                table: Some(table),
            },
        ],
        targets,
    })
}

struct CliTimes {
    startup_ms: f64,
    register_ms: f64,
    unregister_ms: f64,
}

fn cli_times(env: &Env, side: Side, size: usize, runs: usize) -> Result<CliTimes> {
    let registry = env.fresh_registry();
    fill::fill(side, &registry, size)?;
    let pid = std::process::id().to_string();
    let ports = fill::listening_ports(runs)?;
    let (mut startup, mut reg, mut unreg) = (Vec::new(), Vec::new(), Vec::new());
    for port in ports {
        startup.push(timed(env.wsreg_side(side, &registry, &["--version"])?)?.0);
        let port = port.to_string();
        let (ms, out) = timed(env.wsreg_side(
            side,
            &registry,
            &[
                "register", "--port", &port, "--pid", &pid, "--kind", "bench",
            ],
        )?)?;
        reg.push(ms);
        let id = out.trim().to_owned();
        anyhow::ensure!(!id.is_empty(), "`wsreg register` printed no id");
        unreg.push(timed(env.wsreg_side(side, &registry, &["unregister", &id])?)?.0);
    }
    Ok(CliTimes {
        startup_ms: median(&mut startup),
        register_ms: median(&mut reg),
        unregister_ms: median(&mut unreg),
    })
}

/// Runs `cmd` to its end: milliseconds from spawn to exit, and its stdout.
fn timed(mut cmd: Command) -> Result<(f64, String)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let out = cmd.output().context("cannot run wsreg")?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((ms, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The criterion medians (and a note saying which are missing), and the medians in µs.
fn criterion_section(env: &Env) -> (Section, Vec<(&'static str, u32, f64)>) {
    let mut table = Table::new(&[
        "operation",
        "10 entries (µs)",
        "1,000 entries (µs)",
        "10,000 entries (µs)",
    ]);
    let mut missing = Vec::new();
    let mut medians = Vec::new();
    for op in OPERATIONS {
        let mut row = vec![format!("`{op}`")];
        for size in SIZES {
            let path = env.repo.join(format!(
                "target/criterion/registry/{op}/{size}/new/estimates.json"
            ));
            match median_ns(&path) {
                Some(ns) => {
                    row.push(num(ns / 1e3, 1));
                    medians.push((op, size, ns / 1e3));
                }
                None => {
                    missing.push(path.display().to_string());
                    row.push("–".into());
                }
            }
        }
        table.row(row);
    }
    let mut text = "Criterion medians (`cargo bench -p wsreg --bench registry`), on a registry \
        directory in a temp directory on this machine's disk holding 10, 1,000 or 10,000 other \
        entries. `register` writes the entry to a temp file in the directory and renames it \
        into place (no lock, no fsync); `unregister` unlinks it; `list` is `Store::live` \
        (list the directory, open, check and parse every file, judge liveness)."
        .to_owned();
    if !missing.is_empty() {
        text.push_str(&format!("\n\nMissing estimates: {}.", missing.join(", ")));
    }
    (
        Section {
            title: "3. Registry operations".into(),
            text,
            table: Some(table),
        },
        medians,
    )
}

fn median_ns(path: &Path) -> Option<f64> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}
