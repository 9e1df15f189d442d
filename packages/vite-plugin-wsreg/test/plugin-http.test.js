// The plugin in real Vite servers — `createServer` (dev) and `preview` — over
// real sockets: the API answers equal the shared vectors, filters, the Host
// and Origin guard, the event stream and its pushes, SIGKILLed servers
// vanishing, corrupt entry files and the legacy file, and a refused registry
// directory. Waits are for events (a push, a second stream), never sleeps.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openEventStream, request } from './helpers/http-client.js';
import {
  listeningPorts,
  ownEntry,
  register,
  setServers,
  spawnListener,
  startTimeOf,
  tempRegistry,
  unregister,
  writeFileAtomic,
} from './helpers/registry-writer.js';
import { canonicalKeysOf, contextOf, layOut, loadVectors, unprobed } from './helpers/vectors.js';
import { makeSite, startVite } from './helpers/vite-servers.js';

const vectors = loadVectors();
// Ports this process listens on: readers list a local entry only while its process does.
const [portA, portB, portC, portNew, portX, portY] = await listeningPorts(6);
const MODES = /** @type {const} */ (['dev', 'preview']);

/** @param {unknown} doc */
const ids = (doc) => /** @type {{ servers: { id: string }[] }} */ (doc).servers.map((s) => s.id);

