// The registry as last read from disk (docs/registry-format.md, "Reading"): the
// directory's entry files and the legacy file, each parse kept under the file's
// identity so that reading again costs an lstat per file and a parse only for a file
// that changed. `updateEntryFile(name)` is what a watcher calls with the name an event
// gives; `scan()` lists the directory (at start, and when the directory itself
// appeared, went or was replaced).
//
// Every problem with one file skips that file only, with a warning naming it; only a
// refused directory (a symlink, another user's, not a directory) is an error for the
// whole registry. Entries are merged (the directory wins over the legacy file for the
// same id) and ordered by startedAt, then id — before liveness, so a dead directory
// entry still hides its legacy twin. `generation` counts changes, so that callers
// can tell "nothing was read" from "something changed" without comparing lists.

import fs from 'node:fs';
import path from 'node:path';
import { MAX_ENTRY_FILE_BYTES, isEntryFileName, parseEntryFile } from './entry-file.js';
import { checkDirectory, identityAt, message, readOwnFile } from './file.js';
import { MAX_LEGACY_FILE_BYTES, parseRegistry } from './model.js';

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('../index.js').RegistryLocation} RegistryLocation
 * @typedef {{ identity: string | null, entries: ServerEntry[], warnings: string[] }} Slot
 */

/** @type {Slot} */
const EMPTY = Object.freeze({ identity: null, entries: [], warnings: [] });

export class RegistryCache {
  /** @param {RegistryLocation} location */
  constructor(location) {
    this.location = location;
    /** Set while the directory is refused: the whole registry is unreadable. */
    /** @type {string | null} */
    this.error = null;
    /** @type {string | null} */
    this.directoryWarning = null;
    /** Entry files by name; each slot holds one entry or one warning. */
    /** @type {Map<string, Slot>} */
    this.files = new Map();
    /** @type {Slot} */
    this.legacy = EMPTY;
    this.generation = 0;
    /** @type {ServerEntry[] | null} */
    this.merged = null;
  }

  /** Checks and lists the directory, brings every entry file and the legacy file up to date. */
  scan() {
    const { dir, named } = this.location;
    const check = checkDirectory(dir);
    /** @type {string[]} */
    let names = [];
    let error = null;
    let warning = null;
    if (check.kind === 'refused') error = check.error;
    else if (check.kind === 'missing') warning = named ? missingParentWarning(dir) : null;
    else {
      warning = check.warning;
      try {
        names = fs.readdirSync(dir).filter(isEntryFileName);
      } catch (err) {
        error = `cannot list registry directory ${dir}: ${message(err)}`;
      }
    }
    if (error !== this.error || warning !== this.directoryWarning) {
      this.error = error;
      this.directoryWarning = warning;
      this.changed();
    }
    const present = new Set(names);
    for (const name of this.files.keys()) if (!present.has(name)) this.set(name, EMPTY);
    for (const name of names) this.updateEntryFile(name);
    this.updateLegacyFile();
  }

  /**
   * Brings one name of the directory up to date (created, replaced, removed or not an entry at all).
   * @param {string} name
   */
  updateEntryFile(name) {
    if (!isEntryFileName(name) || this.error) return;
    const file = path.join(this.location.dir, name);
    const identity = identityAt(file);
    if (identity === (this.files.get(name)?.identity ?? null)) return;
    if (identity === null) return this.set(name, EMPTY);
    const read = readOwnFile(file, MAX_ENTRY_FILE_BYTES);
    const skipped = (/** @type {string} */ why) => this.set(name, { identity, entries: [], warnings: [`registry entry file ${file} skipped: ${why}`] });
    switch (read.kind) {
      case 'missing':
        return this.set(name, EMPTY);
      case 'refused':
        return skipped(read.error);
      case 'oversized':
        return skipped(`${read.size} bytes, over the limit of ${MAX_ENTRY_FILE_BYTES} (not read)`);
      case 'bytes': {
        const parsed = parseEntryFile(read.bytes, name);
        if ('error' in parsed) return skipped(parsed.error);
        return this.set(name, { identity, entries: [parsed.entry], warnings: [] });
      }
    }
  }

  /** Brings the legacy file up to date (read-only; its problems are warnings). */
  updateLegacyFile() {
    const file = this.location.legacyFile;
    const identity = identityAt(file);
    if (identity === this.legacy.identity) return;
    const read = identity === null ? { kind: /** @type {const} */ ('missing') } : readOwnFile(file, MAX_LEGACY_FILE_BYTES);
    const unread = (/** @type {string} */ why) => ({ identity, entries: [], warnings: [`legacy registry file ${file}: ${why}; no entries from it`] });
    if (read.kind === 'missing') this.legacy = { ...EMPTY, identity };
    else if (read.kind === 'refused') this.legacy = unread(read.error);
    else if (read.kind === 'oversized') this.legacy = unread(`${read.size} bytes or more, over the limit of ${MAX_LEGACY_FILE_BYTES} (not read)`);
    else {
      const parsed = parseRegistry(read.bytes);
      this.legacy =
        parsed.status === 'corrupt'
          ? unread(parsed.reason)
          : { identity, entries: parsed.entries, warnings: parsed.warnings.map((w) => `legacy registry file ${file}: ${w}`) };
    }
    this.changed();
  }

  /**
   * Every valid entry, the directory's and the legacy file's, ordered by startedAt then id.
   * The same array until something changes.
   * @returns {readonly ServerEntry[]}
   */
  entries() {
    if (this.merged === null) {
      const own = [...this.files.values()].flatMap((slot) => slot.entries);
      const ids = new Set(own.map((e) => e.id));
      this.merged = [...own, ...this.legacy.entries.filter((e) => !ids.has(e.id))].sort(byStartThenId);
    }
    return this.merged;
  }

  /** @returns {string[]} every current warning */
  warnings() {
    return [
      ...(this.directoryWarning ? [this.directoryWarning] : []),
      ...[...this.files.values()].flatMap((slot) => slot.warnings),
      ...this.legacy.warnings,
    ];
  }

  /**
   * @private
   * @param {string} name
   * @param {Slot} slot
   */
  set(name, slot) {
    if (slot === EMPTY) this.files.delete(name);
    else this.files.set(name, slot);
    this.changed();
  }

  /** @private */
  changed() {
    this.generation += 1;
    this.merged = null;
  }
}

/**
 * Registration order: startedAt (canonical timestamps sort as text), then id (ASCII:
 * code unit order is byte order).
 * @param {ServerEntry} a
 * @param {ServerEntry} b
 */
function byStartThenId(a, b) {
  if (a.startedAt !== b.startedAt) return a.startedAt < b.startedAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * A named directory whose parent is missing too is likely a typo: say so.
 * @param {string} dir
 * @returns {string | null}
 */
function missingParentWarning(dir) {
  const parent = path.dirname(dir);
  if (fs.existsSync(parent)) return null;
  return `registry directory ${dir} does not exist, nor does its parent ${parent}: no server can register there until it does (is the path right?)`;
}
