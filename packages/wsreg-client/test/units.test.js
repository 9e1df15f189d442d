import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, filterServers, registryUrl } from '../src/index.js';

test('backoff: 250 ms doubling up to 5 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 50].map((n) => backoffDelay(n)), [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  assert.deepEqual([0, 1, 2, 3].map((n) => backoffDelay(n, 10, 35)), [10, 20, 35, 35]);
});

test('registry URLs', () => {
  assert.equal(registryUrl('', '/api/registry', '/events'), '/api/registry/events');
  assert.equal(registryUrl('http://127.0.0.1:7777/', 'api/registry/', ''), 'http://127.0.0.1:7777/api/registry');
  assert.equal(
    registryUrl('', '/api/registry', '', { project: 'a b&c', kind: 'echo' }),
    '/api/registry?project=a+b%26c&kind=echo',
  );
  assert.equal(registryUrl('', '/api/registry', '', { project: '', kind: null }), '/api/registry');
});

test('filters', () => {
  const s = /** @type {any[]} */ ([
    { id: 'a', project: 'p', kind: 'echo' },
    { id: 'b', project: null, kind: 'yjs' },
  ]);
  assert.deepEqual(filterServers(s, { project: 'p' }).map((x) => x.id), ['a']);
  assert.deepEqual(filterServers(s, { kind: 'yjs' }).map((x) => x.id), ['b']);
  assert.deepEqual(filterServers(s, {}).map((x) => x.id), ['a', 'b']);
});
