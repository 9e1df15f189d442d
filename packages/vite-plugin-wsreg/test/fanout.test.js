// One answer per change (DESIGN.md, principle 4): with 1,000 event streams open on a
// real Vite dev server, a change is serialised once — counted by wrapping
// JSON.stringify for registry documents — and every stream gets the very same text,
// which a GET afterwards answers too without serialising again.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { openEventStream, request } from './helpers/http-client.js';
import { ownEntry, register, tempRegistry } from './helpers/registry-writer.js';
import { makeSite, startVite } from './helpers/vite-servers.js';

const SUBSCRIBERS = 1000;
const site = makeSite();
const reg = tempRegistry('wsreg-fanout-');
/** @type {import('./helpers/vite-servers.js').Started} */
let server;
before(async () => {
  register(reg.dir, ownEntry({ id: 'first', startedAt: '2026-01-01T00:00:01Z' }));
  // healthInterval 0: the only change is the one the test makes.
  server = await startVite('dev', { root: site, plugin: { registry: reg.dir, healthInterval: 0 } });
});
after(async () => {
  await server.close();
  fs.rmSync(site, { recursive: true, force: true });
  fs.rmSync(reg.root, { recursive: true, force: true });
});

/**
 * Counts serialisations of registry documents (`{"version":1,"servers":[…]}`) while `body` runs.
 * @param {() => Promise<void>} body
 */
async function countingSerialisations(body) {
  const real = JSON.stringify;
  let count = 0;
  JSON.stringify = /** @type {typeof JSON.stringify} */ (
    function (/** @type {any} */ value, /** @type {any[]} */ ...rest) {
      if (value && typeof value === 'object' && value.version === 1 && Array.isArray(value.servers)) count += 1;
      return real.call(JSON, value, ...rest);
    }
  );
  try {
    await body();
  } finally {
    JSON.stringify = real;
  }
  return count;
}

test(`${SUBSCRIBERS} event streams: one serialisation per change, the same text to all`, async () => {
  const streams = await Promise.all(Array.from({ length: SUBSCRIBERS }, () => openEventStream(`${server.url}/api/registry/events`)));
  try {
    const firsts = await Promise.all(streams.map((s) => s.next()));
    assert.ok(firsts.every((e) => e.data === firsts[0].data));

    /** @type {string[]} */
    let pushed = [];
    const serialisations = await countingSerialisations(async () => {
      register(reg.dir, ownEntry({ id: 'second', startedAt: '2026-01-01T00:00:02Z' }));
      pushed = (await Promise.all(streams.map((s) => s.next({ timeoutMs: 10000 })))).map((e) => e.data);
      const get = await request(`${server.url}/api/registry`);
      assert.equal(get.text, pushed[0], 'GET answers the text the streams got');
    });
    assert.equal(serialisations, 1, `${serialisations} serialisations for one change`);
    assert.deepEqual(JSON.parse(pushed[0]).servers.map((/** @type {any} */ s) => s.id), ['first', 'second']);
    assert.ok(pushed.every((text) => text === pushed[0]), 'every stream got the same text');
  } finally {
    for (const s of streams) s.close();
  }
});
