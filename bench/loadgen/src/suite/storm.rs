//! Benchmark 3b (issue 11): real servers released by one barrier, then the cost of the
//! same servers left idle.
//!
//! 100 echo servers of each side (wsreg v2, wsreg v1, the Node prototype) start at one
//! instant (`crate::storm`); once all are listening and listed, the side's registry
//! endpoint is started with 10 SSE subscribers reading it, and the CPU time of all the
//! servers and the endpoint is read from `/proc/<pid>/stat` over 10 s. Then 1,000
//! `wsreg echo` (and, in a full run, 1,000 of v1, capped in time) storm alone.

use std::time::Duration;

use anyhow::{Context, Result};

use super::{Env, Outcome, Side};
use crate::proc;
use crate::report::{Better, Section, Table, Target, num, of_target, vs};
use crate::spawned::{Spawned, stop_all};
use crate::sse::Held;
use crate::storm;

const SMALL: usize = 100;
const LARGE: usize = 1000;
const IDLE_SUBSCRIBERS: usize = 10;
const IDLE_SECS: u64 = 10;

struct Idle {
    servers_cpu: f64,
    endpoint_cpu: f64,
    sse_bytes: u64,
}

impl Idle {
    fn total(&self) -> f64 {
        self.servers_cpu + self.endpoint_cpu
    }
}

pub fn run(env: &Env) -> Result<Outcome> {
    let mut storms = Table::new(&[
        "servers",
        "all listening after (ms)",
        "all listed after (ms)",
        "listed at the end",
        "lost",
        "torn reads (of reads)",
        "exited early",
    ]);
    let mut idles = Table::new(&[
        "100 idle servers + endpoint + 10 SSE subscribers",
        "CPU-s of the servers",
        "CPU-s of the endpoint",
        "CPU-s in all, over 10 s",
        "SSE bytes received",
    ]);
    let mut small: Vec<(Side, Result<storm::Outcome>)> = Vec::new();
    let mut idle: Vec<(Side, Result<Idle>)> = Vec::new();
    for side in Side::ALL {
        let registry = env.fresh_registry();
        let result = env.try_echo_server(side, &registry).and_then(|_| {
            storm::run(
                SMALL,
                &registry,
                &env.harness,
                Duration::from_secs(30),
                |_| env.echo_server(side, &registry),
            )
        });
        match result {
            Ok((outcome, mut servers)) => {
                storms.row(storm_row(side, &outcome));
                let measured = idle_cpu(env, side, &registry, &mut servers);
                stop_all(&mut servers, libc::SIGKILL, Duration::from_secs(5));
                match &measured {
                    Ok(m) => idles.row(vec![
                        format!(
                            "{} × {SMALL} + {}",
                            Env::name(side, "echo"),
                            Env::name(side, "endpoint")
                        ),
                        num(m.servers_cpu, 2),
                        num(m.endpoint_cpu, 2),
                        num(m.total(), 2),
                        num(m.sse_bytes as f64, 0),
                    ]),
                    Err(e) => idles.row(vec![
                        Env::name(side, "echo"),
                        format!("failed: {e:#}"),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]),
                }
                small.push((side, Ok(outcome)));
                idle.push((side, measured));
            }
            Err(e) => {
                eprintln!("    storm of {}: {e:#}", Env::name(side, "echo"));
                storms.row(vec![
                    format!("{SMALL} × {}", Env::name(side, "echo")),
                    format!("failed: {e:#}"),
                ]);
                small.push((side, Err(e)));
            }
        }
    }
    // 1,000 servers: wsreg v2, and v1 (full runs only) capped at 15 s.
    let mut large: Vec<(Side, Result<storm::Outcome>)> = Vec::new();
    let mut inotify_note = String::new();
    let large_sides: &[Side] = if env.quick {
        &[Side::Wsreg]
    } else {
        &[Side::Wsreg, Side::V1]
    };
    for &side in large_sides {
        let registry = env.fresh_registry();
        let cap = Duration::from_secs(if side == Side::Wsreg { 30 } else { 15 });
        let result = env.try_echo_server(side, &registry).and_then(|_| {
            storm::run(LARGE, &registry, &env.harness, cap, |_| {
                env.echo_server(side, &registry)
            })
        });
        match result {
            Ok((outcome, mut servers)) => {
                storms.row(storm_row(side, &outcome));
                if side == Side::Wsreg {
                    let with = servers.iter().filter(|s| has_inotify(s.pid())).count();
                    inotify_note = format!(
                        " Of the {LARGE} v2 servers, {with} held an inotify instance (limit \
                         `fs.inotify.max_user_instances` = {}, shared by every process of the \
                         user); the others fell back to a `stat` of their own file once a \
                         second, as designed. `ulimit -n`: {}.",
                        read_trim("/proc/sys/fs/inotify/max_user_instances"),
                        nofile()
                    );
                }
                stop_all(&mut servers, libc::SIGKILL, Duration::from_secs(5));
                large.push((side, Ok(outcome)));
            }
            Err(e) => {
                eprintln!("    storm of {LARGE} × {}: {e:#}", Env::name(side, "echo"));
                storms.row(vec![
                    format!("{LARGE} × {}", Env::name(side, "echo")),
                    format!("failed: {e:#}"),
                ]);
                large.push((side, Err(e)));
            }
        }
    }
    let targets = vec![
        idle_target(&idle),
        storm_target(&small, SMALL, 1.0, true),
        storm_target(&large, LARGE, 10.0, false),
    ];
    Ok(Outcome {
        sections: vec![
            Section {
                title: "3b. Storm: real servers released by one barrier".into(),
                text: format!(
                    "Each server is started behind `wsreg-bench barrier -- CMD…`, which says \
                     `ready` and waits on stdin; when all are ready one line to each releases \
                     them, and each `exec`s the real server (`wsreg echo` v2 or v1, or the \
                     prototype's Node `ws` echo server), which loads, binds port 0 and \
                     registers. All listening: the last server's `listening ws://…` line. \
                     All listed: the first read that held every server's PID; an observer \
                     reads the registry through the real reader \
                     (`wsreg::Store::read`, which reads the v2 directory and the legacy \
                     `servers.json` where v1 and the prototype write) whenever `stat` (checked \
                     every millisecond) says the directory or that file changed, and at least \
                     every 20 ms (opening v1's file wakes every v1 keeper, so a faster reader \
                     would slow v1 down by itself), and counts every file \
                     or legacy document it had to pass over as a torn read. Lost: servers \
                     not listed by the last read. Storms are capped (100: 30 s; 1,000: 30 s \
                     for v2, 15 s for v1); the servers are then killed by PID.{inotify_note}"
                ),
                table: Some(storms),
            },
            Section {
                title: "3c. Idle: 100 registered servers, an endpoint and 10 subscribers".into(),
                text: format!(
                    "After the 100-server storm of each side, with its 100 servers still \
                     running: the side's endpoint (`wsreg serve`, v2 or v1, or Vite + \
                     plugin) is started with {IDLE_SUBSCRIBERS} SSE subscribers on \
                     `/api/registry/events` that read all that arrives; after 2 s, utime + \
                     stime of the 100 servers and the endpoint (`/proc/<pid>/stat`, 10 ms \
                     ticks) over {IDLE_SECS} s. Nothing changes in the registry meanwhile, so \
                     every CPU-second is overhead."
                ),
                table: Some(idles),
            },
        ],
        targets,
    })
}

