// A live server defends its own file (docs/registry-format.md, "Keeping an entry
// present"): deleted, corrupted in place, replaced by another entry, or gone with its
// whole directory, the file comes back with the same bytes, within well under a second
// (the keeper is woken by a watch on its file, not by a timer), and readers list the
// entry again. Each case runs against a real registered process.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { startFixture, tempRegistry, waitFor } from './helpers/processes.js';
import { listed } from './helpers/wsreg-bin.js';

const reg = tempRegistry();
/** @type {Awaited<ReturnType<typeof startFixture>>} */
let server;
/** @type {string} */
let original;
before(async () => {
  server = await startFixture(reg.dir, { server: 'http', options: { kind: 'echo', name: 'kept' } });
  original = fs.readFileSync(server.file, 'utf8');
});
after(async () => {
  server.child.kill('SIGKILL');
  await server.exited;
  fs.rmSync(reg.root, { recursive: true, force: true });
});

/**
 * Does `damage` to the file (after which it is missing or holds something else) and
 * waits until it holds the entry again. (Not by inode: a freed inode number is reused.)
 * @param {string} what
 * @param {() => void} damage
 */
async function restoredAfter(what, damage) {
  const t0 = performance.now();
  damage();
  await waitFor(() => fs.existsSync(server.file) && fs.readFileSync(server.file, 'utf8') === original, `the entry file to be restored after: ${what}`);
  const ms = performance.now() - t0;
  console.log(`${what} → restored in ${ms.toFixed(1)} ms`);
  assert.ok(ms < 900, `${what}: ${ms} ms (a watch, not the one-second fallback, should have woken the keeper)`);
  assert.deepEqual(listed(reg.dir).map((s) => s.id), [server.entry.id]);
  assert.deepEqual(fs.readdirSync(reg.dir), [`${server.entry.id}.json`], 'no temp file is left');
}

test('a deleted entry file comes back', async () => {
  await restoredAfter('unlink', () => fs.unlinkSync(server.file));
});

test('an entry file corrupted in place is rewritten', async () => {
  await restoredAfter('garbage written in place', () => fs.writeFileSync(server.file, '{"version":2,"id":'));
});

test('an entry file replaced by another entry is rewritten', async () => {
  const other = JSON.stringify({ ...JSON.parse(original), port: 1 });
  const tmp = `${reg.dir}/.replace.tmp`;
  await restoredAfter('replaced by rename with port 1', () => {
    fs.writeFileSync(tmp, other, { mode: 0o600 });
    fs.renameSync(tmp, server.file);
  });
});

test('a deleted registry directory comes back with the entry', async () => {
  // Moved aside first: a plain `rm -r` races with the keeper writing the file back.
  await restoredAfter('rm -r of the registry directory', () => {
    fs.renameSync(reg.dir, `${reg.dir}.old`);
    fs.rmSync(`${reg.dir}.old`, { recursive: true });
  });
  assert.equal(fs.statSync(reg.dir).mode & 0o777, 0o700);
});

test('two restores in a row: the watch is armed again after each rewrite', async () => {
  await restoredAfter('unlink (1)', () => fs.unlinkSync(server.file));
  await restoredAfter('unlink (2)', () => fs.unlinkSync(server.file));
});
