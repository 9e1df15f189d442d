// connectAll() over real sockets: `ws` echo servers, and `ws` as the client
// WebSocket implementation (Node 20 has no global WebSocket; the browser test
// runs the same code on Chromium's).

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import WebSocket from 'ws';
import { connectAll } from '../src/index.js';
import { probe, startEcho, waitFor } from './helpers/echo.js';

/** @type {Array<() => Promise<void> | void>} */
let cleanups = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/**
 * @param {string} id
 * @param {string} url
 * @returns {import('../index.js').ServerEntry}
 */
function entry(id, url) {
  return {
    id, kind: 'echo', name: null, project: null, session: null, host: null, port: Number(new URL(url).port),
    url, pid: 1, pidStartTime: null, startedAt: '2026-01-01T00:00:00.000Z', ttlSecs: null, heartbeatAt: null, meta: {},
  };
}

/** @param {Partial<import('../index.js').ConnectAllOptions>} [extra] */
function recorder(extra = {}) {
  /** @type {{ id: string, status: string, info: any, t: number }[]} */
  const statuses = [];
  /** @type {{ id: string, data: string }[]} */
  const messages = [];
  const conns = connectAll({
    WebSocket: /** @type {typeof globalThis.WebSocket} */ (/** @type {unknown} */ (WebSocket)),
    onStatus: (s, status, info) => statuses.push({ id: s.id, status, info, t: performance.now() }),
    onMessage: (s, data) => messages.push({ id: s.id, data: Buffer.from(/** @type {ArrayBuffer} */ (data)).toString() }),
    ...extra,
  });
  cleanups.push(() => conns.close());
  return { conns, statuses, messages };
}

test('one socket per server; sendAll reaches every one; echoes come back', async () => {
  const servers = await Promise.all([startEcho(), startEcho(), startEcho()]);
  for (const s of servers) cleanups.push(() => s.kill());
  const { conns, statuses, messages } = recorder();
  conns.update(servers.map((s, i) => entry(`e${i}`, s.url)));
  await waitFor(() => [...conns.statuses().values()].every((s) => s === 'connected'), 5000, 'all connected');
  assert.deepEqual(statuses.filter((s) => s.id === 'e0').map((s) => s.status), ['connecting', 'connected']);
  // The same list again changes nothing.
  conns.update({ version: 1, servers: servers.map((s, i) => entry(`e${i}`, s.url)) });
  assert.equal(conns.sendAll('hello'), 3);
  await waitFor(() => messages.length === 3, 5000, 'three echoes');
  assert.deepEqual(messages.map((m) => m.id).sort(), ['e0', 'e1', 'e2']);
  assert.ok(messages.every((m) => m.data === 'hello'));
  assert.equal(conns.send('e1', 'only one'), true);
  assert.equal(conns.send('nope', 'x'), false);
  await waitFor(() => messages.length === 4);
  assert.deepEqual(messages[3], { id: 'e1', data: 'only one' });
  assert.deepEqual(servers.map((s) => s.connections), [1, 1, 1]);
});

test('a server that leaves the list: its socket is closed (1000) and forgotten', async () => {
  const a = await startEcho();
  const b = await startEcho();
  cleanups.push(() => a.kill(), () => b.kill());
  const { conns, statuses } = recorder();
  conns.update([entry('a', a.url), entry('b', b.url)]);
  await waitFor(() => conns.statuses().get('a') === 'connected' && conns.statuses().get('b') === 'connected');
  conns.update([entry('b', b.url)]);
  assert.deepEqual([...conns.statuses().keys()], ['b']);
  const last = statuses.filter((s) => s.id === 'a').at(-1);
  assert.equal(last?.status, 'disconnected');
  assert.equal(last?.info.removed, true);
  await waitFor(() => a.closes.length === 1, 3000, 'server a sees the close');
  assert.equal(a.closes[0].code, 1000);
  // No reconnect to a server that left. b, still listed, drops its client after a's
  // socket closed; b's reconnect comes after the same backoff, so by then a's would have.
  b.dropClients();
  await waitFor(() => b.connections === 2 && conns.statuses().get('b') === 'connected', 3000, 'b reconnected');
  assert.equal(a.connections, 1);
});

test('a dropped server is reconnected with exponential backoff, and the backoff resets', async () => {
  const s = await startEcho();
  const port = s.port;
  const { conns, statuses } = recorder({ initialDelayMs: 40, maxDelayMs: 160 });
  conns.update([entry('x', s.url)]);
  await waitFor(() => conns.statuses().get('x') === 'connected');
  const killedAt = performance.now();
  await s.kill();
  // Let a few attempts fail against the closed port: 40, 80, 160, 160 ms.
  await waitFor(() => statuses.filter((e) => e.status === 'connecting' && e.t > killedAt).length >= 5, 5000, 'five attempts');
  const attempts = statuses.filter((e) => e.status === 'connecting' && e.t > killedAt);
  const gaps = attempts.slice(1).map((e, i) => e.t - attempts[i].t);
  assert.ok(gaps[0] >= 70 && gaps[0] < 400, `gaps ${gaps}`);
  assert.ok(gaps[1] >= 140 && gaps[1] < 600, `gaps ${gaps}`);
  assert.ok(gaps[2] >= 140 && gaps[2] < 600, `cap: gaps ${gaps}`);
  assert.deepEqual(attempts.map((a) => a.info.attempt), [1, 2, 3, 4, 5]);

  const again = await startEcho(port);
  cleanups.push(() => again.kill());
  await waitFor(() => conns.statuses().get('x') === 'connected', 3000, 'reconnected');
  assert.equal(statuses.filter((e) => e.status === 'connected').length, 2);
  assert.equal(conns.sendAll('back'), 1);
});

test('the same id at a new url is a new server; close() ends everything', async () => {
  const a = await startEcho();
  const b = await startEcho();
  cleanups.push(() => a.kill(), () => b.kill());
  const { conns, statuses } = recorder();
  conns.update([entry('same', a.url)]);
  await waitFor(() => a.clients === 1);
  conns.update([entry('same', b.url)]);
  await waitFor(() => b.clients === 1 && a.clients === 0, 3000, 'moved to b');
  conns.close();
  await waitFor(() => b.clients === 0, 3000, 'closed');
  conns.update([entry('late', a.url)]);
  // A connection would be started at once ('connecting' is reported before it); the
  // probe, started after it, bounds the check that none reached the server.
  assert.deepEqual(statuses.filter((s) => s.id === 'late'), []);
  await probe(a);
  assert.equal(a.connections, 2, 'the first client and the probe only');
  assert.equal(conns.statuses().size, 0);
});

test('the filter option keeps servers out', async () => {
  const a = await startEcho();
  cleanups.push(() => a.kill());
  const { conns } = recorder({ filter: (s) => s.kind === 'yjs' });
  conns.update([entry('a', a.url)]);
  await probe(a);
  assert.equal(a.connections, 1, 'the probe only');
  assert.equal(conns.statuses().size, 0);
});
