// Bad input is refused before anything is written: each bad option rejects with an
// EntryError whose `field` and message name the option, and the registry directory is
// not even created; the largest values allowed pass the Rust reader. A registry directory the user named whose parent does not exist is
// an error saying so; a server that does not listen on a TCP port is refused.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { EntryError, register, registerServer } from '../src/index.js';
import { tempRegistry } from './helpers/processes.js';
import { listed } from './helpers/wsreg-bin.js';

const reg = tempRegistry();
after(() => fs.rmSync(reg.root, { recursive: true, force: true }));

/** @type {[string, Record<string, unknown>, RegExp][]} */
const cases = [
  ['port', { port: 0 }, /^port must be an integer from 1 to 65535 \(got 0\)$/],
  ['port', { port: 65536 }, /got 65536/],
  ['port', { port: 80.5 }, /got 80.5/],
  ['port', { port: '80' }, /got "80"/],
  ['port', { port: undefined }, /got undefined/],
  ['kind', { kind: 'Echo' }, /^kind must be a lowercase word of at most 32 bytes/],
  ['kind', { kind: 'k'.repeat(33) }, /kind must be/],
  ['kind', { kind: '' }, /kind must be/],
  ['kind', { kind: '1st' }, /kind must be/],
  ['name', { name: 'n'.repeat(257) }, /^name is 257 bytes, over the limit of 256$/],
  ['name', { name: 'é'.repeat(129) }, /^name is 258 bytes/],
  ['name', { name: 42 }, /^name must be a string \(got number\)$/],
  ['name', { name: 'a\ud800b' }, /^name is not well-formed Unicode/],
  ['project', { project: 'p'.repeat(257) }, /^project is 257 bytes/],
  ['session', { session: 's'.repeat(257) }, /^session is 257 bytes/],
  ['host', { host: 'h'.repeat(256) }, /^host is 256 bytes, over the limit of 255$/],
  ['url', { url: 'http://127.0.0.1:1/' }, /^url must start with ws:\/\/ or wss:\/\//],
  ['url', { url: `ws://${'u'.repeat(2048)}` }, /^url is 2053 bytes, over the limit of 2048$/],
  ['meta', { meta: { x: 'm'.repeat(4100) } }, /^meta is 4108 bytes, over the limit of 4096$/],
  ['meta', { meta: [1] }, /^meta must be a plain object$/],
  ['meta', { meta: 'x' }, /^meta must be a plain object$/],
  ['meta', { meta: { n: 1n } }, /^meta cannot be written as JSON/],
  ['meta', { meta: { s: '\udc00' } }, /^meta cannot be written as JSON: it holds a lone surrogate$/],
  ['registry', { registry: 7 }, /^registry must be a path/],
  ['prot', { prot: 1 }, /^prot is not an option/],
];

for (const [field, bad, message] of cases) {
  test(`${field}: ${JSON.stringify(bad, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)).slice(0, 60)} is refused, nothing written`, async () => {
    const options = { port: 4000, registry: reg.dir, ...bad };
    await assert.rejects(register(/** @type {any} */ (options)), (e) => {
      assert.ok(e instanceof EntryError, String(e));
      assert.equal(e.field, field);
      assert.match(e.message, message);
      return true;
    });
    assert.equal(fs.existsSync(reg.dir), false, 'the registry directory was created');
  });
}

test('the largest values allowed are accepted', async () => {
  const registration = await register({
    port: 65535,
    registry: reg.dir,
    kind: `k${'-'.repeat(31)}`,
    name: 'é'.repeat(128),
    host: 'h'.repeat(255),
    url: `wss://${'u'.repeat(2042)}`,
    meta: { x: 'm'.repeat(4096 - '{"x":""}'.length) },
  });
  assert.deepEqual(listed(reg.dir).map((s) => s.id), [registration.id], 'the Rust reader accepts it');
  await registration.close();
  assert.deepEqual(fs.readdirSync(reg.dir), []);
});

test('a registry directory whose parent does not exist is an error saying so', async () => {
  const dir = path.join(reg.root, 'no-such-parent', 'servers');
  await assert.rejects(register({ port: 4000, registry: dir }), {
    message: `cannot create the registry directory ${dir}: its parent does not exist (create it first, or leave out the registry option and WSREG_REGISTRY to use the default)`,
  });
  assert.equal(fs.existsSync(path.dirname(dir)), false);
});

test('a server listening on a pipe, not a TCP port, is refused', async () => {
  const pipe = path.join(reg.root, 'sock');
  const server = net.createServer().listen(pipe);
  try {
    await assert.rejects(registerServer(server), { message: `the server listens on ${pipe}, not on a TCP port` });
  } finally {
    server.close();
  }
});
