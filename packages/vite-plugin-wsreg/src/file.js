// Opening what the registry holds without trusting it (docs/registry-format.md,
// "Where it lives" and "Reading", step 2).
//
// A file is opened with O_NOFOLLOW (a symlink is never followed, not even to look),
// checked on the open descriptor (a regular file, owned by this user, within the size
// limit: a larger one is not read at all) and only then read, never past the limit.
// The directory is checked with lstat: a symlink or another user's directory is
// refused; one open to the group or others only draws a warning (readers never
// repair). The identity of a file (device, inode, size, mtime, ctime) is what
// readers that read again and again key their parse cache on.

import fs from 'node:fs';

/**
 * @typedef {import('../index.js').FileRead} FileRead
 * @typedef {{ kind: 'missing' } | { kind: 'ok', identity: string, warning: string | null } | { kind: 'refused', error: string }} DirectoryCheck
 */

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/**
 * The identity a parse is cached under: a rename, a rewrite or a touch changes it.
 * @param {fs.Stats} st
 */
export function fileIdentity(st) {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/**
 * The identity of whatever is at `file` (not following a symlink), or null if nothing is.
 * @param {string} file
 * @returns {string | null}
 */
export function identityAt(file) {
  try {
    const st = fs.lstatSync(file, { throwIfNoEntry: false });
    return st ? fileIdentity(st) : null;
  } catch {
    return null; // ENOTDIR and the like: nothing there either
  }
}

/**
 * Reads a registry file (an entry file or the legacy file), or says why not (the
 * reasons do not repeat the path: the caller names the file).
 * @param {string} file
 * @param {number} maxBytes a larger file is not read at all
 * @returns {FileRead}
 */
export function readOwnFile(file, maxBytes) {
  let fd;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (err) {
    const code = errno(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
    if (code === 'ELOOP' || code === 'EMLINK') return { kind: 'refused', error: 'it is a symlink (not followed)' };
    return { kind: 'refused', error: `cannot open it: ${message(err)}` };
  }
  try {
    const st = fs.fstatSync(fd);
    const owner = ownerProblem(st);
    if (owner) return { kind: 'refused', error: owner };
    if (!st.isFile()) return { kind: 'refused', error: 'it is not a regular file' };
    if (st.size > maxBytes) return { kind: 'oversized', size: st.size };
    // Never more than maxBytes + 1 bytes: enough to notice a file that grew meanwhile.
    let buffer = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let total = 0;
    for (;;) {
      if (total === buffer.length) {
        if (total > maxBytes) return { kind: 'oversized', size: total };
        buffer = Buffer.concat([buffer, Buffer.alloc(Math.min(buffer.length, maxBytes + 1 - buffer.length))]);
      }
      const n = fs.readSync(fd, buffer, total, buffer.length - total, total);
      if (n === 0) break;
      total += n;
    }
    return { kind: 'bytes', bytes: buffer.subarray(0, total) };
  } catch (err) {
    return { kind: 'refused', error: `cannot read it: ${message(err)}` };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Checks the registry directory before it is listed.
 * @param {string} dir
 * @returns {DirectoryCheck}
 */
export function checkDirectory(dir) {
  let st;
  try {
    st = fs.lstatSync(dir, { throwIfNoEntry: false });
  } catch (err) {
    if (errno(err) === 'ENOTDIR') return { kind: 'missing' };
    return { kind: 'refused', error: `cannot inspect registry directory ${dir}: ${message(err)}` };
  }
  if (!st) return { kind: 'missing' };
  if (st.isSymbolicLink()) return { kind: 'refused', error: `registry directory ${dir} is a symlink; refusing to follow it` };
  const owner = ownerProblem(st);
  if (owner) return { kind: 'refused', error: `registry directory ${dir}: ${owner}; refusing to read it` };
  if (!st.isDirectory()) return { kind: 'refused', error: `registry directory ${dir} is not a directory` };
  const mode = st.mode & 0o777;
  const warning =
    mode & 0o077
      ? `registry directory ${dir} is open to the group or others (mode ${mode.toString(8).padStart(3, '0')}); it should be 700`
      : null;
  return { kind: 'ok', identity: `${st.dev}:${st.ino}`, warning };
}

/**
 * @param {fs.Stats} st
 * @returns {string | null}
 */
function ownerProblem(st) {
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  if (uid !== null && st.uid !== uid) return `it belongs to uid ${st.uid}, not to this user (uid ${uid})`;
  return null;
}

/** @param {unknown} err */
function errno(err) {
  return /** @type {NodeJS.ErrnoException} */ (err)?.code;
}

/** @param {unknown} err */
export function message(err) {
  return err instanceof Error ? err.message : String(err);
}
