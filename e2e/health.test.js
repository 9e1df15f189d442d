// Health on the page of `wsreg demo` (docs/api.md, "Health"), in Debian's Chromium: the
// open page is a subscriber, so the demo probes every server (here every second); a
// `wsreg echo` stopped with SIGSTOP turns `unresponsive` on its card and stays listed,
// and turns `ok` again after SIGCONT. Each card shows its health as text.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, requireTools, Sandbox } from './helpers.js';

describe('health on the page of wsreg demo --health-interval 1s', () => {
  /** @type {Sandbox} */
  let sandbox;
  /** @type {import('./helpers.js').Proc} */
  let stopped;
  /** @type {string} */
  let stoppedId;
  /** @type {Awaited<ReturnType<typeof launchBrowser>>} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let page;

  before(async () => {
    requireTools();
    sandbox = new Sandbox();
    const demo = sandbox.wsreg('demo', '--port', '0', '--health-interval', '1s');
    const url = (await demo.line(/^serve listening on (\S+)/))[1];
    stopped = sandbox.wsreg('echo', '--port', '0', '--name', 'to be stopped');
    const listening = await stopped.listening();
    assert.ok(listening.id);
    stoppedId = listening.id;
    browser = await launchBrowser();
    page = await browser.context.newPage();
    await page.goto(url);
  });

  after(async () => {
    stopped?.kill('SIGCONT');
    await browser?.close();
    await sandbox?.cleanup();
  });

  it('every server is probed ok, its health shown as text', async () => {
    await page.waitForFunction(() => {
      const cards = [...document.querySelectorAll('.card')];
      return cards.length === 4 && cards.every((c) => c.getAttribute('data-health') === 'ok');
    });
    const texts = await page.locator('.card .fact-health').allTextContents();
    assert.equal(texts.length, 4);
    for (const text of texts) assert.match(text, /^ok · [\d.]+ ms$/);
  });

  it('SIGSTOP → unresponsive within 7 s, still listed; SIGCONT → ok within 7 s', async () => {
    const card = `.card[data-id="${stoppedId}"]`;
    let t0 = performance.now();
    stopped.kill('SIGSTOP');
    await page.locator(`${card}[data-health="unresponsive"]`).waitFor({ timeout: 7000 });
    const downMs = performance.now() - t0;
    assert.equal(await page.locator(`${card} .fact-health`).textContent(), 'unresponsive');
    assert.equal(await page.locator('.card').count(), 4, 'an unresponsive server stays listed');
    assert.equal(await page.locator('#count').textContent(), '4 servers');

    t0 = performance.now();
    stopped.kill('SIGCONT');
    await page.locator(`${card}[data-health="ok"]`).waitFor({ timeout: 7000 });
    console.log(`wsreg demo page, --health-interval 1s: SIGSTOP → unresponsive in ${downMs.toFixed(0)} ms, SIGCONT → ok in ${(performance.now() - t0).toFixed(0)} ms`);
  });
});
