// The HMR channel of a real Vite dev server: a WebSocket client speaking
// Vite's HMR protocol (as the page's client does) asks for the list with
// `wsreg:get-servers`, gets `wsreg:servers`, and is pushed each change.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { ownEntry, tempRegistry, writeRegistryAtomic } from './helpers/registry-writer.js';
import { makeSite, startVite } from './helpers/vite-servers.js';

const site = makeSite();
const { dir, file } = tempRegistry('wsreg-hmr-');
const entries = [ownEntry({ id: 'echo-1', port: 42001 }), ownEntry({ id: 'yjs-1', kind: 'yjs', port: 42002 })];

/** @type {import('./helpers/vite-servers.js').Started} */
let server;
before(async () => {
  writeRegistryAtomic(file, { version: 1, servers: entries });
  server = await startVite('dev', { root: site, plugin: { registry: file } });
});
after(async () => {
  await server.close();
  fs.rmSync(site, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
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

test('every change is pushed as wsreg:servers to every page; a bad version as wsreg:registry-error', async () => {
  const a = await hmrClient();
  const b = await hmrClient();
  try {
    const t0 = performance.now();
    writeRegistryAtomic(file, { version: 1, servers: [...entries, ownEntry({ id: 'echo-2', port: 42003 })] });
    const pa = await a.next('wsreg:servers');
    const pb = await b.next('wsreg:servers');
    assert.deepEqual(pa.data.servers.map((/** @type {any} */ s) => s.id), ['echo-1', 'yjs-1', 'echo-2']);
    assert.deepEqual(pb.data, pa.data);
    console.log(`registry change → HMR wsreg:servers in ${(pa.at - t0).toFixed(1)} ms`);

    writeRegistryAtomic(file, { version: 7, servers: [] });
    const err = await a.next('wsreg:registry-error');
    assert.match(err.data.error, /version 7/);
    a.send('wsreg:get-servers');
    assert.match((await a.next('wsreg:registry-error')).data.error, /version 7/);

    writeRegistryAtomic(file, { version: 1, servers: entries });
    assert.equal((await a.next('wsreg:servers')).data.servers.length, 2);
  } finally {
    a.close();
    b.close();
  }
});

test('hmr: false sends nothing over HMR', async () => {
  const s = await startVite('dev', { root: site, plugin: { registry: file, hmr: false } });
  try {
    const token = /** @type {{ webSocketToken?: string }} */ (s.dev?.config).webSocketToken;
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/?token=${encodeURIComponent(token ?? '')}`, 'vite-hmr');
    /** @type {string[]} */
    const events = [];
    ws.on('message', (d) => events.push(JSON.parse(d.toString()).event));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'custom', event: 'wsreg:get-servers', data: {} }));
    writeRegistryAtomic(file, { version: 1, servers: entries.slice(0, 1) });
    await new Promise((r) => setTimeout(r, 300));
    ws.close();
    assert.ok(!events.includes('wsreg:servers'), events.join(','));
  } finally {
    await s.close();
    writeRegistryAtomic(file, { version: 1, servers: entries });
  }
});
