//! The benchmarks of issue 6, one file each, and what they share: where the binaries
//! and baselines are, fresh registry files, and the commands that start each server
//! under test, wsreg's and the baseline's.

mod cost;
mod discovery;
mod echo;
mod endpoint;
mod registry;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::report::{Section, Target};

/// What a benchmark adds to the report.
#[derive(Debug, Default)]
pub struct Outcome {
    pub sections: Vec<Section>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bench {
    Echo,
    Idle,
    Cost,
    Registry,
    Discovery,
    Endpoint,
}

impl Bench {
    pub const ALL: [Bench; 6] = [
        Bench::Echo,
        Bench::Idle,
        Bench::Cost,
        Bench::Registry,
        Bench::Discovery,
        Bench::Endpoint,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Bench::Echo => "1. Echo throughput, latency and CPU",
            Bench::Idle => "1b. Idle connections",
            Bench::Cost => "2. Cost of a registered server",
            Bench::Registry => "3. Registry operations and the 200-server storm",
            Bench::Discovery => "4. Discovery: server start → subscriber and page",
            Bench::Endpoint => "5. Registry endpoint: GET /api/registry and SSE fan-out",
        }
    }

    pub fn run(self, env: &Env) -> Result<Outcome> {
        match self {
            Bench::Echo => echo::throughput(env),
            Bench::Idle => echo::idle(env),
            Bench::Cost => cost::run(env),
            Bench::Registry => registry::run(env),
            Bench::Discovery => discovery::run(env),
            Bench::Endpoint => endpoint::run(env),
        }
    }
}

/// Which side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Wsreg,
    Baseline,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Wsreg, Side::Baseline];
}

pub struct Env {
    pub repo: PathBuf,
    pub quick: bool,
    /// Load-client processes for the 50-connection loads.
    pub clients: usize,
    /// `target/release/wsreg`.
    pub wsreg: PathBuf,
    /// This program, which is also the load client.
    pub harness: PathBuf,
    scratch: PathBuf,
    registries: Cell<u32>,
}

impl Env {
    pub fn new(repo: &Path, quick: bool, clients: usize) -> Result<Env> {
        let repo = repo
            .canonicalize()
            .with_context(|| format!("no repository at {}", repo.display()))?;
        let wsreg = repo.join("target/release/wsreg");
        anyhow::ensure!(
            wsreg.exists(),
            "{} is missing: build it first",
            wsreg.display()
        );
        let scratch = repo.join(format!("target/bench-scratch/{}", std::process::id()));
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        Ok(Env {
            repo,
            quick,
            clients: clients.max(1),
            wsreg,
            harness: std::env::current_exe()?,
            scratch,
            registries: Cell::new(0),
        })
    }

    /// A path for a registry file that nothing has used yet.
    pub fn fresh_registry(&self) -> PathBuf {
        let n = self.registries.get() + 1;
        self.registries.set(n);
        self.scratch
            .join(format!("registry-{n}"))
            .join("servers.json")
    }

    /// `wsreg --registry R ARGS…`, logging warnings only.
    pub fn wsreg(&self, registry: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.wsreg);
        cmd.arg("--registry").arg(registry).args(args);
        cmd.env("WSREG_LOG", "warn");
        cmd
    }

    /// `node bench/baseline/SCRIPT ARGS…` with `WSREG_REGISTRY=R`.
    pub fn node(&self, registry: &Path, script: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(self.repo.join("bench").join(script)).args(args);
        cmd.env("WSREG_REGISTRY", registry).current_dir(&self.repo);
        cmd
    }

    /// A registered echo server.
    pub fn echo_server(&self, side: Side, registry: &Path) -> Command {
        match side {
            Side::Wsreg => self.wsreg(registry, &["echo"]),
            Side::Baseline => self.node(registry, "baseline/echo-server.js", &[]),
        }
    }

    /// A registry endpoint (`GET /api/registry`, SSE, a page at `/`).
    pub fn endpoint(&self, side: Side, registry: &Path) -> Command {
        match side {
            Side::Wsreg => self.wsreg(registry, &["serve", "--port", "0"]),
            Side::Baseline => self.node(registry, "baseline/vite-serve.js", &[]),
        }
    }

    /// What a side is called in the report, for a kind of server.
    pub fn name(side: Side, what: &str) -> String {
        match (side, what) {
            (Side::Wsreg, "echo") => "`wsreg echo`".into(),
            (Side::Baseline, "echo") => "Node `ws` (prototype)".into(),
            (Side::Wsreg, _) => "`wsreg serve`".into(),
            (Side::Baseline, _) => "Vite + plugin".into(),
        }
    }

    /// Picks the full or the quick variant of a setting.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// The median of some numbers (they are sorted in place); NaN when there are none.
pub fn median(xs: &mut [f64]) -> f64 {
    quantile(xs, 0.5)
}

/// The `q` quantile by the nearest-rank method (sorts in place); NaN when empty.
pub fn quantile(xs: &mut [f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    xs[rank - 1]
}
