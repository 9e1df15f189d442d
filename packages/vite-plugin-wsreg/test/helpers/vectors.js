// Loads the shared test vectors of testdata/vectors (format: the end of
// docs/registry-format.md) and lays a case out on disk as a reader must see it: the
// case folder copied to a temp directory (symlinks stay symlinks), the `generate.pad`
// file padded with spaces; the registry is `servers` there.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTableFromMap } from '../../src/registry.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const VECTORS_DIR = path.join(REPO_ROOT, 'testdata', 'vectors');

/** The canonical field order of an entry in the API answer. */
export const CANONICAL_KEYS = [
  'id', 'kind', 'name', 'project', 'session', 'host', 'port', 'url',
  'pid', 'pidStartTime', 'startedAt', 'ttlSecs', 'heartbeatAt', 'meta',
];

/**
 * The keys of one canonical entry, in order: CANONICAL_KEYS, then `healthUrl` and
 * `health`, each only where the entry sets it.
 * @param {object} entry
 */
export function canonicalKeysOf(entry) {
  return [...CANONICAL_KEYS, ...['healthUrl', 'health'].filter((k) => Object.hasOwn(entry, k))];
}

/**
 * What the API answers for a vector's expected document while nothing is probed (no
 * subscriber, or probing off): each entry's `health` is the probe result, last —
 * `none` where the entry says `"health": "none"`, else `unknown`.
 * @param {import('../../index.js').RegistryDocument} doc
 */
export function unprobed(doc) {
  return {
    ...doc,
    servers: doc.servers.map((s) => ({
      ...s,
      health: { state: s.health === 'none' ? 'none' : 'unknown', checkedAt: null, latencyMs: null },
    })),
  };
}

/**
 * @typedef {{
 *   description: string, hostname: string, now: string,
 *   processes: Record<string, number | null>,
 *   sockets?: Record<string, number[] | null>,
 *   generate: { pad: string, bytes: number } | null,
 * }} VectorCase
 * @typedef {{
 *   name: string, dir: string, case: VectorCase,
 *   expected: import('../../index.js').RegistryDocument,
 * }} Vector
 */

/** @returns {Vector[]} every case, sorted by name */
export function loadVectors() {
  return fs
    .readdirSync(VECTORS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const dir = path.join(VECTORS_DIR, name);
      /** @type {VectorCase} */
      const c = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
      const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
      return { name, dir, case: c, expected };
    });
}

/**
 * Copies a case to a fresh private temp directory and applies `generate`.
 * @param {Vector} v
 * @param {string} [parent] where to make the temp directory (default: the system's)
 * @returns {{ root: string, registry: string }} `registry` is the case's `servers` there
 */
export function layOut(v, parent = os.tmpdir()) {
  const root = fs.mkdtempSync(path.join(parent, `${v.name}-`));
  fs.chmodSync(root, 0o700);
  fs.cpSync(v.dir, root, { recursive: true, verbatimSymlinks: true });
  const registry = path.join(root, 'servers');
  if (fs.existsSync(registry)) fs.chmodSync(registry, 0o700); // the mode git gave is not part of the case
  if (v.case.generate) {
    const { pad, bytes } = v.case.generate;
    const file = path.join(root, pad);
    const size = fs.statSync(file).size;
    if (size > bytes) throw new Error(`${v.name}: ${pad} is already longer than ${bytes} bytes`);
    fs.appendFileSync(file, Buffer.alloc(bytes - size, 0x20));
  }
  return { root, registry };
}

/**
 * The reader context a case prescribes: its hostname, clock and process table — with
 * the ports each PID listens on when the case has `sockets` (a case without them does
 * not describe ownership: every process is taken as listening).
 * @param {VectorCase} c
 * @returns {import('../../index.js').ReaderContext}
 */
export function contextOf(c) {
  return { hostname: c.hostname, now: Date.parse(c.now), processes: processTableFromMap(c.processes, c.sockets) };
}
