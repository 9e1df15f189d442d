// Which entries are live (docs/registry-format.md, "Liveness").
//
// On this host: the PID exists, is not a zombie, its start time equals `pidStartTime`
// when both are known, and it holds a LISTEN socket on the entry's port (sockets.js). On
// another host: live unless a lease expired. With a lease (any host): `heartbeatAt` (or
// `startedAt`) + `ttlSecs` is strictly in the future.
//
// The process and the port are two questions (`processVerdict`, `listeningVerdict`)
// because a watcher asks them at different rates: the process on every re-check (a
// /proc/<pid>/stat read), the port only when an entry arrives and on readers' asks
// (watch.js). A process that does not listen is dead with the reason `not listening on
// <port>`; one whose descriptors cannot be read, or a system that cannot tell, counts
// as listening (shown).

import fs from 'node:fs';
import { SocketView } from './sockets.js';
import { parseTimestamp } from './time.js';

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('../index.js').ProcessInfo} ProcessInfo
 * @typedef {import('../index.js').ProcessTable} ProcessTable
 * @typedef {import('../index.js').LivenessContext} LivenessContext
 * @typedef {import('../index.js').Listening} Listening
 * @typedef {{ live: true } | { live: false, reason: string }} Verdict
 */

/** @type {Verdict} */
const LIVE = Object.freeze({ live: true });

/**
 * Decides whether one (valid, canonical) entry is live: its process (and lease), then,
 * on this host, its port.
 * @param {ServerEntry} entry
 * @param {LivenessContext} ctx
 * @returns {Verdict}
 */
export function liveness(entry, ctx) {
  const verdict = processVerdict(entry, ctx);
  return verdict.live ? listeningVerdict(entry, ctx) : verdict;
}

/**
 * Whether the entry is this host's (its PID and port mean something here).
 * @param {ServerEntry} entry
 * @param {LivenessContext} ctx
 */
function isLocal(entry, ctx) {
  return entry.host === null || entry.host === ctx.hostname;
}

/**
 * Whether a (process-live) entry's process holds a LISTEN socket on its port. Another
 * host's entry is live: its PID and port say nothing here. A table that cannot tell (no
 * `listens`, not Linux, unreadable descriptors) says live.
 * @param {ServerEntry} entry
 * @param {LivenessContext} ctx
 * @returns {Verdict}
 */
export function listeningVerdict(entry, ctx) {
  if (!isLocal(entry, ctx)) return LIVE;
  const listening = ctx.processes.listens?.(entry.pid, entry.port) ?? 'unchecked';
  return listening === 'no' ? { live: false, reason: `not listening on ${entry.port}` } : LIVE;
}

/**
 * The lease, then (on this host) the process: everything but the port.
 * @param {ServerEntry} entry
 * @param {LivenessContext} ctx
 * @returns {Verdict}
 */
export function processVerdict(entry, ctx) {
  if (entry.ttlSecs !== null) {
    const from = parseTimestamp(entry.heartbeatAt ?? entry.startedAt) ?? 0;
    const expiresAt = from + entry.ttlSecs * 1000;
    if (!(expiresAt > ctx.now)) {
      return { live: false, reason: `lease expired at ${new Date(expiresAt).toISOString()}` };
    }
  }
  if (!isLocal(entry, ctx)) return LIVE;

  const proc = ctx.processes.lookup(entry.pid);
  if (!proc) return { live: false, reason: 'no such process' };
  if (proc.zombie) return { live: false, reason: 'zombie' };
  if (entry.pidStartTime !== null && proc.startTime !== null && proc.startTime !== entry.pidStartTime) {
    return { live: false, reason: `pid reused (start time ${proc.startTime}, expected ${entry.pidStartTime})` };
  }
  return LIVE;
}

/**
 * A process table given as plain maps: the `processes` and `sockets` objects of a test
 * vector's case.json. `processes`: PID → start time (null: unreadable; absent: no such
 * process). `sockets`: PID → the ports it listens on (null: its descriptors cannot be
 * read; absent: it listens on nothing); without `sockets`, ownership is not described
 * and every process is taken as listening.
 * @param {Record<string, number | null>} map
 * @param {Record<string, number[] | null>} [sockets]
 * @returns {ProcessTable}
 */
