// What one health probe costs the prober, alone: N real `wsreg echo` servers, probed in
// rounds as the plugin's monitor does (at most CONCURRENCY at a time, default 64 as the
// monitor's), in this process; the CPU time (user + system, process.cpuUsage) per probe.
// health-cost.js measures the whole plugin in a Vite process; this isolates probe.js,
// finer than /proc's 10 ms ticks. GAP_MS=2500 pauses before each round, as the
// monitor's 5 s do: caches go cold and a probe costs about twice what it does back to
// back. With a second probe module (PROBE_B=path, e.g. an older probe.js copied out),
// rounds alternate between the two so both see the same machine load, and the ratio is
// printed.
//
//   WSREG_BIN=target/release/wsreg [GAP_MS=2500] [CONCURRENCY=64] [PROBE_B=old-probe.js] \
//     node packages/vite-plugin-wsreg/bench/probe-cost.js [servers] [rounds]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempRegistry } from '../test/helpers/registry-writer.js';
import { WSREG_BIN } from '../test/helpers/wsreg-bin.js';
import { readRegistry } from '../src/registry.js';
import { probe } from '../src/probe.js';

const SERVERS = Number(process.argv[2] ?? 100);
const ROUNDS = Number(process.argv[3] ?? 30);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
/** A pause before each measured round, ms (the monitor's rounds are 5 s apart: caches go cold between them). */
const GAP_MS = Number(process.env.GAP_MS ?? 0);

/** @typedef {(entry: { url: string }, timeoutMs: number) => Promise<number | null>} Probe */

/**
 * One round: every entry probed once, at most CONCURRENCY at a time.
 * @param {Probe} run
 * @param {{ url: string }[]} entries
 * @returns {Promise<number>} how many probes failed
 */
async function round(run, entries) {
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < entries.length) {
      const entry = entries[next++];
      if ((await run(entry, 1000)) === null) failed += 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return failed;
}

/**
 * @param {Probe} run
 * @param {{ url: string }[]} entries
 * @returns {Promise<number>} CPU µs per probe
 */
async function measure(run, entries) {
  const before = process.cpuUsage();
  const failed = await round(run, entries);
  const used = process.cpuUsage(before);
  if (failed > 0) throw new Error(`${failed} of ${entries.length} probes failed`);
  return (used.user + used.system) / entries.length;
}

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const variants = /** @type {[string, Probe][]} */ ([['probe.js', probe]]);
if (process.env.PROBE_B) {
  const other = await import(pathToFileURL(path.resolve(process.env.PROBE_B)).href);
  variants.push([path.basename(process.env.PROBE_B), other.probe]);
}

const reg = tempRegistry('wsreg-bench-probe-');
/** @type {import('node:child_process').ChildProcess[]} */
const echoes = [];
try {
  for (let i = 0; i < SERVERS; i++) {
    echoes.push(spawn(WSREG_BIN, ['echo'], { env: { ...process.env, WSREG_REGISTRY: reg.dir, WSREG_LOG: 'warn' }, stdio: 'ignore' }));
  }
  const deadline = Date.now() + 60000;
  let entries = readRegistry(reg.dir).servers;
  while (entries.length < SERVERS) {
    if (Date.now() > deadline) throw new Error(`${entries.length} of ${SERVERS} servers registered`);
    await new Promise((r) => setTimeout(r, 50));
    entries = readRegistry(reg.dir).servers;
  }
  for (const [, run] of variants) await round(run, entries); // warm-up
  /** @type {number[][]} */
  const samples = variants.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, [, run]] of variants.entries()) {
      if (GAP_MS > 0) await new Promise((resolve) => setTimeout(resolve, GAP_MS));
      samples[i].push(await measure(run, entries));
    }
  }
  const medians = samples.map(median);
  for (const [i, [name]] of variants.entries()) {
    console.log(`${name}: ${medians[i].toFixed(0)} µs CPU per probe (median of ${ROUNDS} rounds of ${SERVERS} probes)`);
  }
  if (medians.length === 2) console.log(`ratio ${variants[0][0]} / ${variants[1][0]}: ${(medians[0] / medians[1]).toFixed(2)}`);
} finally {
  const exited = echoes.map((e) => (e.exitCode !== null || e.signalCode !== null ? null : new Promise((resolve) => e.once('exit', resolve))));
  for (const e of echoes) if (e.pid !== undefined && e.exitCode === null) process.kill(e.pid, 'SIGTERM');
  await Promise.all(exited); // each unlinks its entry as it goes
  fs.rmSync(reg.root, { recursive: true, force: true });
}
