//! The registry as an outside observer sees it, through the real reader
//! (`wsreg::Store::read`): the v2 directory and the legacy single file beside it, which
//! is where wsreg v1 and the Node prototype write (`…/servers.json`, in v1's format or
//! the prototype's `{"servers":[…]}`). No liveness judgement: an entry counts as listed
//! the moment it is on disk, for every writer alike, and every file or legacy document
//! the reader had to pass over (torn, or corrupt) is counted.

use std::path::Path;

/// One read of the registry.
pub struct Seen {
    pub entries: Vec<wsreg::Entry>,
    /// What the reader passed over: a file it could not use, or the legacy file.
    pub skipped: usize,
}

/// Reads the registry at `path` once; `None` if the reader failed outright.
pub fn read(path: &Path) -> Option<Seen> {
    let snapshot = wsreg::Store::new(path).read().ok()?;
    Some(Seen {
        entries: snapshot.entries,
        skipped: snapshot.skipped.len(),
    })
}

/// Whether an entry of `pid` is in the registry.
pub fn has_pid(path: &Path, pid: u32) -> bool {
    read(path).is_some_and(|s| s.entries.iter().any(|e| e.pid == pid))
}
