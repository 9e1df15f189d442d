// The reader against every shared test vector, through the file system: the case
// folder laid out in a temp directory (symlinks kept, `generate` applied) and read with
// the case's own hostname, clock and process table (and, where the case has `sockets`,
// which ports each process listens on) — once as the directory, once
// through the legacy-path rule (`…/servers.json` names the same registry), and once
// through a RegistryWatcher (the cache the plugin reads through).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isEntryFileName, readRegistry } from '../src/registry.js';
import { RegistryWatcher } from '../src/watch.js';
import { canonicalKeysOf, contextOf, layOut, loadVectors } from './helpers/vectors.js';

const vectors = loadVectors();

test('the vectors are there and well formed', () => {
  assert.ok(vectors.length >= 35, `only ${vectors.length} vectors`);
  for (const v of vectors) {
    assert.equal(typeof v.case.description, 'string', v.name);
    assert.ok(v.case.description.length > 20, `${v.name}: describe the case`);
    assert.ok(Number.isFinite(Date.parse(v.case.now)), `${v.name}: now`);
    assert.equal(v.expected.version, 1, v.name);
    for (const s of v.expected.servers) assert.deepEqual(Object.keys(s), canonicalKeysOf(s), `${v.name}: key order`);
    if (v.case.generate) assert.ok(fs.existsSync(path.join(v.dir, v.case.generate.pad)), `${v.name}: generate.pad`);
    // `sockets` (optional): PID → the ports it listens on, or null (descriptors unreadable).
    for (const [pid, ports] of Object.entries(v.case.sockets ?? {})) {
      assert.match(pid, /^[1-9]\d*$/, `${v.name}: sockets PID`);
      if (ports !== null) assert.ok(ports.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535), `${v.name}: sockets of ${pid}`);
    }
  }
});

test('the vectors cover the cases the contract names', () => {
  const names = new Set(vectors.map((v) => v.name));
  for (const n of [
    'prototype-format', 'v1-basic', 'dead-pid', 'reused-pid', 'expired-lease', 'live-lease',
    'foreign-host', 'unknown-fields', 'invalid-entry-among-valid', 'corrupt', 'corrupt-array',
    'null', 'empty-object', 'empty-file', 'unsupported-version', 'oversized', 'startedat-number',
    'timestamp-fractions', 'v2-basic', 'v2-empty-directory', 'v2-entry-at-size-limit', 'v2-invalid-files',
    'v2-legacy-merge', 'v2-liveness', 'v2-order-and-defaults', 'v2-health-fields', 'v2-ownership',
  ]) {
    assert.ok(names.has(n), `missing vector ${n}`);
  }
});

describe('vectors, through the file system', () => {
  /** @type {string} */
  let tmp;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-vectors-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const v of vectors) {
    test(v.name, () => {
      const { registry } = layOut(v, tmp);
      const state = readRegistry(registry, contextOf(v.case));
      assert.equal(state.error, null);
      assert.deepEqual({ version: 1, servers: state.servers }, v.expected);
      for (const s of state.servers) assert.deepEqual(Object.keys(s), canonicalKeysOf(s));
      assert.deepEqual(readRegistry(`${registry}.json`, contextOf(v.case)), state, 'the legacy-path rule names the same registry');

      const watcher = new RegistryWatcher({ registry, context: contextOf(v.case) });
      try {
        assert.deepEqual(watcher.start(), state);
      } finally {
        watcher.close();
      }
    });
  }

  test('v2-invalid-files: each bad entry file draws a warning naming it; non-entries draw none', () => {
    const v = /** @type {import('./helpers/vectors.js').Vector} */ (vectors.find((x) => x.name === 'v2-invalid-files'));
    const { registry } = layOut(v, tmp);
    const { warnings } = readRegistry(registry, contextOf(v.case));
    for (const name of fs.readdirSync(registry)) {
      const named = warnings.filter((w) => w.includes(path.join(registry, name)));
      if (!isEntryFileName(name) || name === 'good.json') assert.deepEqual(named, [], name);
      else assert.equal(named.length, 1, `${name}: ${warnings.join('\n')}`);
    }
    assert.ok(warnings.some((w) => w.includes('link.json') && /symlink/.test(w)));
    assert.ok(warnings.some((w) => w.includes('big.json') && /not read/.test(w)));
  });

  test('v2-health-fields: a bad healthUrl or health is skipped with a warning that names the field', () => {
    const v = /** @type {import('./helpers/vectors.js').Vector} */ (vectors.find((x) => x.name === 'v2-health-fields'));
    const { registry } = layOut(v, tmp);
    const { warnings } = readRegistry(registry, contextOf(v.case));
    /** @param {string} name */
    const about = (name) => warnings.filter((w) => w.includes(path.join(registry, name))).join('\n');
    assert.match(about('bad-health-url.json'), /"healthUrl" does not start with http:\/\/ or https:\/\//);
    assert.match(about('bad-health-value.json'), /"health" must be "none"/);
    assert.match(about('bad-health-type.json'), /"health" must be "none"/);
    assert.equal(warnings.length, 3, warnings.join('\n'));
  });
});
