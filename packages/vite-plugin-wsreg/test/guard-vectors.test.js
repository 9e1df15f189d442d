// The shared guard cases (testdata/guard/cases.json) against the plugin's guard:
// `wsreg serve`'s guard passes the same cases (crates/wsreg/tests/guard_vectors.rs).
// Each case's headers go over a real socket to a Node HTTP server, so the guard
// sees them as the plugin does (Node's parser: repeats kept in headersDistinct,
// joined or dropped in headers). allowedHosts maps to Vite's `allowedHosts`,
// allowedOrigins to Vite's `cors: { origin: [...] }`. Every fuzz regression input
// of the guard (fuzz/regressions/guard_headers/) must be one of the cases.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createGuard } from '../src/guard.js';

/**
 * @typedef {{
 *   name: string,
 *   fuzz?: string,
 *   headers: [string, string][],
 *   config?: { allowedHosts?: string[], allowedOrigins?: string[] },
 *   expect: 'allowed' | 'refused',
 *   refusedBy?: 'host' | 'origin' | 'cross-site',
 *   why: string,
 * }} GuardCase
 * @typedef {import('../index.js').GuardResult} GuardResult
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** @type {GuardCase[]} */
const cases = JSON.parse(fs.readFileSync(path.join(root, 'testdata/guard/cases.json'), 'utf8')).cases;

/** @type {(req: http.IncomingMessage) => Promise<GuardResult>} */
let guard = createGuard();
/** @type {http.Server} */
let server;
/** @type {number} */
let port;

before(async () => {
  // Without Host a request must reach the guard too (Node answers 400 itself by default).
  server = http.createServer({ requireHostHeader: false }, async (req, res) => {
    const body = JSON.stringify(await guard(req));
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  port = /** @type {net.AddressInfo} */ (server.address()).port;
});
after(() => server.close());

/**
 * Sends a request head with exactly these header fields and returns the guard's verdict.
 * @param {[string, string][]} headers
 * @returns {Promise<GuardResult>}
 */
function exchange(headers) {
  const head = ['GET /api/registry HTTP/1.1', ...headers.map(([n, v]) => `${n}: ${v}`), '', ''].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(Buffer.from(head, 'utf8')));
    /** @type {Buffer[]} */
    const chunks = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = text.slice(0, text.indexOf('\r\n'));
      if (!status.startsWith('HTTP/1.1 200')) return reject(new Error(`server answered ${status}`));
      try {
        resolve(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)));
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** @param {GuardCase} c */
function expectedOf(c) {
  return c.expect === 'allowed' ? 'allowed' : c.refusedBy;
}

test('the cases are there and well formed', () => {
  assert.ok(cases.length >= 100, `only ${cases.length} cases`);
  assert.equal(new Set(cases.map((c) => c.name)).size, cases.length, 'duplicate case names');
  for (const c of cases) {
    assert.ok(typeof c.why === 'string' && c.why.length >= 10, `${c.name}: say why`);
    assert.ok(['allowed', 'host', 'origin', 'cross-site'].includes(String(expectedOf(c))), `${c.name}: expect`);
  }
});

test('every case gets its expected outcome', async () => {
  const failures = [];
  for (const c of cases) {
    guard = createGuard({
      allowedHosts: c.config?.allowedHosts ?? [],
      cors: c.config?.allowedOrigins ? { origin: c.config.allowedOrigins } : false,
    });
    const verdict = await exchange(c.headers);
    const got = verdict.ok ? 'allowed' : verdict.check;
    if (got !== expectedOf(c)) failures.push(`${c.name}: expected ${expectedOf(c)}, got ${got}`);
    if (!verdict.ok) assert.equal(verdict.status, 403, c.name);
  }
  assert.deepEqual(failures, []);
});

test('every fuzz regression of the guard is a case, with its headers', () => {
  const dir = path.join(root, 'fuzz/regressions/guard_headers');
  const files = fs.readdirSync(dir).sort();
  assert.ok(files.length > 0);
  for (const file of files) {
    const c = cases.find((x) => x.fuzz === file);
    assert.ok(c, `no case in testdata/guard/cases.json has fuzz ${JSON.stringify(file)}`);
    const fields = fs
      .readFileSync(path.join(dir, file), 'latin1')
      .split('\r\n\r\n')[0]
      .split('\r\n')
      .slice(1)
      .map((line) => {
        const colon = line.indexOf(':');
        return [line.slice(0, colon), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')];
      });
    assert.deepEqual(c.headers, fields, file);
    assert.equal(c.expect, 'refused', file);
  }
});
