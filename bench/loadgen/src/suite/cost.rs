//! Benchmark 2: what a registered server costs: spawn → entry on disk, idle memory, and
//! the size of what has to be installed.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::{Env, Outcome, Side, median, quantile};
use crate::report::{Better, Section, Table, Target, advantage, num, ratio, times};
use crate::startup;

pub fn run(env: &Env) -> Result<Outcome> {
    let runs = env.pick(10, 5);
    let mut table = Table::new(&[
        "server",
        "spawn → registered, median ms",
        "max ms",
        "idle RSS, median MiB",
        "of which anonymous (RssAnon), MiB",
    ]);
    let mut figures = Vec::new();
    for side in Side::BOTH {
        let registry = env.fresh_registry();
        let mut outcome = startup::measure(&registry, runs, || env.echo_server(side, &registry))
            .with_context(|| format!("starting {}", Env::name(side, "echo")))?;
        let mut rss: Vec<f64> = outcome
            .idle_rss_kib
            .iter()
            .map(|k| *k as f64 / 1024.0)
            .collect();
        let mut anon: Vec<f64> = (outcome.idle_anon_kib.iter())
            .map(|k| *k as f64 / 1024.0)
            .collect();
        let (ms, max, mib) = (
            median(&mut outcome.registered_ms),
            quantile(&mut outcome.registered_ms, 1.0),
            median(&mut rss),
        );
        table.row(vec![
            Env::name(side, "echo"),
            num(ms, 1),
            num(max, 1),
            num(mib, 1),
            num(median(&mut anon), 2),
        ]);
        figures.push((ms, mib));
    }
    let spawn = advantage(figures[0].0, figures[1].0, Better::Lower);
    let rss = advantage(figures[0].1, figures[1].1, Better::Lower);
    table.row(vec![
        "wsreg vs Node".into(),
        format!("{} faster", ratio(spawn)),
        String::new(),
        format!("{} smaller", ratio(rss)),
        String::new(),
    ]);
    let targets = vec![
        Target {
            name: "idle RSS of `wsreg echo`".into(),
            goal: "≤ 1/10 of Node".into(),
            achieved: format!(
                "{} smaller ({} vs {} MiB)",
                times(rss),
                num(figures[0].1, 1),
                num(figures[1].1, 1)
            ),
            met: rss >= 10.0,
            ..Target::default()
        },
        Target {
            name: "spawn → registered".into(),
            goal: "≤ 1/5 of Node".into(),
            achieved: format!(
                "{} faster ({} vs {} ms)",
                times(spawn),
                num(figures[0].0, 1),
                num(figures[1].0, 1)
            ),
            met: spawn >= 5.0,
            ..Target::default()
        },
    ];
    Ok(Outcome {
        sections: vec![
            Section {
                title: "2. Cost of a registered server".into(),
                text: format!(
                    "Each echo server started {runs} times, one at a time; the runner reads the \
                     registry through the real reader (`wsreg::Store::read`: the v2 directory and \
                     the legacy `servers.json` the prototype writes) every 0.25 ms from just \
                     before `spawn` until an entry with the child's PID is on disk, then reads \
                     the server's VmRSS after 1 s idle."
                ),
                table: Some(table),
            },
            sizes(env)?,
        ],
        targets,
    })
}

/// What has to be on disk to run each server.
fn sizes(env: &Env) -> Result<Section> {
    let wsreg = file_mib(&env.wsreg)?;
    let node_bin = Command::new("node")
        .args(["-p", "process.execPath"])
        .output()
        .context("cannot run node")?;
    let node_path = String::from_utf8_lossy(&node_bin.stdout).trim().to_owned();
    let node = file_mib(Path::new(&node_path))?;
    let ws = dir_mib(&env.repo.join("node_modules/ws"));
    let mut table = Table::new(&["server", "what is installed", "MiB"]);
    table.row(vec![
        "`wsreg`".into(),
        "`target/release/wsreg` as built".into(),
        num(wsreg, 1),
    ]);
    table.row(vec![
        "Node baseline".into(),
        format!("`{node_path}` + `node_modules/ws` ({} MiB)", num(ws, 2)),
        num(node + ws, 1),
    ]);
    table.row(vec![
        "wsreg vs Node".into(),
        String::new(),
        format!(
            "{} smaller",
            ratio(advantage(wsreg, node + ws, Better::Lower))
        ),
    ]);
    Ok(Section {
        title: "2b. Size on disk".into(),
        text: "One `wsreg` binary holds every command (echo, serve, list, …). The release \
               profile (`Cargo.toml`) already strips its symbols, so the binary as built is \
               the binary installed."
            .into(),
        table: Some(table),
    })
}

fn file_mib(path: &Path) -> Result<f64> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    Ok(len as f64 / (1024.0 * 1024.0))
}

fn dir_mib(dir: &Path) -> f64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total as f64 / (1024.0 * 1024.0)
}
