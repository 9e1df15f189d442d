//! Registries filled with live entries, in the format each side reads: registry v2 (one
//! file per entry, written through the library) for wsreg and the Vite plugin, and
//! version 1's single file for the v1 build.
//!
//! Every entry names this runner's PID (alive, with its real start time), so every entry
//! is live for every reader; each reader judges liveness its own way.

use std::path::Path;

use anyhow::{Context, Result};

use crate::suite::Side;

/// `n` entries of this process, ports from `first_port` (wrapping in 1..=65535).
pub fn entries(n: usize, first_port: u32) -> Vec<wsreg::Entry> {
    let pid = std::process::id();
    (0..n)
        .map(|i| {
            let port = ((first_port + i as u32 - 1) % 65_535 + 1) as u16;
            wsreg::Server::for_pid("bench", port, pid)
                .name(format!("bench server {i}"))
                .entry()
                .clone()
        })
        .collect()
}

/// Writes `n` live entries where `side` reads them.
pub fn fill(side: Side, registry: &Path, n: usize) -> Result<Vec<wsreg::Entry>> {
    let entries = entries(n, 30_000);
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
