// The HMR channel of a real Vite dev server: a WebSocket client speaking
// Vite's HMR protocol (as the page's client does) asks for the list with
// `wsreg:get-servers`, gets `wsreg:servers`, and is pushed each change; a refused
// registry directory is pushed as `wsreg:registry-error`.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { openEventStream } from './helpers/http-client.js';
import { listeningPorts, ownEntry, register, setServers, tempRegistry } from './helpers/registry-writer.js';
import { makeSite, startVite } from './helpers/vite-servers.js';

// Ports this process listens on: readers list a local entry only while its process does.
const [port1, port2, port3] = await listeningPorts(3);
const site = makeSite();
const reg = tempRegistry('wsreg-hmr-');
const entries = [
  ownEntry({ id: 'echo-1', port: port1, startedAt: '2026-01-01T00:00:01Z' }),
  ownEntry({ id: 'yjs-1', kind: 'yjs', port: port2, startedAt: '2026-01-01T00:00:02Z' }),
];

/** @type {import('./helpers/vite-servers.js').Started} */
let server;
before(async () => {
  setServers(reg.dir, entries);
  // These tests take the pushes of list changes one by one: no probe findings among them.
  server = await startVite('dev', { root: site, plugin: { registry: reg.dir, healthInterval: 0 } });
});
after(async () => {
  await server.close();
  fs.rmSync(site, { recursive: true, force: true });
  fs.rmSync(reg.root, { recursive: true, force: true });
});

/** Connects to the HMR socket the way Vite's client does. */
async function hmrClient() {
  const token = /** @type {{ webSocketToken?: string }} */ (server.dev?.config).webSocketToken;
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/?token=${encodeURIComponent(token ?? '')}`, 'vite-hmr');
  /** @type {any[]} */
  const queue = [];
  /** @type {(() => void) | null} */
  let wake = null;
  ws.on('message', (data) => {
    queue.push({ ...JSON.parse(data.toString()), at: performance.now() });
    wake?.();
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return {
    /** @param {string} event @param {unknown} [data] */
    send(event, data) {
      ws.send(JSON.stringify({ type: 'custom', event, data }));
    },
    /**
     * The next custom event with this name.
     * @param {string} event
     * @returns {Promise<{ data: any, at: number }>}
     */
    async next(event, timeoutMs = 3000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const i = queue.findIndex((m) => m.type === 'custom' && m.event === event);
        if (i >= 0) return queue.splice(i, 1)[0];
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`no ${event} within ${timeoutMs} ms`);
        await new Promise((r) => {
          const t = setTimeout(r, left);
          wake = () => {
            clearTimeout(t);
            wake = null;
            r(undefined);
          };
        });
      }
    },
    close() {
      ws.close();
    },
  };
}

test('a page asking with wsreg:get-servers gets the current list as wsreg:servers', async () => {
  const c = await hmrClient();
  try {
    c.send('wsreg:get-servers', {});
    const { data } = await c.next('wsreg:servers');
    assert.deepEqual(data.version, 1);
    assert.deepEqual(data.servers.map((/** @type {any} */ s) => s.id), ['echo-1', 'yjs-1']);
    c.send('wsreg:get-servers', { kind: 'yjs' });
    const filtered = await c.next('wsreg:servers');
    assert.deepEqual(filtered.data.servers.map((/** @type {any} */ s) => s.id), ['yjs-1']);
  } finally {
    c.close();
  }
});

test('every change is pushed as wsreg:servers to every page; a refused directory as wsreg:registry-error', async () => {
  const a = await hmrClient();
  const b = await hmrClient();
  try {
    const t0 = performance.now();
    register(reg.dir, ownEntry({ id: 'echo-2', port: port3, startedAt: '2026-01-01T00:00:03Z' }));
    const pa = await a.next('wsreg:servers');
    const pb = await b.next('wsreg:servers');
    assert.deepEqual(pa.data.servers.map((/** @type {any} */ s) => s.id), ['echo-1', 'yjs-1', 'echo-2']);
    assert.deepEqual(pb.data, pa.data);
    console.log(`registry change → HMR wsreg:servers in ${(pa.at - t0).toFixed(1)} ms`);

    // The directory is moved away and a symlink to it takes its place.
    fs.renameSync(reg.dir, `${reg.dir}-moved`);
    fs.symlinkSync(`${reg.dir}-moved`, reg.dir);
    const err = await a.next('wsreg:registry-error');
    assert.match(err.data.error, /symlink/);
    a.send('wsreg:get-servers');
    assert.match((await a.next('wsreg:registry-error')).data.error, /symlink/);

    fs.rmSync(reg.dir);
    fs.renameSync(`${reg.dir}-moved`, reg.dir);
    setServers(reg.dir, entries);
    const back = await a.next('wsreg:servers');
    assert.ok(back.data.servers.length >= 2);
  } finally {
    a.close();
    b.close();
  }
});

test('hmr: false sends nothing over HMR', async () => {
  const s = await startVite('dev', { root: site, plugin: { registry: reg.dir, hmr: false } });
  try {
    const token = /** @type {{ webSocketToken?: string }} */ (s.dev?.config).webSocketToken;
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/?token=${encodeURIComponent(token ?? '')}`, 'vite-hmr');
    /** @type {string[]} */
    const events = [];
    ws.on('message', (d) => events.push(JSON.parse(d.toString()).event));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'custom', event: 'wsreg:get-servers', data: {} }));
    const stream = await openEventStream(`${s.url}/api/registry/events`);
    await stream.next();
    setServers(reg.dir, entries.slice(0, 1));
    // The stream's push says the change was handled; a ping answered after it says
    // that anything the server sent over HMR before has arrived.
    await stream.next({ timeoutMs: 3000 });
    stream.close();
    await new Promise((resolve) => {
      ws.once('pong', resolve);
      ws.ping();
    });
    ws.close();
    assert.ok(!events.includes('wsreg:servers'), events.join(','));
  } finally {
    await s.close();
    setServers(reg.dir, entries);
  }
});
