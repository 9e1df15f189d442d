//! Benchmark 1: `wsreg echo` against the prototype's Node `ws` server under the load
//! client (`wsreg-bench echo`), and the memory each idle connection costs.
//!
//! Server CPU is read from `/proc/<pid>/stat` before the clients start and after they
//! exit, and divided by every round trip they made (warm-up included), so it is the
//! server's whole cost per echoed message, connection set-up included.
//!
//! The floor is the same load over raw TCP against `wsreg-bench tcp-echo` (no WebSocket
//! framing): the kernel's loopback cost and the runtime's, which no WebSocket server can
//! go below. `wsreg echo`'s CPU per message is held to a ratio of it (issue 16).

use std::time::Duration;

use anyhow::{Context, Result};

use super::{Env, Outcome, Side};
use crate::echo;
use crate::hist::{self, Percentiles};
use crate::proc;
use crate::report::{Better, Section, Table, Target, advantage, num, ratio, times};
use crate::spawned::Spawned;

/// One load shape.
struct Load {
    label: &'static str,
    conns: usize,
    size: usize,
    procs: usize,
    /// Open loop at this many messages per second in all.
    rate: Option<f64>,
}

/// An echo server under test: one side of the comparison, or the TCP floor.
#[derive(Clone, Copy)]
enum Server {
    Side(Side),
    Floor,
}

impl Server {
    const ALL: [Server; 3] = [
        Server::Side(Side::Wsreg),
        Server::Side(Side::Baseline),
        Server::Floor,
    ];

    fn name(self) -> String {
        match self {
            Server::Side(side) => Env::name(side, "echo"),
            Server::Floor => "floor: TCP echo, no WebSocket (`wsreg-bench tcp-echo`)".into(),
        }
    }
}

/// The floor's CPU per message a `wsreg echo` may spend at most (issue 16).
const FLOOR_TARGET: f64 = 1.15;

/// Memory per idle connection a `wsreg echo` may hold at most, KiB (issue 16).
const IDLE_TARGET_KIB: f64 = 4.0;

struct Figures {
    round_trips_per_sec: f64,
    latency: Percentiles,
    cpu_secs_per_million: f64,
}

