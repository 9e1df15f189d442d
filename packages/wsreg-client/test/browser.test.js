// wsreg-client in real Chromium, loaded with no bundler: `vite preview` serves
// the library's files as they are (plain static files, as `wsreg serve` will)
// next to a page that imports them with a relative path; the plugin serves
// the registry; `ws` echo servers registered in a temp registry are the
// servers to connect to.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ownEntry, setServers, tempRegistry } from '../../vite-plugin-wsreg/test/helpers/registry-writer.js';
import { startVite } from '../../vite-plugin-wsreg/test/helpers/vite-servers.js';
import { launchChromium } from '../../../e2e/chromium.js';
import { startEcho, waitFor } from './helpers/echo.js';

const CLIENT_SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');

/** A site whose dist/ holds the page and a verbatim copy of the library. */
function makeClientSite() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-client-site-'));
  const dist = path.join(root, 'dist');
  fs.mkdirSync(path.join(dist, 'wsreg-client'), { recursive: true });
  for (const f of fs.readdirSync(CLIENT_SRC)) fs.copyFileSync(path.join(CLIENT_SRC, f), path.join(dist, 'wsreg-client', f));
  fs.writeFileSync(
    path.join(dist, 'index.html'),
    `<!doctype html><meta charset="utf-8"><title>client test</title>
<script type="module">
  import * as client from './wsreg-client/index.js';
  window.client = client;
  window.log = [];
  document.title = 'ready';
</script>\n`,
  );
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html>');
  return root;
}

/** A plugin that breaks the event stream (a proxy that cannot stream, say). */
const breakEvents = {
  name: 'break-events',
  /** @param {import('vite').PreviewServer} server */
  configurePreviewServer(server) {
    server.middlewares.use((req, res, next) => {
      if (!req.url?.startsWith('/api/registry/events')) return next();
      res.statusCode = 503;
      res.end('no streams here');
    });
  },
};

