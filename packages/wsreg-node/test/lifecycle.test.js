// How a registration ends, with real processes: SIGKILL leaves a file that readers no
// longer list (liveness); SIGTERM, SIGINT, an uncaught exception, process.exit(), the
// event loop running dry and close() remove the file — and the process ends exactly as
// it would have without wsreg-node (the signal's status, exit code 1, …). An app that
// listens for SIGINT itself keeps running, and registered. A server given to
// registerServer unregisters when it closes.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, test } from 'node:test';
import { registerServer } from '../src/index.js';
import { startFixture, tempRegistry, waitFor } from './helpers/processes.js';
import { listed, runWsreg } from './helpers/wsreg-bin.js';

const reg = tempRegistry();
after(() => fs.rmSync(reg.root, { recursive: true, force: true }));

/** @param {string} id */
const isListed = (id) => listed(reg.dir).some((s) => s.id === id);

test('SIGKILL: the file stays, but readers no longer list the entry', async () => {
  const server = await startFixture(reg.dir, { server: 'http' });
  assert.ok(isListed(server.entry.id));
  server.child.kill('SIGKILL');
  assert.deepEqual(await server.exited, { code: null, signal: 'SIGKILL' });
  assert.ok(fs.existsSync(server.file));
  assert.equal(isListed(server.entry.id), false);
  const all = JSON.parse(runWsreg(['list', '--json', '--all', '--registry', reg.dir])).servers;
  assert.equal(all.find((/** @type {any} */ s) => s.id === server.entry.id)?.deadReason, 'no such process');
});

for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
  test(`${signal}: every entry of the process is removed, and the process still dies of ${signal}`, async () => {
    const server = await startFixture(reg.dir, { server: 'http', count: 2 });
    for (const { id } of server.entries) assert.ok(isListed(id));
    server.child.kill(signal);
    assert.deepEqual(await server.exited, { code: null, signal });
    for (const file of server.files) assert.equal(fs.existsSync(file), false, file);
  });
}

test('SIGINT with the app listening for it: the app decides (it stays up, registered); its exit removes the entry', async () => {
  const server = await startFixture(reg.dir, { server: 'http', appSigint: true });
  server.child.kill('SIGINT');
  assert.equal(await server.next(), 'app got SIGINT');
  assert.ok(isListed(server.entry.id));
  server.send('exit');
  assert.deepEqual(await server.exited, { code: 0, signal: null });
  assert.equal(fs.existsSync(server.file), false);
});

test('an uncaught exception: the entry is removed, and the process still fails with code 1 and the error', async () => {
  const server = await startFixture(reg.dir, { server: 'http' });
  server.send('throw');
  assert.deepEqual(await server.exited, { code: 1, signal: null });
  assert.match(server.stderr(), /uncaught in the fixture/);
  assert.equal(fs.existsSync(server.file), false);
});

test('the event loop running dry with the registration open: a normal exit, entry removed', async () => {
  const server = await startFixture(reg.dir, { server: 'http' });
  server.send('unref');
  assert.deepEqual(await server.exited, { code: 0, signal: null });
  assert.equal(fs.existsSync(server.file), false);
});

test('a registration alone keeps nothing alive: a process that only registers ends by itself', async () => {
  const server = await startFixture(reg.dir, { server: 'none', idle: true, options: { port: 4567 } });
  assert.deepEqual(await server.exited, { code: 0, signal: null });
  assert.equal(fs.existsSync(server.file), false);
});

test('close(): the entry is removed while the process lives, and its signal listeners are gone', async () => {
  const server = await startFixture(reg.dir, { server: 'http' });
  server.send('close');
  assert.equal(await server.next(), 'closed; SIGTERM listeners: 0');
  assert.equal(fs.existsSync(server.file), false);
  assert.equal(isListed(server.entry.id), false);
  server.child.kill('SIGTERM');
  assert.deepEqual(await server.exited, { code: null, signal: 'SIGTERM' });
});

test('registerServer: closing the server removes its entry', async () => {
  const server = http.createServer().listen(0, '127.0.0.1');
  const registration = await registerServer(server, { registry: reg.dir });
  assert.ok(isListed(registration.id));
  server.close();
  await waitFor(() => !fs.existsSync(registration.file), 'the entry file to be removed');
  assert.equal(process.listenerCount('SIGTERM'), 0);
});
