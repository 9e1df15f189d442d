//! The registry file as an outside observer sees it: raw JSON, in either format (wsreg's
//! version 1 or the prototype's `{"servers":[…]}`), with no liveness judgement. The
//! benchmarks watch the file this way so that wsreg and the baseline are timed by the
//! same observer, and so that an entry counts as listed the moment it is on disk.

use std::path::Path;

use serde_json::Value;

/// The `servers` array of the file: empty if the file is missing, `None` if it is not a
/// JSON object with a `servers` array (torn, or corrupt).
pub fn servers(path: &Path) -> Option<Vec<Value>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Some(Vec::new());
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut doc)) => match doc.remove("servers") {
            Some(Value::Array(servers)) => Some(servers),
            _ => None,
        },
        _ => None,
    }
}

/// Whether an entry of `pid` is in the file.
pub fn has_pid(path: &Path, pid: u32) -> bool {
    servers(path)
        .unwrap_or_default()
        .iter()
        .any(|s| s.get("pid").and_then(Value::as_u64) == Some(u64::from(pid)))
}

/// How many entries have a port in `ports`; `None` if the file is corrupt.
pub fn count_ports(path: &Path, ports: std::ops::Range<u16>) -> Option<usize> {
    let servers = servers(path)?;
    Some(
        servers
            .iter()
            .filter_map(|s| s.get("port").and_then(Value::as_u64))
            .filter(|p| ports.contains(&(*p as u16)))
            .count(),
    )
}
