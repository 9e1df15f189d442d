//! `wsreg-bench ownership`: what the listening-socket rule of liveness costs (issue 12,
//! item 1). N local entries, each naming its own process that holds one LISTEN socket,
//! are judged three ways, each in a fresh process so that "cold" really knows nothing:
//!
//! - the process check alone (PID, zombie, start time: the rule before), the baseline;
//! - the whole rule, cold: the first check, which reads the LISTEN tables once and each
//!   process's descriptors;
//! - the whole rule, warm: a new judge once the socket inodes are known (what a `wsreg
//!   list` would pay with a warm cache), which reads the LISTEN sockets and no descriptor;
//! - the socket check alone, warm: what `wsreg serve` pays on each recheck of every
//!   entry (its pidfds already watch the processes, so it reads no `/proc/<pid>/stat`).
//!
//! The servers are `wsreg-bench ownership-hold` processes shaped like a server: 20
//! descriptors opened first (a Node server's runtime holds about that many), then the
//! listener, then 3 more (its connections); each prints its port and exits when its stdin
//! closes, i.e. when this run ends. With `--layouts K`, holder i opens `20 + i % K`
//! descriptors first and registers as kind `bench<i % K>`, so that K kinds of server,
//! interleaved, keep their listeners at K descriptor numbers (a judge tries the numbers
//! where it last found listeners of the entry's kind before it lists a process's
//! descriptors: K = 1 is its best case, K = N, no two servers of a kind, its worst).
//! `wsreg list --json` on a registry of the same N entries is timed too, end to end, as a
//! user meets it.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use wsreg::registry::{Judge, Verdict};

/// Descriptors each holder opens before its listener, and after it.
const HOLDER_FDS: (usize, usize) = (20, 3);
/// Warm rounds per judging process.
const WARM_ROUNDS: usize = 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Entry counts to measure
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    servers: Vec<usize>,
    /// Judging processes per count (the median is reported)
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// How many descriptor layouts the holders have (1: all alike, as servers of one kind)
    #[arg(long, default_value_t = 1)]
    layouts: usize,
    /// The wsreg binary for the `wsreg list` row
    #[arg(long, default_value = "target/release/wsreg")]
    wsreg: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct JudgeArgs {
    /// The entries, as a version-1 document (`{"version":1,"servers":[…]}`)
    #[arg(long)]
    entries: PathBuf,
}

/// What one judging process measured, in microseconds.
#[derive(Debug, Serialize, Deserialize)]
struct Judged {
    process_only: u64,
    cold: u64,
    warm: u64,
    recheck: u64,
}

#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    /// Descriptors opened before the listener
    #[arg(long, default_value_t = HOLDER_FDS.0)]
    before: usize,
}

