//! The storm: `n` processes register at the same instant, and an observer times how long
//! until all are listed and counts the entries lost.
//!
//! Every writer is started first and says `ready`; only then does the runner write a line
//! to each one's stdin, so process start-up is not part of the figure. Each entry names
//! the runner's PID, which stays alive, so no writer drops another's entry as dead; each
//! has its own port, by which the observer counts it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::observed;
use crate::spawned::Spawned;

/// The first port of a storm; writer `i` registers port `FIRST_PORT + i`.
pub const FIRST_PORT: u16 = 20_000;

#[derive(Debug, Clone, clap::Args)]
pub struct WriterArgs {
    /// The registry file
    #[arg(long)]
    registry: PathBuf,
    /// The port to register
    #[arg(long)]
    port: u16,
    /// The PID the entry names
    #[arg(long)]
    pid: u32,
}

/// A writer of the wsreg storm, through the library's `register_once`.
pub fn writer(args: WriterArgs) -> Result<()> {
    let store = wsreg::Store::new(&args.registry);
    let server = wsreg::Server::for_pid("storm", args.port, args.pid);
    println!("ready");
    std::io::stdin().read_line(&mut String::new())?;
    server.register_once(&store)?;
    Ok(())
}

#[derive(Debug)]
pub struct Outcome {
    pub writers: usize,
    /// From the release to the first time all entries were in the file.
    pub all_listed: Option<Duration>,
    /// From the release to the last writer's exit.
    pub all_done: Duration,
    pub lost: usize,
    /// Whether the writers left a file that does not parse (everything in it is lost).
    pub corrupt: bool,
}

/// Runs a storm of `n` writers; `writer(i)` is the command of writer `i`.
pub fn run(n: usize, registry: &Path, writer: impl Fn(u16) -> Command) -> Result<Outcome> {
    let ports = FIRST_PORT..FIRST_PORT + n as u16;
    let mut writers = ports
        .clone()
        .map(|port| Spawned::start(writer(port), "a storm writer"))
        .collect::<Result<Vec<_>>>()?;
    for w in &mut writers {
        w.line(Duration::from_secs(60))
            .context("a storm writer did not get ready")?;
    }
    let released = Instant::now();
    for w in &mut writers {
        w.send_line("go")?;
    }
    let deadline = released + Duration::from_secs(10);
    let mut all_listed = None;
    let mut all_done = None;
    while Instant::now() < deadline && (all_listed.is_none() || all_done.is_none()) {
        if all_listed.is_none() && observed::count_ports(registry, ports.clone()) == Some(n) {
            all_listed = Some(released.elapsed());
        }
        if all_done.is_none() && writers.iter_mut().all(Spawned::exited) {
            all_done = Some(released.elapsed());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let all_done = all_done.context("storm writers still running after 10 s")?;
    let listed = observed::count_ports(registry, ports);
    Ok(Outcome {
        writers: n,
        all_listed,
        all_done,
        lost: n - listed.unwrap_or(0),
        corrupt: listed.is_none(),
    })
}
