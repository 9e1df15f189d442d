// The example app in Chromium, against its real Vite dev server: cards for
// the live servers (over HMR), one connection each, send-to-all, newcomers
// and leavers, and registry text rendered as text only. The servers are `ws`
// echo servers of this test process; wsreg-echo.test.js does the same with
// real `wsreg echo` processes.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { ownEntry, setServers, tempRegistry } from '../../../packages/vite-plugin-wsreg/test/helpers/registry-writer.js';
import { startEcho, waitFor } from '../../../packages/wsreg-client/test/helpers/echo.js';
import { launchChromium } from '../../../e2e/chromium.js';
import { buildAndPreviewApp, startApp } from './helpers.js';

const reg = tempRegistry('wsreg-app-');
const HOSTILE = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
/** @type {Awaited<ReturnType<typeof startEcho>>[]} */
let echoes = [];
/** @type {Awaited<ReturnType<typeof startApp>>} */
let app;
/** @type {import('../../../e2e/chromium.js').Chromium} */
let browser;
/** @type {import('playwright-core').Page} */
let page;
/** @type {any[]} */
let entries;

before(async () => {
  echoes = await Promise.all([startEcho(), startEcho()]);
  entries = [
    ownEntry({ id: 'echo-one', port: echoes[0].port, name: HOSTILE, meta: { note: '<script>alert(1)</script>' } }),
    ownEntry({ id: 'echo-two', port: echoes[1].port, project: 'demo' }),
  ];
  setServers(reg.dir, entries);
  app = await startApp(reg.dir);
  browser = await launchChromium();
  page = await browser.context.newPage();
  await page.goto(app.url);
});
after(async () => {
  await browser?.close();
  await app?.server.close();
  for (const e of echoes) await e.kill();
  fs.rmSync(reg.root, { recursive: true, force: true });
});

test('a card per live server, each connected, the list pushed over HMR', async () => {
  await page.waitForSelector('.card[data-id="echo-one"][data-status="connected"]', { timeout: 15000 });
  await page.waitForSelector('.card[data-id="echo-two"][data-status="connected"]');
  assert.equal(await page.locator('.card').count(), 2);
  assert.equal(await page.getAttribute('.card[data-id="echo-two"]', 'data-port'), String(echoes[1].port));
  assert.equal(await page.getAttribute('#registry-status', 'data-source'), 'hmr');
  assert.equal(await page.isHidden('#empty'), true);
});

test('registry text is shown as text, never as HTML', async () => {
  const card = page.locator('.card[data-id="echo-one"]');
  assert.equal(await card.locator('.name').evaluate((el) => el.firstChild?.textContent), HOSTILE);
  assert.equal(await card.locator('img, b, script').count(), 0);
  assert.match(await card.locator('.meta').innerText(), /<script>alert\(1\)<\/script>/);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__pwned), undefined);
});

test('send to all: every server echoes it back to its card', async () => {
  await page.fill('#send-text', 'hello, servers');
  await page.click('#send-form button');
  assert.equal(await page.textContent('#send-result'), 'sent to 2 servers');
  for (const id of ['echo-one', 'echo-two']) {
    await page.waitForFunction(
      (i) => document.querySelector(`.card[data-id="${i}"] .last-message`)?.textContent === 'hello, servers',
      id,
    );
  }
});

test('a new server appears and is connected within a moment; a leaver disappears', async () => {
  const third = await startEcho();
  echoes.push(third);
  const t0 = performance.now();
  setServers(reg.dir, [...entries, ownEntry({ id: 'echo-three', port: third.port })]);
  await page.waitForSelector('.card[data-id="echo-three"][data-status="connected"]', { timeout: 5000 });
  const ms = performance.now() - t0;
  console.log(`example app: registered → card connected in ${ms.toFixed(0)} ms`);
  assert.equal(third.clients, 1);

  setServers(reg.dir, [entries[1], ownEntry({ id: 'echo-three', port: third.port })]);
  await page.waitForSelector('.card[data-id="echo-one"]', { state: 'detached', timeout: 5000 });
  assert.deepEqual(await page.locator('.card').evaluateAll((els) => els.map((e) => /** @type {HTMLElement} */ (e).dataset.id)), ['echo-two', 'echo-three']);
  await waitFor(() => echoes[0].closes.length === 1, 5000, 'echo-one sees its socket closed');
  assert.equal(echoes[0].clients, 0, 'the socket of the server that left is closed');
});

test('a registry that cannot be read (its directory replaced by a symlink) shows its error, not a stale list', async () => {
  fs.renameSync(reg.dir, `${reg.dir}-moved`);
  fs.symlinkSync(`${reg.dir}-moved`, reg.dir);
  await page.waitForFunction(() => document.querySelector('#registry-status')?.classList.contains('error'));
  assert.match(String(await page.textContent('#registry-status')), /symlink/);
  assert.equal(await page.locator('.card').count(), 0);
  fs.rmSync(reg.dir);
  fs.renameSync(`${reg.dir}-moved`, reg.dir);
  setServers(reg.dir, entries);
  await page.waitForSelector('.card[data-id="echo-one"][data-status="connected"]');
});

test('the built app under `vite preview` gets the list over SSE and connects', async () => {
  const built = await buildAndPreviewApp(reg.dir);
  const p = await browser.context.newPage();
  try {
    await p.goto(built.url);
    await p.waitForSelector('.card[data-id="echo-one"][data-status="connected"]', { timeout: 10000 });
    assert.equal(await p.getAttribute('#registry-status', 'data-source'), 'sse');
    const third = await startEcho();
    echoes.push(third);
    setServers(reg.dir, [...entries, ownEntry({ id: 'echo-sse', port: third.port })]);
    await p.waitForSelector('.card[data-id="echo-sse"][data-status="connected"]', { timeout: 5000 });
    // Built with no HMR client: the page has no Vite client script.
    assert.equal(await p.locator('script[src*="@vite/client"]').count(), 0);
  } finally {
    await p.close();
    await built.close();
  }
});
