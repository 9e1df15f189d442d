// A local entry is listed only while its process holds a LISTEN socket on its port
// (docs/registry-format.md, "Liveness"): the /proc/net/tcp parse and the real socket
// view (with its cache of known owners), the watcher's schedule (new entries at once,
// every entry again on a reader's ask, at most once a second; never on the 500 ms
// liveness timer), and the plugin over real sockets: a process that closes its listener
// and lives on leaves GET and the event stream within a second of the next GET, or of
// the next health round; one that never listened is never listed. Waits are for events
// (a push, a count reached), bounded; never sleeps.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { SocketView, parseListenTable } from '../src/sockets.js';
import { LISTEN_RECHECK_MS, RegistryWatcher } from '../src/watch.js';
import { openEventStream, request } from './helpers/http-client.js';
import { watchFs } from './helpers/fs-spy.js';
import { listeningPort, ownEntry, register, spawnListener, startTimeOf, tempRegistry } from './helpers/registry-writer.js';
import { makeSite, startVite } from './helpers/vite-servers.js';

const linux = process.platform === 'linux';
const MODES = /** @type {const} */ (['dev', 'preview']);

/** @param {unknown} doc */
const ids = (doc) => /** @type {{ servers: { id: string }[] }} */ (doc).servers.map((s) => s.id);

describe('/proc/net/tcp and the sockets of a process', () => {
  test('LISTEN rows (state 0A) give port → inodes, IPv4 and IPv6 alike; other states are passed over', () => {
    const v4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 100 0 0 10 0
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0 100 0 0 10 0
   3: 0100007F:0051 0100007F:1F90 0A 00000000:00000000 00:00000000 00000000     0        0 18446744073709551615 1 0 100 0 0 10 0
`;
    const table = parseListenTable(v4);
    assert.deepEqual(table.get(8080), ['4242']);
    assert.deepEqual(table.get(80), ['4444']);
    assert.deepEqual(table.get(81), ['18446744073709551615'], 'a 64-bit inode is kept exactly');
    assert.equal(table.get(50000), undefined, 'the remote port of a connection is not a listener');
    const v6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0`;
    parseListenTable(v6, table);
    assert.deepEqual(table.get(8080), ['4242', '777']);
  });

  test('this process listens on its port, from the cache the second time, and not once it closed', { skip: !linux }, async () => {
    const server = net.createServer();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
    const port = /** @type {net.AddressInfo} */ (server.address()).port;
    const other = await listeningPort();
    const fdDir = `/proc/${process.pid}/fd`;
    assert.equal(new SocketView().listens(process.pid, port), 'yes');
    const spy = watchFs(fdDir);
    try {
      const view = new SocketView();
      assert.equal(view.listens(process.pid, port), 'yes');
      assert.deepEqual(spy.calls.readdir, [], 'a known owner still listening: its descriptors are not read again');
      assert.equal(view.listens(process.pid, other), 'yes');
      assert.ok(spy.calls.readdir.length <= 1, 'one view reads a process\'s descriptors once at most');
    } finally {
      spy.restore();
    }
    await new Promise((resolve) => server.close(() => resolve(undefined)));
    assert.equal(new SocketView().listens(process.pid, port), 'no');
    assert.equal(new SocketView().listens(4194304, other), 'no', 'no such process: it holds nothing');
  });

  test('a process whose descriptors cannot be read is unreadable (shown), not "no"', { skip: !linux }, () => {
    // PID 1 is root's: its /proc/1/fd answers EACCES to any other user. Root reads it, so
    // as root (CI) the question is asked by a copy of sockets.js run as nobody.
    assert.equal(listensAsAnotherUser(1, 1), 'unreadable');
  });
});

/**
 * What `new SocketView().listens(pid, port)` answers for a user who is not root: this
 * process when it is not root; otherwise a child run as nobody (`setpriv`, util-linux)
 * on a copy of sockets.js that nobody may read.
 * @param {number} pid
 * @param {number} port
 * @returns {string}
 */
