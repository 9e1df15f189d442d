// Loads the shared test vectors of testdata/vectors (format: the end of
// docs/registry-format.md).

import fs from 'node:fs';
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
 * @typedef {{
 *   description: string, hostname: string, now: string,
 *   processes: Record<string, number | null>, registry: string,
 *   generate: { oversizedBytes: number } | null, expectError?: string,
 * }} VectorCase
 * @typedef {{
 *   name: string, dir: string, case: VectorCase,
 *   bytes: Buffer | null,
 *   expected: import('../../index.js').RegistryDocument | null,
 * }} Vector
 */

/** @returns {Vector[]} every case, sorted by name */
export function loadVectors() {
  return fs
    .readdirSync(VECTORS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => loadVector(name));
}

/** @param {string} name */
export function loadVector(name) {
  const dir = path.join(VECTORS_DIR, name);
  /** @type {VectorCase} */
  const c = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
  const registryPath = path.join(dir, c.registry);
  const fileBytes = fs.existsSync(registryPath) ? fs.readFileSync(registryPath) : null;
  let bytes = fileBytes;
  if (c.generate) {
    // "A valid v1 document padded with spaces to N bytes": the case's own
    // registry.json when it has one, else an empty v1 document.
    const base = fileBytes ?? Buffer.from('{"version":1,"servers":[]}');
    if (base.length > c.generate.oversizedBytes) throw new Error(`${name}: document longer than oversizedBytes`);
    bytes = Buffer.alloc(c.generate.oversizedBytes, 0x20);
    base.copy(bytes);
  }
  const expectedPath = path.join(dir, 'expected.json');
  const expected = fs.existsSync(expectedPath) ? JSON.parse(fs.readFileSync(expectedPath, 'utf8')) : null;
  return { name, dir, case: c, bytes, expected };
}

/**
 * The reader context a case prescribes.
 * @param {VectorCase} c
 * @returns {import('../../index.js').ReaderContext}
 */
export function contextOf(c) {
  return { hostname: c.hostname, now: Date.parse(c.now), processes: processTableFromMap(c.processes) };
}
