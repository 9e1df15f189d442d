// Pieces of the reader that the vectors cannot reach: /proc parsing, the real
// process table, where the registry lives, file safety (symlinks, size, modes), the
// legacy file, and the watcher: one change costs one file's parse, a corrupt or
// symlinked entry hides that entry only, the directory and the legacy file appearing,
// and no timer while nothing can die unseen. Waits are for events, never sleeps.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseProcStat, readRegistry, registryLocation, systemProcessTable } from '../src/registry.js';
import { hostnameOf, isLoopbackHostname } from '../src/guard.js';
import { RegistryWatcher } from '../src/watch.js';
import {
  listeningPort,
  ownEntry,
  ownStartTime,
  register,
  spawnListener,
  startTimeOf,
  tempRegistry,
  unregister,
  writeFileAtomic,
} from './helpers/registry-writer.js';
import { watchFs } from './helpers/fs-spy.js';
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


/** @param {import('../index.js').RegistryState} state */
const ids = (state) => state.servers.map((s) => s.id);

/**
 * The first state the watcher reaches (now or by a `change`) that `accept` takes.
 * The timeout is a failure bound, not a wait.
 * @param {RegistryWatcher} w
 * @param {(state: import('../index.js').RegistryState) => boolean} accept
 * @returns {Promise<import('../index.js').RegistryState>}
 */
function reaches(w, accept, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    if (accept(w.current())) return resolve(w.current());
    const timer = setTimeout(() => {
      w.off('change', onChange);
      reject(new Error(`no such change within ${timeoutMs} ms; servers: ${JSON.stringify(ids(w.current()))}`));
    }, timeoutMs);
    /** @param {import('../index.js').RegistryState} state */
    const onChange = (state) => {
      if (!accept(state)) return;
      clearTimeout(timer);
      w.off('change', onChange);
      resolve(state);
    };
    w.on('change', onChange);
  });
}

/**
 * The next `warning` the watcher emits that `accept` takes.
 * @param {RegistryWatcher} w
 * @param {(warning: string) => boolean} accept
 * @returns {Promise<string>}
 */
function warns(w, accept, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.off('warning', onWarning);
      reject(new Error(`no such warning within ${timeoutMs} ms`));
    }, timeoutMs);
    /** @param {string} warning */
    const onWarning = (warning) => {
      if (!accept(warning)) return;
      clearTimeout(timer);
      w.off('warning', onWarning);
      resolve(warning);
    };
    w.on('warning', onWarning);
  });
}

describe('where the registry lives', () => {
  test('default: ~/.peer-plan/servers/, legacy file ~/.peer-plan/servers.json', () => {
    const dir = path.join(os.homedir(), '.peer-plan', 'servers');
    assert.deepEqual(registryLocation(undefined, {}), { dir, legacyFile: `${dir}.json`, named: false });
  });
  test('WSREG_REGISTRY names the directory; the legacy file is its path + .json', () => {
    const want = { dir: '/tmp/x/reg', legacyFile: '/tmp/x/reg.json', named: true };
    assert.deepEqual(registryLocation(undefined, { WSREG_REGISTRY: '/tmp/x/reg' }), want);
    assert.deepEqual(registryLocation(undefined, { WSREG_REGISTRY: '/tmp/x/reg/' }), want);
    assert.deepEqual(registryLocation('rel/reg', {}).dir, path.resolve('rel/reg'));
  });
  test('a path ending in .json names the legacy file: the directory is the path without .json', () => {
    assert.deepEqual(registryLocation(undefined, { WSREG_REGISTRY: '/tmp/x/servers.json' }), {
      dir: '/tmp/x/servers',
      legacyFile: '/tmp/x/servers.json',
      named: true,
    });
  });
  test('the plugin option wins over the environment', () => {
    assert.equal(registryLocation('/a/b', { WSREG_REGISTRY: '/c/d' }).dir, '/a/b');
  });
});

