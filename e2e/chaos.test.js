// Chaos, seen by the page: up to 20 `wsreg echo` servers under random SIGKILL, SIGTERM
// and start for WSREG_CHAOS_SECS seconds (default 15 here) while the page of
// `wsreg serve` shows them, and keeps a WebSocket to each, in Chromium. The page must
// never throw, and at the end its cards are exactly the servers still running. (The
// Rust chaos test, crates/wsreg/tests/chaos.rs, runs 50 servers for 30 s with the CLI
// and SSE readers; here the browser's 50 reconnecting sockets on top of 50 starting
// processes starved a 2-core machine, so the page watches a smaller crowd.)

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, requireTools, Sandbox, STEP_MS } from './helpers.js';

const SERVERS = 20;
const SECONDS = Number(process.env.WSREG_CHAOS_SECS ?? 15);

describe('the page under chaos', () => {
  /** @type {Sandbox} */
  let sandbox;
  /** @type {Awaited<ReturnType<typeof launchBrowser>>} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let page;
  /** @type {string[]} */
  const pageErrors = [];

  before(async () => {
    requireTools();
    sandbox = new Sandbox();
    const serve = sandbox.wsreg('serve', '--port', '0');
    const { url } = await serve.listening();
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(url);
    await page.locator('#count').waitFor();
  });

  after(async () => {
    await browser?.close();
    await sandbox?.cleanup();
  });

  it(`shows exactly the running servers after ${SECONDS} s of kills and starts`, { timeout: (SECONDS + 60) * 1000 }, async () => {
    /** @type {import('./helpers.js').Proc[]} */
    let running = Array.from({ length: SERVERS }, () => sandbox.wsreg('echo', '--port', '0'));
    const counts = { kill: 0, term: 0, start: SERVERS };
    const end = Date.now() + SECONDS * 1000;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
      // Start with probability (SERVERS + 5 - n) / 20: the population hovers near
      // SERVERS - 5, never past SERVERS.
      const n = running.length;
      if (n < SERVERS && Math.random() * 20 + n < SERVERS + 5) {
        running.push(sandbox.wsreg('echo', '--port', '0'));
        counts.start += 1;
      } else {
        const [victim] = running.splice(Math.floor(Math.random() * n), 1);
        const kill = Math.random() < 0.5;
        victim.kill(kill ? 'SIGKILL' : 'SIGTERM');
        counts[kill ? 'kill' : 'term'] += 1;
      }
    }
    running = running.filter((p) => !p.status);
    const ids = (await Promise.all(running.map((p) => p.listening()))).map((l) => l.id).sort();
    const settled = Date.now();
    await page.waitForFunction(
      (want) => {
        const shown = [...document.querySelectorAll('.card')].map((el) => el.getAttribute('data-id')).sort();
        return JSON.stringify(shown) === JSON.stringify(want);
      },
      ids,
      { timeout: 2 * STEP_MS },
    );
    console.log(
      `page chaos: ${counts.kill} SIGKILL, ${counts.term} SIGTERM, ${counts.start} starts in ${SECONDS} s; ` +
        `${ids.length} running at the end, shown exactly ${Date.now() - settled} ms after`,
    );
    assert.deepEqual(pageErrors, []);
  });
});