pub fn throughput(env: &Env) -> Result<Outcome> {
    let loads = [
        Load {
            label: "1 × 64 B",
            conns: 1,
            size: 64,
            procs: 1,
            rate: None,
        },
        Load {
            label: "50 × 64 B",
            conns: 50,
            size: 64,
            procs: env.clients,
            rate: None,
        },
        Load {
            label: "1 × 64 KiB",
            conns: 1,
            size: 64 * 1024,
            procs: 1,
            rate: None,
        },
        Load {
            label: "50 × 64 B, open loop 10,000/s",
            conns: 50,
            size: 64,
            procs: env.clients,
            rate: Some(10_000.0),
        },
    ];
    let mut table = Table::new(&[
        "load (connections × size)",
        "server",
        "round trips/s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "server CPU-s per 1M round trips",
        "client processes",
    ]);
    let mut ratios = Table::new(&[
        "load",
        "throughput",
        "CPU per message",
        "p99",
        "CPU per message ÷ the floor's",
    ]);
    let mut targets = Vec::new();
    for load in &loads {
        let mut figures = Vec::new();
        for server in Server::ALL {
            let f = measure(env, server, load)
                .with_context(|| format!("{} under {}", server.name(), load.label))?;
            table.row(vec![
                load.label.into(),
                server.name(),
                num(f.round_trips_per_sec, 0),
                num(f.latency.p50 as f64, 0),
                num(f.latency.p99 as f64, 0),
                num(f.latency.p999 as f64, 0),
                num(f.cpu_secs_per_million, 2),
                load.procs.to_string(),
            ]);
            figures.push(f);
        }
        let (w, b, floor) = (&figures[0], &figures[1], &figures[2]);
        let speed = advantage(w.round_trips_per_sec, b.round_trips_per_sec, Better::Higher);
        let cpu = advantage(
            w.cpu_secs_per_million,
            b.cpu_secs_per_million,
            Better::Lower,
        );
        let p99 = advantage(w.latency.p99 as f64, b.latency.p99 as f64, Better::Lower);
        let over_floor = w.cpu_secs_per_million / floor.cpu_secs_per_million;
        ratios.row(vec![
            load.label.into(),
            ratio(speed),
            ratio(cpu),
            ratio(p99),
            format!("{over_floor:.2}"),
        ]);
        if load.conns == 50 && load.rate.is_none() {
            targets.push(Target {
                name: "echo CPU per message, 50 × 64 B".into(),
                goal: "≤ 1/3 of Node (≥ 3× less)".into(),
                achieved: format!(
                    "{} less ({} vs {} CPU-s per 1M)",
                    times(cpu),
                    num(w.cpu_secs_per_million, 2),
                    num(b.cpu_secs_per_million, 2)
                ),
                met: cpu >= 3.0,
                ..Target::default()
            });
            targets.push(Target {
                issue: 16,
                name: "echo CPU per message, 50 × 64 B, against the floor (TCP echo)".into(),
                goal: format!("≤ {FLOOR_TARGET}× the floor's"),
                achieved: format!(
                    "{over_floor:.2}× ({} vs {} CPU-s per 1M)",
                    num(w.cpu_secs_per_million, 2),
                    num(floor.cpu_secs_per_million, 2)
                ),
                met: over_floor <= FLOOR_TARGET,
                ..Target::default()
            });
            targets.push(Target {
                name: "echo throughput, 50 × 64 B".into(),
                goal: "≥ 2× Node".into(),
                achieved: format!(
                    "{} ({} vs {} round trips/s, {} client processes)",
                    times(speed),
                    num(w.round_trips_per_sec, 0),
                    num(b.round_trips_per_sec, 0),
                    load.procs
                ),
                met: speed >= 2.0,
                ..Target::default()
            });
        }
    }
    let secs = env.pick(5, 2);
    let text = format!(
        "`wsreg-bench echo` (Rust, tokio-tungstenite, one thread per process) sends binary \
         messages and waits for each echo (closed loop), {secs} s measured after 1 s of \
         warm-up; the open-loop row sends on a fixed schedule and times each message from \
         its scheduled send, so a stall shows in the tail. Latency is the round trip. The \
         clients share the 2 cores with the server, so round trips/s is what the pair does \
         on this machine, and CPU per round trip is the server's own cost (utime + stime). \
         The floor gets the same load over raw TCP (`size` bytes out, the same bytes back, \
         on the same tokio runtime): what the kernel's loopback and the runtime cost with \
         no WebSocket framing at all."
    );
    let ratio_section = Section {
        title: "1. Echo: wsreg against Node".into(),
        text: "Each figure as \"wsreg is N× better\" than Node (above 1: wsreg wins; a loss \
               is marked), and `wsreg echo`'s CPU per message divided by the floor's (1 would \
               be no cost above raw TCP)."
            .into(),
        table: Some(ratios),
    };
    Ok(Outcome {
        sections: vec![
            Section {
                title: "1. Echo throughput, latency and CPU".into(),
                text,
                table: Some(table),
            },
            ratio_section,
        ],
        targets,
    })
}

