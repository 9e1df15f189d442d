//! `wsreg-bench`: the benchmark harness behind `bench/run.sh`.
//!
//! `run` measures everything and rewrites `docs/benchmarks.md`; the other subcommands are
//! the pieces it starts as separate processes (load clients, so that several can share the
//! load; the storm's barrier, which releases real servers at one instant).

mod echo;
mod etcd;
mod fill;
mod hist;
mod idle;
mod machine;
mod observed;
mod ownership;
mod proc;
mod report;
mod run;
mod spawned;
mod sse;
mod startup;
mod storm;
mod suite;
mod tcp_echo;
mod wrk;
mod ws_fanout;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "wsreg-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every benchmark and rewrite the report
    Run(run::Args),
    /// Echo load (WebSocket, or raw TCP for a `tcp://` URL): closed-loop ping-pong, or
    /// open-loop at a fixed rate
    Echo(echo::Args),
    /// The floor: a TCP echo server with no WebSocket framing
    TcpEcho,
    /// The floor under `wsreg yjs`'s fan-out: a WebSocket server that forwards every
    /// binary message to every other connection and does nothing else
    WsFanout,
    /// Hold idle WebSocket connections until stdin closes
    Idle(idle::Args),
    /// Say `ready`, wait for a line on stdin, then exec the command (the storm's barrier)
    Barrier(storm::BarrierArgs),
    /// The etcd backend's figures: 10,000 servers on a three-member cluster (docs/etcd.md)
    Etcd(etcd::Args),
    /// Register simulated servers in etcd and hold their leases until stdin closes
    EtcdHold(etcd::HoldArgs),
    /// What the listening-socket rule of liveness costs: N entries of N processes
    Ownership(ownership::Args),
    /// One stand-in server for `ownership`: listen, print the port, wait for stdin to close
    OwnershipHold(ownership::HoldArgs),
    /// Judge the entries of a file (process check, then the whole rule cold and warm)
    OwnershipJudge(ownership::JudgeArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run::run(args),
        Command::Echo(args) => echo::run(args),
        Command::TcpEcho => tcp_echo::run(),
        Command::WsFanout => ws_fanout::run(),
        Command::Idle(args) => idle::run(args),
        Command::Barrier(args) => storm::barrier(args),
        Command::Etcd(args) => etcd::run(args),
        Command::EtcdHold(args) => etcd::hold(args),
        Command::Ownership(args) => ownership::run(args),
        Command::OwnershipHold(args) => ownership::hold(args),
        Command::OwnershipJudge(args) => ownership::judge(args),
    }
}
