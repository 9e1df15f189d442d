// The page `wsreg demo` serves, in Debian's Chromium: it finds and connects to every
// server, picks up a new one without a reload, sends to all, notices a killed server and
// drops its card, renders a hostile registry entry as text, fits a phone's width, and the
// demo leaves the registry as it found it. Screenshots go to test-artifacts/.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, requireTools, ROOT, Sandbox } from './helpers.js';

const ARTIFACTS = join(ROOT, 'test-artifacts');
const HOSTILE = '<img src=x onerror=alert(1)>';

describe('the page of wsreg demo', () => {
  /** @type {Sandbox} */
  let sandbox;
  /** @type {import('./helpers.js').Proc} */
  let demo;
  /** @type {string} */
  let url;
  /** @type {Awaited<ReturnType<typeof launchBrowser>>} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let page;
  /** @type {string[]} */
  const dialogs = [];
  /** @type {string[]} */
  const pageErrors = [];
  /** @type {import('./helpers.js').Proc} */
  let fourth;
  /** @type {string} */
  let fourthId;

  /** Each card as the test sees it. */
  const cards = () =>
    page.locator('.card').evaluateAll((els) =>
      els.map((el) => ({
        id: el.getAttribute('data-id'),
        port: el.getAttribute('data-port'),
        status: el.getAttribute('data-status'),
        name: el.querySelector('.name')?.textContent,
      })),
    );

  before(async () => {
    requireTools();
    mkdirSync(ARTIFACTS, { recursive: true });
    sandbox = new Sandbox();
    demo = sandbox.wsreg('demo', '--port', '0');
    url = (await demo.line(/^serve listening on (\S+)/))[1];
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // When each card first turned connected, by the page's clock (the test's clock too).
    await page.addInitScript(() => {
      /** @type {Record<string, number>} */
      const at = {};
      Object.assign(window, { connectedAt: at });
      new MutationObserver((records) => {
        for (const { target } of records) {
          if (!(target instanceof HTMLElement)) continue;
          const id = target.dataset.id;
          if (id && target.dataset.status === 'connected' && !(id in at)) at[id] = Date.now();
        }
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-status'] });
    });
    await page.goto(url);
    await page.evaluate(() => Object.assign(window, { sameDocument: true }));
  });

  after(async () => {
    await browser?.close();
    await sandbox?.cleanup();
  });

  it('shows the three demo servers, each connected', async () => {
    await page.locator('#count', { hasText: /^3 servers$/ }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('.card[data-status="connected"]').length === 3);
    const shown = await cards();
    assert.deepEqual(
      shown.map((c) => c.name),
      ['echo 1', 'echo 2', 'echo 3'],
    );
    const api = await (await fetch(new URL('/api/registry', url))).json();
    assert.deepEqual(
      shown.map((c) => [c.id, Number(c.port)]),
      api.servers.map((/** @type {any} */ s) => [s.id, s.port]),
      'data-id and data-port are the registry entries',
    );
  });

  it('"send to all" gets a reply from every server, each labelled', async () => {
    await page.fill('#message', 'hello, servers');
    await page.press('#message', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('#log .entry-in').length === 3);
    const log = await page.locator('#log .entry').evaluateAll((els) =>
      els.map((el) => ({
        direction: el.getAttribute('data-direction'),
        who: el.querySelector('.who')?.textContent,
        what: el.querySelector('.what')?.textContent,
      })),
    );
    const replies = log.filter((e) => e.direction === 'in');
    assert.deepEqual(replies.map((e) => e.who).sort(), ['← echo 1', '← echo 2', '← echo 3']);
    assert.ok(replies.every((e) => e.what === 'hello, servers'), JSON.stringify(replies));
    assert.deepEqual(
      log.filter((e) => e.direction === 'out'),
      [{ direction: 'out', who: '→ 3 servers', what: 'hello, servers' }],
    );
    assert.equal(await page.inputValue('#message'), '', 'the input is cleared');
    await page.screenshot({ path: join(ARTIFACTS, 'page.png') });
  });

  it('a server started later turns connected without a reload', async () => {
    const started = Date.now();
    fourth = sandbox.wsreg('echo', '--port', '0', '--name', 'started later');
    const listening = await fourth.listening();
    assert.ok(listening.id);
    fourthId = listening.id;
    await page.locator(`.card[data-id="${fourthId}"][data-status="connected"]`).waitFor();
    const connectedAt = await page.evaluate((id) => /** @type {any} */ (window).connectedAt[id], fourthId);
    const ms = connectedAt - started;
    console.log(`browser: start-to-connected ${ms} ms`);
    assert.ok(ms < 2000, `connected ${ms} ms after start`);
    assert.equal(await page.locator('#count').textContent(), '4 servers');
    assert.equal(await page.evaluate(() => /** @type {any} */ (window).sameDocument), true, 'no reload');
  });

  it('SIGKILL turns its card disconnected, then removes it', async () => {
    assert.ok(fourth, 'the previous test started it');
    const card = page.locator(`.card[data-id="${fourthId}"]`);
    fourth.kill('SIGKILL');
    await page.locator(`.card[data-id="${fourthId}"][data-status="disconnected"]`).waitFor();
    await card.waitFor({ state: 'detached' });
    await page.locator('#count', { hasText: /^3 servers$/ }).waitFor();
    assert.deepEqual(
      (await cards()).map((c) => c.status),
      ['connected', 'connected', 'connected'],
    );
  });

  it('renders a hostile name as text, and runs no script', async () => {
    const { proc: host, port } = await sandbox.listener();
    const register = sandbox.wsreg('register', '--port', String(port), '--pid', String(host.pid), '--name', HOSTILE);
    const id = (await register.line(/^(\S+)$/))[1];
    assert.equal((await register.waitExit()).code, 0);
    const card = page.locator(`.card[data-id="${id}"]`);
    try {
      await card.waitFor();
      assert.equal(await card.locator('.name').textContent(), HOSTILE);
      assert.equal(await page.locator('.cards img, #log img').count(), 0, 'no element made of registry text');
      await page.waitForTimeout(300); // an onerror handler would have fired by now
      assert.deepEqual(dialogs, []);
    } finally {
      host.kill('SIGKILL');
    }
    await card.waitFor({ state: 'detached' });
  });

  it('fits a phone-width screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${overflow}px wider than the screen`);
    await page.screenshot({ path: join(ARTIFACTS, 'page-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('Ctrl-C stops the demo and leaves the registry as it found it', async () => {
    demo.kill('SIGINT');
    const { code } = await demo.waitExit();
    assert.equal(code, 0);
    const list = sandbox.wsreg('list', '--json');
    const doc = JSON.parse((await list.line(/^\{.*\}$/))[0]);
    assert.deepEqual(doc, { version: 1, servers: [] });
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });
});