function listensAsAnotherUser(pid, port) {
  if (process.getuid?.() !== 0) {
    assert.throws(() => fs.readdirSync(`/proc/${pid}/fd`), { code: 'EACCES' }, `/proc/${pid}/fd is readable: the test needs a process of another user`);
    return new SocketView().listens(pid, port);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-unreadable-'));
  try {
    fs.chmodSync(dir, 0o755);
    fs.copyFileSync(new URL('../src/sockets.js', import.meta.url), path.join(dir, 'sockets.js'));
    const check = path.join(dir, 'check.mjs');
    fs.writeFileSync(check, `import { SocketView } from './sockets.js';\nprocess.stdout.write(new SocketView().listens(${pid}, ${port}));\n`);
    fs.chmodSync(path.join(dir, 'sockets.js'), 0o644);
    fs.chmodSync(check, 0o644);
    const out = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, check], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(out.status, 0, `setpriv node as nobody: ${out.error ?? out.stderr}`);
    return out.stdout;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A process table (this machine's) that counts its questions and can tell when one comes.
 */
function countingTable() {
  const counts = { lookup: 0, listens: 0 };
  /** @type {{ kind: 'lookup' | 'listens', atLeast: number, resolve: () => void }[]} */
  let waiters = [];
  const bump = (/** @type {'lookup' | 'listens'} */ kind) => {
    counts[kind] += 1;
    waiters = waiters.filter((w) => (w.kind === kind && counts[kind] >= w.atLeast ? (w.resolve(), false) : true));
  };
  return {
    counts,
    /**
     * Resolves once `kind` has been asked `atLeast` times in all (a failure bound, not a wait).
     * @param {'lookup' | 'listens'} kind
     * @param {number} atLeast
     */
    reach(kind, atLeast, timeoutMs = 3000) {
      if (counts[kind] >= atLeast) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${kind}: ${counts[kind]} questions, not ${atLeast}, within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ kind, atLeast, resolve: () => (clearTimeout(timer), resolve(undefined)) });
      });
    },
    /**
     * A ReaderContext whose process table is this machine's, counted.
     * @param {(pid: number, port: number) => import('../index.js').Listening} listens
     * @returns {import('../index.js').ReaderContext}
     */
    context(listens) {
      return {
        processes: {
          lookup: (pid) => {
            bump('lookup');
            return pid === process.pid ? { startTime: startTimeOf(pid), zombie: false } : undefined;
          },
          listens: (pid, port) => {
            bump('listens');
            return listens(pid, port);
          },
        },
      };
    },
  };
}

/**
 * The next state the watcher emits (the timeout is a failure bound, not a wait).
 * @param {RegistryWatcher} w
 * @returns {Promise<import('../index.js').RegistryState>}
 */
function nextChange(w, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.off('change', onChange);
      reject(new Error(`no change within ${timeoutMs} ms`));
    }, timeoutMs);
    /** @param {import('../index.js').RegistryState} state */
    const onChange = (state) => {
      clearTimeout(timer);
      resolve(state);
    };
    w.once('change', onChange);
  });
}

