//! The storm: `n` real servers are released by one barrier, and an observer times how
//! long until all are listening and all are listed, and counts the entries lost and the
//! torn reads.
//!
//! Each server is started behind `wsreg-bench barrier -- CMD…`, which says `ready` and
//! waits for a line on stdin before it `exec`s the server (same PID, same stdout). Once
//! every barrier is ready, one line to each releases them together, so process creation
//! is not part of the figure but loading the server's binary, binding, registering is.
//! The observer reads the registry through the real reader (`wsreg::Store::read`)
//! whenever `stat` says the directory or the legacy file changed (checked every
//! millisecond) and at least every 20 ms while the storm runs: an entry counts as listed when it is on disk, and
//! every file the reader had to pass over is a torn read.

use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::observed;
use crate::spawned::Spawned;

#[derive(Debug, Clone, clap::Args)]
pub struct BarrierArgs {
    /// The command to exec once released
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

/// `wsreg-bench barrier -- CMD…`: say `ready`, wait for a line on stdin, exec CMD.
pub fn barrier(args: BarrierArgs) -> Result<()> {
    println!("ready");
    std::io::stdin().read_line(&mut String::new())?;
    let err = Command::new(&args.command[0])
        .args(&args.command[1..])
        .exec();
    Err(err).with_context(|| format!("cannot exec {}", args.command[0]))
}

/// `cmd` behind a barrier.
fn behind_barrier(harness: &Path, cmd: &Command) -> Command {
    let mut b = Command::new(harness);
    b.arg("barrier")
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => b.env(k, v),
            None => b.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        b.current_dir(dir);
    }
    b
}

#[derive(Debug)]
pub struct Outcome {
    pub servers: usize,
    /// From the release to the last server's `listening` line.
    pub all_listening: Option<Duration>,
    /// From the release to the first read that listed every server.
    pub all_listed: Option<Duration>,
    /// Servers listed by the last read (after all listed, or at the cap).
    pub listed: usize,
    /// Servers not listed by the last read.
    pub lost: usize,
    /// Servers that exited during the storm.
    pub died: usize,
    /// Reads of the registry during the storm, and files or legacy documents they passed over.
    pub reads: usize,
    pub torn: usize,
    /// How long the storm was allowed to take.
    pub cap: Duration,
}

/// Runs a storm of `n` servers (`server(i)` is the command of server `i`); the servers
/// are returned still running, for the caller to measure further and stop.
pub fn run(
    n: usize,
    registry: &Path,
    harness: &Path,
    cap: Duration,
    server: impl Fn(usize) -> Command,
) -> Result<(Outcome, Vec<Spawned>)> {
    let mut procs = Vec::with_capacity(n);
    for i in 0..n {
        procs.push(Spawned::start(
            behind_barrier(harness, &server(i)),
            "a storm server",
        )?);
    }
    for p in &mut procs {
        let line = p
            .line(Duration::from_secs(60))
            .context("a storm barrier did not get ready")?;
        anyhow::ensure!(line == "ready", "a storm barrier said {line:?}");
    }
    let pids: HashSet<u32> = procs.iter().map(Spawned::pid).collect();
    let mut listening = vec![false; n];
    let mut listening_count = 0;
    let released = Instant::now();
    for p in &mut procs {
        p.send_line("go")?;
    }
    let deadline = released + cap;
    let (mut all_listening, mut all_listed) = (None, None);
    let (mut reads, mut torn, mut died) = (0, 0, 0);
    let (mut sig, mut last_read) = (None, Instant::now());
    while Instant::now() < deadline && (all_listening.is_none() || all_listed.is_none()) {
        for (i, p) in procs.iter_mut().enumerate() {
            if !listening[i] && p.ready_lines().iter().any(|l| l.contains("ws://")) {
                listening[i] = true;
                listening_count += 1;
            }
        }
        if all_listening.is_none() && listening_count == n {
            all_listening = Some(released.elapsed());
        }
        // Read when the directory or the legacy file changed (by `stat`, which wakes no
        // watcher), and at least every 20 ms: opening v1's file would wake every v1
        // keeper (its watch woke on IN_OPEN), so a reader that opened it every
        // millisecond would slow v1's storm down by itself.
        let now_sig = change_sig(registry);
        if all_listed.is_none() && (now_sig != sig || last_read.elapsed() >= FORCED_READ) {
            sig = now_sig;
            last_read = Instant::now();
            if let Some(seen) = observed::read(registry) {
                reads += 1;
                torn += seen.skipped;
                if count(&seen, &pids) == n {
                    all_listed = Some(released.elapsed());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for p in &mut procs {
        if p.exited() {
            died += 1;
        }
    }
    let last = observed::read(registry).context("the registry cannot be read")?;
    reads += 1;
    torn += last.skipped;
    let listed = count(&last, &pids);
    Ok((
        Outcome {
            servers: n,
            all_listening,
            all_listed,
            listed,
            lost: n - listed,
            died,
            reads,
            torn,
            cap,
        },
        procs,
    ))
}

/// The longest the observer goes without reading the registry.
const FORCED_READ: Duration = Duration::from_millis(20);

type Sig = Option<[(i64, i64, i64, i64, u64, u64); 2]>;

/// What `stat` says of the registry directory and the legacy file.
fn change_sig(registry: &Path) -> Sig {
    use std::os::unix::fs::MetadataExt;
    let one = |p: &Path| {
        std::fs::symlink_metadata(p).map_or((0, 0, 0, 0, 0, 0), |m| {
            (
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                m.ino(),
                m.size(),
            )
        })
    };
    Some([one(&registry.with_extension("")), one(registry)])
}

fn count(seen: &observed::Seen, pids: &HashSet<u32>) -> usize {
    seen.entries
        .iter()
        .filter(|e| pids.contains(&e.pid))
        .map(|e| e.pid)
        .collect::<HashSet<_>>()
        .len()
}
