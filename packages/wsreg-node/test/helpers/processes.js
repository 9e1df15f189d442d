// Real processes for the tests: a private temp registry, the fixture server process
// (fixtures/server.js) with a line protocol over stdin/stdout, a process's start time
// from /proc, and bounded polling for conditions (no sleep is used to synchronise).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'server.js');

/**
 * A fresh private temp directory `root`; the registry `dir` (root/servers) is not made.
 * Remove `root` to clean up.
 */
export function tempRegistry() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-node-'));
  fs.chmodSync(root, 0o700);
  return { root, dir: path.join(root, 'servers') };
}

/**
 * Polls `check` every 10 ms until it returns a truthy value, for at most `timeoutMs`.
 * @template T
 * @param {() => T} check
 * @param {string} what the condition, for the error
 * @param {number} [timeoutMs]
 * @returns {Promise<NonNullable<T>>}
 */
export async function waitFor(check, what, timeoutMs = 5000) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return /** @type {NonNullable<T>} */ (value);
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * The start time of `pid` (/proc/<pid>/stat field 22).
 * @param {number} pid
 */
export function startTimeOf(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/)[19]);
}

/**
 * @typedef {{ server?: 'http' | 'ws' | 'none', options?: Record<string, unknown>, count?: number,
 *   appSigint?: boolean, idle?: boolean }} FixtureConfig
 * @typedef {{ entries: import('../../index.js').ServerEntry[], files: string[], port: number }} Registered
 */

/**
 * Starts fixtures/server.js registered in `registry` and waits for its first line: what
 * it registered.
 * @param {string} registry
 * @param {FixtureConfig} config
 */
export async function startFixture(registry, config) {
  const child = spawn(process.execPath, [FIXTURE], {
    env: { ...process.env, WSREG_REGISTRY: registry, WSREG_TEST_FIXTURE: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} */
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const line = await Promise.race([lines.next(), exited.then(() => ({ done: true, value: undefined }))]);
    if (line.done) throw new Error(`the fixture ended before writing a line: ${stderr}`);
    return /** @type {string} */ (line.value);
  };
  /** @type {Registered} */
  const registered = JSON.parse(await next());
  return {
    child,
    pid: /** @type {number} */ (child.pid),
    ...registered,
    entry: registered.entries[0],
    file: registered.files[0],
    exited,
    next,
    stderr: () => stderr,
    /** @param {string} command */
    send: (command) => child.stdin.write(`${command}\n`),
  };
}
