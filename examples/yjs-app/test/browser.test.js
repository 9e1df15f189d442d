// The example page in Chromium, two independent browser profiles, two `wsreg yjs`
// servers: text typed in one page appears in the other; after SIGKILL of one server
// typing still syncs through the other; the killed server, restarted on the same
// --data-dir, has its document back (checked on its own, away from the pages) and joins
// again. Run against the Vite dev server (registry over HMR) and against `vite build`
// output served by `wsreg serve --static` (registry over SSE, no Vite at run time).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { launchChromium } from '../../../e2e/chromium.js';
import { startDevApp } from '../../dev-app.js';
import { client, defer, startYjs, synced, tempDir, waitFor, wsregBin } from './helpers.js';

const APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROOM = 'browser-test';

/** A Chromium with a fresh profile of its own (so two of them share nothing). */
async function browserPage(t) {
  const { context, close } = await launchChromium();
  defer(t, close);
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e));
  return page;
}

/** The app's Vite dev server (its own vite.config.js) reading `registry`. */
async function devApp(t, registry) {
  const { server, url } = await startDevApp(APP_DIR, registry);
  defer(t, () => server.close());
  return url;
}

/** `vite build` into a temp dir, served by `wsreg serve --static`. */
async function builtApp(t, registry) {
  const outDir = tempDir(t, 'wsreg-yjs-dist-');
  await build({ root: APP_DIR, configLoader: 'native', logLevel: 'silent', build: { outDir, emptyOutDir: true } });
  const child = spawn(wsregBin(), ['--registry', registry, 'serve', '--port', '0', '--static', outDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WSREG_LOG: 'warn' },
  });
  const exited = new Promise((r) => child.once('exit', r));
  defer(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
  });
  const lines = createInterface({ input: child.stdout });
  return new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error('wsreg serve did not start within 10 s')), 10_000);
    lines.on('line', (line) => {
      const m = / listening on (http:\/\/\S+)/.exec(line);
      if (m) { clearTimeout(timer); resolveUrl(m[1]); }
    });
    exited.then(() => reject(new Error('wsreg serve exited before listening')));
  });
}

/** Waits until the page shows `n` connected servers. */
function connectedTo(page, n) {
  return page.waitForSelector(`#summary[data-connected="${n}"]`, { timeout: 15_000 });
}

/** The text as one server has it, read by a fresh client connected to that server only. */
async function textOn(t, url, expected) {
  const c = client(t, url, ROOM);
  await synced(c.provider);
  await waitFor(() => c.text.toString() === expected, `"${expected}" on ${url} (has "${c.text.toString()}")`);
  c.provider.destroy();
}

async function scenario(t, startApp) {
  const dir = tempDir(t);
  const registry = join(dir, 'servers.json');
  const [dataA, dataB] = [join(dir, 'a'), join(dir, 'b')];
  const a = await startYjs(t, { registry, args: ['--data-dir', dataA, '--name', 'a'] });
  await startYjs(t, { registry, args: ['--data-dir', dataB, '--name', 'b'] });
  const appUrl = await startApp(t, registry);

  const [ann, bob] = [await browserPage(t), await browserPage(t)];
  await ann.goto(`${appUrl}?room=${ROOM}&name=ann`);
  await bob.goto(`${appUrl}?room=${ROOM}&name=bob`);
  await Promise.all([connectedTo(ann, 2), connectedTo(bob, 2)]);

  await ann.locator('#text').click();
  await ann.keyboard.type('hello from ann');
  await bob.waitForFunction(() => document.querySelector('textarea').value === 'hello from ann', null, { timeout: 10_000 });
  await ann.waitForSelector('#people li[data-name="bob"]', { timeout: 10_000 });
  await bob.waitForSelector('#people li[data-name="ann"]', { timeout: 10_000 });
  await textOn(t, a.url, 'hello from ann');

  // One server dies: the pages carry on through the other.
  await a.kill('SIGKILL');
  await Promise.all([connectedTo(ann, 1), connectedTo(bob, 1)]);
  await bob.locator('#text').click();
  await bob.keyboard.press('Control+End');
  await bob.keyboard.type(' and bob');
  await ann.waitForFunction(() => document.querySelector('textarea').value === 'hello from ann and bob', null, { timeout: 10_000 });

  // Restarted on its data directory, alone (another registry: the pages cannot reach
  // it), it has exactly what it had acknowledged before the kill.
  const alone = await startYjs(t, { registry: join(dir, 'other-servers.json'), args: ['--data-dir', dataA] });
  await textOn(t, alone.url, 'hello from ann');
  await alone.kill('SIGTERM');

  // Restarted where the pages can find it: it joins again and catches up.
  const again = await startYjs(t, { registry, args: ['--data-dir', dataA, '--name', 'a'] });
  await Promise.all([connectedTo(ann, 2), connectedTo(bob, 2)]);
  await textOn(t, again.url, 'hello from ann and bob');
  await ann.locator('#text').click();
  await ann.keyboard.press('Control+End');
  await ann.keyboard.type('!');
  await bob.waitForFunction(() => document.querySelector('textarea').value === 'hello from ann and bob!', null, { timeout: 10_000 });
  assert.equal(await ann.locator('#servers li').count(), 2);
}

test('two pages sync through two servers, survive a SIGKILL, and get a restarted server back (vite dev)',
  { timeout: 120_000 }, (t) => scenario(t, devApp));

test('the same with vite build output served by wsreg serve --static',
  { timeout: 120_000 }, (t) => scenario(t, builtApp));
