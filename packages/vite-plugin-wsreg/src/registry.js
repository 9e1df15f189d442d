// The registry reader: file → parsed entries → live entries → API document.
//
// Every input that differs between machines (process table, clock, hostname)
// is injectable, so that the shared test vectors run deterministically.

import os from 'node:os';
import { readRegistryFile } from './file.js';
import { liveness, memoizeProcessTable, systemProcessTable } from './liveness.js';
import { parseRegistry } from './model.js';

export { defaultRegistryPath, readRegistryFile } from './file.js';
export { liveness, parseProcStat, processTableFromMap, systemProcessTable } from './liveness.js';
export { MAX_ENTRIES, MAX_FILE_BYTES, parseRegistry, validateEntry } from './model.js';
export { formatTimestamp, parseTimestamp } from './time.js';

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('../index.js').ParseResult} ParseResult
 * @typedef {import('../index.js').FileRead} FileRead
 * @typedef {import('../index.js').LivenessContext} LivenessContext
 * @typedef {import('../index.js').ReaderContext} ReaderContext
 * @typedef {import('../index.js').RegistryState} RegistryState
 * @typedef {import('../index.js').RegistryDocument} RegistryDocument
 * @typedef {import('../index.js').ServerFilter} ServerFilter
 */

/**
 * Fills in the real machine for whatever the caller did not inject.
 * @param {ReaderContext} [ctx]
 * @returns {LivenessContext}
 */
export function resolveContext(ctx = {}) {
  return {
    hostname: ctx.hostname ?? os.hostname(),
    now: typeof ctx.now === 'function' ? ctx.now() : (ctx.now ?? Date.now()),
    processes: memoizeProcessTable(ctx.processes ?? systemProcessTable()),
  };
}

/**
 * Applies liveness to a parse result.
 * @param {ParseResult} parsed
 * @param {ReaderContext} [ctx]
 * @returns {RegistryState}
 */
export function evaluateRegistry(parsed, ctx) {
  if (parsed.status === 'unsupported-version') {
    return { servers: [], dead: [], error: parsed.error, errorCode: 'unsupported-version', warnings: [] };
  }
  if (parsed.status === 'corrupt') {
    return {
      servers: [],
      dead: [],
      error: null,
      errorCode: null,
      warnings: [`registry is corrupt (${parsed.reason}); showing no servers`],
    };
  }
  const live = resolveContext(ctx);
  /** @type {ServerEntry[]} */
  const servers = [];
  /** @type {{ entry: ServerEntry, reason: string }[]} */
  const dead = [];
  for (const entry of parsed.entries) {
    const verdict = liveness(entry, live);
    if (verdict.live) servers.push(entry);
    else dead.push({ entry, reason: verdict.reason });
  }
  return { servers, dead, error: null, errorCode: null, warnings: parsed.warnings };
}

/**
 * Reads the live servers from a registry file's bytes (null: no file).
 * This is the whole reader minus the file system: what the vectors test.
 * @param {Uint8Array | null} bytes
 * @param {ReaderContext} [ctx]
 * @returns {RegistryState}
 */
export function readLiveServers(bytes, ctx) {
  return evaluateRegistry(parseRegistry(bytes), ctx);
}

/**
 * Turns the outcome of reading the file into a parse result.
 * @param {FileRead} read
 * @returns {ParseResult}
 */
export function parseFileRead(read) {
  switch (read.kind) {
    case 'missing':
      return parseRegistry(null);
    case 'bytes':
      return parseRegistry(read.bytes);
    case 'oversized':
      return { status: 'corrupt', reason: `file is ${read.size} bytes or more, over the limit of 16 MiB` };
    case 'refused':
      return { status: 'corrupt', reason: read.error };
  }
}

/**
 * Reads the registry file at `file` and returns its live servers.
 * A refused file (symlink, another user's) yields no servers and an error.
 * @param {string} file
 * @param {ReaderContext} [ctx]
 * @returns {Promise<RegistryState>}
 */
export async function readRegistry(file, ctx) {
  const read = await readRegistryFile(file);
  if (read.kind === 'refused') {
    return { servers: [], dead: [], error: read.error, errorCode: 'refused', warnings: read.warnings };
  }
  const state = evaluateRegistry(parseFileRead(read), ctx);
  return { ...state, warnings: [...read.warnings, ...state.warnings] };
}

/**
 * Keeps the servers that match a filter (an empty or missing value matches all).
 * @param {readonly ServerEntry[]} servers
 * @param {ServerFilter} [filter]
 * @returns {ServerEntry[]}
 */
export function filterServers(servers, filter = {}) {
  const { project, kind } = filter;
  return servers.filter((s) => (!project || s.project === project) && (!kind || s.kind === kind));
}

/**
 * The API document: `{"version":1,"servers":[…]}`.
 * @param {readonly ServerEntry[]} servers
 * @param {ServerFilter} [filter]
 * @returns {RegistryDocument}
 */
export function toDocument(servers, filter) {
  return { version: 1, servers: filterServers(servers, filter) };
}
