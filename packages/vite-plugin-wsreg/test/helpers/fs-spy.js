// Records the file system calls the reader makes under one directory (the sync
// functions of node:fs it uses, wrapped in place), so that tests can check what a
// change costs: which files were opened and read, whether the directory was listed.

import fs from 'node:fs';
import path from 'node:path';

/**
 * Starts recording calls on paths under `root`; `restore()` stops.
 * @param {string} root
 */
export function watchFs(root) {
  /** @type {{ open: string[], read: string[], readdir: string[], lstat: string[] }} */
  const calls = { open: [], read: [], readdir: [], lstat: [] };
  /** @type {Map<number, string>} */
  const fds = new Map();
  const real = /** @type {any} */ ({ ...fs });
  const patched = /** @type {any} */ (fs);
  /** @param {unknown} p */
  const under = (p) => typeof p === 'string' && (p === root || p.startsWith(root + path.sep));
  patched.openSync = (/** @type {any[]} */ ...args) => {
    const fd = real.openSync(...args);
    if (under(args[0])) {
      calls.open.push(args[0]);
      fds.set(fd, args[0]);
    }
    return fd;
  };
  patched.readSync = (/** @type {number} */ fd, /** @type {any[]} */ ...rest) => {
    const file = fds.get(fd);
    if (file !== undefined) calls.read.push(file);
    return real.readSync(fd, ...rest);
  };
  patched.closeSync = (/** @type {number} */ fd) => {
    fds.delete(fd);
    return real.closeSync(fd);
  };
  patched.readdirSync = (/** @type {any[]} */ ...args) => {
    if (under(args[0])) calls.readdir.push(args[0]);
    return real.readdirSync(...args);
  };
  patched.lstatSync = (/** @type {any[]} */ ...args) => {
    if (under(args[0])) calls.lstat.push(args[0]);
    return real.lstatSync(...args);
  };
  return {
    calls,
    reset() {
      for (const list of Object.values(calls)) list.length = 0;
    },
    restore() {
      for (const name of ['openSync', 'readSync', 'closeSync', 'readdirSync', 'lstatSync']) patched[name] = real[name];
    },
  };
}
