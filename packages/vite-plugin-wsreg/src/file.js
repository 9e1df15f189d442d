// Reading the registry file safely (docs/registry-format.md, "Where it lives").
//
// A reader takes no lock (writers replace the file by rename). It refuses a
// directory or file that is a symlink or belongs to another user, only warns
// about one open to the group or others, and never reads more than 16 MiB.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAX_FILE_BYTES } from './model.js';

/** @typedef {import('../index.js').FileRead} FileRead */

/**
 * The registry path: the `WSREG_REGISTRY` environment variable, else
 * `$HOME/.peer-plan/servers.json`. A relative path is taken from the current
 * directory, as the `wsreg` command does.
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {string}
 */
export function defaultRegistryPath(env = process.env) {
  const fromEnv = env.WSREG_REGISTRY;
  if (fromEnv) return path.resolve(fromEnv);
  return path.join(os.homedir(), '.peer-plan', 'servers.json');
}

/**
 * Reads the registry file's bytes, or says why not.
 * @param {string} file absolute path of servers.json
 * @param {{ maxBytes?: number }} [options]
 * @returns {Promise<FileRead>}
 */
export async function readRegistryFile(file, options = {}) {
  const maxBytes = options.maxBytes ?? MAX_FILE_BYTES;
  /** @type {string[]} */
  const warnings = [];
  const dir = path.dirname(file);

  let dirStat;
  try {
    dirStat = await fs.promises.lstat(dir);
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return { kind: 'missing', warnings };
    return { kind: 'refused', error: `cannot inspect registry directory ${dir}: ${message(err)}`, warnings };
  }
  const dirProblem = ownershipProblem(dirStat, dir, 'directory');
  if (dirProblem) return { kind: 'refused', error: dirProblem, warnings };
  if (!dirStat.isDirectory()) return { kind: 'refused', error: `registry directory ${dir} is not a directory`, warnings };
  if (dirStat.mode & 0o077) warnings.push(modeWarning('directory', dir, dirStat.mode));

  const noFollow = fs.constants.O_NOFOLLOW;
  if (noFollow === undefined) {
    // No O_NOFOLLOW on this platform: check first (a narrow race remains).
    try {
      if ((await fs.promises.lstat(file)).isSymbolicLink()) {
        return { kind: 'refused', error: `registry file ${file} is a symlink; refusing to follow it`, warnings };
      }
    } catch (err) {
      if (errno(err) === 'ENOENT') return { kind: 'missing', warnings };
    }
  }

  /** @type {fs.promises.FileHandle} */
  let handle;
  try {
    const flags = fs.constants.O_RDONLY | (noFollow ?? 0) | (fs.constants.O_NONBLOCK ?? 0);
    handle = await fs.promises.open(file, flags);
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT') return { kind: 'missing', warnings };
    if (code === 'ELOOP' || code === 'EMLINK') {
      return { kind: 'refused', error: `registry file ${file} is a symlink; refusing to follow it`, warnings };
    }
    return { kind: 'refused', error: `cannot open registry file ${file}: ${message(err)}`, warnings };
  }
  try {
    const st = await handle.stat();
    const problem = ownershipProblem(st, file, 'file');
    if (problem) return { kind: 'refused', error: problem, warnings };
    if (!st.isFile()) return { kind: 'refused', error: `registry file ${file} is not a regular file`, warnings };
    if (st.mode & 0o077) warnings.push(modeWarning('file', file, st.mode));
    if (st.size > maxBytes) return { kind: 'oversized', size: st.size, warnings };

    // Read at most maxBytes + 1 bytes: enough to notice a file that grew.
    /** @type {Buffer[]} */
    const chunks = [];
    let total = 0;
    const chunkSize = Math.min(Math.max(st.size + 1, 64 * 1024), maxBytes + 1);
    for (;;) {
      const want = Math.min(chunkSize, maxBytes + 1 - total);
      if (want <= 0) return { kind: 'oversized', size: total, warnings };
      const chunk = Buffer.allocUnsafe(want);
      const { bytesRead } = await handle.read(chunk, 0, want, total);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total > maxBytes) return { kind: 'oversized', size: total, warnings };
    return { kind: 'bytes', bytes: Buffer.concat(chunks, total), warnings };
  } finally {
    await handle.close();
  }
}

/**
 * @param {fs.Stats} st
 * @param {string} where
 * @param {'file' | 'directory'} what
 * @returns {string | null}
 */
function ownershipProblem(st, where, what) {
  if (st.isSymbolicLink()) return `registry ${what} ${where} is a symlink; refusing to follow it`;
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  if (uid !== null && st.uid !== uid) {
    return `registry ${what} ${where} belongs to uid ${st.uid}, not to this user (uid ${uid}); refusing to read it`;
  }
  return null;
}

/**
 * @param {'file' | 'directory'} what
 * @param {string} where
 * @param {number} mode
 */
function modeWarning(what, where, mode) {
  const octal = (mode & 0o777).toString(8).padStart(3, '0');
  return `registry ${what} ${where} is open to the group or others (mode ${octal}); it should be ${what === 'file' ? '600' : '700'}`;
}

/** @param {unknown} err */
function errno(err) {
  return /** @type {NodeJS.ErrnoException} */ (err)?.code;
}

/** @param {unknown} err */
function message(err) {
  return err instanceof Error ? err.message : String(err);
}
