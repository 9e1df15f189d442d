// What a Node server writes is what the Rust library writes: a real process registers a
// real listening server, `wsreg list --json` (the Rust reader) lists it with every field
// right (pidStartTime included), and the file's bytes are those `wsreg register` writes
// for the same fields (but for the id and the start time, which are the writer's own).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { register } from '../src/index.js';
import { startFixture, startTimeOf, tempRegistry } from './helpers/processes.js';
import { listed, runWsreg } from './helpers/wsreg-bin.js';

const reg = tempRegistry();
after(() => fs.rmSync(reg.root, { recursive: true, force: true }));

const options = {
  kind: 'echo',
  name: 'a "quoted" <b>name</b> é ✓ \t\u0001\u007f \u2028',
  project: 'alpha',
  session: 's-1',
  meta: { room: 'a"b\\c', n: 3, nested: { list: [1, 2.5, true, null], s: 'ü' } },
};

test('an http.Server registered from Node is listed by `wsreg list --json` with every field', async () => {
  const before = new Date().toISOString();
  const server = await startFixture(reg.dir, { server: 'http', options });
  try {
    const after = new Date().toISOString();
    const [found, ...others] = listed(reg.dir);
    assert.deepEqual(others, []);
    assert.match(found.id, /^echo-[0-9a-hjkmnp-tv-z]{22}$/);
    assert.ok(found.startedAt >= before && found.startedAt <= after, `${found.startedAt} not in [${before}, ${after}]`);
    assert.match(found.startedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(found, {
      id: found.id,
      kind: 'echo',
      name: options.name,
      project: 'alpha',
      session: 's-1',
      host: os.hostname(),
      port: server.port,
      url: `ws://127.0.0.1:${server.port}/`,
      pid: server.pid,
      pidStartTime: startTimeOf(server.pid),
      startedAt: found.startedAt,
      ttlSecs: null,
      heartbeatAt: null,
      meta: options.meta,
    });
    assert.deepEqual(found, server.entry);
    // The port is the one the server got: it answers there.
    const body = await new Promise((resolve, reject) => {
      http.get(`http://127.0.0.1:${server.port}/`, (res) => res.on('data', resolve)).on('error', reject);
    });
    assert.equal(String(body), 'ok');
    // The file is private, alone (no temp file left), in a private directory.
    assert.deepEqual(fs.readdirSync(reg.dir), [`${found.id}.json`]);
    assert.equal(fs.statSync(reg.dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(server.file).mode & 0o777, 0o600);
  } finally {
    server.child.kill('SIGKILL');
    await server.exited;
  }
});

test('the file is byte for byte what `wsreg register` writes for the same fields', async () => {
  const server = await startFixture(reg.dir, { server: 'http', options: { ...options, url: 'wss://example.test:8443/x?y=1' } });
  const rust = tempRegistry();
  try {
    const mine = fs.readFileSync(server.file, 'utf8');
    const meta = Object.entries(options.meta).flatMap(([k, v]) => ['--meta', `${k}=${JSON.stringify(v)}`]);
    const rustId = runWsreg([
      'register', '--registry', rust.dir, '--pid', String(server.pid), '--port', String(server.port),
      '--kind', options.kind, '--name', options.name, '--project', options.project, '--session', options.session,
      '--url', 'wss://example.test:8443/x?y=1', ...meta,
    ]).trim();
    const theirs = fs.readFileSync(path.join(rust.dir, `${rustId}.json`), 'utf8');
    const rustStartedAt = JSON.parse(theirs).startedAt;
    const expected = theirs.replace(`"id":"${rustId}"`, `"id":"${server.entry.id}"`).replace(`"startedAt":"${rustStartedAt}"`, `"startedAt":"${server.entry.startedAt}"`);
    assert.equal(mine, expected);
    assert.ok(mine.endsWith('}\n'));
  } finally {
    server.child.kill('SIGKILL');
    await server.exited;
    fs.rmSync(rust.root, { recursive: true, force: true });
  }
});

test('a ws WebSocketServer is registered once it listens, at a URL that reaches it', async () => {
  const server = await startFixture(reg.dir, { server: 'ws', options: { kind: 'echo' } });
  try {
    assert.ok(server.port > 0);
    assert.deepEqual(listed(reg.dir).map((s) => s.id), [server.entry.id]);
    const ws = new WebSocket(server.entry.url);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const reply = new Promise((resolve) => ws.once('message', (d) => resolve(String(d))));
    ws.send('ping');
    assert.equal(await reply, 'ping');
    ws.close();
  } finally {
    server.child.kill('SIGKILL');
    await server.exited;
  }
});

test('a registry path ending in .json names the directory without .json', async () => {
  const tmp = tempRegistry();
  // Readers list an entry only while its process listens on its port.
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  try {
    const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
    const registration = await register({ port, registry: `${tmp.dir}.json` });
    assert.equal(registration.file, path.join(tmp.dir, `${registration.id}.json`));
    assert.deepEqual(listed(tmp.dir).map((s) => s.id), [registration.id]);
    await registration.close();
    assert.equal(fs.existsSync(registration.file), false);
  } finally {
    server.close();
    fs.rmSync(tmp.root, { recursive: true, force: true });
  }
});
