// What the plugin's health probes cost: N real `wsreg echo` servers, a Vite dev server
// with the plugin in a process of its own, one SSE subscriber; the CPU time of the Vite
// process (utime + stime from /proc) over a window, with probes at the default interval
// and, as the baseline, with probes off. Also counts the events pushed in the window
// (a steady list should push none). And the same servers with nobody subscribed: no
// probe, no liveness timer, so the plugin should cost what Vite costs alone.
//
//   WSREG_BIN=target/debug/wsreg node packages/vite-plugin-wsreg/bench/health-cost.js [servers] [seconds]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openEventStream } from '../test/helpers/http-client.js';
import { tempRegistry } from '../test/helpers/registry-writer.js';
import { WSREG_BIN } from '../test/helpers/wsreg-bin.js';
import { readRegistry } from '../src/registry.js';

const SERVERS = Number(process.argv[2] ?? 100);
const SECONDS = Number(process.argv[3] ?? 30);
const PLUGIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/index.js');
const TICKS = 100; // USER_HZ on Linux

/** @param {number} pid */
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
}

/**
 * @param {() => boolean} check
 * @param {number} timeoutMs
 * @param {string} what
 */
async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A Vite dev server with the plugin, in a child process; resolves with its URL.
 * @param {string} registry
 * @param {number} healthInterval
 */
async function startViteProcess(registry, healthInterval) {
  const site = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-bench-site-'));
  fs.writeFileSync(path.join(site, 'index.html'), '<!doctype html><title>bench</title>\n');
  const script = `
    import { createServer } from 'vite';
    import wsreg from ${JSON.stringify(PLUGIN)};
    const server = await createServer({ root: ${JSON.stringify(site)}, configFile: false, logLevel: 'silent',
      cacheDir: ${JSON.stringify(path.join(site, '.vite'))},
      server: { host: '127.0.0.1', port: 0, watch: null },
      plugins: [wsreg({ registry: ${JSON.stringify(registry)}, healthInterval: ${healthInterval} })] });
    await server.listen();
    console.log('port ' + server.httpServer.address().port);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], cwd: PLUGIN.replace(/packages\/.*/, '') });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/port (\d+)/);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`vite exited ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, site };
}

/**
 * @param {string} registry
 * @param {number} healthInterval
 */
async function measure(registry, healthInterval) {
  const vite = await startViteProcess(registry, healthInterval);
  const stream = await openEventStream(`${vite.url}/api/registry/events`);
  try {
    /** @param {string} data */
    const allOk = (data) => {
      const { servers } = JSON.parse(data);
      return servers.length === SERVERS && servers.every((/** @type {any} */ s) => s.health.state === 'ok');
    };
    const first = await stream.next();
    if (healthInterval > 0 && !allOk(first.data)) await stream.next({ timeoutMs: 20000, accept: (e) => allOk(e.data) });
    const pid = /** @type {number} */ (vite.child.pid);
    const before = cpuTicks(pid);
    const t0 = performance.now();
    const pushed = await new Promise((resolve) => {
      let n = 0;
      const take = () =>
        stream.next({ timeoutMs: Math.max(1, SECONDS * 1000 - (performance.now() - t0)) }).then(
          () => {
            n += 1;
            take();
          },
          () => resolve(n),
        );
      take();
    });
    const cpuSecs = (cpuTicks(pid) - before) / TICKS;
    const wallSecs = (performance.now() - t0) / 1000;
    return { cpuSecs, wallSecs, percent: (100 * cpuSecs) / wallSecs, pushed };
  } finally {
    stream.close();
    vite.child.kill('SIGTERM');
    fs.rmSync(vite.site, { recursive: true, force: true });
  }
}

/**
 * The Vite process's CPU over the window with nobody subscribed (after one GET, as a
 * page load would make; then nothing).
 * @param {string} registry
 */
async function measureUnsubscribed(registry) {
  const vite = await startViteProcess(registry, 5000);
  try {
    const answer = await fetch(`${vite.url}/api/registry`).then((r) => r.json());
    if (answer.servers.length !== SERVERS) throw new Error(`${answer.servers.length} servers listed, not ${SERVERS}`);
    const pid = /** @type {number} */ (vite.child.pid);
    const before = cpuTicks(pid);
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    const cpuSecs = (cpuTicks(pid) - before) / TICKS;
    const wallSecs = (performance.now() - t0) / 1000;
    return { cpuSecs, wallSecs, percent: (100 * cpuSecs) / wallSecs };
  } finally {
    vite.child.kill('SIGTERM');
    fs.rmSync(vite.site, { recursive: true, force: true });
  }
}

const reg = tempRegistry('wsreg-bench-health-');
/** @type {import('node:child_process').ChildProcess[]} */
const echoes = [];
try {
  for (let i = 0; i < SERVERS; i++) {
    echoes.push(spawn(WSREG_BIN, ['echo'], { env: { ...process.env, WSREG_REGISTRY: reg.dir, WSREG_LOG: 'warn' }, stdio: 'ignore' }));
  }
  await until(() => readRegistry(reg.dir).servers.length === SERVERS, 60000, `${SERVERS} servers registered`);
  for (const [label, interval] of /** @type {const} */ ([['probes off (baseline)', 0], ['probes every 5 s', 5000]])) {
    const r = await measure(reg.dir, interval);
    console.log(
      `${SERVERS} wsreg echo, 1 SSE subscriber, ${label}: Vite process ${r.cpuSecs.toFixed(2)} s CPU in ${r.wallSecs.toFixed(1)} s = ${r.percent.toFixed(2)} % of one core; ${r.pushed} events pushed`,
    );
  }
  const idle = await measureUnsubscribed(reg.dir);
  console.log(
    `${SERVERS} wsreg echo, nobody subscribed: Vite process ${idle.cpuSecs.toFixed(2)} s CPU in ${idle.wallSecs.toFixed(1)} s = ${idle.percent.toFixed(2)} % of one core`,
  );
} finally {
  for (const e of echoes) if (e.pid !== undefined && e.exitCode === null) process.kill(e.pid, 'SIGTERM');
  await until(() => echoes.every((e) => e.exitCode !== null || e.signalCode !== null), 10000, 'echo servers exited').catch(() => {
    for (const e of echoes) if (e.pid !== undefined && e.exitCode === null && e.signalCode === null) process.kill(e.pid, 'SIGKILL');
  });
  fs.rmSync(reg.root, { recursive: true, force: true });
}
