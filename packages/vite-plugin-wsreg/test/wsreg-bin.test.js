// The plugin and the Rust `wsreg` binary on one registry directory: entries the
// binary writes (`wsreg register`, real `wsreg echo` processes) are served by
// the plugin exactly as `wsreg list --json` prints them, pushed over SSE when
// servers start and stop, and dropped when one is SIGKILLed. (The API adds each entry's
// probe result, `health`: `unknown` while nobody is subscribed.)
//
// Needs the binary: $WSREG_BIN or target/debug/wsreg (see helpers/wsreg-bin.js).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { openEventStream, request } from './helpers/http-client.js';
import { listeningPort, setServers, startTimeOf, tempRegistry } from './helpers/registry-writer.js';
import { makeSite, startVite } from './helpers/vite-servers.js';
import { unprobed } from './helpers/vectors.js';
import { requireWsreg, runWsreg, startWsregServer, WSREG_BIN } from './helpers/wsreg-bin.js';

/** @param {any} doc */
const ids = (doc) => doc.servers.map((/** @type {any} */ s) => s.id);

describe(`the plugin reads what the wsreg binary writes (${WSREG_BIN})`, () => {
  const site = makeSite();
  const reg = tempRegistry('wsreg-bin-');
  /** @type {import('./helpers/vite-servers.js').Started} */
  let dev;
  /** @type {import('./helpers/vite-servers.js').Started} */
  let prev;
  before(async () => {
    dev = await startVite('dev', { root: site, plugin: { registry: reg.dir } });
    prev = await startVite('preview', { root: site, plugin: { registry: reg.dir } });
  });
  after(async () => {
    await dev?.close();
    await prev?.close();
    fs.rmSync(site, { recursive: true, force: true });
    fs.rmSync(reg.root, { recursive: true, force: true });
  });

  test('wsreg register → GET /api/registry equals `wsreg list --json`, with and without filters', async () => {
    requireWsreg('register');
    const env = { WSREG_REGISTRY: reg.dir };
    const me = String(process.pid);
    const [p1, p2, p3] = (await Promise.all([listeningPort(), listeningPort(), listeningPort()])).map(String);
    runWsreg(['register', '--pid', me, '--port', p1, '--kind', 'echo', '--name', '<b>one</b> & “two”', '--project', 'alpha', '--meta', 'room="a"', '--meta', 'n=3'], env);
    runWsreg(['register', '--pid', me, '--port', p2, '--kind', 'yjs', '--project', 'beta', '--url', `ws://127.0.0.1:${p2}/doc`], env);
    runWsreg(['register', '--pid', me, '--port', p3, '--ttl', '600', '--session', 's-1'], env);
    const fromRust = JSON.parse(runWsreg(['list', '--json'], env));
    assert.equal(fromRust.servers.length, 3);
    for (const server of [dev, prev]) {
      const res = await request(`${server.url}/api/registry`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, unprobed(fromRust), `${server.mode} disagrees with wsreg list --json`);
      for (const [flag, value] of [['--project', 'alpha'], ['--kind', 'yjs']]) {
        const rust = JSON.parse(runWsreg(['list', '--json', flag, value], env));
        const js = (await request(`${server.url}/api/registry?${flag.slice(2)}=${value}`)).json;
        assert.deepEqual(js, unprobed(rust), `${server.mode} ${flag} ${value}`);
      }
    }
    const [one] = fromRust.servers;
    assert.equal(one.pid, process.pid);
    assert.equal(one.pidStartTime, startTimeOf(process.pid));
    assert.equal(one.name, '<b>one</b> & “two”');
    assert.deepEqual(one.meta, { room: 'a', n: 3 });
    setServers(reg.dir, []);
  });

  test('real `wsreg echo` processes: listed, echo, pushed on start, gone on SIGTERM and on SIGKILL', async () => {
    requireWsreg('echo');
    setServers(reg.dir, []);
    const a = await startWsregServer('echo', reg.dir, ['--name', 'echo a']);
    const b = await startWsregServer('echo', reg.dir);
    /** @type {Awaited<ReturnType<typeof startWsregServer>>[]} */
    const all = [a, b];
    try {
      const res = await request(`${dev.url}/api/registry`);
      assert.deepEqual(ids(res.json).sort(), [a.entry.id, b.entry.id].sort());
      for (const { child, entry } of [a, b]) {
        const s = res.json.servers.find((/** @type {any} */ x) => x.id === entry.id);
        assert.equal(s.kind, 'echo');
        assert.equal(s.pid, child.pid);
        assert.equal(s.pidStartTime, startTimeOf(/** @type {number} */ (child.pid)));
      }
      assert.deepEqual(res.json, unprobed(JSON.parse(runWsreg(['list', '--json'], { WSREG_REGISTRY: reg.dir }))));

      // Each echoes a frame back unchanged.
      for (const { entry } of [a, b]) {
        const ws = new WebSocket(entry.url);
        await new Promise((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        });
        const reply = new Promise((resolve) => ws.once('message', (d) => resolve(d.toString())));
        ws.send(`ping ${entry.id}`);
        assert.equal(await reply, `ping ${entry.id}`);
        ws.close();
      }

      const stream = await openEventStream(`${dev.url}/api/registry/events`);
      try {
        assert.equal(ids(JSON.parse((await stream.next()).data)).length, 2);
        const c = await startWsregServer('echo', reg.dir);
        all.push(c);
        const pushed = await stream.next({ timeoutMs: 5000, accept: (e) => ids(JSON.parse(e.data)).includes(c.entry.id) });
        console.log(`wsreg echo start → SSE push in ${(pushed.at - c.started).toFixed(0)} ms`);

        let t0 = performance.now();
        a.child.kill('SIGTERM');
        await stream.next({ timeoutMs: 5000, accept: (e) => !ids(JSON.parse(e.data)).includes(a.entry.id) });
        console.log(`wsreg echo SIGTERM → SSE push without it in ${(performance.now() - t0).toFixed(0)} ms`);
        assert.equal((/** @type {any} */ (await a.exited)).code, 0, a.stderr);

        t0 = performance.now();
        b.child.kill('SIGKILL');
        await stream.next({ timeoutMs: 3000, accept: (e) => !ids(JSON.parse(e.data)).includes(b.entry.id) });
        const ms = performance.now() - t0;
        console.log(`wsreg echo SIGKILL → SSE push without it in ${ms.toFixed(0)} ms`);
        assert.ok(ms < 1500, `${ms} ms`);
        assert.deepEqual(ids((await request(`${prev.url}/api/registry`)).json), [c.entry.id]);
      } finally {
        stream.close();
      }
    } finally {
      for (const p of all) p.child.kill('SIGKILL');
    }
  });
});
