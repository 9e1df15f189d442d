// The reader against every shared test vector: once from bytes, once through
// the file system (temp directory 0700, file 0600), with the case's own
// hostname, clock and process table.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readLiveServers, readRegistry } from '../src/registry.js';
import { CANONICAL_KEYS, contextOf, loadVectors } from './helpers/vectors.js';

const vectors = loadVectors();

test('the vectors are there and well formed', () => {
  assert.ok(vectors.length >= 25, `only ${vectors.length} vectors`);
  for (const v of vectors) {
    assert.equal(typeof v.case.description, 'string', v.name);
    assert.ok(v.case.description.length > 20, `${v.name}: describe the case`);
    assert.ok(Number.isFinite(Date.parse(v.case.now)), `${v.name}: now`);
    if (v.case.expectError) assert.equal(v.expected, null, `${v.name}: expectError and expected.json`);
    else assert.ok(v.expected, `${v.name}: expected.json missing`);
    for (const s of v.expected?.servers ?? []) assert.deepEqual(Object.keys(s), CANONICAL_KEYS, `${v.name}: key order`);
  }
});

/**
 * @param {import('./helpers/vectors.js').Vector} v
 * @param {import('../index.js').RegistryState} state
 */
function check(v, state) {
  if (v.case.expectError) {
    assert.equal(state.errorCode, v.case.expectError);
    assert.match(String(state.error), /version/);
    assert.deepEqual(state.servers, []);
    return;
  }
  assert.equal(state.error, null);
  assert.deepEqual({ version: 1, servers: state.servers }, v.expected);
  for (const s of state.servers) assert.deepEqual(Object.keys(s), CANONICAL_KEYS);
}

describe('vectors, from bytes', () => {
  for (const v of vectors) {
    test(v.name, () => check(v, readLiveServers(v.bytes, contextOf(v.case))));
  }
});

describe('vectors, through the file system', () => {
  /** @type {string} */
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-vectors-'));
    fs.chmodSync(dir, 0o700);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const v of vectors) {
    test(v.name, async () => {
      const sub = fs.mkdtempSync(path.join(dir, `${v.name}-`));
      const file = path.join(sub, 'servers.json');
      if (v.bytes !== null) fs.writeFileSync(file, v.bytes, { mode: 0o600 });
      const state = await readRegistry(file, contextOf(v.case));
      check(v, state);
      assert.deepEqual(state.warnings.filter((w) => /open to the group/.test(w)), []);
    });
  }
});

test('the vectors cover every case the brief names', () => {
  const names = new Set(vectors.map((v) => v.name));
  for (const n of [
    'prototype-format', 'v1-basic', 'dead-pid', 'reused-pid', 'expired-lease', 'live-lease',
    'foreign-host', 'unknown-fields', 'invalid-entry-among-valid', 'corrupt', 'corrupt-array',
    'null', 'empty-object', 'empty-file', 'unsupported-version', 'oversized', 'startedat-number',
    'timestamp-fractions',
  ]) {
    assert.ok(names.has(n), `missing vector ${n}`);
  }
});