for (const mode of MODES) {
  describe(`vite ${mode}: every vector over GET and SSE`, () => {
    const site = makeSite();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-vec-http-'));
    after(() => {
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    for (const v of vectors) {
      test(v.name, async () => {
        const { registry } = layOut(v, tmp);
        const server = await startVite(mode, { root: site, plugin: { registry, context: contextOf(v.case) } });
        try {
          const res = await request(`${server.url}/api/registry`);
          assert.equal(res.status, 200, res.text.slice(0, 300));
          assert.match(String(res.headers['content-type']), /^application\/json/);
          assert.equal(res.headers['access-control-allow-origin'], undefined);
          for (const s of res.json.servers) assert.deepEqual(Object.keys(s), canonicalKeysOf(s));
          assert.deepEqual(res.json, unprobed(v.expected), 'nobody subscribed yet: nothing probed');
          const stream = await openEventStream(`${server.url}/api/registry/events`);
          try {
            assert.equal(stream.status, 200);
            assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
            const first = await stream.next();
            assert.equal(first.event, 'servers');
            assert.equal(first.data, res.text, 'the stream and GET send the same text');
          } finally {
            stream.close();
          }
        } finally {
          await server.close();
        }
      });
    }
  });

  describe(`vite ${mode}: the live registry of this machine`, () => {
    const site = makeSite();
    const reg = tempRegistry('wsreg-live-http-');
    /** @type {import('./helpers/vite-servers.js').Started} */
    let server;
    const at = (/** @type {number} */ s) => `2026-01-01T00:00:0${s}.000Z`;
    const entries = [
      ownEntry({ id: 'echo-a', kind: 'echo', project: 'p1', port: portA, name: '<img src=x onerror=alert(1)>', startedAt: at(1) }),
      ownEntry({ id: 'yjs-b', kind: 'yjs', project: 'p2', port: portB, startedAt: at(2) }),
      ownEntry({ id: 'mcp-c', kind: 'mcp', project: 'p1', port: portC, startedAt: at(3) }),
    ];
    before(async () => {
      setServers(reg.dir, entries);
      server = await startVite(mode, {
        root: site,
        // These tests count the pushes of list changes; health has tests of its own.
        plugin: { registry: reg.dir, keepAliveMs: 200, healthInterval: 0 },
        http: { allowedHosts: ['.allowed.test'], cors: { origin: ['https://allowed.example'] } },
      });
    });
    after(async () => {
      await server.close();
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(reg.root, { recursive: true, force: true });
    });

    test('GET lists the live entries in canonical form, ordered by startedAt', async () => {
      const res = await request(`${server.url}/api/registry`);
      assert.equal(res.status, 200);
      assert.deepEqual(ids(res.json), ['echo-a', 'yjs-b', 'mcp-c']);
      assert.equal(res.json.version, 1);
      assert.deepEqual(Object.keys(res.json.servers[0]), canonicalKeysOf(res.json.servers[0]));
      assert.deepEqual(res.json.servers[0].health, { state: 'unknown', checkedAt: null, latencyMs: null });
      assert.equal(res.json.servers[0].name, '<img src=x onerror=alert(1)>');
      assert.equal(res.headers['cache-control'], 'no-store');
    });

    test('filters: ?project=, ?kind=, both, and no match', async () => {
      const get = async (/** @type {string} */ q) => ids((await request(`${server.url}/api/registry?${q}`)).json);
      assert.deepEqual(await get('project=p1'), ['echo-a', 'mcp-c']);
      assert.deepEqual(await get('kind=yjs'), ['yjs-b']);
      assert.deepEqual(await get('project=p1&kind=mcp'), ['mcp-c']);
      assert.deepEqual(await get('project=nope'), []);
      assert.deepEqual(await get('project=&kind='), ['echo-a', 'yjs-b', 'mcp-c']);
    });

    test('a foreign Host is refused with 403 JSON (DNS rebinding)', async () => {
      // An IP address passes Vite's own host check; only the plugin's stops it.
      for (const host of ['10.1.2.3', `10.1.2.3:${server.port}`, 'evil.example']) {
        const res = await request(`${server.url}/api/registry`, { headers: { Host: host } });
        assert.equal(res.status, 403, host);
        if (host.startsWith('10.')) {
          assert.match(String(res.headers['content-type']), /^application\/json/);
          assert.match(res.json.error, /Host/);
        }
        const sse = await request(`${server.url}/api/registry/events`, { headers: { Host: host } });
        assert.equal(sse.status, 403, host);
      }
    });

    test('loopback names and allowedHosts are accepted as Host', async () => {
      for (const host of [`localhost:${server.port}`, `app.localhost:${server.port}`, `127.0.0.1:${server.port}`, `[::1]:${server.port}`, 'app.allowed.test', 'allowed.test']) {
        const res = await request(`${server.url}/api/registry`, { headers: { Host: host } });
        assert.equal(res.status, 200, `${host}: ${res.text}`);
      }
    });

    test('a cross-site Origin is refused with 403 and no CORS header; never *', async () => {
      for (const origin of ['https://evil.example', 'null', `http://10.1.2.3:${server.port}`]) {
        for (const route of ['/api/registry', '/api/registry/events']) {
          const res = await request(`${server.url}${route}`, { headers: { Origin: origin } });
          assert.equal(res.status, 403, `${origin} ${route}`);
          assert.match(res.json.error, /Origin/);
          assert.equal(res.headers['access-control-allow-origin'], undefined);
        }
      }
    });

    test('a cross-site request without Origin (Sec-Fetch-Site: cross-site) is refused', async () => {
      const res = await request(`${server.url}/api/registry`, { headers: { 'Sec-Fetch-Site': 'cross-site' } });
      assert.equal(res.status, 403);
      assert.match(res.json.error, /cross-site/);
      for (const site of ['same-origin', 'same-site', 'none']) {
        assert.equal((await request(`${server.url}/api/registry`, { headers: { 'Sec-Fetch-Site': site } })).status, 200, site);
      }
    });

    test('same-origin, loopback and cors-allowed Origins are answered, echoed exactly', async () => {
      for (const origin of [server.url, 'http://localhost:3000', 'https://app.localhost', 'https://allowed.example']) {
        const res = await request(`${server.url}/api/registry`, { headers: { Origin: origin } });
        assert.equal(res.status, 200, origin);
        assert.equal(res.headers['access-control-allow-origin'], origin);
        assert.match(String(res.headers.vary), /Origin/);
      }
    });

    test('unknown sub-route → 404 JSON; POST → 405 JSON', async () => {
      const nf = await request(`${server.url}/api/registry/nope`);
      assert.equal(nf.status, 404);
      assert.ok(nf.json.error);
      const post = await request(`${server.url}/api/registry`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.ok(post.json.error);
      const other = await request(`${server.url}/index.html`);
      assert.equal(other.status, 200);
      assert.match(other.text, /wsreg test/);
    });

    test('SSE: the list on connect, a push within milliseconds of each change, keep-alive comments', async () => {
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        assert.deepEqual(ids(JSON.parse((await stream.next()).data)), ['echo-a', 'yjs-b', 'mcp-c']);
        const t0 = performance.now();
        register(reg.dir, ownEntry({ id: 'echo-new', port: portNew, startedAt: at(4) }));
        const pushed = await stream.next({ timeoutMs: 3000 });
        const ms = pushed.at - t0;
        assert.equal(pushed.event, 'servers');
        assert.deepEqual(ids(JSON.parse(pushed.data)), ['echo-a', 'yjs-b', 'mcp-c', 'echo-new']);
        console.log(`${mode}: registry change → SSE push in ${ms.toFixed(1)} ms`);
        assert.ok(ms < 400, `push took ${ms} ms: the directory watch did not fire`);

        unregister(reg.dir, 'echo-new');
        unregister(reg.dir, 'echo-a');
        assert.deepEqual(ids(JSON.parse((await stream.next({ timeoutMs: 3000, accept: (e) => !e.data.includes('echo-new') })).data)).slice(-2), ['yjs-b', 'mcp-c']);
        setServers(reg.dir, entries);
        await stream.next({ timeoutMs: 3000, accept: (e) => ids(JSON.parse(e.data)).length === 3 });
        await stream.nextComment({ timeoutMs: 3000 });
        assert.ok(stream.comments.includes(': keep-alive'), `comments: ${stream.comments.join(',')}`);
      } finally {
        stream.close();
      }
    });

    test('SSE with a filter only sends when the filtered list changes', async () => {
      const filtered = await openEventStream(`${server.url}/api/registry/events?kind=yjs`);
      const all = await openEventStream(`${server.url}/api/registry/events`);
      try {
        assert.deepEqual(ids(JSON.parse((await filtered.next()).data)), ['yjs-b']);
        await all.next();
        // An echo server comes: the unfiltered stream shows it was seen; the yjs list is unchanged …
        register(reg.dir, ownEntry({ id: 'echo-x', port: portX, startedAt: at(5) }));
        await all.next({ timeoutMs: 3000, accept: (e) => ids(JSON.parse(e.data)).includes('echo-x') });
        // … then a yjs server: the next filtered event is the one with it.
        register(reg.dir, ownEntry({ id: 'yjs-y', kind: 'yjs', port: portY, startedAt: at(6) }));
        const e = await filtered.next({ timeoutMs: 3000 });
        assert.deepEqual(ids(JSON.parse(e.data)), ['yjs-b', 'yjs-y']);
      } finally {
        filtered.close();
        all.close();
        setServers(reg.dir, entries);
      }
    });

    test('a SIGKILLed server disappears by liveness alone (no file change)', { skip: process.platform !== 'linux' }, async () => {
      const { child, pid, port } = await spawnListener();
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        await stream.next();
        register(reg.dir, { ...ownEntry({ id: 'doomed', port, startedAt: at(7) }), pid, pidStartTime: startTimeOf(pid) });
        await stream.next({ timeoutMs: 3000, accept: (e) => ids(JSON.parse(e.data)).includes('doomed') });
        const t0 = performance.now();
        child.kill('SIGKILL');
        const gone = await stream.next({ timeoutMs: 3000 });
        const ms = gone.at - t0;
        assert.deepEqual(ids(JSON.parse(gone.data)), ['echo-a', 'yjs-b', 'mcp-c']);
        console.log(`${mode}: SIGKILL → SSE push without it in ${ms.toFixed(0)} ms`);
        assert.ok(ms < 1500, `took ${ms} ms`);
      } finally {
        stream.close();
        child.kill('SIGKILL');
        setServers(reg.dir, entries);
      }
    });

    test('a corrupt entry file hides that entry only, with a warning; the legacy file is merged, a bad one only warned of', async () => {
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      const torn = path.join(reg.dir, 'yjs-b.json');
      try {
        assert.equal(ids(JSON.parse((await stream.next()).data)).length, 3);
        writeFileAtomic(torn, '{"version":2,"id":"yjs-b","servers":[');
        assert.deepEqual(ids(JSON.parse((await stream.next({ timeoutMs: 3000 })).data)), ['echo-a', 'mcp-c']);
        const res = await request(`${server.url}/api/registry`);
        assert.equal(res.status, 200);
        assert.deepEqual(ids(res.json), ['echo-a', 'mcp-c']);
        assert.ok(server.warnings.some((w) => w.includes(torn) && /not JSON/.test(w)), server.warnings.join('\n'));
        // The reader never writes: the corrupt file is left as it was.
        assert.equal(fs.readFileSync(torn, 'utf8'), '{"version":2,"id":"yjs-b","servers":[');

        writeFileAtomic(reg.legacyFile, { version: 1, servers: [ownEntry({ id: 'old', startedAt: at(0) }), ownEntry({ id: 'mcp-c', port: 1 })] });
        const merged = JSON.parse((await stream.next({ timeoutMs: 3000 })).data);
        assert.deepEqual(ids(merged), ['old', 'echo-a', 'mcp-c']);
        assert.equal(merged.servers[2].port, portC, 'the directory wins');

        writeFileAtomic(reg.legacyFile, { version: 2, servers: [ownEntry({ id: 'old' })] });
        const err = await stream.next({ timeoutMs: 3000 });
        assert.equal(err.event, 'servers');
        assert.deepEqual(ids(JSON.parse(err.data)), ['echo-a', 'mcp-c']);
        assert.ok(server.warnings.some((w) => w.includes(reg.legacyFile) && /version 2/.test(w)), server.warnings.join('\n'));
      } finally {
        fs.rmSync(reg.legacyFile, { force: true });
        setServers(reg.dir, entries);
      }
      try {
        const back = await stream.next({ timeoutMs: 3000, accept: (e) => ids(JSON.parse(e.data)).length === 3 });
        assert.equal(back.event, 'servers');
      } finally {
        stream.close();
      }
    });
  });

  describe(`vite ${mode}: where the registry is`, () => {
    const site = makeSite();
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-where-'));
    after(() => {
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    test('a registry directory that is a symlink is refused: 500, registry-error, a warning naming it; then back', async () => {
      const dir = path.join(tmp, `${mode}-linked`);
      const real = path.join(tmp, `${mode}-real`);
      fs.mkdirSync(real, { mode: 0o700 });
      register(real, ownEntry({ id: 'behind-link' }));
      fs.symlinkSync(real, dir);
      const s = await startVite(mode, { root: site, plugin: { registry: dir } });
      const stream = await openEventStream(`${s.url}/api/registry/events`);
      try {
        const res = await request(`${s.url}/api/registry`);
        assert.equal(res.status, 500);
        assert.match(res.json.error, /symlink/);
        assert.ok(s.warnings.some((w) => w.includes('symlink') && w.includes(dir)));
        const first = await stream.next();
        assert.equal(first.event, 'registry-error');
        assert.match(JSON.parse(first.data).error, /symlink/);
        // A real directory takes the symlink's place: the parent's watch sees it.
        fs.rmSync(dir);
        fs.renameSync(real, dir);
        const back = await stream.next({ timeoutMs: 3000 });
        assert.equal(back.event, 'servers');
        assert.deepEqual(ids(JSON.parse(back.data)), ['behind-link']);
      } finally {
        stream.close();
        await s.close();
      }
    });

    test('the registry directory and its parent may not exist yet; the list appears when they do', async () => {
      const dir = path.join(tmp, `${mode}-later`, 'servers');
      const s = await startVite(mode, { root: site, plugin: { registry: dir } });
      try {
        const stream = await openEventStream(`${s.url}/api/registry/events`);
        try {
          assert.deepEqual(JSON.parse((await stream.next()).data), { version: 1, servers: [] });
          fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
          register(dir, ownEntry({ id: 'arrived' }));
          const e = await stream.next({ timeoutMs: 3000 });
          assert.deepEqual(ids(JSON.parse(e.data)), ['arrived']);
        } finally {
          stream.close();
        }
      } finally {
        await s.close();
      }
    });

    test('an old setting naming servers.json reads the directory beside it, and the legacy file', async () => {
      const reg = tempRegistry('wsreg-oldpath-');
      register(reg.dir, ownEntry({ id: 'new-style', startedAt: '2026-01-01T00:00:01Z' }));
      writeFileAtomic(reg.legacyFile, { version: 1, servers: [ownEntry({ id: 'old-style', startedAt: '2026-01-01T00:00:00Z' })] });
      const s = await startVite(mode, { root: site, plugin: { registry: reg.legacyFile } });
      try {
        assert.deepEqual(ids((await request(`${s.url}/api/registry`)).json), ['old-style', 'new-style']);
      } finally {
        await s.close();
        fs.rmSync(reg.root, { recursive: true, force: true });
      }
    });
  });

  describe(`vite ${mode}: CORS settings`, () => {
    const site = makeSite();
    const reg = tempRegistry('wsreg-cors-');
    before(() => register(reg.dir, ownEntry({ id: 'c1' })));
    after(() => {
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(reg.root, { recursive: true, force: true });
    });

    test('cors: true lets any origin read, echoed back, never *', async () => {
      const s = await startVite(mode, { root: site, plugin: { registry: reg.dir }, http: { cors: true } });
      try {
        const res = await request(`${s.url}/api/registry`, { headers: { Origin: 'https://anywhere.example' } });
        assert.equal(res.status, 200);
        assert.equal(res.headers['access-control-allow-origin'], 'https://anywhere.example');
        // Vite itself answers * for its other files with cors: true; not the registry.
        const plain = await request(`${s.url}/api/registry`);
        assert.notEqual(plain.headers['access-control-allow-origin'], '*');
      } finally {
        await s.close();
      }
    });

    test('cors: false still lets loopback origins in, and keeps others out', async () => {
      const s = await startVite(mode, { root: site, plugin: { registry: reg.dir }, http: { cors: false } });
      try {
        assert.equal((await request(`${s.url}/api/registry`, { headers: { Origin: 'http://localhost:5173' } })).status, 200);
        assert.equal((await request(`${s.url}/api/registry`, { headers: { Origin: 'https://evil.example' } })).status, 403);
      } finally {
        await s.close();
      }
    });

    test('cors origin as a RegExp and as a function', async () => {
      for (const origin of [/^https:\/\/ok\.example$/, (/** @type {string | undefined} */ o, /** @type {(e: Error | null, allow: boolean) => void} */ cb) => cb(null, o === 'https://ok.example')]) {
        const s = await startVite(mode, {
          root: site,
          plugin: { registry: reg.dir },
          // @ts-expect-error Vite's type of the callback's error is stricter than the cors package's
          http: { cors: { origin } },
        });
        try {
          assert.equal((await request(`${s.url}/api/registry`, { headers: { Origin: 'https://ok.example' } })).status, 200);
          assert.equal((await request(`${s.url}/api/registry`, { headers: { Origin: 'https://nok.example' } })).status, 403);
        } finally {
          await s.close();
        }
      }
    });

    test('the route and the project/kind options', async () => {
      const s = await startVite(mode, { root: site, plugin: { registry: reg.dir, route: '/wsreg', kind: 'echo', project: 'nope' } });
      try {
        assert.deepEqual((await request(`${s.url}/wsreg`)).json, { version: 1, servers: [] });
        const stream = await openEventStream(`${s.url}/wsreg/events`);
        stream.close();
        assert.equal(stream.status, 200);
      } finally {
        await s.close();
      }
      const s2 = await startVite(mode, { root: site, plugin: { registry: reg.dir, route: '/wsreg/', kind: 'echo' } });
      try {
        assert.deepEqual(ids((await request(`${s2.url}/wsreg`)).json), ['c1']);
        assert.deepEqual(ids((await request(`${s2.url}/wsreg?kind=yjs`)).json), []);
      } finally {
        await s2.close();
      }
    });

    test('WSREG_REGISTRY is the default registry directory', async () => {
      const saved = process.env.WSREG_REGISTRY;
      process.env.WSREG_REGISTRY = reg.dir;
      try {
        const s = await startVite(mode, { root: site });
        try {
          assert.deepEqual(ids((await request(`${s.url}/api/registry`)).json), ['c1']);
        } finally {
          await s.close();
        }
      } finally {
        if (saved === undefined) delete process.env.WSREG_REGISTRY;
        else process.env.WSREG_REGISTRY = saved;
      }
    });
  });
}
