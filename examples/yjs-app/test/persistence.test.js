// Durability with the official clients: every update the server has acknowledged — here,
// forwarded to another client — is back after `kill -9` and a restart with the same
// --data-dir (see docs/yjs.md, "acknowledged").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { client, startYjs, synced, tempDir, waitFor } from './helpers.js';

test('updates acknowledged before kill -9 are present after a restart', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const registry = join(dir, 'servers.json');
  const dataDir = join(dir, 'data');
  const first = await startYjs(t, { registry, args: ['--data-dir', dataDir] });
  const writer = client(t, first.url, 'durable');
  const observer = client(t, first.url, 'durable');
  await Promise.all([synced(writer.provider), synced(observer.provider)]);
  const words = [];
  for (let i = 0; i < 50; i++) {
    words.push(`w${i}`);
    writer.text.insert(writer.text.length, `w${i} `);
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5));
  }
  const expected = words.map((w) => `${w} `).join('');
  // The observer has them all: the server acknowledged every one.
  await waitFor(() => observer.text.toString() === expected, 'the observer to get all 50 edits');
  // Stop the clients first: on their own they would hand the text to the new server.
  writer.provider.destroy();
  observer.provider.destroy();
  const { signal } = await first.kill('SIGKILL');
  assert.equal(signal, 'SIGKILL');
  assert.ok(existsSync(join(dataDir, 'room-durable.ylog')));

  const second = await startYjs(t, { registry, args: ['--data-dir', dataDir] });
  assert.notEqual(second.port, first.port);
  const fresh = client(t, second.url, 'durable');
  await synced(fresh.provider);
  await waitFor(() => fresh.text.toString() === expected, 'the restarted server to have every edit');
  const other = client(t, second.url, 'never-written');
  await synced(other.provider);
  assert.equal(other.text.toString(), '');
});
