// Pieces of the reader that the vectors cannot reach: /proc parsing, the real
// process table, file safety (symlinks, size, modes), the default path.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  defaultRegistryPath,
  parseProcStat,
  readRegistry,
  readRegistryFile,
  systemProcessTable,
} from '../src/registry.js';
import { hostnameOf, isLoopbackHostname } from '../src/guard.js';
import { RegistryWatcher } from '../src/watch.js';
import { ownEntry, ownStartTime, writeRegistryAtomic } from './helpers/registry-writer.js';

describe('/proc/<pid>/stat', () => {
  test('fields are read after the last ")", even when the name holds ") " itself', () => {
    const fields = ['S', ...Array.from({ length: 18 }, (_, i) => String(i + 4)), '424242', '23', '24'];
    const text = `123 (evil) S 1 2 3 (name) ${fields.join(' ')}\n`;
    assert.deepEqual(parseProcStat(text), { startTime: 424242, zombie: false });
  });
  test('Z and X are dead states', () => {
    const rest = Array.from({ length: 20 }, (_, i) => String(i + 4)).join(' ');
    assert.equal(parseProcStat(`9 (a) Z ${rest}`)?.zombie, true);
    assert.equal(parseProcStat(`9 (a) X ${rest}`)?.zombie, true);
    assert.equal(parseProcStat(`9 (a) R ${rest}`)?.zombie, false);
  });
  test('the real process table knows this process and its start time', { skip: process.platform !== 'linux' }, () => {
    const me = systemProcessTable().lookup(process.pid);
    assert.ok(me);
    assert.equal(me.zombie, false);
    assert.equal(me.startTime, ownStartTime());
  });
  test('a PID that does not exist is absent', () => {
    assert.equal(systemProcessTable().lookup(4194304), undefined);
  });
  test('a zombie child is not live', { skip: process.platform !== 'linux' }, async () => {
    // A child that exits while this process does not reap it (the exit is
    // only collected when its 'exit' event is processed): poll /proc until
    // the kernel reports the zombie state, or until it is reaped.
    const child = spawn(process.execPath, ['-e', 'process.exit(0)'], { stdio: 'ignore' });
    const pid = /** @type {number} */ (child.pid);
    const started = Date.now();
    /** @type {boolean | null} */
    let sawZombie = null;
    while (Date.now() - started < 3000) {
      const info = systemProcessTable().lookup(pid);
      if (!info) break;
      if (info.zombie) {
        sawZombie = true;
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    // Either we caught the zombie (and it was reported dead) or node reaped
    // the child first (and the PID is gone): both must not count as live.
    const after = systemProcessTable().lookup(pid);
    assert.ok(sawZombie === true || after === undefined);
  });
});

describe('the registry file', () => {
  /** @type {string} */
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-file-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a symlinked file is refused, not followed', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'link-'));
    const real = path.join(sub, 'real.json');
    writeRegistryAtomic(real, { version: 1, servers: [ownEntry({ id: 'via-link' })] });
    fs.symlinkSync(real, path.join(sub, 'servers.json'));
    const read = await readRegistryFile(path.join(sub, 'servers.json'));
    assert.equal(read.kind, 'refused');
    assert.match(read.kind === 'refused' ? read.error : '', /symlink/);
    const state = await readRegistry(path.join(sub, 'servers.json'));
    assert.deepEqual(state.servers, []);
    assert.equal(state.errorCode, 'refused');
  });

  test('a symlinked directory is refused', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'dirlink-'));
    const realDir = path.join(sub, 'real');
    fs.mkdirSync(realDir, { mode: 0o700 });
    writeRegistryAtomic(path.join(realDir, 'servers.json'), { version: 1, servers: [ownEntry({ id: 'x' })] });
    fs.symlinkSync(realDir, path.join(sub, 'linked'));
    const state = await readRegistry(path.join(sub, 'linked', 'servers.json'));
    assert.equal(state.errorCode, 'refused');
    assert.deepEqual(state.servers, []);
  });

  test('a live entry of this very process is read through the real process table', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'own-'));
    const file = path.join(sub, 'servers.json');
    writeRegistryAtomic(file, { version: 1, servers: [ownEntry({ id: 'me' }), ownEntry({ id: 'reused', pidStartTime: ownStartTime() + 1 })] });
    const state = await readRegistry(file);
    assert.deepEqual(state.servers.map((s) => s.id), ['me']);
    assert.match(state.dead[0]?.reason ?? '', /pid reused/);
  });

  test('a file over the size limit is not read past the limit', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'big-'));
    const file = path.join(sub, 'servers.json');
    fs.writeFileSync(file, `{"version":1,"servers":[]}${' '.repeat(100)}`, { mode: 0o600 });
    assert.equal((await readRegistryFile(file, { maxBytes: 50 })).kind, 'oversized');
    assert.equal((await readRegistryFile(file, { maxBytes: 126 })).kind, 'bytes');
    assert.equal((await readRegistryFile(file, { maxBytes: 125 })).kind, 'oversized');
  });

  test('a file open to others is read, with a warning naming it and its mode', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'mode-'));
    fs.chmodSync(sub, 0o700);
    const file = path.join(sub, 'servers.json');
    writeRegistryAtomic(file, { version: 1, servers: [ownEntry({ id: 'open' })] });
    fs.chmodSync(file, 0o644);
    const state = await readRegistry(file);
    assert.deepEqual(state.servers.map((s) => s.id), ['open']);
    assert.ok(state.warnings.some((w) => w.includes(file) && w.includes('644')), state.warnings.join('\n'));
  });

  test('a missing directory or file holds no servers', async () => {
    const state = await readRegistry(path.join(dir, 'nope', 'servers.json'));
    assert.deepEqual(state, { servers: [], dead: [], error: null, errorCode: null, warnings: [] });
  });
});

