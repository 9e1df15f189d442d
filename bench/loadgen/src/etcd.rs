//! The etcd backend's figures (`wsreg-bench etcd`): 10,000 simulated servers registered
//! in a three-member cluster by several holder processes, all listed by `wsreg serve`.
//!
//! It starts its own cluster (scripts/etcd-cluster.sh, in a temporary directory, stopped
//! at the end) and two `serve`s on it, then measures: the register latency (a lease grant
//! and a put, what a `Registration` does, timed in the holders), the time of a 10,000-entry
//! `GET /api/registry` and of `wsreg list --json`, the time from a registration to the
//! `servers` event on the *other* `serve`, and that `serve`'s memory. It prints the
//! section for docs/benchmarks.md (`bench/section.sh etcd`).
//!
//! Holders register their share one after the other and keep their leases until stdin
//! closes; the leases are long (the run is shorter than the TTL), so no renewal traffic
//! is mixed into the figures.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wsreg::etcd::EtcdConfig;
use wsreg::etcd::lease::put_under_lease;
use wsreg::etcd::members::Members;
use wsreg::registry::model::entry_file_json;

use crate::hist;
use crate::proc;
use crate::spawned::{Spawned, stop_all};
use crate::sse::Subscriber;

/// The holders' lease TTL: longer than a run.
const HOLD_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many simulated servers
    #[arg(long, default_value_t = 10_000)]
    servers: usize,
    /// How many processes hold them
    #[arg(long, default_value_t = 5)]
    holders: usize,
    /// How many registrations are timed to the other serve's event
    #[arg(long, default_value_t = 50)]
    changes: usize,
    /// The wsreg binary [default: target/release/wsreg]
    #[arg(long)]
    wsreg: Option<PathBuf>,
    /// The cluster's first port
    #[arg(long, default_value_t = 23_790)]
    base_port: u16,
}

#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    /// The cluster, etcd://…
    #[arg(long)]
    backend: String,
    /// How many servers this process registers
    #[arg(long)]
    count: usize,
}

/// `wsreg-bench etcd-hold`: registers `count` entries of this process, prints each
/// registration's latency (µs) as one JSON array, then holds the leases until stdin
/// closes.
pub fn hold(args: HoldArgs) -> Result<()> {
    let config = EtcdConfig::parse(&args.backend)?.with_ttl(HOLD_TTL);
    let entries = crate::fill::entries(args.count)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let micros = runtime.block_on(async {
        let members = Members::connect(&config).await?;
        let mut micros = Vec::with_capacity(entries.len());
        for entry in &entries {
            let start = Instant::now();
            put_under_lease(
                &members,
                &config,
                &config.key(&entry.id),
                &entry_file_json(entry),
            )
            .await?;
            micros.push(start.elapsed().as_micros() as u64);
        }
        anyhow::Ok(micros)
    })?;
    println!("{}", serde_json::to_string(&micros)?);
    std::io::stdout().flush()?;
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    Ok(())
}