fn storm_row(side: Side, o: &storm::Outcome) -> Vec<String> {
    let ms = |d: Option<Duration>| {
        d.map_or(format!("not within {} s", o.cap.as_secs()), |d| {
            num(d.as_secs_f64() * 1e3, 0)
        })
    };
    vec![
        format!("{} × {}", num(o.servers as f64, 0), Env::name(side, "echo")),
        ms(o.all_listening),
        ms(o.all_listed),
        num(o.listed as f64, 0),
        num(o.lost as f64, 0),
        format!("{} ({})", o.torn, num(o.reads as f64, 0)),
        num(o.died as f64, 0),
    ]
}

/// Release → all listening and listed, in seconds; `None` if not within the cap.
fn storm_secs(o: &storm::Outcome) -> Option<f64> {
    Some(o.all_listening?.max(o.all_listed?).as_secs_f64())
}

fn storm_figure(o: &storm::Outcome) -> String {
    match storm_secs(o) {
        Some(s) => format!("{} s, {} lost, {} torn reads", num(s, 2), o.lost, o.torn),
        None => format!(
            "not within {} s ({} of {} listed), {} torn reads",
            o.cap.as_secs(),
            o.listed,
            o.servers,
            o.torn
        ),
    }
}

fn storm_target(
    runs: &[(Side, Result<storm::Outcome>)],
    n: usize,
    goal_secs: f64,
    issue_goal_has_counts: bool,
) -> Target {
    let get = |side| runs.iter().find(|(s, _)| *s == side).map(|(_, r)| r);
    let figure = |side| match get(side) {
        Some(Ok(o)) => storm_figure(o),
        Some(Err(e)) => format!("failed: {e:#}"),
        None => "not run".into(),
    };
    // A storm that did not finish counts at its cap: the ratio is then a lower bound.
    let secs = |side| match get(side) {
        Some(Ok(o)) => Some(storm_secs(o).map_or((o.cap.as_secs_f64(), true), |s| (s, false))),
        _ => None,
    };
    let v2 = get(Side::Wsreg).and_then(|r| r.as_ref().ok());
    let met = v2.is_some_and(|o| {
        storm_secs(o).is_some_and(|s| s <= goal_secs) && o.lost == 0 && o.torn == 0 && o.died == 0
    });
    let ratio = |other: Side| match (secs(Side::Wsreg), secs(other)) {
        (Some((w, false)), Some((b, capped))) => {
            let r = vs(w, b, Better::Lower, 0.0);
            if capped { format!("> {r}") } else { r }
        }
        _ => "–".into(),
    };
    let why = match v2 {
        Some(o) if !met => format!(
            "all listening after {}, all listed after {}; {} lost, {} torn reads, {} exited \
             early",
            o.all_listening.map_or("never".into(), |d| format!(
                "{} ms",
                num(d.as_secs_f64() * 1e3, 0)
            )),
            o.all_listed.map_or("never".into(), |d| format!(
                "{} ms",
                num(d.as_secs_f64() * 1e3, 0)
            )),
            o.lost,
            o.torn,
            o.died
        ),
        _ => String::new(),
    };
    Target {
        issue: 11,
        name: format!(
            "{} real `wsreg echo` released by one barrier → all listening and listed",
            num(n as f64, 0)
        ),
        goal: if issue_goal_has_counts {
            format!("≤ {goal_secs} s; 0 lost, 0 torn reads")
        } else {
            format!("≤ {goal_secs} s (0 lost, 0 torn reads)")
        },
        achieved: figure(Side::Wsreg),
        v1: figure(Side::V1),
        node: if n == SMALL {
            figure(Side::Baseline)
        } else {
            "not run (1,000 Node processes)".into()
        },
        vs_v1: ratio(Side::V1),
        vs_node: if n == SMALL {
            ratio(Side::Baseline)
        } else {
            "–".into()
        },
        of_target: secs(Side::Wsreg).map_or("–".into(), |(s, _)| of_target(s, goal_secs)),
        met,
        why,
    }
}

