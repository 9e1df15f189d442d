//! Benchmark 5: the registry endpoint under load. `wrk` on `GET /api/registry` with 3 and
//! 1,000 live entries, and the time one change takes to reach 1,000 SSE subscribers.
//!
//! The entries are written through the library in one update and all name this
//! runner's PID (alive, with its real start time), so every entry is live for both
//! readers; each endpoint judges liveness its own way.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::Instant;

use super::{Env, Outcome, Side, median, quantile};
use crate::report::{Better, Section, Table, Target, advantage, num, times};
use crate::spawned::Spawned;
use crate::sse::Subscriber;
use crate::wrk;

const ENTRY_COUNTS: [usize; 2] = [3, 1000];
const WRK_CONNECTIONS: u32 = 10;

pub fn run(env: &Env) -> Result<Outcome> {
    let secs = env.pick(5, 2);
    let subscribers = 1000;
    let mut table = Table::new(&[
        "endpoint",
        "GET /api/registry req/s, 3 entries",
        "1,000 entries",
        &format!("one change → {subscribers} SSE subscribers, p50 ms"),
        "last subscriber ms",
    ]);
    let mut per_side = Vec::new();
    for side in Side::BOTH {
        let mut rps = Vec::new();
        let mut fan = (f64::NAN, f64::NAN);
        for entries in ENTRY_COUNTS {
            let registry = env.fresh_registry();
            fill(&registry, entries)?;
            let mut endpoint =
                Spawned::start(env.endpoint(side, &registry), "the registry endpoint")?;
            let base = endpoint.listening_url(Duration::from_secs(30))?;
            let url = format!("{}/api/registry", base.trim_end_matches('/'));
            rps.push(
                wrk::requests_per_sec(&url, WRK_CONNECTIONS, secs).with_context(|| {
                    format!(
                        "wrk on {} with {entries} entries",
                        Env::name(side, "endpoint")
                    )
                })?,
            );
            if entries == ENTRY_COUNTS[0] {
                fan = fan_out(&registry, &format!("{url}/events"), subscribers)
                    .with_context(|| format!("fan-out through {}", Env::name(side, "endpoint")))?;
            }
        }
        table.row(vec![
            Env::name(side, "endpoint"),
            num(rps[0], 0),
            num(rps[1], 0),
            num(fan.0, 1),
            num(fan.1, 1),
        ]);
        per_side.push(rps);
    }
    let mut ratios = vec!["wsreg is".to_owned()];
    ratios.extend(
        per_side[0]
            .iter()
            .zip(&per_side[1])
            .map(|(w, b)| times(advantage(*w, *b, Better::Higher))),
    );
    ratios.extend([String::new(), String::new()]);
    table.row(ratios);
    let at_1000 = advantage(per_side[0][1], per_side[1][1], Better::Higher);
    Ok(Outcome {
        sections: vec![Section {
            title: "5. Registry endpoint: GET /api/registry and SSE fan-out".into(),
            text: format!(
                "`wrk -t1 -c{WRK_CONNECTIONS} -d{secs}s` on `/api/registry` (a run with any \
                 non-2xx answer or socket error is refused). Fan-out: {subscribers} subscribers \
                 on `/api/registry/events` (raw HTTP/1.1 on loopback, one process) each wait \
                 for an entry registered through the library; times from just before the \
                 write."
            ),
            table: Some(table),
        }],
        targets: vec![Target {
            name: "`GET /api/registry`, 1,000 entries".into(),
            goal: "≥ 5× the Vite plugin".into(),
            achieved: format!(
                "{} ({} vs {} req/s)",
                times(at_1000),
                num(per_side[0][1], 0),
                num(per_side[1][1], 0)
            ),
            met: at_1000 >= 5.0,
        }],
    })
}

/// Writes `n` live entries, one file each.
fn fill(registry: &Path, n: usize) -> Result<()> {
    let store = wsreg::Store::new(registry);
    let pid = std::process::id();
    for i in 0..n {
        wsreg::Server::for_pid("bench", 30_000 + i as u16, pid)
            .name(format!("bench server {i}"))
            .register_once(&store)?;
    }
    Ok(())
}

/// Opens `n` subscribers, registers one entry, and times its arrival at each: the median
/// and the last, in milliseconds.
fn fan_out(registry: &Path, events: &str, n: usize) -> Result<(f64, f64)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = wsreg::Server::new("fanout", 29_999);
        let needle = server.entry().id.clone().into_bytes();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(n);
        let (go_tx, go_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (events, needle, ready_tx, mut go_rx) = (
                events.to_owned(),
                needle.clone(),
                ready_tx.clone(),
                go_rx.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut sub = Subscriber::open(&events).await?;
                ready_tx.send(()).await?;
                go_rx.wait_for(|go| *go).await?;
                sub.wait_for(&needle, Duration::from_secs(30)).await
            }));
        }
        drop(ready_tx);
        tokio::time::timeout(Duration::from_secs(60), async {
            for _ in 0..n {
                ready_rx
                    .recv()
                    .await
                    .context("a subscriber failed to open")?;
            }
            anyhow::Ok(())
        })
        .await
        .context("subscribers not all open within 60 s")??;
        go_tx.send(true)?;
        let store = wsreg::Store::new(registry);
        let written = Instant::now();
        tokio::task::spawn_blocking(move || server.register_once(&store)).await??;
        let mut ms = Vec::new();
        for task in tasks {
            ms.push((task.await?? - written).as_secs_f64() * 1e3);
        }
        Ok((median(&mut ms), quantile(&mut ms, 1.0)))
    })
}
