//! Benchmark 5: the registry endpoint under load. `wrk` on `GET /api/registry` with 3 and
//! 1,000 live entries, and the time one change takes to reach 1,000 SSE subscribers.
//!
//! Every side: `wsreg serve` (v2), `wsreg serve` of the v1 build, and the Vite plugin.
//! The entries all name this runner's PID (alive, with its real start time), so every
//! entry is live for every reader; each endpoint judges liveness its own way.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::time::Instant;

use super::{Env, Outcome, Side, median, quantile};
use crate::fill;
use crate::report::{Better, Section, Table, Target, advantage, num, of_target, times, vs};
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
        &format!("one change → {subscribers} SSE subscribers: first ms"),
        "p50 ms",
        "last subscriber ms",
    ]);
    // Per side: [req/s at 3, req/s at 1,000], (first, p50, last) of the fan-out.
    let mut per_side: Vec<(Side, Result<Figures>)> = Vec::new();
    for side in Side::ALL {
        let measured = measure(env, side, secs, subscribers);
        match &measured {
            Ok((rps, fan)) => table.row(vec![
                Env::name(side, "endpoint"),
                num(rps[0], 0),
                num(rps[1], 0),
                num(fan[0], 1),
                num(fan[1], 1),
                num(fan[2], 1),
            ]),
            Err(e) => {
                eprintln!("    {}: {e:#}", Env::name(side, "endpoint"));
                table.row(vec![Env::name(side, "endpoint"), format!("failed: {e:#}")]);
            }
        }
        per_side.push((side, measured));
    }
    let get = |side: Side| {
        per_side
            .iter()
            .find(|(s, _)| *s == side)
            .and_then(|(_, r)| r.as_ref().ok())
    };
    let rps = |side| get(side).map(|(r, _)| r[1]);
    let last = |side| get(side).map(|(_, f)| f[2]);
    let mut ratios = vec!["v2 vs Node".to_owned()];
    for i in 0..2 {
        ratios.push(match (get(Side::Wsreg), get(Side::Baseline)) {
            (Some(w), Some(b)) => times(advantage(w.0[i], b.0[i], Better::Higher)),
            _ => "–".into(),
        });
    }
    for i in 0..3 {
        ratios.push(match (get(Side::Wsreg), get(Side::Baseline)) {
            (Some(w), Some(b)) => vs(w.1[i], b.1[i], Better::Lower, 0.0),
            _ => "–".into(),
        });
    }
    table.row(ratios);
    let fmt_rps =
        |x: Option<f64>| x.map_or("not measured".into(), |r| format!("{} req/s", num(r, 0)));
    let fmt_ms = |x: Option<f64>| x.map_or("not measured".into(), |r| format!("{} ms", num(r, 1)));
    let ratio = |a: Option<f64>, b: Option<f64>, better| match (a, b) {
        (Some(a), Some(b)) => vs(a, b, better, 0.0),
        _ => "–".into(),
    };
    let fan_met = last(Side::Wsreg).is_some_and(|x| x <= 25.0);
    let plugin_met = last(Side::Baseline).is_some_and(|x| x <= 25.0);
    let get_met = rps(Side::Wsreg).is_some_and(|r| r >= 20_000.0);
    let at_1000 = match (rps(Side::Wsreg), rps(Side::Baseline)) {
        (Some(w), Some(b)) => advantage(w, b, Better::Higher),
        _ => f64::NAN,
    };
    let fan_why = |side: Side| {
        get(side).map_or(String::new(), |(_, f)| {
            format!(
                "{}: first subscriber {} ms, median {} ms, last {} ms",
                Env::name(side, "endpoint"),
                num(f[0], 1),
                num(f[1], 1),
                num(f[2], 1)
            )
        })
    };
    let targets = vec![
        Target {
            issue: 11,
            name: format!("one change → {subscribers} SSE subscribers, last one"),
            goal: "≤ 25 ms, and the plugin ≤ 25 ms too".into(),
            achieved: fmt_ms(last(Side::Wsreg)),
            v1: fmt_ms(last(Side::V1)),
            node: format!("{} (Vite plugin)", fmt_ms(last(Side::Baseline))),
            vs_v1: ratio(last(Side::Wsreg), last(Side::V1), Better::Lower),
            vs_node: ratio(last(Side::Wsreg), last(Side::Baseline), Better::Lower),
            of_target: format!(
                "{} (plugin {})",
                last(Side::Wsreg).map_or("–".into(), |x| of_target(x, 25.0)),
                last(Side::Baseline).map_or("–".into(), |x| of_target(x, 25.0))
            ),
            met: fan_met && plugin_met,
            why: if fan_met && plugin_met {
                String::new()
            } else {
                [Side::Wsreg, Side::Baseline]
                    .into_iter()
                    .filter(|s| !last(*s).is_some_and(|x| x <= 25.0))
                    .map(fan_why)
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        },
        Target {
            issue: 11,
            name: format!("`GET /api/registry`, 1,000 entries (`wrk -t1 -c{WRK_CONNECTIONS}`)"),
            goal: "≥ 20,000 req/s".into(),
            achieved: fmt_rps(rps(Side::Wsreg)),
            v1: fmt_rps(rps(Side::V1)),
            node: fmt_rps(rps(Side::Baseline)),
            vs_v1: ratio(rps(Side::Wsreg), rps(Side::V1), Better::Higher),
            vs_node: ratio(rps(Side::Wsreg), rps(Side::Baseline), Better::Higher),
            of_target: rps(Side::Wsreg).map_or("–".into(), |r| of_target(r, 20_000.0)),
            met: get_met,
            why: String::new(),
        },
        Target {
            name: "`GET /api/registry`, 1,000 entries".into(),
            goal: "≥ 5× the Vite plugin".into(),
            achieved: format!(
                "{} ({} vs {} req/s)",
                times(at_1000),
                rps(Side::Wsreg).map_or("–".into(), |r| num(r, 0)),
                rps(Side::Baseline).map_or("–".into(), |r| num(r, 0))
            ),
            met: at_1000 >= 5.0,
            ..Target::default()
        },
    ];
    Ok(Outcome {
        sections: vec![Section {
            title: "5. Registry endpoint: GET /api/registry and SSE fan-out".into(),
            text: format!(
                "`wrk -t1 -c{WRK_CONNECTIONS} -d{secs}s` on `/api/registry` (a run with any \
                 non-2xx answer or socket error is refused; one GET first checks that the \
                 answer lists every entry). Entries are written in the format each endpoint \
                 reads: v2 files (through the library) for `wsreg serve` and the plugin, one \
                 v1 `servers.json` for v1. Fan-out: {subscribers} subscribers on \
                 `/api/registry/events` (raw HTTP/1.1 on loopback, one process) each wait for \
                 an entry added by one write (v2: `register_once`; v1: the file rewritten and \
                 renamed into place), times from just before the write. The Vite plugin is \
                 `packages/vite-plugin-wsreg` as it stands in the working tree at the time of \
                 the run."
            ),
            table: Some(table),
        }],
        targets,
    })
}

