// The reader: from what the registry holds to the live servers (docs/registry-format.md,
// "Reading", "Output is canonical" and "Liveness"), plus the filters of the API. The
// one-shot `readRegistry` is what `wsreg list` does; the watcher (watch.js) keeps a
// RegistryCache between reads instead and calls `stateOf` on each change.

import os from 'node:os';
import { RegistryCache } from './cache.js';
import { listeningVerdict, memoizeProcessTable, processVerdict, systemProcessTable } from './liveness.js';
import { registryLocation } from './location.js';

export { MAX_ENTRY_FILE_BYTES, isEntryFileName, parseEntryFile } from './entry-file.js';
export {
  listeningVerdict,
  liveness,
  mayEndUnseen,
  parseProcStat,
  processTableFromMap,
  processVerdict,
  systemProcessTable,
} from './liveness.js';
export { registryLocation } from './location.js';
export { MAX_ENTRIES, MAX_LEGACY_FILE_BYTES, parseRegistry, validateEntry } from './model.js';
export { formatTimestamp, parseTimestamp } from './time.js';

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('../index.js').LivenessContext} LivenessContext
 * @typedef {import('../index.js').ReaderContext} ReaderContext
 * @typedef {import('../index.js').RegistryState} RegistryState
 * @typedef {import('../index.js').RegistryDocument} RegistryDocument
 * @typedef {import('../index.js').ServerFilter} ServerFilter
 * @typedef {import('./liveness.js').Verdict} Verdict
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
 * Applies liveness to what a cache holds: each entry's process (and lease), then, for a
 * local entry whose process lives, `listening` — by default the system is asked now; a
 * watcher passes what it last found instead (it asks the sockets less often).
 * @param {RegistryCache} cache
 * @param {LivenessContext} live
 * @param {(entry: ServerEntry) => Verdict} [listening]
 * @returns {RegistryState}
 */
export function stateOf(cache, live, listening = (entry) => listeningVerdict(entry, live)) {
  if (cache.error) return { servers: [], dead: [], error: cache.error, warnings: cache.warnings() };
  /** @type {ServerEntry[]} */
  const servers = [];
  /** @type {{ entry: ServerEntry, reason: string }[]} */
  const dead = [];
  for (const entry of cache.entries()) {
    let verdict = processVerdict(entry, live);
    if (verdict.live) verdict = listening(entry);
    if (verdict.live) servers.push(entry);
    else dead.push({ entry, reason: verdict.reason });
  }
  return { servers, dead, error: null, warnings: cache.warnings() };
}

/**
 * Reads the registry once and returns its live servers.
 * @param {string | null} [registry] a directory, or a legacy `….json` path (see registryLocation)
 * @param {ReaderContext} [ctx]
 * @returns {RegistryState}
 */
export function readRegistry(registry, ctx) {
  const cache = new RegistryCache(registryLocation(registry));
  cache.scan();
  return stateOf(cache, resolveContext(ctx));
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
 * The API document `{"version":1,"servers":[…]}` for servers seen through filters (all must match).
 * @param {readonly ServerEntry[]} servers
 * @param {readonly ServerFilter[]} [filters]
 * @returns {RegistryDocument}
 */
export function toDocument(servers, filters = []) {
  return { version: 1, servers: filters.reduce((list, f) => filterServers(list, f), [...servers]) };
}
