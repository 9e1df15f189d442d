// One writer's side of the registry directory (docs/registry-format.md, "Writing" and
// "Permissions"), as crates/wsreg/src/registry/store.rs does it: an entry is written to
// `.<id>.<random>.tmp` (created 0600, exclusively) and renamed to `<id>.json`;
// unregistering unlinks it. No lock, no fsync (the registry is soft state). Before each
// write the directory is checked as the Rust writer checks it: created 0700 when missing
// (with its parents only for the default location), refused when it is a symlink, not a
// directory or another user's, and set back to 0700 when others may read it.
//
// The calls are synchronous on purpose: the file is a few hundred bytes, and removal must
// also work from the process's `exit` event, where nothing asynchronous runs.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The largest entry file a reader reads. */
const MAX_ENTRY_FILE_BYTES = 64 * 1024;

/**
 * What identifies one version of a file without reading it (a rewrite renames a new
 * inode in; an edit in place changes the size or a time).
 * @param {fs.BigIntStats} st
 */
function fileId(st) {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * The identity of the file at `file` now (not following a symlink), or null.
 * @param {string} file
 */
export function fileIdAt(file) {
  const st = fs.lstatSync(file, { bigint: true, throwIfNoEntry: false });
  return st ? fileId(st) : null;
}

export class Store {
  /** @param {{ dir: string, given: boolean }} location */
  constructor({ dir, given }) {
    this.dir = dir;
    this.given = given;
  }

  /** @param {string} id */
  entryPath(id) {
    return path.join(this.dir, `${id}.json`);
  }

  /**
   * Writes (or replaces) the entry file of `id` by rename; returns the identity the file
   * had before the rename (the rename changes its ctime, so the next look reads it once).
   * @param {string} id
   * @param {string} text
   */
  write(id, text) {
    this.#prepareDir();
    const tmp = path.join(this.dir, `.${id}.${crypto.randomBytes(6).toString('hex')}.tmp`);
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      let written;
      try {
        fs.writeFileSync(fd, text);
        written = fileId(fs.fstatSync(fd, { bigint: true }));
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.entryPath(id));
      return written;
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Reads the entry file of `id` as a reader would: null when there is none; `text` null
   * when a reader would skip it unread (a symlink, not a regular file, another user's,
   * over 64 KiB, unreadable).
   * @param {string} id
   * @returns {{ text: string | null, fileId: string } | null}
   */
  read(id) {
    const file = this.entryPath(id);
    let fd;
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (e) {
      if (/** @type {NodeJS.ErrnoException} */ (e).code === 'ENOENT') return null;
      return { text: null, fileId: fileIdAt(file) ?? '' };
    }
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      const readable = st.isFile() && st.uid === BigInt(process.geteuid?.() ?? st.uid) && st.size <= MAX_ENTRY_FILE_BYTES;
      return { text: readable ? fs.readFileSync(fd, 'utf8') : null, fileId: fileId(st) };
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Unlinks the entry file of `id`; says whether it was there.
   * @param {string} id
   */
  remove(id) {
    try {
      fs.unlinkSync(this.entryPath(id));
      return true;
    } catch (e) {
      if (/** @type {NodeJS.ErrnoException} */ (e).code === 'ENOENT') return false;
      throw e;
    }
  }

  #prepareDir() {
    const dir = this.dir;
    let st = fs.lstatSync(dir, { throwIfNoEntry: false });
    if (!st) {
      try {
        fs.mkdirSync(dir, { recursive: !this.given, mode: 0o700 });
      } catch (e) {
        const code = /** @type {NodeJS.ErrnoException} */ (e).code;
        if (code === 'ENOENT') {
          throw new Error(
            `cannot create the registry directory ${dir}: its parent does not exist (create it first, or leave out the registry option and WSREG_REGISTRY to use the default)`,
          );
        }
        if (code !== 'EEXIST') throw e; // EEXIST: another writer made it a moment ago
      }
      st = fs.lstatSync(dir);
    }
    if (st.isSymbolicLink()) throw new Error(`refusing ${dir}: it is a symbolic link`);
    if (!st.isDirectory()) throw new Error(`refusing ${dir}: it is not a directory`);
    const me = process.geteuid?.();
    if (me !== undefined && st.uid !== me) {
      throw new Error(`refusing ${dir}: it is owned by uid ${st.uid}, not by this user (uid ${me})`);
    }
    const mode = st.mode & 0o777;
    if (mode & 0o077) {
      process.emitWarning(`${dir}: mode was ${mode.toString(8)}; setting it to 700`);
      fs.chmodSync(dir, 0o700);
    }
  }
}