/// `wsreg-bench ownership-hold`: one stand-in server.
pub fn hold(args: HoldArgs) -> Result<()> {
    let open = |n| {
        (0..n)
            .map(|_| std::fs::File::open("/dev/null"))
            .collect::<std::io::Result<Vec<_>>>()
    };
    let _runtime = open(args.before)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let _connections = open(HOLDER_FDS.1)?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

/// `wsreg-bench ownership-judge`: judges the entries of a file, as described above.
pub fn judge(args: JudgeArgs) -> Result<()> {
    let entries = wsreg::registry::model::parse(&std::fs::read(&args.entries)?)?.entries;
    let timed = |f: &dyn Fn(&Judge<'static>, &wsreg::Entry) -> bool| -> Result<u64> {
        let start = Instant::now();
        let judge = Judge::system();
        let live = entries.iter().filter(|e| f(&judge, e)).count();
        let took = start.elapsed().as_micros() as u64;
        ensure!(live == entries.len(), "{live} of {} live", entries.len());
        Ok(took)
    };
    let process_only = timed(&|j, e| j.check_process(e).is_ok())?;
    let whole = |j: &Judge<'static>, e: &wsreg::Entry| j.verdict(e) == Verdict::Live;
    let cold = timed(&whole)?;
    let median = |f: &dyn Fn(&Judge<'static>, &wsreg::Entry) -> bool| -> Result<u64> {
        let mut times: Vec<u64> = (0..WARM_ROUNDS).map(|_| timed(f)).collect::<Result<_>>()?;
        times.sort_unstable();
        Ok(times[times.len() / 2])
    };
    let judged = Judged {
        process_only,
        cold,
        warm: median(&whole)?,
        recheck: median(&|j, e| j.listening(e) == Verdict::Live)?,
    };
    println!("{}", serde_json::to_string(&judged)?);
    Ok(())
}

/// Holders, stopped (their stdin closed, then waited for) when dropped.
struct Holders(Vec<Child>);

impl Drop for Holders {
    fn drop(&mut self) {
        for child in &mut self.0 {
            drop(child.stdin.take());
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let most = args.servers.iter().copied().max().unwrap_or(0);
    crate::fill::raise_descriptor_limit(4 * most as u64 + 4096);
    let me = std::env::current_exe()?;
    eprintln!("ownership: starting {most} holder processes");
    let mut holders = Holders(Vec::with_capacity(most));
    let mut entries = Vec::with_capacity(most);
    for i in 0..most {
        let layout = i % args.layouts.max(1);
        let before = HOLDER_FDS.0 + layout;
        let mut child = Command::new(&me)
            .args(["ownership-hold", "--before", &before.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start a holder")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("piped")?).read_line(&mut line)?;
        let port: u16 = line.trim().parse().context("a holder's port")?;
        entries.push(
            wsreg::Server::for_pid(&format!("bench{layout}"), port, child.id())
                .entry()
                .clone(),
        );
        holders.0.push(child);
    }
    let dir = tempfile::tempdir()?;
    let mut table = String::from(
        "| entries | process check only (before) | whole rule, cold | whole rule, warm | warm ÷ before | `serve`'s recheck (sockets only, warm) | `wsreg list --json`, end to end | target: ≤ 20 ms for 1,000 |\n\
         |---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for &n in &args.servers {
        let file = dir.path().join(format!("entries-{n}.json"));
        std::fs::write(&file, wsreg::registry::model::to_json(&entries[..n]))?;
        let mut runs: Vec<Judged> = Vec::new();
        for _ in 0..args.repeats {
            let out = Command::new(&me)
                .arg("ownership-judge")
                .arg("--entries")
                .arg(&file)
                .output()?;
            if !out.status.success() {
                bail!("judging failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            runs.push(serde_json::from_slice(&out.stdout)?);
        }
        let median = |f: fn(&Judged) -> u64| {
            let mut v: Vec<u64> = runs.iter().map(f).collect();
            v.sort_unstable();
            v[v.len() / 2]
        };
        let (before, cold, warm, recheck) = (
            median(|j| j.process_only),
            median(|j| j.cold),
            median(|j| j.warm),
            median(|j| j.recheck),
        );
        let list = list_time(
            &args.wsreg,
            &dir.path().join(format!("reg-{n}")),
            &entries[..n],
            args.repeats,
        )?;
        let verdict = |us: u64| match us <= 20_000 {
            true => "met",
            false => "missed",
        };
        let status = match n {
            1000 => format!(
                "warm: {}; `serve`'s recheck: {}; cold: {}",
                verdict(warm),
                verdict(recheck),
                verdict(cold)
            ),
            _ => String::new(),
        };
        table.push_str(&format!(
            "| {n} | {} | {} | {} | {:.2}× | {} | {} | {status} |\n",
            ms(before),
            ms(cold),
            ms(warm),
            warm as f64 / before.max(1) as f64,
            ms(recheck),
            ms(list.as_micros() as u64),
        ));
        eprintln!("ownership: {n} entries done");
    }
    println!("{table}");
    Ok(())
}

/// Median time of `wsreg list --json` (a fresh process: cold) on a registry of `entries`.
fn list_time(
    wsreg: &PathBuf,
    registry: &std::path::Path,
    entries: &[wsreg::Entry],
    repeats: usize,
) -> Result<Duration> {
    let store = wsreg::Store::new(registry);
    for e in entries {
        store.register(e)?;
    }
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let start = Instant::now();
        let out = Command::new(wsreg)
            .arg("--registry")
            .arg(registry)
            .args(["list", "--json"])
            .output()
            .with_context(|| format!("cannot run {}", wsreg.display()))?;
        times.push(start.elapsed());
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let listed = doc["servers"].as_array().map_or(0, Vec::len);
        ensure!(
            listed == entries.len(),
            "wsreg list showed {listed} of {}",
            entries.len()
        );
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}
