// The plugin under each Vite major of its peer range (6, 7 and 8, installed
// side by side as vite6, vite7 and vite): GET, SSE push, the Host and Origin
// guard, and the HMR round trip in dev (an HMR page is a subscriber of the health probes).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { openEventStream, request } from './helpers/http-client.js';
import { listeningPorts, ownEntry, setServers, tempRegistry } from './helpers/registry-writer.js';
import { makeSite, startVite } from './helpers/vite-servers.js';

// Ports this process listens on (and closes each connection to): readers list a local
// entry only while its process listens on its port.
const [portA, portB] = await listeningPorts(2);

const majors = [
  { name: 'vite6', load: () => import('vite6') },
  { name: 'vite7', load: () => import('vite7') },
  { name: 'vite', load: () => import('vite') },
];

for (const major of majors) {
  describe(`${major.name}`, () => {
    const site = makeSite();
    const reg = tempRegistry(`wsreg-${major.name}-`);
    const entries = [
      ownEntry({ id: 'a', port: portA, startedAt: '2026-01-01T00:00:01Z' }),
      ownEntry({ id: 'b', kind: 'yjs', port: portB, startedAt: '2026-01-01T00:00:02Z' }),
    ];
    /** @type {any} */
    let vite;
    before(async () => {
      vite = await major.load();
      setServers(reg.dir, entries);
    });
    after(() => {
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(reg.root, { recursive: true, force: true });
    });

    for (const mode of /** @type {const} */ (['dev', 'preview'])) {
      test(`${mode}: GET, filters, guard, SSE push (Vite ${major.name})`, async () => {
        setServers(reg.dir, entries);
        // healthInterval 0: the next event is the list's change, not a probe's finding.
        const s = await startVite(mode, { root: site, plugin: { registry: reg.dir, healthInterval: 0 } }, vite);
        try {
          const res = await request(`${s.url}/api/registry?kind=yjs`);
          assert.equal(res.status, 200);
          assert.deepEqual(res.json.servers.map((/** @type {any} */ x) => x.id), ['b']);
          assert.equal((await request(`${s.url}/api/registry`, { headers: { Host: '10.9.8.7' } })).status, 403);
          const cross = await request(`${s.url}/api/registry`, { headers: { Origin: 'https://evil.example' } });
          assert.equal(cross.status, 403);
          assert.equal(cross.headers['access-control-allow-origin'], undefined);
          const stream = await openEventStream(`${s.url}/api/registry/events`);
          try {
            assert.equal(JSON.parse((await stream.next()).data).servers.length, 2);
            setServers(reg.dir, entries.slice(1));
            assert.equal(JSON.parse((await stream.next({ timeoutMs: 3000 })).data).servers.length, 1);
          } finally {
            stream.close();
          }
        } finally {
          await s.close();
        }
      });
    }

    test(`dev: HMR wsreg:get-servers → wsreg:servers, and pushes (Vite ${major.name})`, async () => {
      setServers(reg.dir, entries);
      const s = await startVite('dev', { root: site, plugin: { registry: reg.dir } }, vite);
      try {
        const token = /** @type {any} */ (s.dev?.config).webSocketToken ?? '';
        const ws = new WebSocket(`ws://127.0.0.1:${s.port}/?token=${encodeURIComponent(token)}`, 'vite-hmr');
        /** @type {string[]} ids of each wsreg:servers event received */
        const got = [];
        /** @type {string[]} the health states of each event, joined */
        const states = [];
        /** @type {(() => void) | null} */
        let wake = null;
        ws.on('message', (d) => {
          const m = JSON.parse(d.toString());
          if (m.type !== 'custom' || m.event !== 'wsreg:servers') return;
          got.push(JSON.stringify(m.data.servers.map((/** @type {any} */ x) => x.id)));
          states.push(m.data.servers.map((/** @type {any} */ x) => x.health.state).join());
          wake?.();
        });
        await new Promise((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
        ws.send(JSON.stringify({ type: 'custom', event: 'wsreg:get-servers', data: {} }));
        /**
         * Waits for a wsreg:servers event with these ids (the timeout only bounds a failure).
         * @param {string[]} want
         */
        const until = (want) =>
          new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no wsreg:servers with ${want}: got ${got.join(' ')}`)), 3000);
            const check = () => {
              if (!got.includes(JSON.stringify(want))) return;
              clearTimeout(timer);
              wake = null;
              resolve(undefined);
            };
            wake = check;
            check();
          });
        await until(['a', 'b']);
        setServers(reg.dir, entries.slice(0, 1));
        await until(['a']);
        // The connected page is a subscriber: its servers are probed (their listeners close every connection).
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`never probed: ${states.join(' ')}`)), 5000);
          wake = () => {
            if (states.at(-1) !== 'unresponsive') return;
            clearTimeout(timer);
            resolve(undefined);
          };
          wake();
        });
        ws.close();
      } finally {
        await s.close();
      }
    });
  });
}
