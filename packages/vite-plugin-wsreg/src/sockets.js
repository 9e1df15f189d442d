// Who listens on a port (Linux): the LISTEN sockets of /proc/net/tcp and /proc/net/tcp6
// give the socket inodes bound to a port, and a process holds one when a descriptor in
// /proc/<pid>/fd links to `socket:[<inode>]` (docs/registry-format.md, "Liveness").
//
// Non-obvious decisions, the same as the Rust reader's (crates/wsreg/src/registry/
// sockets.rs and liveness.rs):
// - One look at the system per check of many entries (`SocketView`): each LISTEN table
//   is read once at most, and only when a question needs it (IPv4 first: an owner found
//   there costs no read of tcp6), and each process's descriptors at most once.
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

/** Forgets every known owner: the next check reads descriptors again (benchmarks, tests). */
export function forgetKnownOwners() {
  knownOwners.clear();
}

/** The LISTEN state of /proc/net/tcp{,6}. */
const LISTEN = '0A';

/**
 * Adds the LISTEN sockets of one /proc/net/tcp{,6} table to `byPort`: the local address
 * is `HEXADDR:HEXPORT` (field 2), the state field 4, the inode field 10. Fields are
 * found by scanning for spaces, not by splitting lines: a busy machine has thousands of
 * rows, and this runs on every check.
 * @param {string} text
 * @param {Map<number, string[]>} [byPort]
 * @returns {Map<number, string[]>} port → inodes of the sockets listening on it
 */
export function parseListenTable(text, byPort = new Map()) {
  const length = text.length;
  let end = text.indexOf('\n'); // the header line
  while (end >= 0 && end < length) {
    const start = end + 1;
    end = text.indexOf('\n', start);
    if (end < 0) end = length;
    let at = start;
    /** The next field of the line: its start (`at` is left at its end); -1 at the line's end. */
    const field = () => {
      while (at < end && text.charCodeAt(at) === 32) at++;
      const from = at;
      while (at < end && text.charCodeAt(at) !== 32) at++;
      return at > from ? from : -1;
    };
    field(); // sl
    if (field() < 0) continue; // local address
    const localEnd = at;
    field(); // remote address
    const state = field();
    if (state < 0 || at - state !== LISTEN.length || !text.startsWith(LISTEN, state)) continue;
    for (let i = 0; i < 5; i++) field(); // tx:rx, tr:when, retrnsmt, uid, timeout
    const inodeAt = field();
    if (inodeAt < 0) continue;
    const inode = text.slice(inodeAt, at);
    const colon = text.lastIndexOf(':', localEnd);
    const port = colon > start ? parseInt(text.slice(colon + 1, localEnd), 16) : NaN;
    if (!(port >= 0 && port <= 65535) || !/^\d+$/.test(inode)) continue;
    const inodes = byPort.get(port);
    if (inodes) inodes.push(inode);
    else byPort.set(port, [inode]);
  }
  return byPort;
}

/** The LISTEN tables, IPv4 first: most servers listen there, and a found owner reads no more. */
const TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];

/**
 * The LISTEN sockets of one table, by port; null when it cannot be read (no IPv6, no
 * /proc, not Linux).
 * @param {string} file
 * @returns {Map<number, string[]> | null}
 */
export function readListenTable(file) {
  try {
    return parseListenTable(fs.readFileSync(file, 'latin1'));
  } catch {
    return null;
  }
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

/** @type {readonly string[]} */
const NONE = Object.freeze([]);

/**
 * One look at the sockets of this machine, for one check of many entries: each LISTEN
 * table read at the first question that needs it (the kernel builds them by walking
 * every socket of the namespace: milliseconds on a busy machine), each process's
 * descriptors at most once. Make a new one per check; the cache of known owners
 * outlives them.
 */
export class SocketView {
  constructor() {
    /** undefined: not read yet; null: unreadable. */
    /** @type {(Map<number, string[]> | null | undefined)[]} */
    this.tables = TABLES.map(() => undefined);
    /** pid → the inodes it holds, or the error code its descriptors answered. */
    /** @type {Map<number, Set<string> | string>} */
    this.held = new Map();
  }

  /**
   * The inodes listening on `port` in table `i`.
   * @private
   * @param {number} i
   * @param {number} port
   * @returns {readonly string[]}
   */
  listening(i, port) {
    let table = this.tables[i];
    if (table === undefined) table = this.tables[i] = readListenTable(TABLES[i]);
    return table?.get(port) ?? NONE;
  }

  /**
   * Whether process `pid` holds a LISTEN socket on TCP `port`.
   * @param {number} pid
   * @param {number} port
   * @returns {Listening}
   */
  listens(pid, port) {
    if (process.platform !== 'linux') return 'unchecked';
    const key = `${pid}:${port}`;
    const known = knownOwners.get(key);
    if (known !== undefined) {
      for (let i = 0; i < TABLES.length; i++) if (this.listening(i, port).includes(known)) return 'yes';
    }
    // Neither table (no /proc/net): the system cannot tell.
    if (this.listening(0, port) === NONE && this.tables[0] === null) {
      this.listening(1, port);
      if (this.tables[1] === null) return 'unchecked';
    }
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
    for (let i = 0; i < TABLES.length; i++) {
      const owned = this.listening(i, port).find((inode) => /** @type {Set<string>} */ (held).has(inode));
      if (owned !== undefined) {
        if (knownOwners.size >= KNOWN_OWNERS_MAX) knownOwners.clear();
        knownOwners.set(key, owned);
        return 'yes';
      }
    }
    knownOwners.delete(key);
    return 'no';
  }
}