fn idle_target(runs: &[(Side, Result<Idle>)]) -> Target {
    let get = |side| {
        runs.iter()
            .find(|(s, _)| *s == side)
            .and_then(|(_, r)| r.as_ref().ok())
    };
    let figure = |side| {
        get(side).map_or("not measured".into(), |m: &Idle| {
            format!("{} CPU-s", num(m.total(), 2))
        })
    };
    let ratio = |other| match (get(Side::Wsreg), get(other)) {
        // One tick (10 ms) is the resolution: a v2 figure of 0 counts as one tick.
        (Some(w), Some(b)) => vs(w.total(), b.total(), Better::Lower, 0.01),
        _ => "–".into(),
    };
    let v2 = get(Side::Wsreg);
    let met = v2.is_some_and(|m| m.total() <= 0.1);
    Target {
        issue: 11,
        name: "100 idle `wsreg echo` + `wsreg serve` with 10 SSE subscribers: CPU of all over 10 s"
            .into(),
        goal: "≤ 0.1 CPU-s".into(),
        achieved: figure(Side::Wsreg),
        v1: figure(Side::V1),
        node: figure(Side::Baseline),
        vs_v1: ratio(Side::V1),
        vs_node: ratio(Side::Baseline),
        of_target: v2.map_or("–".into(), |m| of_target(m.total(), 0.1)),
        met,
        why: v2
            .filter(|_| !met)
            .map(|m| {
                format!(
                    "servers {} CPU-s, endpoint {} CPU-s, {} SSE bytes sent while idle",
                    num(m.servers_cpu, 2),
                    num(m.endpoint_cpu, 2),
                    m.sse_bytes
                )
            })
            .unwrap_or_default(),
    }
}

/// Starts the side's endpoint with subscribers, then reads the CPU time of it and of the
/// servers over `IDLE_SECS`.
fn idle_cpu(
    env: &Env,
    side: Side,
    registry: &std::path::Path,
    servers: &mut [Spawned],
) -> Result<Idle> {
    let mut endpoint = Spawned::start(env.endpoint(side, registry)?, "the registry endpoint")?;
    let base = endpoint.listening_url(Duration::from_secs(30))?;
    let events = format!("{}/api/registry/events", base.trim_end_matches('/'));
    let held = Held::open(&events, IDLE_SUBSCRIBERS).context("the idle subscribers")?;
    std::thread::sleep(Duration::from_secs(2));
    let cpu = |pid: u32| proc::cpu_time(pid).map_or(0.0, |d| d.as_secs_f64());
    let pids: Vec<u32> = servers.iter().map(Spawned::pid).collect();
    let before_servers: f64 = pids.iter().map(|p| cpu(*p)).sum();
    let before_endpoint = cpu(endpoint.pid());
    let bytes_before = held.bytes();
    std::thread::sleep(Duration::from_secs(IDLE_SECS));
    let servers_cpu = pids.iter().map(|p| cpu(*p)).sum::<f64>() - before_servers;
    let endpoint_cpu = cpu(endpoint.pid()) - before_endpoint;
    let sse_bytes = held.bytes() - bytes_before;
    anyhow::ensure!(
        servers.iter_mut().all(|s| !s.exited()),
        "a server exited while idle"
    );
    drop(held);
    Ok(Idle {
        servers_cpu,
        endpoint_cpu,
        sse_bytes,
    })
}

fn has_inotify(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().contains("inotify"))
        })
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path).map_or("?".into(), |s| s.trim().to_owned())
}

fn nofile() -> String {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit
        .current
        .map_or("unlimited".into(), |current| current.to_string())
}
