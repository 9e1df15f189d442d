// A server written in another language joins through `wsreg run`: the page served by
// `wsreg serve` finds the Node `ws` server of examples/node-server.js, connects to it and
// gets its replies; when the server stops, its card goes and its exit status is passed on.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, it } from 'node:test';

import { launchBrowser, requireTools, ROOT, Sandbox } from './helpers.js';

/** @type {Sandbox} */
let sandbox;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;

before(() => {
  requireTools();
  sandbox = new Sandbox();
});

after(async () => {
  await browser?.close();
  await sandbox?.cleanup();
});

it('a Node server started with `wsreg run` is shown, connected, answers, and leaves', async () => {
  const serve = sandbox.wsreg('serve', '--port', '0');
  const url = (await serve.line(/^serve listening on (\S+)/))[1];
  browser = await launchBrowser();
  const page = await browser.context.newPage();
  await page.goto(url);
  await page.locator('#count', { hasText: /^0 servers$/ }).waitFor();

  const started = performance.now();
  const run = sandbox.wsreg('run', '--name', 'node-echo', '--', process.execPath, join(ROOT, 'examples/node-server.js'));
  const card = page.locator('.card[data-status="connected"]', { hasText: 'node-echo' });
  await card.waitFor();
  console.log(`wsreg run -- node: started → connected in the page in ${(performance.now() - started).toFixed(0)} ms`);
  const api = await (await fetch(new URL('/api/registry', url))).json();
  assert.equal(api.servers.length, 1);
  assert.equal(await card.getAttribute('data-id'), api.servers[0].id);
  assert.equal(await card.getAttribute('data-port'), String(api.servers[0].port));

  await page.fill('#message', 'hello, node');
  await page.press('#message', 'Enter');
  const reply = page.locator('#log .entry-in', { hasText: 'hello, node' });
  await reply.waitFor();
  assert.equal(await reply.locator('.who').textContent(), '← node-echo');

  run.kill('SIGTERM');
  assert.deepEqual(await run.waitExit(), { code: 0, signal: null }, 'the command exited 0 and wsreg run passed it on');
  await page.locator('.card').waitFor({ state: 'detached' });
  await page.locator('#count', { hasText: /^0 servers$/ }).waitFor();
});