/// req/s with 3 and 1,000 entries, and the fan-out (first, p50, last) with 3.
type Figures = ([f64; 2], [f64; 3]);

/// Measures one side's [`Figures`].
fn measure(env: &Env, side: Side, secs: u32, subscribers: usize) -> Result<Figures> {
    let mut rps = [f64::NAN; 2];
    let mut fan = [f64::NAN; 3];
    for (i, entries) in ENTRY_COUNTS.into_iter().enumerate() {
        let registry = env.fresh_registry();
        let filled = fill::fill(side, &registry, entries)?;
        let mut endpoint = Spawned::start(env.endpoint(side, &registry)?, "the registry endpoint")?;
        let base = endpoint.listening_url(Duration::from_secs(30))?;
        let url = format!("{}/api/registry", base.trim_end_matches('/'));
        let listed = count_listed(&url)?;
        anyhow::ensure!(
            listed == entries,
            "{} lists {listed} of {entries} entries",
            Env::name(side, "endpoint")
        );
        rps[i] = wrk::requests_per_sec(&url, WRK_CONNECTIONS, secs).with_context(|| {
            format!(
                "wrk on {} with {entries} entries",
                Env::name(side, "endpoint")
            )
        })?;
        if i == 0 {
            fan = fan_out(
                side,
                &registry,
                filled,
                &format!("{url}/events"),
                subscribers,
            )
            .with_context(|| format!("fan-out through {}", Env::name(side, "endpoint")))?;
        }
    }
    Ok((rps, fan))
}

/// How many entries one `GET` of `url` lists.
pub fn count_listed(url: &str) -> Result<usize> {
    use std::io::{Read, Write};
    let addr = crate::echo::socket_addr(url)?;
    let path = url
        .splitn(4, '/')
        .nth(3)
        .map_or("/".to_owned(), |p| format!("/{p}"));
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = Vec::new();
    stream.read_to_end(&mut body)?;
    anyhow::ensure!(body.starts_with(b"HTTP/1.1 200"), "GET {url}: not 200");
    Ok(body.windows(6).filter(|w| w == b"\"pid\":").count())
}

/// Opens `n` subscribers, adds one entry, and times its arrival at each: the first, the
/// median and the last, in milliseconds.
fn fan_out(
    side: Side,
    registry: &Path,
    mut entries: Vec<wsreg::Entry>,
    events: &str,
    n: usize,
) -> Result<[f64; 3]> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // On a port this process listens on: readers show an entry only while it listens.
    let port = fill::listening_ports(1)?[0];
    runtime.block_on(async {
        let server = wsreg::Server::new("fanout", port);
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
        let registry = registry.to_owned();
        let written = Instant::now();
        tokio::task::spawn_blocking(move || match side {
            Side::V1 => {
                entries.push(server.entry().clone());
                fill::write_v1(&registry, &entries)
            }
            _ => server
                .register_once(&wsreg::Store::new(&registry))
                .map(drop)
                .map_err(Into::into),
        })
        .await??;
        let mut ms = Vec::new();
        for task in tasks {
            ms.push((task.await?? - written).as_secs_f64() * 1e3);
        }
        Ok([
            quantile(&mut ms, 0.0),
            median(&mut ms),
            quantile(&mut ms, 1.0),
        ])
    })
}
