//! `wsreg-bench`: the benchmark harness behind `bench/run.sh`.
//!
//! `run` measures everything and rewrites `docs/benchmarks.md`; the other subcommands are
//! the pieces it starts as separate processes (load clients, so that several can share the
//! load; storm writers, so that the storm is one write per process, as with real servers).

mod echo;
mod hist;
mod idle;
mod machine;
mod observed;
mod proc;
mod report;
mod run;
mod spawned;
mod sse;
mod startup;
mod storm;
mod suite;
mod wrk;

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
    /// WebSocket echo load: closed-loop ping-pong, or open-loop at a fixed rate
    Echo(echo::Args),
    /// Hold idle WebSocket connections until stdin closes
    Idle(idle::Args),
    /// One writer of the storm: wait for a line on stdin, register once, exit
    StormWriter(storm::WriterArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run::run(args),
        Command::Echo(args) => echo::run(args),
        Command::Idle(args) => idle::run(args),
        Command::StormWriter(args) => storm::writer(args),
    }
}
