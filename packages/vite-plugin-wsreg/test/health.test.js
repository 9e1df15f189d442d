// Health probes in a real Vite dev server (docs/api.md, "Health"), against real servers:
// a `wsreg echo` process stopped and continued (SIGSTOP/SIGCONT), a TCP server that
// never answers the upgrade, an entry that says "health": "none", healthUrls answering
// 200 and 500. Probes run only while someone is subscribed, and a probe that finds
// nothing new pushes nothing. Every wait is for an event, bounded by a deadline.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import wsreg from '../src/index.js';
import { openEventStream, request } from './helpers/http-client.js';
import { ownEntry, register, setServers, tempRegistry } from './helpers/registry-writer.js';
import { makeSite, startVite } from './helpers/vite-servers.js';
import { startWsregServer } from './helpers/wsreg-bin.js';

/**
 * @typedef {import('./helpers/http-client.js').SseEvent} SseEvent
 * @typedef {{ state: string, checkedAt: string | null, latencyMs: number | null }} Health
 */

/**
 * The health of entry `id` in an SSE event (undefined when it is not listed).
 * @param {SseEvent} e
 * @param {string} id
 * @returns {Health | undefined}
 */
const healthIn = (e, id) => JSON.parse(e.data).servers.find((/** @type {any} */ s) => s.id === id)?.health;

/**
 * Waits for an event in which entry `id` has `state`.
 * @param {Awaited<ReturnType<typeof openEventStream>>} stream
 * @param {string} id
 * @param {string} state
 * @param {number} timeoutMs
 */
const untilState = (stream, id, state, timeoutMs) =>
  stream.next({ timeoutMs, accept: (e) => healthIn(e, id)?.state === state });

/**
 * A loopback TCP server that counts connections and records the first bytes of each;
 * `answer` decides what it does with a connection (default: nothing, ever).
 * @param {(socket: net.Socket) => void} [answer]
 */
