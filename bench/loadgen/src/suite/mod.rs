//! The benchmarks of issues 6 and 11, one file each, and what they share: where the
//! binaries and baselines are, fresh registry paths, and the commands that start each
//! server under test: wsreg's (registry v2), wsreg v1's (the last v1 commit, built by
//! `bench/run.sh` into `target/v1/`) and the Node baseline's.

mod cost;
mod discovery;
mod echo;
mod endpoint;
mod registry;
mod scale;
mod storm;

use std::cell::Cell;
use std::os::unix::fs::DirBuilderExt;
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
    Storm,
    Discovery,
    Endpoint,
    Scale,
}

impl Bench {
    pub const ALL: [Bench; 8] = [
        Bench::Echo,
        Bench::Idle,
        Bench::Cost,
        Bench::Registry,
        Bench::Storm,
        Bench::Discovery,
        Bench::Endpoint,
        Bench::Scale,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Bench::Echo => "1. Echo throughput, latency and CPU",
            Bench::Idle => "1b. Idle connections",
            Bench::Cost => "2. Cost of a registered server",
            Bench::Registry => "3. Registry operations",
            Bench::Storm => "3b. Storm: real servers released by one barrier",
            Bench::Discovery => "4. Discovery: server start and exit → subscriber and page",
            Bench::Endpoint => "5. Registry endpoint: GET /api/registry and SSE fan-out",
            Bench::Scale => "6. 10,000 entries",
        }
    }

    pub fn run(self, env: &Env) -> Result<Outcome> {
        match self {
            Bench::Echo => echo::throughput(env),
            Bench::Idle => echo::idle(env),
            Bench::Cost => cost::run(env),
            Bench::Registry => registry::run(env),
            Bench::Storm => storm::run(env),
            Bench::Discovery => discovery::run(env),
            Bench::Endpoint => endpoint::run(env),
            Bench::Scale => scale::run(env),
        }
    }
}

/// Which side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// wsreg as built from this tree (registry v2).
    Wsreg,
    /// wsreg at the last registry-v1 commit (`V1_COMMIT`), for the issue-11 rows.
    V1,
    /// The Node prototype and the Vite plugin.
    Baseline,
}

/// The last commit with registry version 1: `bench/run.sh` builds its `wsreg` into
/// `target/v1/release/wsreg` (from a worktree in `target/v1-src`).
pub const V1_COMMIT: &str = "3aeff1c";

impl Side {
    pub const BOTH: [Side; 2] = [Side::Wsreg, Side::Baseline];
    pub const ALL: [Side; 3] = [Side::Wsreg, Side::V1, Side::Baseline];
}

pub struct Env {
    pub repo: PathBuf,
    pub quick: bool,
    /// Load-client processes for the 50-connection loads.
    pub clients: usize,
    /// `target/release/wsreg`.
    pub wsreg: PathBuf,
    /// `target/v1/release/wsreg`, the registry-v1 build, when it is there.
    pub wsreg_v1: Option<PathBuf>,
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
        let wsreg_v1 = Some(repo.join("target/v1/release/wsreg")).filter(|p| p.exists());
        let scratch = repo.join(format!("target/bench-scratch/{}", std::process::id()));
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        Ok(Env {
            repo,
            quick,
            clients: clients.max(1),
            wsreg,
            wsreg_v1,
            harness: std::env::current_exe()?,
            scratch,
            registries: Cell::new(0),
        })
    }

    /// A registry path that nothing has used yet, `…/registry-N/servers.json`: v1's file,
    /// and for v2 the legacy file beside the directory `…/registry-N/servers/`.
    pub fn fresh_registry(&self) -> PathBuf {
        let n = self.registries.get() + 1;
        self.registries.set(n);
        let parent = self.scratch.join(format!("registry-{n}"));
        // v2 creates a named registry directory only when its parent exists; 0700 as a
        // writer would leave it, so that no reader warns about its mode.
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&parent);
        parent.join("servers.json")
    }

    /// `wsreg --registry R ARGS…`, logging warnings only.
    pub fn wsreg(&self, registry: &Path, args: &[&str]) -> Command {
        self.wsreg_of(&self.wsreg, registry, args)
    }

    /// The same with the v1 build (a `…/servers.json` registry path means the same
    /// file to v1 and the legacy file beside the directory to v2).
    pub fn wsreg_v1(&self, registry: &Path, args: &[&str]) -> Result<Command> {
        let v1 = self.wsreg_v1.as_ref().with_context(|| {
            format!(
                "no v1 build at target/v1/release/wsreg (bench/run.sh builds it from {V1_COMMIT})"
            )
        })?;
        Ok(self.wsreg_of(v1, registry, args))
    }

    fn wsreg_of(&self, bin: &Path, registry: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin);
        cmd.arg("--registry").arg(registry).args(args);
        cmd.env("WSREG_LOG", "warn");
        cmd
    }

    /// `wsreg ARGS…` of a side that is a wsreg build.
    pub fn wsreg_side(&self, side: Side, registry: &Path, args: &[&str]) -> Result<Command> {
        match side {
            Side::Wsreg => Ok(self.wsreg(registry, args)),
            Side::V1 => self.wsreg_v1(registry, args),
            Side::Baseline => anyhow::bail!("the Node baseline has no `wsreg {}`", args.join(" ")),
        }
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
        self.try_echo_server(side, registry)
            .expect("the v1 build is checked before it is used")
    }

    /// A registered echo server; an error for v1 when its build is missing.
    pub fn try_echo_server(&self, side: Side, registry: &Path) -> Result<Command> {
        match side {
            Side::Wsreg | Side::V1 => self.wsreg_side(side, registry, &["echo"]),
            Side::Baseline => Ok(self.node(registry, "baseline/echo-server.js", &[])),
        }
    }

    /// A registry endpoint (`GET /api/registry`, SSE, a page at `/`).
    pub fn endpoint(&self, side: Side, registry: &Path) -> Result<Command> {
        match side {
            Side::Wsreg | Side::V1 => self.wsreg_side(side, registry, &["serve", "--port", "0"]),
            Side::Baseline => Ok(self.node(registry, "baseline/vite-serve.js", &[])),
        }
    }

    /// What a side is called in the report, for a kind of server.
    pub fn name(side: Side, what: &str) -> String {
        match (side, what) {
            (Side::Wsreg, "echo") => "`wsreg echo`".into(),
            (Side::V1, "echo") => format!("`wsreg echo` v1 ({V1_COMMIT})"),
            (Side::Baseline, "echo") => "Node `ws` (prototype)".into(),
            (Side::Wsreg, _) => "`wsreg serve`".into(),
            (Side::V1, _) => format!("`wsreg serve` v1 ({V1_COMMIT})"),
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