describe('the watcher asks the ports on intake and on readers\' asks only', () => {
  /** @type {string[]} */
  const roots = [];
  after(() => {
    for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
  });
  const registry = () => {
    const reg = tempRegistry('wsreg-own-');
    roots.push(reg.root);
    return reg.dir;
  };

  test('the liveness timer asks no port; a reader\'s ask within a second is run a second after the last check, then pushed', async (t) => {
    const dir = registry();
    /** @type {Set<number>} */
    const open = new Set([1001]);
    const table = countingTable();
    const w = new RegistryWatcher({ registry: dir, recheckMs: 10, context: table.context((_pid, port) => (open.has(port) ? 'yes' : 'no')) });
    t.after(() => w.close());
    register(dir, ownEntry({ id: 'mine', port: 1001 }));
    const started = performance.now();
    assert.deepEqual(ids(w.start()), ['mine']);
    assert.equal(table.counts.listens, 1, 'the new entry was asked at intake');
    // The liveness timer runs (the process is re-checked) and asks no port.
    await table.reach('lookup', table.counts.lookup + 5);
    assert.equal(table.counts.listens, 1, 'the liveness timer asked a port');

    open.delete(1001);
    const state = w.refresh();
    let gone = state;
    if (ids(state).includes('mine')) {
      // Asked within the second: not now, but a second after the last check, and emitted.
      assert.equal(table.counts.listens, 1);
      assert.notEqual(w.listenTimer, null);
      gone = await nextChange(w);
      const at = performance.now() - started;
      assert.ok(at >= LISTEN_RECHECK_MS - 5 && at < LISTEN_RECHECK_MS + 700, `checked ${at.toFixed(0)} ms after the last check`);
    }
    assert.deepEqual(ids(gone), []);
    assert.deepEqual(w.current().dead.map((d) => d.reason), ['not listening on 1001']);
    assert.equal(w.listenTimer, null);
    assert.equal(w.livenessTimer, null, 'nothing listed can end unseen: no timer');
    assert.ok(fs.existsSync(path.join(dir, 'mine.json')), 'the file is left alone');

    // A check a second old is run before the answer.
    open.add(1001);
    w.listenCheckedAt -= LISTEN_RECHECK_MS;
    const asked = table.counts.listens;
    assert.deepEqual(ids(w.refresh()), ['mine'], 'listening again: listed by the answer itself');
    assert.equal(table.counts.listens, asked + 1);
    assert.equal(w.listenTimer, null);
  });

  test('a health round asks too (recheckListeners), and asks are merged: one check a second at most', async (t) => {
    const dir = registry();
    const table = countingTable();
    const w = new RegistryWatcher({ registry: dir, context: table.context(() => 'yes') });
    t.after(() => w.close());
    register(dir, ownEntry({ id: 'mine', port: 1001 }));
    w.start();
    assert.equal(table.counts.listens, 1);
    for (let i = 0; i < 10; i++) {
      w.recheckListeners();
      w.refresh();
    }
    assert.equal(table.counts.listens, 1, 'asked again within the second');
    await table.reach('listens', 2);
    assert.equal(w.listenTimer, null);
    assert.equal(table.counts.listens, 2, 'eleven asks, one check');
    w.listenCheckedAt -= LISTEN_RECHECK_MS;
    w.recheckListeners();
    assert.equal(table.counts.listens, 3, 'a check a second old runs at once');
  });
});

