// The official npm `yjs` and `y-websocket` clients against real `wsreg yjs` processes:
// concurrent edits converge, a late joiner gets the whole state, awareness spreads and
// is removed by the server when a client vanishes without saying goodbye.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { client, otherNames, startYjs, synced, tempDir, vanish, waitFor } from './helpers.js';

async function server(t, args) {
  return startYjs(t, { registry: join(tempDir(t), 'servers.json'), args });
}

test('two clients converge after concurrent edits', { timeout: 60_000 }, async (t) => {
  const { url } = await server(t);
  const a = client(t, url, 'notes');
  const b = client(t, url, 'notes');
  await Promise.all([synced(a.provider), synced(b.provider)]);
  // Concurrent: both edit before either has seen the other's change.
  a.text.insert(0, 'alpha ');
  b.text.insert(0, 'beta ');
  for (let i = 0; i < 20; i++) {
    a.text.insert(a.text.length, `a${i} `);
    b.text.insert(0, `b${i} `);
  }
  await waitFor(() => a.text.toString() === b.text.toString() && a.text.length > 0, 'convergence');
  const final = a.text.toString();
  assert.match(final, /alpha /);
  assert.match(final, /beta /);
  for (let i = 0; i < 20; i++) {
    assert.ok(final.includes(`a${i} `) && final.includes(`b${i} `), `edit ${i} lost: ${final}`);
  }
});

test('a late joiner receives the full state, and rooms are separate', { timeout: 60_000 }, async (t) => {
  const { url } = await server(t);
  const a = client(t, url, 'shared');
  const witness = client(t, url, 'shared');
  await Promise.all([synced(a.provider), synced(witness.provider)]);
  a.text.insert(0, 'written before anyone else came');
  a.doc.getMap('meta').set('title', 'late');
  const other = client(t, url, 'another-room');
  other.text.insert(0, 'elsewhere');
  await synced(other.provider);
  // Once forwarded to the witness, the server has the edits (they are acknowledged).
  await waitFor(() => witness.doc.getMap('meta').get('title') === 'late', 'the witness to see the edits');
  const late = client(t, url, 'shared');
  await synced(late.provider);
  // Synced means the server's sync step 2 has been applied: it carried the whole state.
  assert.equal(late.text.toString(), 'written before anyone else came');
  assert.equal(late.doc.getMap('meta').get('title'), 'late');
  assert.ok(!late.text.toString().includes('elsewhere'));
});

test('awareness propagates, and the server removes a vanished client', { timeout: 60_000 }, async (t) => {
  const { url } = await server(t);
  const ann = client(t, url, 'presence', { name: 'ann' });
  const bob = client(t, url, 'presence', { name: 'bob' });
  await Promise.all([synced(ann.provider), synced(bob.provider)]);
  await waitFor(() => otherNames(ann.provider).join() === 'bob', 'ann to see bob');
  await waitFor(() => otherNames(bob.provider).join() === 'ann', 'bob to see ann');
  const cid = client(t, url, 'presence', { name: 'cid' });
  await synced(cid.provider);
  await waitFor(() => otherNames(cid.provider).join() === 'ann,bob', 'the newcomer to see both');
  // Ann's socket dies without her client sending its own removal: only the server can
  // tell the others (well before y-protocols' own 30 s timeout).
  vanish(ann.provider);
  await waitFor(() => otherNames(bob.provider).join() === 'cid', 'bob to see ann leave', 5_000);
  await waitFor(() => otherNames(cid.provider).join() === 'bob', 'cid to see ann leave', 5_000);
});
