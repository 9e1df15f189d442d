// The plugin in real Vite servers — `createServer` (dev) and `preview` — over
// real sockets: the API answers equal the shared vectors, filters, the Host
// and Origin guard, the event stream and its pushes, SIGKILLed servers
// vanishing, and the registry's error states.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { processTableFromMap } from '../src/registry.js';
import { openEventStream, request } from './helpers/http-client.js';
import { ownEntry, startTimeOf, tempRegistry, writeRegistryAtomic } from './helpers/registry-writer.js';
import { CANONICAL_KEYS, loadVectors } from './helpers/vectors.js';
import { makeSite, startVite } from './helpers/vite-servers.js';

const vectors = loadVectors();
const MODES = /** @type {const} */ (['dev', 'preview']);

/** @param {unknown} doc */
const ids = (doc) => /** @type {{ servers: { id: string }[] }} */ (doc).servers.map((s) => s.id);

for (const mode of MODES) {
  describe(`vite ${mode}: every vector over GET and SSE`, () => {
    const site = makeSite();
    const reg = tempRegistry('wsreg-vec-http-');
    /** @type {import('./helpers/vectors.js').Vector} */
    let current = vectors[0];
    /** @type {import('../index.js').ReaderContext} */
    const context = {
      get hostname() {
        return current.case.hostname;
      },
      now: () => Date.parse(current.case.now),
      processes: { lookup: (pid) => processTableFromMap(current.case.processes).lookup(pid) },
    };
    /** @type {import('./helpers/vite-servers.js').Started} */
    let server;
    before(async () => {
      server = await startVite(mode, { root: site, plugin: { registry: reg.file, context } });
    });
    after(async () => {
      await server.close();
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(reg.dir, { recursive: true, force: true });
    });

    for (const v of vectors) {
      test(v.name, async () => {
        current = v;
        if (v.bytes === null) fs.rmSync(reg.file, { force: true });
        else writeRegistryAtomic(reg.file, v.bytes);

        const res = await request(`${server.url}/api/registry`);
        assert.match(String(res.headers['content-type']), /^application\/json/);
        assert.equal(res.headers['access-control-allow-origin'], undefined);
        const stream = await openEventStream(`${server.url}/api/registry/events`);
        try {
          assert.equal(stream.status, 200);
          assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
          const first = await stream.next();
          if (v.case.expectError) {
            assert.equal(res.status, 500);
            assert.match(res.json.error, /version/);
            assert.equal(first.event, 'registry-error');
            assert.match(JSON.parse(first.data).error, /version/);
          } else {
            assert.equal(res.status, 200, res.text.slice(0, 300));
            for (const s of res.json.servers) assert.deepEqual(Object.keys(s), CANONICAL_KEYS);
            assert.deepEqual(res.json, v.expected);
            assert.equal(first.event, 'servers');
            assert.deepEqual(JSON.parse(first.data), v.expected);
          }
        } finally {
          stream.close();
        }
      });
    }
  });

  describe(`vite ${mode}: the live registry of this machine`, () => {
    const site = makeSite();
    const reg = tempRegistry('wsreg-live-http-');
    /** @type {import('./helpers/vite-servers.js').Started} */
    let server;
    const entries = [
      ownEntry({ id: 'echo-a', kind: 'echo', project: 'p1', port: 41001, name: '<img src=x onerror=alert(1)>' }),
      ownEntry({ id: 'yjs-b', kind: 'yjs', project: 'p2', port: 41002 }),
      ownEntry({ id: 'mcp-c', kind: 'mcp', project: 'p1', port: 41003 }),
    ];
    before(async () => {
      writeRegistryAtomic(reg.file, { version: 1, servers: entries });
      server = await startVite(mode, {
        root: site,
        plugin: { registry: reg.file, keepAliveMs: 200 },
        http: { allowedHosts: ['.allowed.test'], cors: { origin: ['https://allowed.example'] } },
      });
    });
    after(async () => {
      await server.close();
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(reg.dir, { recursive: true, force: true });
    });
    const reset = () => writeRegistryAtomic(reg.file, { version: 1, servers: entries });

    test('GET lists the live entries in canonical form and file order', async () => {
      reset();
      const res = await request(`${server.url}/api/registry`);
      assert.equal(res.status, 200);
      assert.deepEqual(ids(res.json), ['echo-a', 'yjs-b', 'mcp-c']);
      assert.equal(res.json.version, 1);
      assert.deepEqual(Object.keys(res.json.servers[0]), CANONICAL_KEYS);
      assert.equal(res.json.servers[0].name, '<img src=x onerror=alert(1)>');
      assert.equal(res.headers['cache-control'], 'no-store');
    });

    test('filters: ?project=, ?kind=, both, and no match', async () => {
      reset();
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
      reset();
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        assert.deepEqual(ids(JSON.parse((await stream.next()).data)), ['echo-a', 'yjs-b', 'mcp-c']);
        const added = ownEntry({ id: 'echo-new', port: 41009 });
        const t0 = performance.now();
        writeRegistryAtomic(reg.file, { version: 1, servers: [...entries, added] });
        const pushed = await stream.next({ timeoutMs: 3000 });
        const ms = pushed.at - t0;
        assert.equal(pushed.event, 'servers');
        assert.deepEqual(ids(JSON.parse(pushed.data)), ['echo-a', 'yjs-b', 'mcp-c', 'echo-new']);
        console.log(`${mode}: registry change → SSE push in ${ms.toFixed(1)} ms`);
        assert.ok(ms < 400, `push took ${ms} ms: the directory watch did not fire`);

        writeRegistryAtomic(reg.file, { version: 1, servers: entries.slice(1) });
        assert.deepEqual(ids(JSON.parse((await stream.next({ timeoutMs: 3000 })).data)), ['yjs-b', 'mcp-c']);
        await new Promise((r) => setTimeout(r, 450));
        assert.ok(stream.comments.includes(': keep-alive'), `comments: ${stream.comments.join(',')}`);
      } finally {
        stream.close();
      }
    });

    test('SSE with a filter only sends when the filtered list changes', async () => {
      reset();
      const stream = await openEventStream(`${server.url}/api/registry/events?kind=yjs`);
      try {
        assert.deepEqual(ids(JSON.parse((await stream.next()).data)), ['yjs-b']);
        // An echo server comes: the yjs list is unchanged, so nothing is sent …
        writeRegistryAtomic(reg.file, { version: 1, servers: [...entries, ownEntry({ id: 'echo-x', port: 41010 })] });
        await new Promise((r) => setTimeout(r, 300));
        // … then a yjs server: the next event is the one with it.
        writeRegistryAtomic(reg.file, {
          version: 1,
          servers: [...entries, ownEntry({ id: 'echo-x', port: 41010 }), ownEntry({ id: 'yjs-y', kind: 'yjs', port: 41011 })],
        });
        const e = await stream.next({ timeoutMs: 3000 });
        assert.deepEqual(ids(JSON.parse(e.data)), ['yjs-b', 'yjs-y']);
      } finally {
        stream.close();
      }
    });

    test('a SIGKILLed server disappears by liveness alone (no file change)', { skip: process.platform !== 'linux' }, async () => {
      const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      const pid = /** @type {number} */ (child.pid);
      try {
        let start = startTimeOf(pid);
        for (let i = 0; start === null && i < 50; i++) {
          await new Promise((r) => setTimeout(r, 10));
          start = startTimeOf(pid);
        }
        writeRegistryAtomic(reg.file, {
          version: 1,
          servers: [...entries, { ...ownEntry({ id: 'doomed', port: 41012 }), pid, pidStartTime: start }],
        });
        const stream = await openEventStream(`${server.url}/api/registry/events`);
        try {
          const first = await stream.next();
          assert.ok(ids(JSON.parse(first.data)).includes('doomed'));
          const t0 = performance.now();
          child.kill('SIGKILL');
          const gone = await stream.next({ timeoutMs: 3000 });
          const ms = gone.at - t0;
          assert.deepEqual(ids(JSON.parse(gone.data)), ['echo-a', 'yjs-b', 'mcp-c']);
          console.log(`${mode}: SIGKILL → SSE push without it in ${ms.toFixed(0)} ms`);
          assert.ok(ms < 1500, `took ${ms} ms`);
        } finally {
          stream.close();
        }
      } finally {
        child.kill('SIGKILL');
      }
    });

    test('corrupt file: no servers and a warning; unsupported version: 500 and registry-error; then back', async () => {
      reset();
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        assert.equal(ids(JSON.parse((await stream.next()).data)).length, 3);
        writeRegistryAtomic(reg.file, '{"version":1,"servers":[');
        assert.deepEqual(ids(JSON.parse((await stream.next({ timeoutMs: 3000 })).data)), []);
        const res = await request(`${server.url}/api/registry`);
        assert.equal(res.status, 200);
        assert.deepEqual(res.json, { version: 1, servers: [] });
        assert.ok(server.warnings.some((w) => /corrupt/.test(w)), server.warnings.join('\n'));
        // The reader never writes: the corrupt file is left as it was.
        assert.equal(fs.readFileSync(reg.file, 'utf8'), '{"version":1,"servers":[');

        writeRegistryAtomic(reg.file, { version: 2, servers: entries });
        const err = await stream.next({ timeoutMs: 3000 });
        assert.equal(err.event, 'registry-error');
        assert.match(JSON.parse(err.data).error, /version 2/);
        const res2 = await request(`${server.url}/api/registry`);
        assert.equal(res2.status, 500);
        assert.match(res2.json.error, /version/);

        reset();
        const back = await stream.next({ timeoutMs: 3000 });
        assert.equal(back.event, 'servers');
        assert.equal(ids(JSON.parse(back.data)).length, 3);
      } finally {
        stream.close();
      }
    });

    test('a registry file that is a symlink is refused: nothing shown, a warning names it', async () => {
      const real = path.join(reg.dir, 'elsewhere.json');
      writeRegistryAtomic(real, { version: 1, servers: entries });
      fs.rmSync(reg.file);
      fs.symlinkSync(real, reg.file);
      try {
        const res = await request(`${server.url}/api/registry`);
        assert.equal(res.status, 500);
        assert.match(res.json.error, /symlink/);
        assert.ok(server.warnings.some((w) => w.includes('symlink') && w.includes(reg.file)));
      } finally {
        fs.rmSync(reg.file);
        reset();
      }
      const res = await request(`${server.url}/api/registry`);
      assert.equal(res.status, 200);
      assert.equal(res.json.servers.length, 3);
    });

    test('the registry directory may not exist yet; the list appears when it does', async () => {
      const later = tempRegistry('wsreg-later-');
      fs.rmSync(later.dir, { recursive: true });
      const s2 = await startVite(mode, { root: site, plugin: { registry: later.file } });
      try {
        const stream = await openEventStream(`${s2.url}/api/registry/events`);
        try {
          assert.deepEqual(JSON.parse((await stream.next()).data), { version: 1, servers: [] });
          writeRegistryAtomic(later.file, { version: 1, servers: entries });
          const e = await stream.next({ timeoutMs: 3000 });
          assert.deepEqual(ids(JSON.parse(e.data)), ['echo-a', 'yjs-b', 'mcp-c']);
        } finally {
          stream.close();
        }
      } finally {
        await s2.close();
        fs.rmSync(later.dir, { recursive: true, force: true });
      }
    });
  });

  describe(`vite ${mode}: CORS settings`, () => {
    const site = makeSite();
    const reg = tempRegistry('wsreg-cors-');
    before(() => writeRegistryAtomic(reg.file, { version: 1, servers: [ownEntry({ id: 'c1' })] }));
    after(() => {
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(reg.dir, { recursive: true, force: true });
    });

    test('cors: true lets any origin read, echoed back, never *', async () => {
      const s = await startVite(mode, { root: site, plugin: { registry: reg.file }, http: { cors: true } });
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
      const s = await startVite(mode, { root: site, plugin: { registry: reg.file }, http: { cors: false } });
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
          plugin: { registry: reg.file },
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
      const s = await startVite(mode, { root: site, plugin: { registry: reg.file, route: '/wsreg', kind: 'echo', project: 'nope' } });
      try {
        assert.deepEqual((await request(`${s.url}/wsreg`)).json, { version: 1, servers: [] });
        const stream = await openEventStream(`${s.url}/wsreg/events`);
        stream.close();
        assert.equal(stream.status, 200);
      } finally {
        await s.close();
      }
      const s2 = await startVite(mode, { root: site, plugin: { registry: reg.file, route: '/wsreg/', kind: 'echo' } });
      try {
        assert.deepEqual(ids((await request(`${s2.url}/wsreg`)).json), ['c1']);
        assert.deepEqual(ids((await request(`${s2.url}/wsreg?kind=yjs`)).json), []);
      } finally {
        await s2.close();
      }
    });

    test('WSREG_REGISTRY is the default registry path', async () => {
      const saved = process.env.WSREG_REGISTRY;
      process.env.WSREG_REGISTRY = reg.file;
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
