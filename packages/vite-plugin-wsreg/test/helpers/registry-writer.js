// Test-only registry writer: what a wsreg writer does, minus the lock
// (tests write from one place): temp file in the same directory, then rename.
// Also the private temp directory a test's registry lives in, and entries for
// this process. The plugin itself never writes the registry.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A fresh private (0700) temp directory and the servers.json path in it.
 * @param {string} prefix
 */
export function tempRegistry(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o700);
  return { dir, file: path.join(dir, 'servers.json') };
}

/**
 * @param {string} file
 * @param {unknown} doc a document (serialised) or a string / Buffer (as is)
 */
export function writeRegistryAtomic(file, doc) {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const data = typeof doc === 'string' || Buffer.isBuffer(doc) ? doc : JSON.stringify(doc, null, 2);
  fs.writeFileSync(tmp, data, { mode: 0o600 });
  fs.renameSync(tmp, file);
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
 * A v1 entry for this process (live as long as the test runs).
 * @param {Record<string, unknown>} fields at least `id`
 */
export function ownEntry(fields) {
  const port = /** @type {number} */ (fields.port ?? 40000);
  return {
    id: 'test',
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