describe('wsreg-client in Chromium', () => {
  const root = makeClientSite();
  const { root: regRoot, dir: regDir } = tempRegistry('wsreg-client-reg-');
  /** @type {Awaited<ReturnType<typeof startEcho>>[]} */
  let echoes = [];
  /** @type {import('../../vite-plugin-wsreg/test/helpers/vite-servers.js').Started} */
  let server;
  /** @type {import('../../../e2e/chromium.js').Chromium} */
  let browser;
  /** @type {import('../index.js').ServerEntry[]} */
  let entries;

  before(async () => {
    echoes = await Promise.all([startEcho(), startEcho(), startEcho()]);
    entries = echoes.map((e, i) => /** @type {any} */ (ownEntry({ id: `echo-${i}`, port: e.port, project: i === 2 ? 'other' : 'main' })));
    setServers(regDir, entries);
    // healthInterval 0: the callbacks counted here are the list's changes, not probe findings.
    server = await startVite('preview', { root, plugin: { registry: regDir, healthInterval: 0 } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    for (const e of echoes) await e.kill();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(regRoot, { recursive: true, force: true });
  });

  /** @param {string} url */
  async function openPage(url) {
    const page = await browser.context.newPage();
    /** @type {string[]} */
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => document.title === 'ready');
    return { page, errors };
  }

  test('subscribe: the list over SSE at once, then each change', async () => {
    const { page, errors } = await openPage(`${server.url}/`);
    try {
      await page.evaluate(() => {
        const w = /** @type {any} */ (window);
        w.unsubscribe = w.client.subscribe((/** @type {any[]} */ servers, /** @type {any} */ info) =>
          w.log.push({ ids: servers.map((s) => s.id), info }),
        );
      });
      await page.waitForFunction(() => /** @type {any} */ (window).log.length >= 1);
      const first = await page.evaluate(() => /** @type {any} */ (window).log[0]);
      assert.deepEqual(first, { ids: ['echo-0', 'echo-1', 'echo-2'], info: { source: 'sse', error: null, stale: false } });

      setServers(regDir, entries.slice(0, 2));
      await page.waitForFunction(() => /** @type {any} */ (window).log.length >= 2, null, { timeout: 5000 });
      assert.deepEqual(await page.evaluate(() => /** @type {any} */ (window).log[1].ids), ['echo-0', 'echo-1']);

      // After unsubscribe, no more calls. A second subscriber, still subscribed, bounds
      // the check: once it has the change, the first one would have had it too.
      await page.evaluate(() => {
        const w = /** @type {any} */ (window);
        w.witness = [];
        w.unsubscribe();
        w.client.subscribe((/** @type {any[]} */ servers) => w.witness.push(servers.length));
      });
      await page.waitForFunction(() => /** @type {any} */ (window).witness.length >= 1, null, { timeout: 5000 });
      setServers(regDir, entries);
      await page.waitForFunction(() => /** @type {any} */ (window).witness.includes(3), null, { timeout: 5000 });
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).log.length), 2);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  test('subscribe with project filter, against another origin on this machine (CORS for loopback)', async () => {
    // The page is at 127.0.0.1; the registry is asked at localhost: another origin.
    const { page } = await openPage(`${server.url}/`);
    try {
      const base = `http://localhost:${server.port}`;
      await page.evaluate((b) => {
        const w = /** @type {any} */ (window);
        w.client.subscribe((/** @type {any[]} */ servers, /** @type {any} */ info) => w.log.push({ ids: servers.map((s) => s.id), info }), { base: b, project: 'other' });
      }, base);
      await page.waitForFunction(() => /** @type {any} */ (window).log.length >= 1);
      const first = await page.evaluate(() => /** @type {any} */ (window).log[0]);
      assert.deepEqual(first.ids, ['echo-2']);
      assert.equal(first.info.source, 'sse');
    } finally {
      await page.close();
    }
  });

  test('subscribe falls back to polling when the stream is refused', async () => {
    // Same site, but with the stream broken in front of the plugin.
    const { preview } = await import('vite');
    const { default: wsreg } = await import('../../vite-plugin-wsreg/src/index.js');
    const s = await preview({
      root,
      configFile: false,
      logLevel: 'silent',
      plugins: [breakEvents, wsreg({ registry: regDir })],
      preview: { host: '127.0.0.1', port: 0, strictPort: true },
    });
    const port = /** @type {import('node:net').AddressInfo} */ (s.httpServer.address()).port;
    const { page } = await openPage(`http://127.0.0.1:${port}/`);
    try {
      setServers(regDir, entries);
      await page.evaluate(() => {
        const w = /** @type {any} */ (window);
        w.client.subscribe((/** @type {any[]} */ servers, /** @type {any} */ info) => w.log.push({ ids: servers.map((s) => s.id), info }), { pollIntervalMs: 150 });
      });
      await page.waitForFunction(() => /** @type {any} */ (window).log.length >= 1, null, { timeout: 5000 });
      const first = await page.evaluate(() => /** @type {any} */ (window).log[0]);
      assert.deepEqual(first, { ids: ['echo-0', 'echo-1', 'echo-2'], info: { source: 'poll', error: null, stale: false } });
      setServers(regDir, entries.slice(1));
      await page.waitForFunction(() => /** @type {any} */ (window).log.length >= 2, null, { timeout: 5000 });
      assert.deepEqual(await page.evaluate(() => /** @type {any} */ (window).log[1].ids), ['echo-1', 'echo-2']);
      // Polling again with no change calls back no more: two more polls answered (the
      // second is sent only once the first was handled).
      for (let i = 0; i < 2; i += 1) {
        await page.waitForResponse((r) => new URL(r.url()).pathname === '/api/registry', { timeout: 5000 });
      }
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).log.length), 2);

      // The endpoint goes away: the last list is kept, marked stale.
      await s.close();
      await page.waitForFunction(() => /** @type {any} */ (window).log.length >= 3, null, { timeout: 5000 });
      const stale = await page.evaluate(() => /** @type {any} */ (window).log[2]);
      assert.deepEqual(stale.ids, ['echo-1', 'echo-2']);
      assert.equal(stale.info.stale, true);
      assert.match(stale.info.error, /unreachable/);
    } finally {
      await page.close();
      await s.close();
      setServers(regDir, entries);
    }
  });

  test('connectAll: connects to every live server, echoes, follows the list, reconnects', async () => {
    setServers(regDir, entries);
    const { page, errors } = await openPage(`${server.url}/`);
    try {
      await page.evaluate(() => {
        const w = /** @type {any} */ (window);
        w.statusById = {};
        w.messages = [];
        w.conns = w.client.connectAll({
          initialDelayMs: 50,
          maxDelayMs: 200,
          onStatus: (/** @type {any} */ s, /** @type {string} */ st, /** @type {any} */ info) => {
            w.statusById[s.id] = st;
            w.log.push({ id: s.id, st, info });
          },
          onMessage: (/** @type {any} */ s, /** @type {any} */ data) => w.messages.push({ id: s.id, data }),
        });
        w.unsubscribe = w.client.subscribe((/** @type {any[]} */ servers) => w.conns.update(servers));
      });
      const allConnected = () => {
        const w = /** @type {any} */ (window);
        return ['echo-0', 'echo-1', 'echo-2'].every((id) => w.statusById[id] === 'connected');
      };
      await page.waitForFunction(allConnected, null, { timeout: 5000 }).catch(async (e) => {
        throw new Error(`${e.message}; log: ${JSON.stringify(await page.evaluate(() => /** @type {any} */ (window).log))}`);
      });
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).conns.sendAll('ping')), 3);
      await page.waitForFunction(() => /** @type {any} */ (window).messages.length === 3);
      const msgs = await page.evaluate(() => /** @type {any} */ (window).messages);
      assert.deepEqual(msgs.map((/** @type {any} */ m) => m.id).sort(), ['echo-0', 'echo-1', 'echo-2']);
      assert.ok(msgs.every((/** @type {any} */ m) => m.data === 'ping'));

      // echo-2 leaves the registry: its socket is closed and forgotten.
      setServers(regDir, entries.slice(0, 2));
      await page.waitForFunction(() => /** @type {any} */ (window).statusById['echo-2'] === 'disconnected', null, { timeout: 5000 });
      await waitFor(() => echoes[2].closes.length === 1, 5000, 'echo-2 sees the close');
      assert.equal(echoes[2].closes[0].code, 1000);
      assert.equal(echoes[2].clients, 0);

      // echo-1 crashes but stays listed (same PID: still "live"): reconnects when back.
      const port1 = echoes[1].port;
      await echoes[1].kill();
      await page.waitForFunction(() => /** @type {any} */ (window).statusById['echo-1'] === 'disconnected', null, { timeout: 5000 });
      echoes[1] = await startEcho(port1);
      await page.waitForFunction(() => /** @type {any} */ (window).statusById['echo-1'] === 'connected', null, { timeout: 5000 });
      assert.equal(await page.evaluate(() => /** @type {any} */ (window).conns.sendAll('again')), 2);
      // echo-1's reconnect took a backoff that started after echo-2 left: a reconnect
      // to echo-2 would have come before it.
      assert.equal(echoes[2].connections, 1, 'no reconnect to a server that left');
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
      setServers(regDir, entries);
    }
  });
});
