// Discovery in a real browser: opens a registry page in headless Chromium (launched as
// the browser tests launch it, by e2e/chromium.js), then starts an echo server again and
// again and times each start until the page shows that server connected. Run by
// `wsreg-bench run` with one JSON argument:
//   { "page": URL, "runs": N, "selector": CSS with {id}, "server": [cmd, ...args], "env": {…} }
// and prints one JSON line: { "ms": [ … one per run … ] }.
//
// Times are wall-clock milliseconds on both sides (performance.timeOrigin + now()), taken
// here just before spawn and in the page by a MutationObserver when the selector first
// matches. The observer is installed once the server has printed its id; had the page
// been quicker than that, the figure would be the later time, never an earlier one.

import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { launchChromium } from '../e2e/chromium.js';

const cfg = JSON.parse(process.argv[2]);
const now = () => performance.timeOrigin + performance.now();

const browser = await launchChromium();
const { context } = browser;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(cfg.page);
  await page.waitForTimeout(500);
  const ms = [];
  for (let run = 0; run < cfg.runs; run++) {
    const started = now();
    const server = spawn(cfg.server[0], cfg.server.slice(1), {
      env: { ...process.env, ...cfg.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => server.once('exit', resolve));
    try {
      const id = await serverId(server);
      const selector = cfg.selector.replaceAll('{id}', id);
      const shown = await page.evaluate(whenShown, selector);
      ms.push(shown - started);
    } finally {
      server.kill('SIGTERM');
      await exited;
    }
    await page.waitForTimeout(100);
  }
  console.log(JSON.stringify({ ms }));
} finally {
  await browser.close();
}

/** The id on the server's `… listening on URL id ID` line. */
async function serverId(server) {
  const lines = readline.createInterface({ input: server.stdout });
  for await (const line of lines) {
    const match = / id (\S+)/.exec(line);
    if (match) return match[1];
  }
  throw new Error('the server exited without printing its id');
}

/** Runs in the page: resolves with the time the selector first matches (10 s at most). */
function whenShown(selector) {
  const at = () => performance.timeOrigin + performance.now();
  return new Promise((resolve, reject) => {
    if (document.querySelector(selector)) return resolve(at());
    const observer = new MutationObserver(() => {
      if (!document.querySelector(selector)) return;
      observer.disconnect();
      resolve(at());
    });
    observer.observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
    setTimeout(() => reject(new Error(`${selector} not shown within 10 s`)), 10000);
  });
}
