//! Benchmark 4: how soon a new server is discovered. Each endpoint (`wsreg serve`, the
//! Vite plugin) runs with an echo server of its own side started again and again:
//! start → its `servers` event at an SSE subscriber (timed here), and start → the page
//! shows it connected in Chromium (timed by `bench/discovery.js`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{Env, Outcome, Side, median, quantile};
use crate::report::{Section, Table, Target, num};
use crate::spawned::Spawned;
use crate::sse::{Subscriber, pid_needle};

/// How each page marks a connected server (`{id}` is the server's id).
fn connected_selector(side: Side) -> &'static str {
    match side {
        Side::Wsreg => r#"[data-id="{id}"][data-status="connected"]"#,
        Side::Baseline => r#"[data-server-id="{id}"][data-state="connected"]"#,
    }
}

pub fn run(env: &Env) -> Result<Outcome> {
    let runs = env.pick(20, 10);
    let mut table = Table::new(&[
        "endpoint (and server started)",
        "start → SSE event p50 ms",
        "p99 ms",
        "start → page connected p50 ms",
        "p99 ms",
    ]);
    let mut page_p99 = None;
    for side in Side::BOTH {
        let registry = env.fresh_registry();
        let mut endpoint = Spawned::start(env.endpoint(side, &registry), "the registry endpoint")?;
        let base = endpoint.listening_url(Duration::from_secs(30))?;
        let base = base.trim_end_matches('/');
        let mut sse = sse_runs(
            env,
            side,
            &registry,
            &format!("{base}/api/registry/events"),
            runs,
        )
        .with_context(|| format!("SSE discovery through {}", Env::name(side, "endpoint")))?;
        let page = page_runs(env, side, &registry, &format!("{base}/"), runs);
        let mut row = vec![
            format!(
                "{} ({})",
                Env::name(side, "endpoint"),
                Env::name(side, "echo")
            ),
            num(median(&mut sse), 1),
            num(quantile(&mut sse, 0.99), 1),
        ];
        match page {
            Ok(mut ms) => {
                row.push(num(median(&mut ms), 1));
                let p99 = quantile(&mut ms, 0.99);
                row.push(num(p99, 1));
                if side == Side::Wsreg {
                    page_p99 = Some(p99);
                }
            }
            Err(e) => {
                eprintln!("    page discovery failed: {e:#}");
                row.push(format!("failed: {e}"));
                row.push("–".into());
            }
        }
        table.row(row);
    }
    let targets = vec![Target {
        name: "discovery p99, start → page connected".into(),
        goal: "≤ 100 ms".into(),
        achieved: page_p99.map_or("not measured".into(), |p| format!("{} ms", num(p, 1))),
        met: page_p99.is_some_and(|p| p <= 100.0),
    }];
    Ok(Outcome {
        sections: vec![Section {
            title: "4. Discovery: server start → subscriber and page".into(),
            text: format!(
                "{runs} starts of an echo server, one at a time, each timed from just before \
                 `spawn`. SSE: a subscriber on `/api/registry/events` waits for the event that \
                 holds the server's PID. Page: headless Chromium (`/usr/bin/chromium`, fresh \
                 profile) on the endpoint's page at `/` — `wsreg serve`'s own page, and for \
                 Vite `bench/baseline/vite-app/` (EventSource + one WebSocket per server) — \
                 until the server's row says connected. With {runs} runs p99 is the slowest \
                 run. The prototype page polled every 5 s (issue 6: median 2.1 s, up to 4.6 s)."
            ),
            table: Some(table),
        }],
        targets,
    })
}

fn sse_runs(env: &Env, side: Side, registry: &Path, events: &str, runs: usize) -> Result<Vec<f64>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut sub = Subscriber::open(events).await?;
        let mut ms = Vec::new();
        for _ in 0..runs {
            sub.clear();
            let mut server = Spawned::start(env.echo_server(side, registry), "the echo server")?;
            let arrived = sub
                .wait_for(&pid_needle(server.pid()), Duration::from_secs(10))
                .await?;
            ms.push((arrived.into_std() - server.started).as_secs_f64() * 1e3);
            server.stop();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(ms)
    })
}

fn page_runs(env: &Env, side: Side, registry: &Path, page: &str, runs: usize) -> Result<Vec<f64>> {
    let server = env.echo_server(side, registry);
    let mut argv = vec![server.get_program().to_string_lossy().into_owned()];
    argv.extend(server.get_args().map(|a| a.to_string_lossy().into_owned()));
    let vars: serde_json::Map<_, _> = server
        .get_envs()
        .filter_map(|(k, v)| {
            Some((
                k.to_string_lossy().into_owned(),
                json!(v?.to_string_lossy()),
            ))
        })
        .collect();
    let config = json!({
        "page": page,
        "runs": runs,
        "selector": connected_selector(side),
        "server": argv,
        "env": vars,
    });
    let out = Command::new("node")
        .arg(env.repo.join("bench/discovery.js"))
        .arg(config.to_string())
        .current_dir(&env.repo)
        .output()
        .context("cannot run node bench/discovery.js")?;
    if !out.status.success() {
        bail!(
            "bench/discovery.js failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: serde_json::Value = serde_json::from_str(
        stdout
            .lines()
            .last()
            .context("bench/discovery.js printed nothing")?,
    )?;
    result["ms"]
        .as_array()
        .context("no `ms` in bench/discovery.js's output")?
        .iter()
        .map(|v| v.as_f64().context("a time that is not a number"))
        .collect()
}
