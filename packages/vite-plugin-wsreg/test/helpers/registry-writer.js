// Test-only registry writers, doing what the contract's writers do
// (docs/registry-format.md, "Writing: rename in, unlink out"): an entry is written to
// `.<id>.<random>.tmp` in the registry directory and renamed to `<id>.json`;
// unregistering unlinks it. The legacy file is written the same way (temp file, then
// rename) for the tests of the merge. Also the private temp registry a test uses,
// entries for this process, and the listening sockets that keep them live (readers show
// a local entry only while its process listens on its port). The plugin itself never
// writes the registry.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A fresh private (0700) temp directory `root` holding the registry directory `dir`
 * (`root/servers`, made 0700) and the path of its legacy file (`root/servers.json`,
 * not made). Remove `root` to clean up.
 * @param {string} prefix
 */
export function tempRegistry(prefix) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(root, 0o700);
  const dir = path.join(root, 'servers');
  fs.mkdirSync(dir, { mode: 0o700 });
  return { root, dir, legacyFile: `${dir}.json` };
}

/**
 * Writes `file` whole, by rename: `.<name without .json>.<random>.tmp` beside it first.
 * @param {string} file
 * @param {unknown} data a string or Buffer (as is), else serialised as JSON
 */
export function writeFileAtomic(file, data) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file, '.json')}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  fs.writeFileSync(tmp, typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data), { mode: 0o600, flag: 'wx' });
  fs.renameSync(tmp, file);
}

/**
 * Registers an entry: `<dir>/<id>.json`, version 2.
 * @param {string} dir
 * @param {{ id: string, [field: string]: unknown }} entry
 * @returns {string} the entry file
 */
export function register(dir, entry) {
  const file = path.join(dir, `${entry.id}.json`);
  writeFileAtomic(file, entryFileText(entry));
  return file;
}

/**
 * @param {string} dir
 * @param {string} id
 */
export function unregister(dir, id) {
  fs.rmSync(path.join(dir, `${id}.json`), { force: true });
}

/**
 * Makes the directory hold exactly these entries, touching only the files that
 * differ (so that a call that changes nothing makes no event).
 * @param {string} dir
 * @param {readonly { id: string }[]} entries
 */
export function setServers(dir, entries) {
  const wanted = new Set(entries.map((e) => `${e.id}.json`));
  for (const name of fs.readdirSync(dir)) {
    if (name.endsWith('.json') && !wanted.has(name)) fs.rmSync(path.join(dir, name));
  }
  for (const entry of entries) {
    const file = path.join(dir, `${entry.id}.json`);
    const text = entryFileText(entry);
    if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) writeFileAtomic(file, text);
  }
}

/** @param {Record<string, unknown>} entry */
function entryFileText(entry) {
  return JSON.stringify({ version: 2, ...entry });
}

/**
 * Start time of a process (Linux: /proc/<pid>/stat field 22), else null.
 * @param {number} [pid]
 * @returns {number | null}
 */
export function startTimeOf(pid = process.pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(text.slice(text.lastIndexOf(')') + 1).trim().split(/\s+/)[19]);
  } catch {
    return null;
  }
}

/** @returns {number} this process's start time (0 where it cannot be read) */
export function ownStartTime() {
  return startTimeOf(process.pid) ?? 0;
}

/**
 * An entry for this process (live as long as the test runs), without `version`. Its
 * port is OWN_PORT unless `fields` gives one: give one this process listens on
 * (`listeningPort()`), or the entry is not listed.
 * @param {Record<string, unknown> & { id: string }} fields
 */
export function ownEntry(fields) {
  const port = /** @type {number} */ (fields.port ?? OWN_PORT);
  return {
    kind: 'echo',
    host: os.hostname(),
    port,
    url: `ws://127.0.0.1:${port}/`,
    pid: process.pid,
    pidStartTime: startTimeOf(process.pid),
    startedAt: new Date().toISOString(),
    meta: {},
    ...fields,
  };
}

/**
 * A loopback port this process listens on until it exits: readers show an entry only
 * while its process listens on the entry's port. A connection is closed at once (so a
 * health probe of it fails at once, as it would on a port nobody listens on).
 * @returns {Promise<number>}
 */
export async function listeningPort() {
  const server = net.createServer((socket) => socket.destroy());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  server.unref();
  return /** @type {import('node:net').AddressInfo} */ (server.address()).port;
}

/**
 * `n` distinct loopback ports this process listens on (see listeningPort).
 * @param {number} n
 * @returns {Promise<number[]>}
 */
export function listeningPorts(n) {
  return Promise.all(Array.from({ length: n }, () => listeningPort()));
}

/** The port of `ownEntry` when none is given: this process listens on it. */
export const OWN_PORT = await listeningPort();

/** The stand-in server of `spawnListener`: prints its port, and `closed` once told `close` on stdin. */
const LISTENER_CODE = `
const server = require('node:net').createServer((s) => s.destroy());
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
setInterval(() => {}, 1 << 30);
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'close') server.close(() => console.log('closed'));
});`;

/**
 * A child process that listens on a loopback port of its own and does nothing else: a
 * stand-in server that can be killed, or made to close its listener and live on
 * (`closeListener`). Kill it when done (`child.kill('SIGKILL')`).
 * @param {number} [timeoutMs] how long its answers may take, at most (a failure bound)
 * @returns {Promise<{ child: import('node:child_process').ChildProcess, pid: number, port: number, closeListener: () => Promise<void> }>}
 */
export async function spawnListener(timeoutMs = 5000) {
  const child = spawn(process.execPath, ['-e', LISTENER_CODE], { stdio: ['pipe', 'pipe', 'inherit'] });
  /** @type {string[]} */
  const lines = [];
  /** @type {(() => void) | null} */
  let wake = null;
  let buffered = '';
  /** @type {NodeJS.ReadableStream} */ (child.stdout).setEncoding('utf8');
  /** @type {NodeJS.ReadableStream} */ (child.stdout).on('data', (/** @type {string} */ chunk) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = /** @type {string} */ (parts.pop());
    lines.push(...parts);
    wake?.();
  });
  child.once('exit', () => wake?.());
  /** @returns {Promise<string>} */
  const nextLine = async () => {
    const deadline = Date.now() + timeoutMs;
    while (lines.length === 0) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error('the listener exited');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no answer from the listener within ${timeoutMs} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve(undefined);
        };
      });
      wake = null;
    }
    return /** @type {string} */ (lines.shift());
  };
  const port = Number(await nextLine());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`the listener said ${port}`);
  return {
    child,
    pid: /** @type {number} */ (child.pid),
    port,
    async closeListener() {
      /** @type {NodeJS.WritableStream} */ (child.stdin).write('close\n');
      const line = await nextLine();
      if (line !== 'closed') throw new Error(`the listener said ${line}`);
    },
  };
}