describe('reading the directory', () => {
  /** @type {ReturnType<typeof tempRegistry>} */
  let reg;
  before(() => {
    reg = tempRegistry('wsreg-read-');
  });
  after(() => fs.rmSync(reg.root, { recursive: true, force: true }));
  const clear = () => {
    fs.rmSync(reg.dir, { recursive: true, force: true });
    fs.rmSync(reg.legacyFile, { force: true });
    fs.mkdirSync(reg.dir, { mode: 0o700 });
  };

  test('a live entry of this very process is read through the real process table; a reused PID is not', () => {
    clear();
    register(reg.dir, ownEntry({ id: 'me' }));
    register(reg.dir, ownEntry({ id: 'reused', pidStartTime: ownStartTime() + 1 }));
    const state = readRegistry(reg.dir);
    assert.deepEqual(ids(state), ['me']);
    assert.match(state.dead[0]?.reason ?? '', /pid reused/);
    assert.deepEqual(state.warnings, []);
  });

  test('entries are ordered by startedAt, then id', () => {
    clear();
    register(reg.dir, ownEntry({ id: 'b', startedAt: '2026-01-01T00:00:01Z' }));
    register(reg.dir, ownEntry({ id: 'c', startedAt: '2026-01-01T00:00:00Z' }));
    register(reg.dir, ownEntry({ id: 'a', startedAt: '2026-01-01T00:00:01.000Z' }));
    assert.deepEqual(ids(readRegistry(reg.dir)), ['c', 'a', 'b']);
  });

  test('a symlinked entry file is not followed, not even read: that entry only is hidden, with a warning', () => {
    clear();
    register(reg.dir, ownEntry({ id: 'real' }));
    const outside = path.join(reg.root, 'outside.json');
    writeFileAtomic(outside, { version: 2, ...ownEntry({ id: 'planted' }) });
    fs.symlinkSync(outside, path.join(reg.dir, 'planted.json'));
    const spy = watchFs(reg.root);
    try {
      const state = readRegistry(reg.dir);
      assert.deepEqual(ids(state), ['real']);
      assert.ok(state.warnings.some((w) => w.includes(path.join(reg.dir, 'planted.json')) && /symlink/.test(w)), state.warnings.join('\n'));
      assert.ok(!spy.calls.open.includes(outside) && !spy.calls.read.some((f) => f.includes('planted')), JSON.stringify(spy.calls));
    } finally {
      spy.restore();
    }
  });

  test('a symlinked registry directory is refused, with an error naming it', () => {
    const real = path.join(reg.root, 'real-dir');
    fs.mkdirSync(real, { mode: 0o700 });
    register(real, ownEntry({ id: 'x' }));
    const linked = path.join(reg.root, 'linked');
    fs.symlinkSync(real, linked);
    const state = readRegistry(linked);
    assert.deepEqual(state.servers, []);
    assert.match(String(state.error), /symlink/);
    assert.ok(String(state.error).includes(linked));
  });

  test('an entry file over 64 KiB is not read at all; one of exactly 64 KiB is', () => {
    clear();
    const text = JSON.stringify({ version: 2, ...ownEntry({ id: 'big' }) });
    writeFileAtomic(path.join(reg.dir, 'big.json'), text.padEnd(64 * 1024 + 1, ' '));
    writeFileAtomic(path.join(reg.dir, 'fits.json'), text.replace('"big"', '"fits"').padEnd(64 * 1024, ' '));
    const spy = watchFs(reg.root);
    try {
      const state = readRegistry(reg.dir);
      assert.deepEqual(ids(state), ['fits']);
      assert.ok(state.warnings.some((w) => w.includes('big.json') && /65537 bytes/.test(w)));
      assert.ok(!spy.calls.read.some((f) => f.endsWith('big.json')), 'the oversized file was read');
      assert.ok(spy.calls.read.some((f) => f.endsWith('fits.json')));
    } finally {
      spy.restore();
    }
  });

  test('a corrupt entry file hides that entry only', () => {
    clear();
    register(reg.dir, ownEntry({ id: 'a' }));
    register(reg.dir, ownEntry({ id: 'b' }));
    writeFileAtomic(path.join(reg.dir, 'b.json'), '{"version":2,"id":"b","po');
    const state = readRegistry(reg.dir);
    assert.deepEqual(ids(state), ['a']);
    assert.equal(state.error, null);
    assert.ok(state.warnings.some((w) => w.includes(path.join(reg.dir, 'b.json')) && /not JSON/.test(w)));
  });

  test('a directory open to others is read, with a warning naming it and its mode', () => {
    clear();
    register(reg.dir, ownEntry({ id: 'open' }));
    fs.chmodSync(reg.dir, 0o755);
    try {
      const state = readRegistry(reg.dir);
      assert.deepEqual(ids(state), ['open']);
      assert.ok(state.warnings.some((w) => w.includes(reg.dir) && w.includes('755')), state.warnings.join('\n'));
    } finally {
      fs.chmodSync(reg.dir, 0o700);
    }
  });

  test('no directory: no servers; a warning only when a named directory lacks its parent too', () => {
    const missing = readRegistry(path.join(reg.root, 'not-yet'));
    assert.deepEqual(missing, { servers: [], dead: [], error: null, warnings: [] });
    const typo = readRegistry(path.join(reg.root, 'no-such-parent', 'servers'));
    assert.deepEqual(typo.servers, []);
    assert.equal(typo.error, null);
    assert.match(typo.warnings.join('\n'), /no-such-parent.*(is the path right)/);
  });

  test('the legacy file is merged (the directory wins for an id in both); a bad legacy file is a warning, not an error', async () => {
    clear();
    const [dirPort, legacyPort] = [await listeningPort(), await listeningPort()];
    register(reg.dir, ownEntry({ id: 'both', port: dirPort, startedAt: '2026-01-01T00:00:02Z' }));
    writeFileAtomic(reg.legacyFile, {
      version: 1,
      servers: [ownEntry({ id: 'both', port: legacyPort }), ownEntry({ id: 'old', startedAt: '2026-01-01T00:00:01Z' })],
    });
    const state = readRegistry(reg.dir);
    assert.deepEqual(ids(state), ['old', 'both']);
    assert.equal(state.servers[1].port, dirPort);
    assert.deepEqual(readRegistry(reg.legacyFile), state, 'the .json path names the same registry');
    assert.equal(fs.existsSync(path.join(reg.dir, 'old.json')), false, 'the reader writes nothing');

    for (const bad of ['{"version":2,"servers":[]}', '{"servers":', '[]']) {
      writeFileAtomic(reg.legacyFile, bad);
      const after = readRegistry(reg.dir);
      assert.equal(after.error, null, bad);
      assert.deepEqual(ids(after), ['both'], bad);
      assert.ok(after.warnings.some((w) => w.includes(reg.legacyFile)), bad);
      assert.equal(fs.readFileSync(reg.legacyFile, 'utf8'), bad, 'the legacy file is left as it is');
    }
  });
});