export function processTableFromMap(map, sockets) {
  return {
    lookup(pid) {
      if (!Object.hasOwn(map, String(pid))) return undefined;
      return { startTime: map[String(pid)], zombie: false };
    },
    listens(pid, port) {
      if (!sockets) return 'unchecked';
      if (!Object.hasOwn(sockets, String(pid))) return 'no';
      const ports = sockets[String(pid)];
      if (ports === null) return 'unreadable';
      return ports.includes(port) ? 'yes' : 'no';
    },
  };
}

/**
 * The real process table of this machine, as one look at it: make a new one per check
 * (`resolveContext` does), since the LISTEN tables it reads at its first `listens` are
 * kept for its life. On Linux it reads `/proc/<pid>/stat` (state and start time) and
 * the sockets (sockets.js); elsewhere it can only tell whether the PID exists
 * (`process.kill(pid, 0)`), with an unknown start time, and not who listens.
 * @returns {ProcessTable}
 */
export function systemProcessTable() {
  if (process.platform !== 'linux') return { lookup: probeWithSignal, listens: () => 'unchecked' };
  const sockets = new SocketView();
  return { lookup: readProcStat, listens: (pid, port) => sockets.listens(pid, port) };
}

/**
 * Where `/proc/<pid>/stat` is read: one line of a few hundred bytes (the command name is
 * at most 16), read in one `read` into this buffer. readFileSync would fstat, read to EOF
 * and allocate 64 KiB a file (a /proc file has no size): at 100 entries re-checked twice
 * a second, 13 MB/s of garbage.
 */
const STAT_BUFFER = Buffer.alloc(4096);

/**
 * @param {number} pid
 * @returns {ProcessInfo | undefined}
 */
export function readProcStat(pid) {
  let text;
  try {
    const fd = fs.openSync(`/proc/${pid}/stat`, 'r');
    try {
      const n = fs.readSync(fd, STAT_BUFFER, 0, STAT_BUFFER.length, 0);
      text = STAT_BUFFER.toString('latin1', 0, n);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const code = /** @type {NodeJS.ErrnoException} */ (err).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    // Unreadable for another reason: it exists, start time unknown.
    return probeWithSignal(pid);
  }
  return parseProcStat(text);
}

/**
 * Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in
 * parentheses and may itself hold spaces and ')', so fields are read after
 * the last ')': field 3 is the state, field 22 the start time in clock ticks.
 * @param {string} text
 * @returns {ProcessInfo | undefined}
 */
export function parseProcStat(text) {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 1).trim().split(/\s+/);
  const state = fields[0];
  const start = Number(fields[22 - 3]);
  return {
    startTime: Number.isSafeInteger(start) ? start : null,
    zombie: state === 'Z' || state === 'X' || state === 'x',
  };
}

/**
 * @param {number} pid
 * @returns {ProcessInfo | undefined}
 */
function probeWithSignal(pid) {
  try {
    process.kill(pid, 0);
    return { startTime: null, zombie: false };
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    if (/** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM') return { startTime: null, zombie: false };
    return undefined;
  }
}

/**
 * Wraps a process table so that each PID is looked up at most once (one
 * evaluation of the registry may name the same PID many times). `listens` is passed
 * through: the system's already reads each process's descriptors once per look.
 * @param {ProcessTable} table
 * @returns {ProcessTable}
 */
export function memoizeProcessTable(table) {
  /** @type {Map<number, ProcessInfo | undefined>} */
  const cache = new Map();
  return {
    lookup(pid) {
      if (!cache.has(pid)) cache.set(pid, table.lookup(pid));
      return cache.get(pid);
    },
    listens(pid, port) {
      return table.listens?.(pid, port) ?? 'unchecked';
    },
  };
}

/**
 * Whether a live entry can die without any file changing, so that only a re-check of
 * liveness can notice: a process on this host (a SIGKILLed server leaves its file
 * behind) or a lease (it expires with the clock). Another host's entry without a
 * lease stays live until its file changes.
 * @param {ServerEntry} entry
 * @param {LivenessContext} ctx
 */
export function mayEndUnseen(entry, ctx) {
  return entry.ttlSecs !== null || isLocal(entry, ctx);
}
