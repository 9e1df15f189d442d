import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay, describeHealth, filterServers, registryUrl } from '../src/index.js';

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

test('health in words: the probe result, none, and anything else as unknown', () => {
  const at = '2026-11-25T12:00:05.120Z';
  /** @param {unknown} health */
  const of = (health) => describeHealth(/** @type {any} */ ({ id: 'x', health }));
  assert.deepEqual(of({ state: 'ok', checkedAt: at, latencyMs: 0.4 }), { state: 'ok', text: 'ok · 0.4 ms', checkedAt: at });
  assert.deepEqual(of({ state: 'unresponsive', checkedAt: at, latencyMs: null }), { state: 'unresponsive', text: 'unresponsive', checkedAt: at });
  assert.deepEqual(of({ state: 'unknown', checkedAt: null, latencyMs: null }), { state: 'unknown', text: 'unknown', checkedAt: null });
  assert.deepEqual(of({ state: 'none', checkedAt: null, latencyMs: null }), { state: 'none', text: 'not probed', checkedAt: null });
  assert.deepEqual(of('none'), { state: 'none', text: 'not probed', checkedAt: null });
  for (const odd of [undefined, null, 'ok', { state: '<b>ok</b>' }, { state: 'toString' }]) {
    assert.deepEqual(of(odd), { state: 'unknown', text: 'unknown', checkedAt: null }, JSON.stringify(odd));
  }
  assert.equal(of({ state: 'ok', checkedAt: at, latencyMs: '<i>1</i>' }).text, 'ok');
});
