//! Registries filled with live entries, in the format each side reads: registry v2 (one
//! file per entry, written through the library) for wsreg and the Vite plugin, and
//! version 1's single file for the v1 build.
//!
//! Every entry names this runner's PID (alive, with its real start time) and a port it
//! listens on, so every entry is live for every reader; each reader judges liveness its
//! own way (wsreg's readers check that the process holds a LISTEN socket on the port).

use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::suite::Side;

/// `n` entries of this process, on the first `n` of its [`listening_ports`].
pub fn entries(n: usize) -> Result<Vec<wsreg::Entry>> {
    let pid = std::process::id();
    Ok(listening_ports(n)?
        .into_iter()
        .enumerate()
        .map(|(i, port)| {
            wsreg::Server::for_pid("bench", port, pid)
                .name(format!("bench server {i}"))
                .entry()
                .clone()
        })
        .collect())
}

/// `n` loopback ports this process listens on until it exits: the same ports for every
/// caller, bound on the first ask (one descriptor each; the soft descriptor limit is
/// raised to the hard one when `n` needs it).
pub fn listening_ports(n: usize) -> Result<Vec<u16>> {
    static POOL: Mutex<Vec<TcpListener>> = Mutex::new(Vec::new());
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < n {
        raise_descriptor_limit(n as u64 + 4096);
    }
    while pool.len() < n {
        let listener = TcpListener::bind("127.0.0.1:0")
            .with_context(|| format!("cannot listen on port {} of {n}", pool.len() + 1))?;
        pool.push(listener);
    }
    pool[..n]
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Raises the soft limit on open descriptors towards `want` (at most the hard limit).
pub fn raise_descriptor_limit(want: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < want) {
        limit.current = Some(want.min(limit.maximum.unwrap_or(u64::MAX)));
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// Writes `n` live entries where `side` reads them.
pub fn fill(side: Side, registry: &Path, n: usize) -> Result<Vec<wsreg::Entry>> {
    let entries = entries(n)?;
    match side {
        Side::V1 => write_v1(registry, &entries)?,
        Side::Wsreg | Side::Baseline => {
            let store = wsreg::Store::new(registry);
            for e in &entries {
                store.register(e)?;
            }
        }
    }
    Ok(entries)
}

/// Writes a version-1 registry file (`{"version":1,"servers":[…]}`) holding `entries`,
/// through a temp file renamed into place, as v1's writers did (less their lock and
/// fsync: only the readers are under test).
pub fn write_v1(path: &Path, entries: &[wsreg::Entry]) -> Result<()> {
    let doc = serde_json::json!({ "version": 1, "servers": entries });
    let dir = path.parent().context("a registry path has a parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".bench-v1.tmp");
    write_private(&tmp, &serde_json::to_vec(&doc)?)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Writes `bytes` to a new file at `path`, mode 0600 (as v1's writers left it).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}
