// Which entries are live (docs/registry-format.md, "Liveness").
//
// On this host: the PID exists, is not a zombie, and its start time equals
// `pidStartTime` when both are known. On another host: live unless a lease
// expired. With a lease (any host): `heartbeatAt` (or `startedAt`) + `ttlSecs`
// is strictly in the future.

import fs from 'node:fs';
import { parseTimestamp } from './time.js';

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('../index.js').ProcessInfo} ProcessInfo
 * @typedef {import('../index.js').ProcessTable} ProcessTable
 * @typedef {import('../index.js').LivenessContext} LivenessContext
 * @typedef {{ live: true } | { live: false, reason: string }} Verdict
 */

/**
 * Decides whether one (valid, canonical) entry is live.
 * @param {ServerEntry} entry
 * @param {LivenessContext} ctx
 * @returns {Verdict}
 */
export function liveness(entry, ctx) {
  if (entry.ttlSecs !== null) {
    const from = parseTimestamp(entry.heartbeatAt ?? entry.startedAt) ?? 0;
    const expiresAt = from + entry.ttlSecs * 1000;
    if (!(expiresAt > ctx.now)) {
      return { live: false, reason: `lease expired at ${new Date(expiresAt).toISOString()}` };
    }
  }
  const onThisHost = entry.host === null || entry.host === ctx.hostname;
  if (!onThisHost) return { live: true };

  const proc = ctx.processes.lookup(entry.pid);
  if (!proc) return { live: false, reason: 'no such process' };
  if (proc.zombie) return { live: false, reason: 'zombie' };
  if (entry.pidStartTime !== null && proc.startTime !== null && proc.startTime !== entry.pidStartTime) {
    return { live: false, reason: `pid reused (start time ${proc.startTime}, expected ${entry.pidStartTime})` };
  }
  return { live: true };
}

/**
 * A process table given as a plain map, PID → start time (null: unreadable).
 * This is the `processes` object of a test vector's case.json.
 * @param {Record<string, number | null>} map
 * @returns {ProcessTable}
 */
export function processTableFromMap(map) {
  return {
    lookup(pid) {
      if (!Object.hasOwn(map, String(pid))) return undefined;
      return { startTime: map[String(pid)], zombie: false };
    },
  };
}

/**
 * The real process table of this machine. On Linux it reads
 * `/proc/<pid>/stat` (state and start time); elsewhere it can only tell
 * whether the PID exists (`process.kill(pid, 0)`), with an unknown start time.
 * @returns {ProcessTable}
 */
export function systemProcessTable() {
  if (process.platform === 'linux') return { lookup: readProcStat };
  return { lookup: probeWithSignal };
}

/**
 * @param {number} pid
 * @returns {ProcessInfo | undefined}
 */
export function readProcStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
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
 * evaluation of the registry may name the same PID many times).
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
  return entry.ttlSecs !== null || entry.host === null || entry.host === ctx.hostname;
}
