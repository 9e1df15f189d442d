//! Benchmark 6 (issue 11): a registry of 10,000 live entries. A cold `wsreg list --json`
//! (a new process each time, nothing cached in it), and one change → its SSE event at a
//! subscriber of the endpoint, for wsreg v2, the v1 build and (the event only) the Vite
//! plugin.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Env, Outcome, Side, median, quantile};
use crate::fill;
use crate::report::{Better, Section, Table, Target, num, of_target, vs};
use crate::spawned::Spawned;
use crate::sse::Subscriber;

const ENTRIES: usize = 10_000;

pub fn run(env: &Env) -> Result<Outcome> {
    let runs = env.pick(10, 5);
    let mut table = Table::new(&[
        "build",
        "cold `wsreg list --json`, first run ms",
        "median ms",
        "one change → SSE event, median ms",
        "max ms",
    ]);
    let mut list: Vec<(Side, f64)> = Vec::new();
    let mut change: Vec<(Side, f64)> = Vec::new();
    for side in Side::ALL {
        let mut row = vec![Env::name(side, "endpoint")];
        let registry = env.fresh_registry();
        let entries = match fill::fill(side, &registry, ENTRIES) {
            Ok(e) => e,
            Err(e) => {
                row.push(format!("failed: {e:#}"));
                table.row(row);
                continue;
            }
        };
        if side == Side::Baseline {
            row.extend(["– (no such command)".into(), String::new()]);
        } else {
            match list_times(env, side, &registry, runs) {
                Ok((first, mut ms)) => {
                    let m = median(&mut ms);
                    row.extend([num(first, 1), num(m, 1)]);
                    list.push((side, m));
                }
                Err(e) => {
                    eprintln!("    {}: {e:#}", Env::name(side, "endpoint"));
                    row.extend([format!("failed: {e:#}"), String::new()]);
                }
            }
        }
        match change_times(env, side, &registry, entries, runs) {
            Ok(mut ms) => {
                let m = median(&mut ms);
                row.extend([num(m, 1), num(quantile(&mut ms, 1.0), 1)]);
                change.push((side, m));
            }
            Err(e) => {
                eprintln!("    {}: {e:#}", Env::name(side, "endpoint"));
                row.extend([format!("failed: {e:#}"), String::new()]);
            }
        }
        table.row(row);
    }
    // One row per side, in `Side::ALL` order (wsreg, v1, Node).
    table.compare("v2 vs v1", 0, 1, 1);
    table.compare("v2 vs Node", 0, 2, 1);
    let get = |xs: &[(Side, f64)], side: Side| xs.iter().find(|(s, _)| *s == side).map(|x| x.1);
    let ms = |x: Option<f64>| x.map_or("not measured".into(), |x| format!("{} ms", num(x, 1)));
    let ratio = |xs: &[(Side, f64)], side| match (get(xs, Side::Wsreg), get(xs, side)) {
        (Some(w), Some(b)) => vs(w, b, Better::Lower, 0.0),
        _ => "–".into(),
    };
    let (l, c) = (get(&list, Side::Wsreg), get(&change, Side::Wsreg));
    let met = l.is_some_and(|x| x <= 100.0) && c.is_some_and(|x| x <= 20.0);
    let target = Target {
        issue: 11,
        name: "10,000 entries: cold `wsreg list --json`; one change → SSE event (medians)".into(),
        goal: "≤ 100 ms; ≤ 20 ms".into(),
        achieved: format!("{}; {}", ms(l), ms(c)),
        v1: format!(
            "{}; {}",
            ms(get(&list, Side::V1)),
            ms(get(&change, Side::V1))
        ),
        node: format!("–; {} (Vite plugin)", ms(get(&change, Side::Baseline))),
        vs_v1: format!("{}; {}", ratio(&list, Side::V1), ratio(&change, Side::V1)),
        vs_node: format!("–; {}", ratio(&change, Side::Baseline)),
        of_target: format!(
            "{}; {}",
            l.map_or("–".into(), |x| of_target(x, 100.0)),
            c.map_or("–".into(), |x| of_target(x, 20.0))
        ),
        met,
        why: String::new(),
    };
    Ok(Outcome {
        sections: vec![Section {
            title: "6. 10,000 entries".into(),
            text: format!(
                "A registry of {ENTRIES} live entries (v2: one file each; v1: one \
                 `servers.json`). Cold list: `wsreg list --json` run {runs} times, a new \
                 process each time, from `spawn` to exit (the answer is checked to hold \
                 every entry); the page cache is warm after the first run. Change: the \
                 endpoint with one SSE subscriber; {runs} times, one entry added by one write \
                 (v2: a file renamed in; v1: the whole file rewritten and renamed in, its \
                 JSON serialised before the clock starts), timed from just before the write \
                 to the arrival of the event that holds it (an event of every entry, about \
                 3 MB)."
            ),
            table: Some(table),
        }],
        targets: vec![target],
    })
}

/// The first run and every run of `wsreg list --json`, in milliseconds.
fn list_times(
    env: &Env,
    side: Side,
    registry: &std::path::Path,
    runs: usize,
) -> Result<(f64, Vec<f64>)> {
    let mut ms = Vec::new();
    for _ in 0..runs {
        let mut cmd: Command = env.wsreg_side(side, registry, &["list", "--json"])?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let out = cmd.output().context("cannot run wsreg list")?;
        ms.push(started.elapsed().as_secs_f64() * 1e3);
        if !out.status.success() {
            bail!(
                "wsreg list failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let listed = out.stdout.windows(6).filter(|w| w == b"\"pid\":").count();
        anyhow::ensure!(
            listed == ENTRIES,
            "wsreg list --json listed {listed} of {ENTRIES}"
        );
    }
    Ok((ms[0], ms))
}

/// `runs` changes, each timed from the write to its event, in milliseconds.
fn change_times(
    env: &Env,
    side: Side,
    registry: &std::path::Path,
    mut entries: Vec<wsreg::Entry>,
    runs: usize,
) -> Result<Vec<f64>> {
    // Each change a server of this process, on a port it listens on (readers show an
    // entry only while its process listens on its port).
    let ports = fill::listening_ports(runs)?;
    let mut endpoint = Spawned::start(env.endpoint(side, registry)?, "the registry endpoint")?;
    let base = endpoint.listening_url(Duration::from_secs(60))?;
    let events = format!("{}/api/registry/events", base.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut sub = Subscriber::open(&events).await?;
        let store = wsreg::Store::new(registry);
        let mut ms = Vec::new();
        for &port in &ports {
            sub.clear();
            let server = wsreg::Server::new("change", port);
            let needle = server.entry().id.clone().into_bytes();
            let written = match side {
                Side::V1 => {
                    entries.push(server.entry().clone());
                    let doc = serde_json::json!({ "version": 1, "servers": &entries });
                    let bytes = serde_json::to_vec(&doc)?;
                    let tmp = registry.with_file_name(".bench-v1.tmp");
                    let written = Instant::now();
                    fill::write_private(&tmp, &bytes)?;
                    std::fs::rename(&tmp, registry)?;
                    written
                }
                _ => {
                    let written = Instant::now();
                    server.register_once(&store)?;
                    written
                }
            };
            let arrived = sub.wait_for(&needle, Duration::from_secs(30)).await?;
            ms.push((arrived.into_std() - written).as_secs_f64() * 1e3);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(ms)
    })
}
