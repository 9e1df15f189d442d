// Who listens on a port (Linux): the LISTEN sockets of /proc/net/tcp and /proc/net/tcp6
// give the socket inodes bound to a port, and a process holds one when a descriptor in
// /proc/<pid>/fd links to `socket:[<inode>]` (docs/registry-format.md, "Liveness").
//
// Non-obvious decisions, the same as the Rust reader's (crates/wsreg/src/registry/
// sockets.rs and liveness.rs):
// - One look at the system per check of many entries (`SocketView`): the LISTEN tables
//   are read once, at the first question, and each process's descriptors at most once.
// - A process-wide cache (`knownOwners`) remembers the inode each (pid, port) was found
//   to hold; while that inode still listens on the port the descriptors are not read
//   again, so a repeat check costs the two table reads and a map lookup per entry. (A
//   process that passed its listener to a child and closed its own copy still counts as
//   the owner until the socket closes: a fork is not worth a descriptor scan per entry.)
// - A descriptor that cannot be read (EACCES: another user's process, or another user
//   namespace's, which lists its descriptors but not where they lead) makes the answer
//   `unreadable` — shown, never taken for "not listening". A process gone since its stat
//   was read holds nothing (`no`). Without /proc/net (not Linux) the answer is
//   `unchecked`: taken as listening.
// - Inodes are kept as their decimal text: they are 64-bit, and only compared.

import fs from 'node:fs';

/**
 * @typedef {import('../index.js').Listening} Listening
 */

/** Past this many (pid, port) pairs the cache starts over (it only saves descriptor reads). */
const KNOWN_OWNERS_MAX = 1 << 16;
/** `${pid}:${port}` → the inode of the LISTEN socket it was last found to hold. */
/** @type {Map<string, string>} */
const knownOwners = new Map();

/** The LISTEN state of /proc/net/tcp{,6}. */
const LISTEN = '0A';

/**
 * Adds the LISTEN sockets of one /proc/net/tcp{,6} table to `byPort`: the local address
 * is `HEXADDR:HEXPORT` (field 2), the state field 4, the inode field 10.
 * @param {string} text
 * @param {Map<number, string[]>} [byPort]
 * @returns {Map<number, string[]>} port → inodes of the sockets listening on it
 */
export function parseListenTable(text, byPort = new Map()) {
  let start = text.indexOf('\n') + 1; // the header line
  while (start > 0 && start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    // Most rows of a busy machine are connections: skip them before splitting.
    if (!line.includes(` ${LISTEN} `)) continue;
    const fields = line.trim().split(/\s+/);
    if (fields[3] !== LISTEN || fields.length < 10) continue;
    const local = fields[1];
    const port = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    const inode = fields[9];
    if (!(port >= 0 && port <= 65535) || !/^\d+$/.test(inode)) continue;
    const inodes = byPort.get(port);
    if (inodes) inodes.push(inode);
    else byPort.set(port, [inode]);
  }
  return byPort;
}

/**
 * The LISTEN sockets of this network namespace, by port; null when neither table can be
 * read (no /proc, not Linux).
 * @returns {Map<number, string[]> | null}
 */
export function readListenTable() {
  /** @type {Map<number, string[]>} */
  const byPort = new Map();
  let readAny = false;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue; // no IPv6 (or no /proc): the other table still tells
    }
    readAny = true;
    parseListenTable(text, byPort);
  }
  return readAny ? byPort : null;
}

/**
 * The inodes of the sockets process `pid` holds (`socket:[N]` links in /proc/<pid>/fd).
 * Throws when the descriptors cannot be listed (the process is gone: ENOENT; someone
 * else's: EACCES) or one of them cannot be read (EACCES).
 * @param {number} pid
 * @returns {Set<string>}
 */
export function socketInodes(pid) {
  const dir = `/proc/${pid}/fd`;
  /** @type {Set<string>} */
  const inodes = new Set();
  for (const fd of fs.readdirSync(dir)) {
    let target;
    try {
      target = fs.readlinkSync(`${dir}/${fd}`);
    } catch (err) {
      // Closed since the listing: passed over. Not allowed: the whole answer is unknown.
      if (/** @type {NodeJS.ErrnoException} */ (err).code === 'EACCES') throw err;
      continue;
    }
    if (target.startsWith('socket:[') && target.endsWith(']')) inodes.add(target.slice(8, -1));
  }
  return inodes;
}

/**
 * One look at the sockets of this machine, for one check of many entries: the LISTEN
 * tables read at the first question, each process's descriptors at most once. Make a new
 * one per check; the cache of known owners outlives them.
 */
export class SocketView {
  constructor() {
    /** @type {Map<number, string[]> | null | undefined} undefined: not read yet */
    this.table = undefined;
    /** pid → the inodes it holds, or the error code its descriptors answered. */
    /** @type {Map<number, Set<string> | string>} */
    this.held = new Map();
  }

  /**
   * Whether process `pid` holds a LISTEN socket on TCP `port`.
   * @param {number} pid
   * @param {number} port
   * @returns {Listening}
   */
  listens(pid, port) {
    if (this.table === undefined) this.table = process.platform === 'linux' ? readListenTable() : null;
    if (this.table === null) return 'unchecked';
    const inodes = this.table.get(port) ?? [];
    const key = `${pid}:${port}`;
    const known = knownOwners.get(key);
    if (known !== undefined && inodes.includes(known)) return 'yes';
    let held = this.held.get(pid);
    if (held === undefined) {
      try {
        held = socketInodes(pid);
      } catch (err) {
        held = /** @type {NodeJS.ErrnoException} */ (err).code ?? 'EIO';
      }
      this.held.set(pid, held);
    }
    if (typeof held === 'string') {
      // Gone since its stat was read: it holds nothing.
      return held === 'ENOENT' || held === 'ESRCH' ? 'no' : 'unreadable';
    }
    const owned = inodes.find((inode) => /** @type {Set<string>} */ (held).has(inode));
    if (owned === undefined) {
      knownOwners.delete(key);
      return 'no';
    }
    if (knownOwners.size >= KNOWN_OWNERS_MAX) knownOwners.clear();
    knownOwners.set(key, owned);
    return 'yes';
  }
}