/// The cluster this run started; stopped (SIGKILL by PID file) when dropped.
struct Cluster {
    script: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

pub fn run(args: Args) -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let wsreg = args
        .wsreg
        .clone()
        .unwrap_or_else(|| repo.join("target/release/wsreg"));
    let cluster = Cluster {
        script: repo.join("scripts/etcd-cluster.sh"),
        dir: tempfile::tempdir()?,
    };
    let out = Command::new("bash")
        .arg(&cluster.script)
        .arg("start")
        .arg(cluster.dir.path())
        .arg(args.base_port.to_string())
        .output()?;
    if !out.status.success() {
        bail!(
            "etcd-cluster.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let backend = String::from_utf8(out.stdout)?.trim().to_owned();
    let registry = cluster.dir.path().join("registry");
    std::fs::create_dir_all(&registry)?;
    let wsreg_cmd = |args: &[&str]| {
        let mut cmd = Command::new(&wsreg);
        cmd.args(args)
            .env("WSREG_BACKEND", &backend)
            .env("WSREG_REGISTRY", &registry)
            .env("WSREG_LOG", "warn");
        cmd
    };
    let mut serves = Vec::new();
    let mut urls = Vec::new();
    for name in ["serve A", "serve B"] {
        let mut serve = Spawned::start(wsreg_cmd(&["serve", "--port", "0"]), name)?;
        urls.push(serve.listening_url(Duration::from_secs(10))?);
        serves.push(serve);
    }

    // Registration: the holders, all at once.
    let me = std::env::current_exe()?;
    let per = args.servers.div_ceil(args.holders);
    let started = Instant::now();
    let mut holders = Vec::new();
    for h in 0..args.holders {
        let count = per.min(args.servers - h * per);
        let mut cmd = Command::new(&me);
        cmd.args(["etcd-hold", "--backend", &backend])
            .args(["--count", &count.to_string()]);
        holders.push(Spawned::start(cmd, "holder")?);
    }
    let mut latency = hist::new();
    for holder in &mut holders {
        let line = holder.line(Duration::from_secs(600))?;
        let micros: Vec<u64> = serde_json::from_str(&line).context("a holder's latencies")?;
        for m in micros {
            latency.record(m.max(1))?;
        }
    }
    let all_registered = started.elapsed();

    // Every entry listed by serve A.
    let a = urls[0].trim_end_matches('/').to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_servers(&http_get(&a, "/api/registry")?) < args.servers {
        if Instant::now() > deadline {
            bail!("serve A does not list {} servers within 60 s", args.servers);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut list = hist::new();
    for _ in 0..20 {
        let start = Instant::now();
        let body = http_get(&a, "/api/registry")?;
        list.record(start.elapsed().as_micros() as u64)?;
        if count_servers(&body) < args.servers {
            bail!("a list missed servers");
        }
    }
    let mut cli = hist::new();
    for _ in 0..5 {
        let start = Instant::now();
        let out = wsreg_cmd(&["list", "--json"]).output()?;
        cli.record(start.elapsed().as_micros() as u64)?;
        if count_servers(&String::from_utf8_lossy(&out.stdout)) < args.servers {
            bail!("wsreg list missed servers");
        }
    }
    let rss_a = proc::rss_kib(serves[0].pid()).unwrap_or(0);
    let rss_b = proc::rss_kib(serves[1].pid()).unwrap_or(0);

    // A registration → the `servers` event on serve B (10,000 entries in each event).
    let b_events = format!("{}/api/registry/events", urls[1].trim_end_matches('/'));
    let runtime = tokio::runtime::Runtime::new()?;
    let change = runtime.block_on(async {
        let config = EtcdConfig::parse(&backend)?.with_ttl(HOLD_TTL);
        let members = Members::connect(&config).await?;
        let mut subscriber = Subscriber::open(&b_events).await?;
        let mut change = hist::new();
        for entry in crate::fill::entries(args.changes)? {
            subscriber.clear();
            let start = tokio::time::Instant::now();
            put_under_lease(
                &members,
                &config,
                &config.key(&entry.id),
                &entry_file_json(&entry),
            )
            .await?;
            let seen = subscriber
                .wait_for(entry.id.as_bytes(), Duration::from_secs(10))
                .await?;
            change.record((seen - start).as_micros().max(1) as u64)?;
        }
        anyhow::Ok(change)
    })?;

    for holder in &mut holders {
        holder.close_stdin();
    }
    stop_all(&mut holders, libc::SIGTERM, Duration::from_secs(2));
    stop_all(&mut serves, libc::SIGTERM, Duration::from_secs(2));

    let p = |h: &hdrhistogram::Histogram<u64>| hist::Percentiles::of(h);
    let ms = |us: u64| format!("{:.2} ms", us as f64 / 1000.0);
    let (reg, lst, cl, ch) = (p(&latency), p(&list), p(&cli), p(&change));
    let n = args.servers;
    println!("## etcd backend: {n} servers on a three-member cluster\n");
    println!(
        "Rerun: `cargo build --release -p wsreg -p wsreg-bench && target/release/wsreg-bench etcd` \
         (needs `etcd`: `apt-get install -y etcd-server`), then \
         `bench/section.sh etcd < that output`. The cluster is three etcd 3.4 members on \
         loopback ports of this machine (scripts/etcd-cluster.sh), sharing its cores with \
         everything else; {} holder processes register the servers concurrently, each a \
         lease grant and a put.\n",
        args.holders
    );
    println!("| figure | p50 | p99 |");
    println!("| --- | --- | --- |");
    println!(
        "| register (lease grant + put), {n} servers | {} | {} |",
        ms(reg.p50),
        ms(reg.p99)
    );
    println!(
        "| all {n} registered ({} processes at once) | {:.1} s | |",
        args.holders,
        all_registered.as_secs_f64()
    );
    println!(
        "| `GET /api/registry`, {n} entries (exact read) | {} | {} |",
        ms(lst.p50),
        ms(lst.p99)
    );
    println!(
        "| `wsreg list --json`, {n} entries (process start to exit) | {} | {} |",
        ms(cl.p50),
        ms(cl.p99)
    );
    println!(
        "| registration → `servers` event on the other `serve` ({} changes) | {} | {} |",
        args.changes,
        ms(ch.p50),
        ms(ch.p99)
    );
    println!(
        "| `serve` resident memory with {n} entries (A / B) | {:.1} MiB / {:.1} MiB | |",
        rss_a as f64 / 1024.0,
        rss_b as f64 / 1024.0
    );
    println!("\n{NOTES}");
    Ok(())
}

/// What the figures mean, printed under them.
const NOTES: &str = "A registration is two Raft commits (the lease grant, then the put), \
each written to disk by a majority of the members, which here share one disk and two \
cores: that, not wsreg, sets the register latency, and the change → event figure \
includes one such put. The exact `GET` asks etcd for its revision first (one round \
trip) and then sends the document built once per change. `serve`'s memory holds each \
entry parsed and as JSON, plus the etcd client's connections to the three members.";

/// How many servers a `{"version":1,"servers":[…]}` document lists.
fn count_servers(body: &str) -> usize {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["servers"].as_array().map(Vec::len))
        .unwrap_or(0)
}

/// A plain HTTP/1.0 GET; the body (the connection's end ends it).
fn http_get(base: &str, path: &str) -> Result<String> {
    let addr = crate::echo::socket_addr(base)?;
    let mut stream = TcpStream::connect(addr)?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(body.to_owned())
}
