// Token auth in real Vite servers (`wsreg({ auth: 'token' })`): the shared token file
// (beside the registry directory, in its parent),
// 401 without the token, the tokenised link turned into an HttpOnly cookie, and the
// same token as `wsreg serve --auth token` would use.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateToken, tokenMatches } from '../src/auth.js';
import { request } from './helpers/http-client.js';
import { makeSite, startVite } from './helpers/vite-servers.js';

for (const mode of /** @type {const} */ (['dev', 'preview'])) {
  describe(`vite ${mode} with auth: 'token'`, () => {
    const site = makeSite();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-auth-'));
    const registry = path.join(dir, 'reg', 'servers');
    /** @type {import('./helpers/vite-servers.js').Started} */
    let server;
    before(async () => {
      server = await startVite(mode, { root: site, plugin: { registry, auth: 'token' } });
    });
    after(async () => {
      await server.close();
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('the token file is private and shared', () => {
      const file = path.join(dir, 'reg', 'auth-token');
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const token = fs.readFileSync(file, 'utf8').trim();
      assert.match(token, /^[0-9a-f]{64}$/);
      assert.equal(loadOrCreateToken(registry), token, 'read back, not made again');
    });

    test('401 without the token, on the page and the API', async () => {
      for (const p of ['/', '/api/registry', '/api/registry/events']) {
        const r = await request(`${server.url}${p}`);
        assert.equal(r.status, 401, p);
        assert.match(r.json.error, /token/);
        const wrong = await request(`${server.url}${p}`, { headers: { Authorization: `Bearer ${'0'.repeat(64)}` } });
        assert.equal(wrong.status, 401, p);
      }
    });

    test('the tokenised link sets the cookie and drops the token; the cookie opens everything', async () => {
      const token = fs.readFileSync(path.join(dir, 'reg', 'auth-token'), 'utf8').trim();
      const r = await request(`${server.url}/?token=${token}`);
      assert.equal(r.status, 303);
      assert.equal(r.headers.location, '/');
      assert.deepEqual(r.headers['set-cookie'], [`wsreg_token=${token}; HttpOnly; SameSite=Strict; Path=/`]);
      const cookie = { Cookie: `wsreg_token=${token}` };
      assert.equal((await request(`${server.url}/`, { headers: cookie })).status, 200);
      assert.equal((await request(`${server.url}/api/registry`, { headers: cookie })).status, 200);
      const bearer = { Authorization: `Bearer ${token}` };
      assert.equal((await request(`${server.url}/api/registry`, { headers: bearer })).status, 200);
    });
  });
}

test('tokens are compared whole', () => {
  assert.ok(tokenMatches('abcd', 'abcd'));
  assert.ok(!tokenMatches('abcd', 'abce'));
  assert.ok(!tokenMatches('abcd', 'abc'));
});

test('an exposed token file is refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-auth-'));
  const registry = path.join(dir, 'servers');
  try {
    loadOrCreateToken(registry);
    fs.chmodSync(path.join(dir, 'auth-token'), 0o644);
    assert.throws(() => loadOrCreateToken(registry), /other users can read it/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
