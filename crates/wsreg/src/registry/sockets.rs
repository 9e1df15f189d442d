//! Which process listens on a TCP port (Linux): the LISTEN sockets of `/proc/net/tcp` and
//! `/proc/net/tcp6` give the socket inodes bound to the port, and a process owns one when
//! a descriptor in `/proc/<pid>/fd` links to `socket:[<inode>]`.
//!
//! A TCP connect says only that *someone* listens. `wsreg run` asks this to register the
//! process that really serves its `$PORT` — the command, or a descendant (`npm run dev`
//! starts node as a grandchild) — and to refuse a port that a stranger took between the
//! pick and the command's bind. A `/proc/<pid>/fd` that cannot be read (another user's
//! process, a `hidepid` mount) is reported as such, never taken for "not the owner".

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;

/// The inodes of the sockets listening on TCP `port`, on any address (IPv4 and IPv6).
pub fn listening_inodes(port: u16) -> HashSet<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .flat_map(|text| parse_listeners(&text, port))
        .collect()
}

/// The LISTEN sockets of one `/proc/net/tcp{,6}` table on `port`: the local address is
/// `HEXADDR:HEXPORT` (field 2), the state field 4 (`0A` is LISTEN), the inode field 10.
pub fn parse_listeners(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listening = *fields.get(3)? == "0A";
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// Whether process `pid` holds one of `inodes`; an error when its descriptors cannot be
/// read (it may have exited, or belong to someone else).
pub fn owns_any(pid: u32, inodes: &HashSet<u64>) -> io::Result<bool> {
    for fd in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = fs::read_link(fd?.path()) else {
            continue;
        };
        let inode = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok());
        if inode.is_some_and(|i| inodes.contains(&i)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `root` and its descendants, nearest first, from the parent PIDs in `/proc/*/stat`.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for dir in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = dir.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The parent is the second field after the command name's closing parenthesis.
        let parent = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(parent) = parent {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut tree = vec![root];
    let mut next = 0;
    while next < tree.len() {
        let mut kids = children.remove(&tree[next]).unwrap_or_default();
        kids.sort_unstable();
        tree.extend(kids);
        next += 1;
    }
    tree
}

/// ` (pid N: name)`, for messages about a process; ` (pid N)` when its name cannot be read.
pub fn describe(pid: u32) -> String {
    match fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(name) => format!(" (pid {pid}: {})", name.trim()),
        Err(_) => format!(" (pid {pid})"),
    }
}

/// Who listens on `port`, as seen from the process tree of `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listener {
    /// `root` or one of its descendants (the nearest that holds the socket).
    Ours(u32),
    /// A process outside the tree (its PID when it could be found).
    Stranger(Option<u32>),
    /// No LISTEN socket on the port in this network namespace.
    Nobody,
}

/// Finds the process of `root`'s tree that listens on `port`, else who does.
pub fn listener_in_tree(root: u32, port: u16) -> Listener {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return Listener::Nobody;
    }
    let tree = process_tree(root);
    if let Some(pid) = tree
        .iter()
        .find(|pid| owns_any(**pid, &inodes).unwrap_or(false))
    {
        return Listener::Ours(*pid);
    }
    let stranger = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| d.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .find(|pid| !tree.contains(pid) && owns_any(*pid, &inodes).unwrap_or(false));
    Listener::Stranger(stranger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_read_from_the_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 100 0 0 10 0
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 100 0 0 10 0";
        assert_eq!(parse_listeners(table, 8080), vec![4242]);
        assert_eq!(parse_listeners(table, 80), vec![4444]);
        assert!(parse_listeners(table, 81).is_empty());
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0";
        assert_eq!(parse_listeners(v6, 8080), vec![777]);
    }

    #[test]
    fn this_process_is_found_as_the_listener_of_its_own_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        assert_eq!(listener_in_tree(me, port), Listener::Ours(me));
        // From the tree of PID 1 down, this process is found too; from a process that
        // is not an ancestor, this process is a stranger.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert_eq!(
            listener_in_tree(child.id(), port),
            Listener::Stranger(Some(me))
        );
        child.kill().unwrap();
        child.wait().unwrap();
        drop(listener);
        assert_eq!(listener_in_tree(me, port), Listener::Nobody);
    }
}
