//! Which process listens on a TCP port (Linux): the LISTEN sockets (from the kernel's
//! socket diagnostics, [`sock_diag`], or `/proc/net/tcp{,6}`) give the socket inodes bound
//! to the port, and a process owns one when a descriptor in `/proc/<pid>/fd` links to
//! `socket:[<inode>]`.
//!
//! Two users. Liveness ([`super::liveness`]): a local entry is live only while its
//! process holds a LISTEN socket on its port; [`ListenTable`] is read once per judgement
//! of many entries, not once per entry. And `wsreg run` / `wsreg register`: a TCP connect
//! says only that *someone* listens, so they register the process that really serves
//! the port — the command, or a descendant (`npm run dev` starts node as a grandchild) —
//! and refuse a port that a stranger took. A `/proc/<pid>/fd` that cannot be read
//! (another user's process, a `hidepid` mount) is reported as such, never taken for
//! "not the owner".

use std::collections::HashMap;
use std::fs;
use std::io;

use super::sock_diag;

/// The LISTEN sockets of this network namespace, by port: one read of `/proc/net/tcp`
/// and `/proc/net/tcp6`, so that judging many entries costs one read of each table.
#[derive(Debug, Clone, Default)]
pub struct ListenTable {
    by_port: HashMap<u16, Vec<u64>>,
}

impl ListenTable {
    /// The LISTEN sockets now: from the kernel's socket diagnostics ([`sock_diag`]),
    /// else from `/proc/net/tcp{,6}`; an error when neither answers (not Linux).
    pub fn read() -> io::Result<ListenTable> {
        match sock_diag::listening() {
            Ok(found) => {
                let mut table = ListenTable::default();
                for (port, inode) in found {
                    table.by_port.entry(port).or_default().push(inode);
                }
                Ok(table)
            }
            Err(e) => {
                tracing::debug!("socket diagnostics: {e}; reading /proc/net/tcp instead");
                ListenTable::read_proc()
            }
        }
    }

    /// Reads `/proc/net/tcp` and `/proc/net/tcp6`; an error when neither can be read.
    fn read_proc() -> io::Result<ListenTable> {
        let mut table = ListenTable::default();
        let mut read_any = Err(io::Error::from(io::ErrorKind::NotFound));
        for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
            match fs::read_to_string(path) {
                Ok(text) => {
                    table.add(&text);
                    read_any = Ok(());
                }
                Err(e) if read_any.is_err() => read_any = Err(e),
                Err(_) => {}
            }
        }
        read_any.map(|()| table)
    }

    /// Adds the LISTEN sockets of one `/proc/net/tcp{,6}` table: the local address is `HEXADDR:HEXPORT`
    /// (field 2), the state field 4 (`0A` is LISTEN), the inode field 10.
    pub fn add(&mut self, table: &str) {
        for line in table.lines().skip(1) {
            let mut fields = line.split_ascii_whitespace();
            let local = fields.nth(1);
            let state = fields.nth(1);
            let inode = fields.nth(5);
            let (Some(local), Some("0A"), Some(inode)) = (local, state, inode) else {
                continue;
            };
            let port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Ok(inode)) = (port, inode.parse()) {
                self.by_port.entry(port).or_default().push(inode);
            }
        }
    }

    /// The inodes of the sockets listening on `port`, on any address.
    pub fn on(&self, port: u16) -> &[u64] {
        self.by_port.get(&port).map_or(&[], Vec::as_slice)
    }
}

/// A process's descriptors, read lazily: the names of `/proc/<pid>/fd` are listed once,
/// and where each leads is read only until a wanted socket is found, newest first (a
/// server opens its listener after its runtime's descriptors, and an idle one holds few
/// after it). What was read is kept for the next question about the same process.
#[derive(Debug)]
pub struct Descriptors {
    pid: u32,
    /// Descriptor numbers not read yet, in ascending order (read from the end).
    unread: Vec<u32>,
    /// The socket inodes read so far, and the descriptor each was read at.
    sockets: HashMap<u64, u32>,
}