describe('the watcher', () => {
  /** @type {ReturnType<typeof tempRegistry>} */
  let reg;
  /** @type {RegistryWatcher} */
  let w;
  before(() => {
    reg = tempRegistry('wsreg-watch-');
  });
  after(() => fs.rmSync(reg.root, { recursive: true, force: true }));
  /** @param {import('../index.js').RegistryWatcherOptions} [options] */
  const watcher = (options = {}) => {
    fs.rmSync(reg.dir, { recursive: true, force: true });
    fs.rmSync(reg.legacyFile, { force: true });
    fs.mkdirSync(reg.dir, { mode: 0o700 });
    w = new RegistryWatcher({ registry: reg.dir, ...options });
    return w;
  };
  const close = () => w?.close();

  test('a change to one file re-parses that file only, whatever the number of entries', async (t) => {
    t.after(close);
    watcher();
    const many = Array.from({ length: 200 }, (_, i) => ownEntry({ id: `e-${String(i).padStart(3, '0')}`, startedAt: '2026-01-01T00:00:00Z' }));
    for (const e of many) register(reg.dir, e);
    const before = w.start();
    assert.equal(before.servers.length, 200);
    // The write is synchronous: what the spy records from here on is the reader's.
    const moved = await listeningPort();
    const changedFile = register(reg.dir, { ...many[7], port: moved });
    const spy = watchFs(reg.root);
    try {
      const after = await reaches(w, (s) => s.servers[7].port === moved);
      assert.deepEqual(spy.calls.readdir, [], 'the directory was listed again');
      assert.deepEqual(spy.calls.open, [changedFile]);
      assert.deepEqual([...new Set(spy.calls.lstat)], [changedFile]);
      // Every other entry is the very object parsed before.
      for (let i = 0; i < 200; i++) if (i !== 7) assert.equal(after.servers[i], before.servers[i]);

      spy.reset();
      unregister(reg.dir, 'e-100');
      await reaches(w, (s) => s.servers.length === 199);
      assert.deepEqual(spy.calls.open, []);
      assert.deepEqual(spy.calls.readdir, []);
    } finally {
      spy.restore();
    }
  });

  test('a corrupt write hides that entry only, with a warning; its rewrite brings it back', async (t) => {
    t.after(close);
    watcher();
    register(reg.dir, ownEntry({ id: 'keep' }));
    const file = register(reg.dir, ownEntry({ id: 'torn' }));
    assert.deepEqual(ids(w.start()).sort(), ['keep', 'torn']);
    const warned = warns(w, (m) => m.includes(file) && /not JSON/.test(m));
    writeFileAtomic(file, '{"version":2,"id":"torn",');
    assert.deepEqual(ids(await reaches(w, (s) => s.servers.length === 1)), ['keep']);
    await warned;
    register(reg.dir, ownEntry({ id: 'torn' }));
    await reaches(w, (s) => s.servers.length === 2);
  });

  test('a symlink planted as an entry file is not followed', async (t) => {
    t.after(close);
    watcher();
    register(reg.dir, ownEntry({ id: 'real' }));
    w.start();
    const outside = path.join(reg.root, 'planted-target.json');
    writeFileAtomic(outside, { version: 2, ...ownEntry({ id: 'planted' }) });
    const link = path.join(reg.dir, 'planted.json');
    const warned = warns(w, (m) => m.includes(link) && /symlink/.test(m));
    fs.symlinkSync(outside, link);
    await warned;
    assert.deepEqual(ids(w.current()), ['real']);
  });

  test('the legacy file is watched: it appears, loses to the directory, and goes', async (t) => {
    t.after(close);
    watcher();
    w.start();
    const [legacyPort, dirPort] = [await listeningPort(), await listeningPort()];
    writeFileAtomic(reg.legacyFile, { version: 1, servers: [ownEntry({ id: 'old', port: legacyPort })] });
    await reaches(w, (s) => ids(s).includes('old'));
    register(reg.dir, ownEntry({ id: 'old', port: dirPort }));
    await reaches(w, (s) => s.servers.length === 1 && s.servers[0].port === dirPort);
    unregister(reg.dir, 'old');
    await reaches(w, (s) => s.servers[0]?.port === legacyPort);
    fs.rmSync(reg.legacyFile);
    await reaches(w, (s) => s.servers.length === 0);
  });

  test('the directory may appear late, under a parent made later, and be replaced', async (t) => {
    t.after(close);
    const base = path.join(reg.root, 'late');
    const dir = path.join(base, 'deeper', 'servers');
    w = new RegistryWatcher({ registry: dir });
    assert.deepEqual(w.start().servers, []);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    register(dir, ownEntry({ id: 'first' }));
    await reaches(w, (s) => ids(s).includes('first'));
    // Replaced: the inode number may well be reused, the watch must follow the path.
    fs.rmSync(dir, { recursive: true });
    await reaches(w, (s) => s.servers.length === 0);
    fs.mkdirSync(dir, { mode: 0o700 });
    register(dir, ownEntry({ id: 'second' }));
    await reaches(w, (s) => ids(s).includes('second'));
    register(dir, ownEntry({ id: 'third' }));
    await reaches(w, (s) => ids(s).includes('third'));
  });

  test('no timer runs while no live entry can end unseen', async (t) => {
    t.after(close);
    watcher({ recheckMs: 20 });
    w.start();
    assert.equal(w.livenessTimer, null, 'an empty registry runs a timer');
    assert.equal(w.debounceTimer, null);
    register(reg.dir, { ...ownEntry({ id: 'elsewhere' }), host: 'another-host', pid: 1 });
    await reaches(w, (s) => ids(s).includes('elsewhere'));
    assert.equal(w.livenessTimer, null, "another host's entry without a lease cannot end unseen");
    register(reg.dir, ownEntry({ id: 'mine' }));
    await reaches(w, (s) => ids(s).includes('mine'));
    assert.notEqual(w.livenessTimer, null, 'a process on this host may be SIGKILLed');
    unregister(reg.dir, 'mine');
    await reaches(w, (s) => !ids(s).includes('mine'));
    assert.equal(w.livenessTimer, null);
    unregister(reg.dir, 'elsewhere');
    await reaches(w, (s) => s.servers.length === 0);
    assert.equal(w.livenessTimer, null);
    assert.equal(w.debounceTimer, null);
  });

  test('with pushWhileHeld the timer runs only while held; a request re-checks anyway, and the first holder at once', { skip: process.platform !== 'linux' }, async (t) => {
    t.after(close);
    watcher({ recheckMs: 20, pushWhileHeld: true });
    const { child, pid, port } = await spawnListener();
    t.after(() => child.kill('SIGKILL'));
    register(reg.dir, { ...ownEntry({ id: 'doomed', port }), pid, pidStartTime: startTimeOf(pid) });
    assert.deepEqual(ids(w.start()), ['doomed']);
    assert.equal(w.livenessTimer, null, 'nobody holds: an idle plugin reads nothing');
    const release = w.hold();
    assert.notEqual(w.livenessTimer, null, 'held: a process on this host may be SIGKILLed unseen');
    const second = w.hold();
    release();
    assert.notEqual(w.livenessTimer, null, 'one holder is left');
    second();
    second(); // idempotent: the count does not go below zero
    assert.equal(w.livenessTimer, null, 'let go by all');
    assert.equal(w.holders, 0);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.deepEqual(ids(w.current()), ['doomed'], 'nobody holds and nobody asked: not re-checked');
    assert.deepEqual(ids(w.refresh()), [], "a request's refresh re-checks liveness itself");
    // Held again, an exit that came while nobody held is pushed at once.
    const other = await spawnListener();
    t.after(() => other.child.kill('SIGKILL'));
    register(reg.dir, { ...ownEntry({ id: 'later', port: other.port }), pid: other.pid, pidStartTime: startTimeOf(other.pid) });
    await reaches(w, (s) => ids(s).includes('later'));
    other.child.kill('SIGKILL');
    await new Promise((resolve) => other.child.once('exit', resolve));
    const changed = new Promise((resolve) => w.once('change', resolve));
    const held = w.hold();
    t.after(held);
    assert.deepEqual(ids(w.current()), [], 'the first holder gets a re-check at once');
    await changed;
  });

  test('a SIGKILLed process is dropped by the liveness re-check, which lists and reads nothing', { skip: process.platform !== 'linux' }, async (t) => {
    t.after(close);
    watcher({ recheckMs: 20 });
    const { child, pid, port } = await spawnListener();
    t.after(() => child.kill('SIGKILL'));
    register(reg.dir, { ...ownEntry({ id: 'doomed', port }), pid, pidStartTime: startTimeOf(pid) });
    assert.deepEqual(ids(w.start()), ['doomed']);
    const spy = watchFs(reg.root);
    try {
      child.kill('SIGKILL');
      await reaches(w, (s) => s.servers.length === 0);
      assert.deepEqual(spy.calls, { open: [], read: [], readdir: [], lstat: [] });
      assert.equal(w.livenessTimer, null);
    } finally {
      spy.restore();
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