async function tcpServer(answer = () => {}) {
  /** @type {string[]} */
  const requests = [];
  /** @type {Set<net.Socket>} */
  const sockets = new Set();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', (d) => requests.push(d.toString('latin1')));
    socket.on('error', () => {});
    answer(socket);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const port = /** @type {net.AddressInfo} */ (server.address()).port;
  return {
    port,
    requests,
    get connections() {
      return connections;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}

/**
 * An HTTP server answering `status` on every path.
 * @param {number} status
 */
async function httpServer(status) {
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits += 1;
    res.statusCode = status;
    res.end('health');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const port = /** @type {net.AddressInfo} */ (server.address()).port;
  return {
    port,
    get hits() {
      return hits;
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}

test('healthInterval must be a number of milliseconds, 0 or more', () => {
  for (const bad of [-1, Number.NaN, Infinity, '5s']) {
    assert.throws(() => wsreg({ healthInterval: /** @type {any} */ (bad) }), /healthInterval must be a number of milliseconds, 0 or more/);
  }
  assert.doesNotThrow(() => wsreg({ healthInterval: 0 }));
});

describe('health probes in vite dev', () => {
  const site = makeSite();
  const reg = tempRegistry('wsreg-health-');
  /** @type {{ close(): Promise<unknown> }[]} servers to close at the end, whatever happens */
  const closers = [];
  after(async () => {
    for (const c of closers) await c.close();
    fs.rmSync(site, { recursive: true, force: true });
    fs.rmSync(reg.root, { recursive: true, force: true });
  });

  test('SIGSTOP → unresponsive, SIGCONT → ok, each within 7 s (default interval); the server stays listed', async () => {
    const server = await startVite('dev', { root: site, plugin: { registry: reg.dir } });
    const echo = await startWsregServer('echo', reg.dir, ['--name', 'to be stopped']);
    const { id } = echo.entry;
    const stream = await openEventStream(`${server.url}/api/registry/events`);
    try {
      const first = await stream.next();
      assert.deepEqual(healthIn(first, id), { state: 'unknown', checkedAt: null, latencyMs: null });
      const ok = /** @type {Health} */ (healthIn(await untilState(stream, id, 'ok', 3000), id));
      assert.equal(typeof ok.latencyMs, 'number');
      assert.ok(Date.now() - Date.parse(/** @type {string} */ (ok.checkedAt)) < 3000, ok.checkedAt ?? '');

      let t0 = performance.now();
      echo.child.kill('SIGSTOP');
      const down = await untilState(stream, id, 'unresponsive', 7000);
      const downMs = down.at - t0;
      assert.deepEqual(Object.keys(/** @type {Health} */ (healthIn(down, id))), ['state', 'checkedAt', 'latencyMs']);
      assert.equal(healthIn(down, id)?.latencyMs, null);
      const listed = await request(`${server.url}/api/registry`);
      assert.equal(listed.json.servers.find((/** @type {any} */ s) => s.id === id)?.health.state, 'unresponsive', 'still listed, marked');

      t0 = performance.now();
      echo.child.kill('SIGCONT');
      const up = await untilState(stream, id, 'ok', 7000);
      const upMs = up.at - t0;
      console.log(`vite dev, healthInterval 5000: SIGSTOP → unresponsive in ${downMs.toFixed(0)} ms, SIGCONT → ok in ${upMs.toFixed(0)} ms`);
    } finally {
      stream.close();
      echo.child.kill('SIGCONT');
      echo.child.kill('SIGKILL');
      await server.close();
      setServers(reg.dir, []);
    }
  });

  describe('with healthInterval 300', () => {
    /** @type {import('./helpers/vite-servers.js').Started} */
    let server;
    before(async () => {
      server = await startVite('dev', { root: site, plugin: { registry: reg.dir, healthInterval: 300 } });
    });
    after(async () => {
      await server.close();
      setServers(reg.dir, []);
    });

    test('a server that accepts TCP but never answers the upgrade is unresponsive; the probe is a same-origin, marked handshake', async () => {
      const silent = await tcpServer();
      closers.push(silent);
      register(reg.dir, ownEntry({ id: 'silent', port: silent.port, url: `ws://127.0.0.1:${silent.port}/room?x=1` }));
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        const t0 = performance.now();
        const e = await untilState(stream, 'silent', 'unresponsive', 5000);
        console.log(`no answer to the upgrade → unresponsive in ${(e.at - t0).toFixed(0)} ms (the 1 s timeout)`);
        const [head] = silent.requests;
        assert.match(head, /^GET \/room\?x=1 HTTP\/1\.1\r\n/);
        assert.match(head, new RegExp(`\r\nHost: 127\\.0\\.0\\.1:${silent.port}\r\n`));
        assert.match(head, new RegExp(`\r\nOrigin: http://127\\.0\\.0\\.1:${silent.port}\r\n`));
        assert.match(head, /\r\nUpgrade: websocket\r\n/);
        assert.match(head, /\r\nX-Wsreg-Probe: 1\r\n/);
      } finally {
        stream.close();
      }
    });

    test('a WebSocket server is ok; the probe pings, gets its pong and closes with 1000', async () => {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
      await new Promise((resolve) => wss.once('listening', resolve));
      closers.push({ close: () => new Promise((resolve) => wss.close(() => resolve(undefined))) });
      /** @type {{ headers: import('node:http').IncomingHttpHeaders, pinged: boolean, code: number }[]} */
      const seen = [];
      wss.on('connection', (socket, req) => {
        const record = { headers: req.headers, pinged: false, code: 0 };
        seen.push(record);
        socket.send('a greeting before the pong'); // the probe skips frames up to its pong
        socket.on('ping', () => (record.pinged = true));
        socket.on('close', (code) => (record.code = code));
      });
      const port = /** @type {net.AddressInfo} */ (wss.address()).port;
      register(reg.dir, ownEntry({ id: 'ws-ok', port }));
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        const e = await untilState(stream, 'ws-ok', 'ok', 5000);
        assert.ok(/** @type {number} */ (healthIn(e, 'ws-ok')?.latencyMs) < 1000);
        await waitUntil(() => seen.some((s) => s.code !== 0), 3000);
        const done = /** @type {(typeof seen)[number]} */ (seen.find((s) => s.code !== 0));
        assert.equal(done.pinged, true);
        assert.equal(done.code, 1000);
        assert.equal(done.headers['x-wsreg-probe'], '1');
        assert.equal(done.headers.origin, `http://127.0.0.1:${port}`);
      } finally {
        stream.close();
      }
    });

    test('"health": "none" → none, never probed', async () => {
      const counted = await tcpServer();
      closers.push(counted);
      register(reg.dir, ownEntry({ id: 'no-probe', port: counted.port, health: 'none' }));
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        const first = await stream.next();
        assert.deepEqual(healthIn(first, 'no-probe'), { state: 'none', checkedAt: null, latencyMs: null });
        // Another entry's probe result marks the time by which this one would have been probed too.
        const other = await tcpServer();
        closers.push(other);
        register(reg.dir, ownEntry({ id: 'marker', port: other.port }));
        const marked = await untilState(stream, 'marker', 'unresponsive', 5000);
        assert.equal(healthIn(marked, 'no-probe')?.state, 'none');
        assert.equal(counted.connections, 0, 'the none entry was never connected to');
      } finally {
        stream.close();
      }
    });

    test('healthUrl: 200 → ok, 500 → unresponsive (the WebSocket url is not touched)', async () => {
      const good = await httpServer(200);
      const bad = await httpServer(500);
      const ws = await tcpServer();
      closers.push(good, bad, ws);
      register(reg.dir, ownEntry({ id: 'http-200', port: ws.port, healthUrl: `http://127.0.0.1:${good.port}/healthz` }));
      register(reg.dir, ownEntry({ id: 'http-500', port: ws.port, healthUrl: `http://127.0.0.1:${bad.port}/healthz` }));
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        const e = await stream.next({
          timeoutMs: 5000,
          accept: (x) => healthIn(x, 'http-200')?.state === 'ok' && healthIn(x, 'http-500')?.state === 'unresponsive',
        });
        const listed = JSON.parse(e.data).servers.find((/** @type {any} */ s) => s.id === 'http-200');
        assert.deepEqual(Object.keys(listed).slice(-2), ['healthUrl', 'health']);
        assert.ok(good.hits > 0 && bad.hits > 0);
        assert.equal(ws.connections, 0, 'with a healthUrl, the WebSocket url is not probed');
      } finally {
        stream.close();
      }
    });
  });

  test('a new entry, and an entry whose url changed, are probed at once (not at the next round)', async () => {
    setServers(reg.dir, []);
    const silent = await tcpServer((socket) => socket.destroy());
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => wss.once('listening', resolve));
    closers.push(silent, { close: () => new Promise((resolve) => wss.close(() => resolve(undefined))) });
    const wsPort = /** @type {net.AddressInfo} */ (wss.address()).port;
    // A round a minute: whatever is probed within the test was probed because it is new.
    const server = await startVite('dev', { root: site, plugin: { registry: reg.dir, healthInterval: 60000 } });
    const stream = await openEventStream(`${server.url}/api/registry/events`);
    try {
      await stream.next();
      const entry = ownEntry({ id: 'mover', port: silent.port });
      register(reg.dir, entry);
      await untilState(stream, 'mover', 'unresponsive', 3000);
      register(reg.dir, { ...entry, port: wsPort, url: `ws://127.0.0.1:${wsPort}/` });
      const moved = await untilState(stream, 'mover', 'ok', 3000);
      assert.equal(JSON.parse(moved.data).servers[0].port, wsPort);
    } finally {
      stream.close();
      await server.close();
      setServers(reg.dir, []);
    }
  });

  test('idle is free: nothing probed without a subscriber; a steady state pushes nothing; states go back to unknown', async () => {
    setServers(reg.dir, []);
    const target = await tcpServer((socket) => socket.destroy());
    closers.push(target);
    register(reg.dir, ownEntry({ id: 'watched', port: target.port }));
    const server = await startVite('dev', { root: site, plugin: { registry: reg.dir, healthInterval: 100 } });
    try {
      // Requests alone subscribe nobody.
      for (let i = 0; i < 3; i++) {
        const res = await request(`${server.url}/api/registry`);
        assert.equal(res.json.servers[0].health.state, 'unknown');
      }
      assert.equal(target.connections, 0, 'nothing probed while nobody is subscribed');
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        await untilState(stream, 'watched', 'unresponsive', 3000);
        // Ten more rounds find the same state: probes happen, pushes do not.
        const probes = target.connections;
        const pushed = await stream.next({ timeoutMs: 1000 }).catch(() => null);
        assert.equal(pushed, null, `an unchanged state was pushed: ${pushed?.data}`);
        assert.ok(target.connections >= probes + 5, `only ${target.connections - probes} probes in 1 s at 100 ms`);
      } finally {
        stream.close();
      }
      // The last subscriber left: no more probes, and the answer says unknown again.
      await waitUntil(async () => (await request(`${server.url}/api/registry`)).json.servers[0].health.state === 'unknown', 3000);
      const after = target.connections;
      await new Promise((resolve) => setTimeout(resolve, 500)); // five intervals of observation, not a synchronisation
      assert.equal(target.connections, after, 'no probe without a subscriber');
    } finally {
      await server.close();
      setServers(reg.dir, []);
    }
  });
});

/**
 * Polls `check` until it is true, or throws after `timeoutMs`.
 * @param {() => boolean | Promise<boolean>} check
 * @param {number} timeoutMs
 */
async function waitUntil(check, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`not true within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