for (const mode of MODES) {
  describe(`vite ${mode}: a server is listed only while it listens`, { skip: !linux }, () => {
    const site = makeSite();
    const reg = tempRegistry('wsreg-own-http-');
    /** @type {import('node:child_process').ChildProcess[]} */
    const children = [];
    after(() => {
      for (const child of children) child.kill('SIGKILL');
      fs.rmSync(site, { recursive: true, force: true });
      fs.rmSync(reg.root, { recursive: true, force: true });
    });

    test('a process that closes its listener and lives on leaves GET and the stream within a second of the next GET', async () => {
      // No health rounds: the GET alone must bring the check.
      const server = await startVite(mode, { root: site, plugin: { registry: reg.dir, healthInterval: 0 } });
      const listener = await spawnListener();
      children.push(listener.child);
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        assert.deepEqual(ids(JSON.parse((await stream.next()).data)), []);
        register(reg.dir, { ...ownEntry({ id: 'closer', port: listener.port }), pid: listener.pid, pidStartTime: startTimeOf(listener.pid) });
        await stream.next({ timeoutMs: 3000, accept: (e) => ids(JSON.parse(e.data)).includes('closer') });
        assert.deepEqual(ids((await request(`${server.url}/api/registry`)).json), ['closer']);

        await listener.closeListener();
        const t0 = performance.now();
        const res = await request(`${server.url}/api/registry`);
        assert.equal(res.status, 200);
        let goneAt = t0;
        if (ids(res.json).includes('closer')) {
          // Checked less than a second ago: the check comes a second after it, and is pushed.
          const pushed = await stream.next({ timeoutMs: 3000, accept: (e) => !ids(JSON.parse(e.data)).includes('closer') });
          goneAt = pushed.at;
        } else {
          await stream.next({ timeoutMs: 3000, accept: (e) => !ids(JSON.parse(e.data)).includes('closer') });
        }
        const ms = goneAt - t0;
        console.log(`${mode}: closed listener → gone ${ms.toFixed(0)} ms after the next GET`);
        assert.ok(ms < LISTEN_RECHECK_MS + 500, `took ${ms.toFixed(0)} ms`);
        assert.deepEqual(ids((await request(`${server.url}/api/registry`)).json), []);
        assert.equal(listener.child.exitCode, null, 'the process lives on');
        assert.ok(fs.existsSync(path.join(reg.dir, 'closer.json')), 'its file is left alone');
      } finally {
        stream.close();
        listener.child.kill('SIGKILL');
        await server.close();
        fs.rmSync(path.join(reg.dir, 'closer.json'), { force: true });
      }
    });

    test('while a page is subscribed, a health round finds a closed listener without any GET', async () => {
      const server = await startVite(mode, { root: site, plugin: { registry: reg.dir, healthInterval: 200 } });
      const listener = await spawnListener();
      children.push(listener.child);
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        register(reg.dir, { ...ownEntry({ id: 'quiet', port: listener.port }), pid: listener.pid, pidStartTime: startTimeOf(listener.pid) });
        await stream.next({ timeoutMs: 3000, accept: (e) => ids(JSON.parse(e.data)).includes('quiet') });
        await listener.closeListener();
        const t0 = performance.now();
        const gone = await stream.next({ timeoutMs: 3000, accept: (e) => !ids(JSON.parse(e.data)).includes('quiet') });
        const ms = gone.at - t0;
        console.log(`${mode}: closed listener → pushed by the health rounds in ${ms.toFixed(0)} ms`);
        assert.ok(ms < LISTEN_RECHECK_MS + 200 + 500, `took ${ms.toFixed(0)} ms`);
      } finally {
        stream.close();
        listener.child.kill('SIGKILL');
        await server.close();
        fs.rmSync(path.join(reg.dir, 'quiet.json'), { force: true });
      }
    });

    test('a process that never listened is never listed, even on a port someone else listens on', async () => {
      const server = await startVite(mode, { root: site, plugin: { registry: reg.dir, healthInterval: 200 } });
      const idle = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
      children.push(idle);
      await new Promise((resolve) => idle.once('spawn', resolve));
      const idlePid = /** @type {number} */ (idle.pid);
      const strangers = await listeningPort(); // this test process's: not the idle one's
      const marker = await spawnListener();
      children.push(marker.child);
      const stream = await openEventStream(`${server.url}/api/registry/events`);
      try {
        assert.deepEqual(ids(JSON.parse((await stream.next()).data)), []);
        register(reg.dir, { ...ownEntry({ id: 'idle', port: strangers, startedAt: '2026-01-01T00:00:01Z' }), pid: idlePid, pidStartTime: startTimeOf(idlePid) });
        // A live one registered after it: when it is pushed, the idle one was taken in first.
        register(reg.dir, { ...ownEntry({ id: 'marker', port: marker.port, startedAt: '2026-01-01T00:00:02Z' }), pid: marker.pid, pidStartTime: startTimeOf(marker.pid) });
        const pushed = await stream.next({ timeoutMs: 3000, accept: (e) => ids(JSON.parse(e.data)).includes('marker') });
        assert.deepEqual(ids(JSON.parse(pushed.data)), ['marker']);
        assert.deepEqual(ids((await request(`${server.url}/api/registry`)).json), ['marker']);
        // Checked again (the marker's closed listener shows a check ran): still not listed.
        await marker.closeListener();
        await request(`${server.url}/api/registry`);
        const after = await stream.next({ timeoutMs: 3000, accept: (e) => !ids(JSON.parse(e.data)).includes('marker') });
        assert.deepEqual(ids(JSON.parse(after.data)), []);
        assert.deepEqual(ids((await request(`${server.url}/api/registry`)).json), []);
        assert.equal(idle.exitCode, null);
      } finally {
        stream.close();
        idle.kill('SIGKILL');
        marker.child.kill('SIGKILL');
        await server.close();
        for (const id of ['idle', 'marker']) fs.rmSync(path.join(reg.dir, `${id}.json`), { force: true });
      }
    });
  });
}
