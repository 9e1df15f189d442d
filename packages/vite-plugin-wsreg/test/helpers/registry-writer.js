// Test-only registry writers, doing what the contract's writers do
// (docs/registry-format.md, "Writing: rename in, unlink out"): an entry is written to
// `.<id>.<random>.tmp` in the registry directory and renamed to `<id>.json`;
// unregistering unlinks it. The legacy file is written the same way (temp file, then
// rename) for the tests of the merge. Also the private temp registry a test uses, and
// entries for this process. The plugin itself never writes the registry.

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
 * An entry for this process (live as long as the test runs), without `version`.
 * @param {Record<string, unknown> & { id: string }} fields
 */
export function ownEntry(fields) {
  const port = /** @type {number} */ (fields.port ?? 40000);
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
 * while its process listens on the entry's port.
 * @returns {Promise<number>}
 */
export async function listeningPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  server.unref();
  return /** @type {import('node:net').AddressInfo} */ (server.address()).port;
}
