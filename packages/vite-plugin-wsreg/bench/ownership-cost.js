// What the plugin's full re-check of listening sockets costs (docs/registry-format.md,
// "Liveness"): a child process holding N LISTEN sockets, N entry files pointing at them
// (one each), a RegistryWatcher over them in this process; then the time of one
// re-check of every entry's port as a reader's ask runs it (`recheckListeners` when the
// last check is a second old: the LISTEN tables read, each entry asked, the state
// rebuilt). Cold: the cache of known owners emptied first, so the child's descriptors
// are read (once for all N entries); warm: as every check after the first, the cached
// inodes found still listening, no descriptor read. Baseline: the update the 500 ms
// liveness timer runs (/proc/<pid>/stat only); and one bare read of /proc/net/tcp, the
// floor, which grows with every socket of the namespace (connections and TIME_WAIT
// included), not with the entries. Medians and p90 of R rounds each.
//
//   node packages/vite-plugin-wsreg/bench/ownership-cost.js [entries] [rounds]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { forgetKnownOwners } from '../src/sockets.js';
import { RegistryWatcher, LISTEN_RECHECK_MS } from '../src/watch.js';
import { register, startTimeOf, tempRegistry } from '../test/helpers/registry-writer.js';

const ENTRIES = Number(process.argv[2] ?? 1000);
const ROUNDS = Number(process.argv[3] ?? 30);

const HOLDER = `
const net = require('node:net');
const n = Number(process.argv[1]);
const servers = Array.from({ length: n }, () => net.createServer().listen(0, '127.0.0.1'));
Promise.all(servers.map((s) => new Promise((r) => s.once('listening', r)))).then(() => {
  console.log(JSON.stringify(servers.map((s) => s.address().port)));
});
setInterval(() => {}, 1 << 30);`;

/** @returns {Promise<{ child: import('node:child_process').ChildProcess, ports: number[] }>} */
function startHolder() {
  const child = spawn(process.execPath, ['-e', HOLDER, String(ENTRIES)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    /** @type {NodeJS.ReadableStream} */ (child.stdout).on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ child, ports: JSON.parse(out) });
    });
    child.once('exit', (code) => reject(new Error(`the holder exited ${code}`)));
  });
}

/** @param {number[]} xs */
function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (/** @type {number} */ q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return `median ${at(0.5).toFixed(2)} ms, p90 ${at(0.9).toFixed(2)} ms, min ${s[0].toFixed(2)} ms`;
}

const { child, ports } = await startHolder();
const reg = tempRegistry('wsreg-bench-own-');
try {
  const pid = /** @type {number} */ (child.pid);
  const pidStartTime = startTimeOf(pid);
  ports.forEach((port, i) => register(reg.dir, {
    id: `e-${String(i).padStart(5, '0')}`, kind: 'echo', host: null, port, url: `ws://127.0.0.1:${port}/`,
    pid, pidStartTime, startedAt: '2026-01-01T00:00:00Z', meta: {},
  }));
  const w = new RegistryWatcher({ registry: reg.dir });
  const listed = w.start().servers.length;
  if (listed !== ENTRIES) throw new Error(`${listed} of ${ENTRIES} entries listed`);
  const tcpRows = ['/proc/net/tcp', '/proc/net/tcp6'].map((f) => fs.readFileSync(f, 'latin1').split('\n').length - 2);

  /** @param {boolean} cold */
  const fullCheck = (cold) => {
    if (cold) forgetKnownOwners();
    w.listenCheckedAt -= LISTEN_RECHECK_MS;
    const t0 = performance.now();
    w.recheckListeners();
    const ms = performance.now() - t0;
    if (w.current().servers.length !== ENTRIES) throw new Error('an entry was lost');
    return ms;
  };
  /** @type {Record<string, number[]>} */
  const times = { cold: [], warm: [], timer: [], table: [] };
  for (let i = 0; i < ROUNDS; i++) {
    const read = performance.now();
    fs.readFileSync('/proc/net/tcp', 'latin1'); // the floor: the kernel writing the table
    times.table.push(performance.now() - read);
    times.cold.push(fullCheck(true));
    times.warm.push(fullCheck(false));
    const t0 = performance.now();
    /** @type {any} */ (w).update(); // what the liveness timer runs
    times.timer.push(performance.now() - t0);
  }
  w.close();
  console.log(`${ENTRIES} local entries of one process holding ${ENTRIES} LISTEN sockets; /proc/net/tcp ${tcpRows[0]} rows, tcp6 ${tcpRows[1]}; ${ROUNDS} rounds, node ${process.version}`);
  console.log(`full re-check, cold (descriptors read): ${summary(times.cold)}`);
  console.log(`full re-check, warm (known owners):     ${summary(times.warm)}`);
  console.log(`liveness timer's update (baseline):     ${summary(times.timer)}`);
  console.log(`one read of /proc/net/tcp alone:        ${summary(times.table)}`);
} finally {
  child.kill('SIGKILL');
  fs.rmSync(reg.root, { recursive: true, force: true });
}