test('default path: WSREG_REGISTRY, else ~/.peer-plan/servers.json', () => {
  assert.equal(defaultRegistryPath({}), path.join(os.homedir(), '.peer-plan', 'servers.json'));
  assert.equal(defaultRegistryPath({ WSREG_REGISTRY: '/tmp/x/servers.json' }), '/tmp/x/servers.json');
  assert.equal(defaultRegistryPath({ WSREG_REGISTRY: 'rel/servers.json' }), path.resolve('rel/servers.json'));
});

describe('the watcher', () => {
  test('a change is pushed by the directory watch alone (no re-check), also after the directory was replaced', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-watch-'));
    const file = path.join(dir, 'servers.json');
    const w = new RegistryWatcher({ file, recheckMs: 40 });
    /** @type {string[][]} */
    const changes = [];
    w.on('change', (/** @type {import('../index.js').RegistryState} */ s) => changes.push(s.servers.map((e) => e.id)));
    /** @param {string[]} want */
    const waitFor = async (want, ms = 1000) => {
      const t = Date.now();
      while (Date.now() - t < ms) {
        if (JSON.stringify(changes.at(-1)) === JSON.stringify(want)) return;
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.fail(`no change to ${want} within ${ms} ms: ${JSON.stringify(changes)}`);
    };
    try {
      await w.start();
      const first = w.fsWatcher;
      assert.ok(first);
      // Replace the directory; the inode number may well be reused.
      fs.rmSync(dir, { recursive: true });
      fs.mkdirSync(dir, { mode: 0o700 });
      await new Promise((r) => setTimeout(r, 200));
      assert.notEqual(w.fsWatcher, first, 'the new directory is watched');
      assert.ok(w.fsWatcher);
      // From here on only the watch can tell.
      clearInterval(/** @type {NodeJS.Timeout} */ (w.recheckTimer));
      writeRegistryAtomic(file, { version: 1, servers: [ownEntry({ id: 'seen-by-watch' })] });
      await waitFor(['seen-by-watch']);
      writeRegistryAtomic(file, { version: 1, servers: [] });
      await waitFor([]);
    } finally {
      w.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the Host guard', () => {
  test('host names are parsed strictly', () => {
    assert.equal(hostnameOf('LocalHost:5173'), 'localhost');
    assert.equal(hostnameOf('[::1]:80'), '[::1]');
    assert.equal(hostnameOf('[::1]x'), null);
    assert.equal(hostnameOf('[evil.com]'), null);
    assert.equal(hostnameOf('evil.com/.localhost'), null);
    assert.equal(hostnameOf('a b.localhost'), null);
    assert.equal(hostnameOf('user@x.localhost'), null);
    assert.equal(hostnameOf('x.localhost:99999999'), null);
    assert.equal(hostnameOf(''), null);
  });
  test('loopback names', () => {
    for (const h of ['localhost', 'app.localhost', '127.0.0.1', '127.255.0.9', '[::1]']) assert.ok(isLoopbackHostname(h), h);
    for (const h of ['localhost.evil.com', '127.0.0.1.nip.io', '128.0.0.1', '127.0.0.256', '[::2]', 'evillocalhost']) {
      assert.ok(!isLoopbackHostname(h), h);
    }
  });
});
