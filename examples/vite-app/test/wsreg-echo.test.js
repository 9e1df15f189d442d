// The example app in Chromium with real `wsreg echo` processes: after a new
// one starts, the page gets `wsreg:servers` over HMR, shows its card and
// connects to it. Prints the time from spawning the process to the card
// being `connected`. A stopped one (SIGSTOP) is marked `unresponsive` by the plugin's
// probes and stays listed; continued (SIGCONT), it is `ok` again.
//
// Needs the binary: $WSREG_BIN or target/debug/wsreg.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { requireWsreg, startWsregServer } from '../../../packages/vite-plugin-wsreg/test/helpers/wsreg-bin.js';
import { launchChromium } from '../../../e2e/chromium.js';
import { tempRegistry } from '../../../packages/vite-plugin-wsreg/test/helpers/registry-writer.js';
import { startApp } from './helpers.js';

const reg = tempRegistry('wsreg-app-');
/** @type {Awaited<ReturnType<typeof startApp>>} */
let app;
/** @type {import('../../../e2e/chromium.js').Chromium} */
let browser;
/** @type {Awaited<ReturnType<typeof startWsregServer>>[]} */
const echoes = [];

before(async () => {
  app = await startApp(reg.dir);
  browser = await launchChromium();
});
after(async () => {
  for (const e of echoes) e.child.kill('SIGKILL');
  await browser?.close();
  await app?.server.close();
  fs.rmSync(reg.root, { recursive: true, force: true });
});

test('a new `wsreg echo` appears on the open page and is connected; stopping it removes the card', async () => {
  requireWsreg('echo');
  const page = await browser.context.newPage();
  await page.goto(app.url);
  await page.waitForSelector('#registry-status[data-source="hmr"]', { timeout: 15000 });
  assert.equal(await page.locator('.card').count(), 0);

  const first = await startWsregServer('echo', reg.dir, ['--name', 'first echo']);
  echoes.push(first);
  await page.waitForSelector(`.card[data-id="${first.entry.id}"][data-status="connected"]`, { timeout: 5000 });
  const ms = performance.now() - first.started;
  console.log(`wsreg echo spawned → card connected in the page: ${ms.toFixed(0)} ms`);
  assert.equal(await page.getAttribute('#registry-status', 'data-source'), 'hmr');
  assert.equal(await page.getAttribute(`.card[data-id="${first.entry.id}"]`, 'data-port'), String(first.entry.port));
  assert.equal(await page.getAttribute(`.card[data-id="${first.entry.id}"]`, 'data-kind'), 'echo');

  const second = await startWsregServer('echo', reg.dir);
  echoes.push(second);
  await page.waitForSelector(`.card[data-id="${second.entry.id}"][data-status="connected"]`, { timeout: 5000 });
  console.log(`second wsreg echo spawned → connected: ${(performance.now() - second.started).toFixed(0)} ms`);

  await page.fill('#send-text', 'through wsreg echo');
  await page.click('#send-form button');
  for (const e of [first, second]) {
    await page.waitForFunction(
      (id) => document.querySelector(`.card[data-id="${id}"] .last-message`)?.textContent === 'through wsreg echo',
      e.entry.id,
    );
  }

  first.child.kill('SIGTERM');
  await page.waitForSelector(`.card[data-id="${first.entry.id}"]`, { state: 'detached', timeout: 5000 });
  second.child.kill('SIGKILL');
  await page.waitForSelector(`.card[data-id="${second.entry.id}"]`, { state: 'detached', timeout: 5000 });
  assert.equal(await page.isVisible('#empty'), true);
  await page.close();
});

test('SIGSTOP → the card says unresponsive (still listed), SIGCONT → ok, each within 7 s', async () => {
  requireWsreg('echo');
  const page = await browser.context.newPage();
  const echo = await startWsregServer('echo', reg.dir, ['--name', 'stopped and continued']);
  echoes.push(echo);
  const card = `.card[data-id="${echo.entry.id}"]`;
  try {
    await page.goto(app.url);
    // The open page (an HMR client) is what makes the plugin probe.
    await page.waitForSelector(`${card}[data-health="ok"]`, { timeout: 10000 });
    assert.match(String(await page.textContent(`${card} .field-health`)), /^ok · [\d.]+ ms$/);

    let t0 = performance.now();
    echo.child.kill('SIGSTOP');
    await page.waitForSelector(`${card}[data-health="unresponsive"]`, { timeout: 7000 });
    const downMs = performance.now() - t0;
    assert.equal(await page.textContent(`${card} .field-health`), 'unresponsive');
    assert.equal(await page.locator('.card').count(), 1, 'an unresponsive server stays listed');

    t0 = performance.now();
    echo.child.kill('SIGCONT');
    await page.waitForSelector(`${card}[data-health="ok"]`, { timeout: 7000 });
    console.log(`example app: SIGSTOP → card unresponsive in ${downMs.toFixed(0)} ms, SIGCONT → ok in ${(performance.now() - t0).toFixed(0)} ms`);
  } finally {
    echo.child.kill('SIGCONT');
    echo.child.kill('SIGKILL');
    await page.close();
  }
});