/// A wanted socket found among a process's descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub inode: u64,
    /// The descriptor number it was found at.
    pub fd: u32,
}

/// The socket inode that descriptor `fd` of `pid` links to: `Ok(None)` when it is closed
/// or not a socket, an error when it may not be read.
pub fn socket_at(pid: u32, fd: u32) -> io::Result<Option<u64>> {
    let target = match fs::read_link(format!("/proc/{pid}/fd/{fd}")) {
        Ok(target) => target,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
        Err(_) => return Ok(None),
    };
    Ok(target
        .to_str()
        .and_then(|t| t.strip_prefix("socket:["))
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<u64>().ok()))
}

impl Descriptors {
    /// Lists `pid`'s descriptors; an error when they cannot be listed (the process has
    /// exited, or belongs to someone else).
    pub fn of(pid: u32) -> io::Result<Descriptors> {
        let mut unread = Vec::new();
        for fd in fs::read_dir(format!("/proc/{pid}/fd"))? {
            unread.extend(fd?.file_name().to_str().and_then(|n| n.parse::<u32>().ok()));
        }
        unread.sort_unstable();
        Ok(Descriptors {
            pid,
            unread,
            sockets: HashMap::new(),
        })
    }

    /// The first of `wanted` the process holds, if any. A descriptor closed since the
    /// listing is passed over; one that may not be read (a process of another user
    /// namespace lists its descriptors, but not where they lead) is an error.
    pub fn find(&mut self, wanted: &[u64]) -> io::Result<Option<Found>> {
        if let Some((&inode, &fd)) = wanted.iter().find_map(|i| self.sockets.get_key_value(i)) {
            return Ok(Some(Found { inode, fd }));
        }
        while let Some(fd) = self.unread.pop() {
            let inode = match socket_at(self.pid, fd) {
                Ok(inode) => inode,
                Err(e) => {
                    self.unread.push(fd);
                    return Err(e);
                }
            };
            if let Some(inode) = inode {
                self.sockets.insert(inode, fd);
                if wanted.contains(&inode) {
                    return Ok(Some(Found { inode, fd }));
                }
            }
        }
        Ok(None)
    }
}

/// Whether process `pid` holds one of `inodes`.
fn owns_any(pid: u32, inodes: &[u64]) -> bool {
    Descriptors::of(pid)
        .and_then(|mut d| d.find(inodes))
        .is_ok_and(|found| found.is_some())
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
    /// The system cannot tell: no `/proc/net/tcp` (not Linux), or no process of the tree
    /// holds the socket but some of their descriptors cannot be read (another user's).
    Unchecked,
}

/// Finds the process of `root`'s tree that listens on `port`, else who does.
pub fn listener_in_tree(root: u32, port: u16) -> Listener {
    let Ok(table) = ListenTable::read() else {
        return Listener::Unchecked;
    };
    let inodes = table.on(port);
    if inodes.is_empty() {
        return Listener::Nobody;
    }
    let mut unreadable = false;
    let mut ours = |pid: u32| match Descriptors::of(pid).and_then(|mut d| d.find(inodes)) {
        Ok(found) => found.is_some(),
        Err(e) => {
            unreadable |= e.kind() == io::ErrorKind::PermissionDenied;
            false
        }
    };
    // The root itself first: it is the server in most registrations, and then the walk of
    // every process's parent link is not needed. The tree starts with the root.
    if ours(root) {
        return Listener::Ours(root);
    }
    let tree = process_tree(root);
    if let Some(pid) = tree.iter().skip(1).find(|pid| ours(**pid)) {
        return Listener::Ours(*pid);
    }
    if unreadable {
        return Listener::Unchecked;
    }
    let stranger = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| d.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .find(|pid| !tree.contains(pid) && owns_any(*pid, inodes));
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
        let mut listening = ListenTable::default();
        listening.add(table);
        assert_eq!(listening.on(8080), [4242]);
        assert_eq!(listening.on(80), [4444]);
        assert!(listening.on(81).is_empty());
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0";
        listening.add(v6);
        assert_eq!(listening.on(8080), [4242, 777]);
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
