//! Benchmark 4: how soon a new server is discovered, and a gone one dropped. Each
//! endpoint (`wsreg serve` v2 and v1, the Vite plugin) runs with an echo server of its own
//! side started again and again: start → its `servers` event at an SSE subscriber and
//! SIGTERM / SIGKILL → the first event without it (timed here), and start → the page
//! shows it connected in Chromium (timed by `bench/discovery.js`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{Env, Outcome, Side, median, quantile};
use crate::report::{Better, of_target, vs};
use crate::report::{Section, Table, Target, num};
use crate::spawned::Spawned;
use crate::sse::{Subscriber, pid_needle};

/// How each page marks a connected server (`{id}` is the server's id).
fn connected_selector(side: Side) -> &'static str {
    match side {
        Side::Wsreg | Side::V1 => r#"[data-id="{id}"][data-status="connected"]"#,
        Side::Baseline => r#"[data-server-id="{id}"][data-state="connected"]"#,
    }
}

pub fn run(env: &Env) -> Result<Outcome> {
    let runs = env.pick(20, 10);
    let mut table = Table::new(&[
        "endpoint (and server started)",
        "start → SSE event p50 ms",
        "p99 ms",
        "SIGTERM → removal event p50 ms",
        "p99 ms",
        "SIGKILL → removal event p50 ms",
        "p99 ms",
        "start → page connected p50 ms",
        "p99 ms",
    ]);
    let mut page_p99 = None;
    // Per side: p99 of start, SIGTERM and SIGKILL → event.
    let mut p99s: Vec<(Side, Result<[f64; 3]>)> = Vec::new();
    for side in Side::ALL {
        let registry = env.fresh_registry();
        let mut row = vec![format!(
            "{} ({})",
            Env::name(side, "endpoint"),
            Env::name(side, "echo")
        )];
        let endpoint = env
            .endpoint(side, &registry)
            .and_then(|cmd| Spawned::start(cmd, "the registry endpoint"))
            .and_then(|mut e| {
                let url = e.listening_url(Duration::from_secs(30))?;
                Ok((e, url))
            });
        let (_endpoint, base) = match endpoint {
            Ok(e) => e,
            Err(e) => {
                eprintln!("    {}: {e:#}", Env::name(side, "endpoint"));
                row.push(format!("failed: {e:#}"));
                table.row(row);
                p99s.push((side, Err(e)));
                continue;
            }
        };
        let base = base.trim_end_matches('/');
        let sse = sse_runs(
            env,
            side,
            &registry,
            &format!("{base}/api/registry/events"),
            runs,
        )
        .with_context(|| format!("SSE discovery through {}", Env::name(side, "endpoint")));
        match sse {
            Ok(mut sse) => {
                let mut p99 = [0.0; 3];
                for (i, xs) in [&mut sse.start, &mut sse.term, &mut sse.kill]
                    .into_iter()
                    .enumerate()
                {
                    p99[i] = quantile(xs, 0.99);
                    row.push(num(median(xs), 1));
                    row.push(match sse.missed[i] {
                        0 => num(p99[i], 1),
                        m => format!("{m} of {runs} not within {} ms", REMOVAL_CAP.as_millis()),
                    });
                    if sse.missed[i] > 0 {
                        p99[i] = f64::INFINITY;
                    }
                }
                p99s.push((side, Ok(p99)));
            }
            Err(e) => {
                eprintln!("    {e:#}");
                row.push(format!("failed: {e:#}"));
                row.extend(std::iter::repeat_n(String::new(), 5));
                p99s.push((side, Err(e)));
            }
        }
        if side == Side::V1 {
            row.extend(["not run".to_owned(), String::new()]);
        } else {
            match page_runs(env, side, &registry, &format!("{base}/"), runs) {
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
        }
        table.row(row);
    }
    // One row per side, in `Side::ALL` order (wsreg, v1, Node).
    table.compare("v2 vs v1", 0, 1, 1);
    table.compare("v2 vs Node", 0, 2, 1);
    let get = |side: Side, i: usize| {
        p99s.iter()
            .find(|(s, _)| *s == side)
            .and_then(|(_, r)| r.as_ref().ok())
            .map(|p| p[i])
    };
    let ms = |x: Option<f64>| match x {
        Some(x) if x.is_finite() => format!("{} ms", num(x, 1)),
        Some(_) => format!("> {} ms", REMOVAL_CAP.as_millis()),
        None => "not measured".into(),
    };
    let ratio = |side: Side, i: usize| match (get(Side::Wsreg, i), get(side, i)) {
        (Some(w), Some(b)) if b.is_infinite() => {
            format!(
                "> {}",
                vs(w, REMOVAL_CAP.as_secs_f64() * 1e3, Better::Lower, 0.0)
            )
        }
        (Some(w), Some(b)) => vs(w, b, Better::Lower, 0.0),
        _ => "–".into(),
    };
    let start_met = get(Side::Wsreg, 0).is_some_and(|p| p <= 10.0);
    let (term, kill) = (get(Side::Wsreg, 1), get(Side::Wsreg, 2));
    let removal_met = term.is_some_and(|p| p <= 10.0) && kill.is_some_and(|p| p <= 20.0);
    let both = |side| format!("{} / {}", ms(get(side, 1)), ms(get(side, 2)));
    let targets = vec![
        Target {
            issue: 11,
            name: "start → SSE event, p99".into(),
            goal: "≤ 10 ms".into(),
            achieved: ms(get(Side::Wsreg, 0)),
            v1: ms(get(Side::V1, 0)),
            node: ms(get(Side::Baseline, 0)),
            vs_v1: ratio(Side::V1, 0),
            vs_node: ratio(Side::Baseline, 0),
            of_target: get(Side::Wsreg, 0).map_or("–".into(), |p| of_target(p, 10.0)),
            met: start_met,
            why: String::new(),
        },
        Target {
            issue: 11,
            name: "SIGTERM / SIGKILL → removal event, p99".into(),
            goal: "≤ 10 / ≤ 20 ms".into(),
            achieved: both(Side::Wsreg),
            v1: both(Side::V1),
            node: both(Side::Baseline),
            vs_v1: format!("{} / {}", ratio(Side::V1, 1), ratio(Side::V1, 2)),
            vs_node: format!(
                "{} / {}",
                ratio(Side::Baseline, 1),
                ratio(Side::Baseline, 2)
            ),
            of_target: match (term, kill) {
                (Some(t), Some(k)) => format!("{} / {}", of_target(t, 10.0), of_target(k, 20.0)),
                _ => "–".into(),
            },
            met: removal_met,
            why: String::new(),
        },
        Target {
            name: "discovery p99, start → page connected".into(),
            goal: "≤ 100 ms".into(),
            achieved: page_p99.map_or("not measured".into(), |p| format!("{} ms", num(p, 1))),
            met: page_p99.is_some_and(|p| p <= 100.0),
            ..Target::default()
        },
    ];
    Ok(Outcome {
        sections: vec![Section {
            title: "4. Discovery: server start and exit → subscriber and page".into(),
            text: format!(
                "{n} starts of an echo server of the endpoint's own side, one at a time, each \
                 timed from just before `spawn`. SSE: a subscriber on `/api/registry/events` \
                 waits for the event that holds the server's PID. Then the server is stopped, \
                 by SIGTERM in the first {runs} runs and by SIGKILL in the next {runs}, timed \
                 from just before `kill` to the first whole `servers` event without its PID \
                 (at most {cap} ms). Page ({runs} runs, not for v1): headless Chromium \
                 (`/usr/bin/chromium`, fresh profile) on the endpoint's page at `/` — \
                 `wsreg serve`'s own page, and for Vite `bench/baseline/vite-app/` \
                 (EventSource + one WebSocket per server) — until the server's row says \
                 connected. With 20 runs p99 is the slowest run. The prototype page polled \
                 every 5 s (issue 6: median 2.1 s, up to 4.6 s).",
                n = 2 * runs,
                cap = REMOVAL_CAP.as_millis()
            ),
            table: Some(table),
        }],
        targets,
    })
}

/// How long a removal event is waited for.
const REMOVAL_CAP: Duration = Duration::from_millis(3000);

struct SseTimes {
    start: Vec<f64>,
    term: Vec<f64>,
    kill: Vec<f64>,
    /// Removals not seen within `REMOVAL_CAP`: [start (always 0), SIGTERM, SIGKILL].
    missed: [usize; 3],
}

fn sse_runs(env: &Env, side: Side, registry: &Path, events: &str, runs: usize) -> Result<SseTimes> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut sub = Subscriber::open(events).await?;
        let mut t = SseTimes {
            start: Vec::new(),
            term: Vec::new(),
            kill: Vec::new(),
            missed: [0; 3],
        };
        for i in 0..2 * runs {
            sub.clear();
            let mut server = Spawned::start(env.echo_server(side, registry), "the echo server")?;
            let needle = pid_needle(server.pid());
            let arrived = sub.wait_for(&needle, Duration::from_secs(10)).await?;
            t.start
                .push((arrived.into_std() - server.started).as_secs_f64() * 1e3);
            // Let the server settle (its keeper's watch, the endpoint's pidfd) first.
            tokio::time::sleep(Duration::from_millis(50)).await;
            sub.clear();
            let (sig, into, k) = if i < runs {
                (libc::SIGTERM, &mut t.term, 1)
            } else {
                (libc::SIGKILL, &mut t.kill, 2)
            };
            let signalled = std::time::Instant::now();
            server.signal(sig);
            match sub.wait_without(&needle, REMOVAL_CAP).await {
                Ok(gone) => into.push((gone.into_std() - signalled).as_secs_f64() * 1e3),
                Err(_) => t.missed[k] += 1,
            }
            server.stop();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(t)
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