fn measure(env: &Env, under_test: Server, load: &Load) -> Result<Figures> {
    let registry = env.fresh_registry();
    let cmd = match under_test {
        Server::Side(side) => env.echo_server(side, &registry),
        Server::Floor => {
            let mut cmd = std::process::Command::new(&env.harness);
            cmd.arg("tcp-echo");
            cmd
        }
    };
    let mut server = Spawned::start(cmd, "the echo server")?;
    let url = server.listening_url(Duration::from_secs(10))?;
    let secs = env.pick(5.0, 2.0);
    let cpu_before = proc::cpu_time(server.pid()).context("cannot read the server's CPU time")?;
    let mut clients = Vec::new();
    for i in 0..load.procs {
        let conns = load.conns / load.procs + usize::from(i < load.conns % load.procs);
        let mut cmd = std::process::Command::new(&env.harness);
        cmd.args(["echo", "--url", &url])
            .args([
                "--conns",
                &conns.to_string(),
                "--size",
                &load.size.to_string(),
            ])
            .args(["--secs", &secs.to_string(), "--warmup", "1"]);
        if let Some(rate) = load.rate {
            cmd.args(["--rate", &(rate / load.procs as f64).to_string()]);
        }
        clients.push(Spawned::start(cmd, "an echo load client")?);
    }
    let mut latency = hist::new();
    let (mut round_trips, mut all_round_trips) = (0, 0);
    for client in clients {
        let out = client.finish(Duration::from_secs_f64(secs + 60.0))?;
        let outcome: echo::Outcome = serde_json::from_str(
            out.last()
                .context("an echo load client printed no result")?,
        )?;
        outcome.latency_us.add_to(&mut latency);
        round_trips += outcome.round_trips;
        all_round_trips += outcome.all_round_trips;
    }
    let cpu =
        proc::cpu_time(server.pid()).context("cannot read the server's CPU time")? - cpu_before;
    Ok(Figures {
        round_trips_per_sec: round_trips as f64 / secs,
        latency: Percentiles::of(&latency),
        cpu_secs_per_million: cpu.as_secs_f64() / all_round_trips as f64 * 1e6,
    })
}

/// Benchmark 1b: server memory per idle connection.
pub fn idle(env: &Env) -> Result<Outcome> {
    let conns = env.pick(10_000, 2_000);
    let procs = 2;
    let mut table = Table::new(&[
        "server",
        "RSS before (MiB)",
        &format!("RSS with {} idle connections (MiB)", num(conns as f64, 0)),
        "KiB per connection",
    ]);
    let mut per_conn = Vec::new();
    for side in Side::BOTH {
        let registry = env.fresh_registry();
        let mut server = Spawned::start(env.echo_server(side, &registry), "the echo server")?;
        let url = server.listening_url(Duration::from_secs(10))?;
        std::thread::sleep(Duration::from_millis(500));
        let before = proc::rss_kib(server.pid()).context("cannot read the server's RSS")?;
        let mut holders = Vec::new();
        for i in 0..procs {
            let mut cmd = std::process::Command::new(&env.harness);
            cmd.args([
                "idle",
                "--url",
                &url,
                "--conns",
                &(conns / procs).to_string(),
            ])
            .args(["--source", &format!("127.0.0.{}", i + 1)]);
            holders.push(Spawned::start(cmd, "an idle-connection client")?);
        }
        for h in &mut holders {
            h.line(Duration::from_secs(120))
                .context("idle connections not ready")?;
        }
        std::thread::sleep(Duration::from_secs(1));
        let after = proc::rss_kib(server.pid()).context("cannot read the server's RSS")?;
        let kib = (after as f64 - before as f64) / conns as f64;
        table.row(vec![
            Env::name(side, "echo"),
            num(before as f64 / 1024.0, 1),
            num(after as f64 / 1024.0, 1),
            num(kib, 1),
        ]);
        per_conn.push(kib);
        drop(holders);
    }
    let smaller = advantage(per_conn[0], per_conn[1], Better::Lower);
    table.row(vec![
        "wsreg vs Node".into(),
        String::new(),
        String::new(),
        ratio(smaller),
    ]);
    let target = Target {
        issue: 16,
        name: format!(
            "memory per idle WebSocket connection, {} held",
            num(conns as f64, 0)
        ),
        goal: format!("≤ {IDLE_TARGET_KIB} KiB"),
        achieved: format!(
            "{} KiB (Node {} KiB)",
            num(per_conn[0], 1),
            num(per_conn[1], 1)
        ),
        met: per_conn[0] <= IDLE_TARGET_KIB,
        ..Target::default()
    };
    Ok(Outcome {
        sections: vec![Section {
            title: "1b. Idle connections".into(),
            text: format!(
                "{} WebSocket connections opened by {procs} `wsreg-bench idle` processes \
                 (from 127.0.0.1 and 127.0.0.2) and held without traffic; the server's \
                 VmRSS before and after, divided by the connections.",
                num(conns as f64, 0)
            ),
            table: Some(table),
        }],
        targets: vec![target],
    })
}
