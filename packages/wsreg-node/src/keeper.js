// Keeps one entry file present while its registration lives (docs/registry-format.md,
// "Keeping an entry present"), by the Rust keeper's rules (crates/wsreg/src/
// registration.rs): when the file is deleted, replaced, or no longer holds the entry, it
// is written back. Each look costs one lstat; the file is read only when its identity
// changed, and rewritten only when it no longer holds the entry.
//
// What wakes it is `fs.watch` on its own file. libuv watches that one inode with inotify
// for attribute changes, writes, moves and deletion — never opens or reads — so nothing a
// reader does, and nothing another server does, wakes it, and while nothing changes
// nothing runs: no timer. libuv shares one inotify instance among all the watches of a
// process, so the Rust keeper's headroom probe (an instance per keeper, taken only while
// 32 more remain) has no counterpart here. A rewrite renames a new inode in, so the watch
// is armed again after each one. When a watch cannot be had (the file is gone at that
// moment, the user's inotify watches are used up) the keeper looks once a second until
// one can, as the Rust keeper's fallback does.
//
// The watch is not `persistent` and the timer is `unref`ed: a registration never keeps
// the process alive.

import fs from 'node:fs';
import { canonicalFileText } from './entry.js';
import { fileIdAt } from './store.js';

/** How often a keeper without a watch looks at its file. */
const FALLBACK_TICK_MS = 1000;

export class Keeper {
  #store;
  #id;
  #text;
  #file;
  /** The version of the file known to hold the entry. @type {string | null} */
  #verified;
  /** @type {fs.FSWatcher | null} */
  #watcher = null;
  /** @type {NodeJS.Timeout | null} */
  #ticker = null;
  #stopped = false;
  /** The last failure reported, so that a lasting one is reported once. */
  #lastError = '';

  /**
   * Starts keeping the entry file the store has just written.
   * @param {import('./store.js').Store} store
   * @param {string} id
   * @param {string} text the file's content
   * @param {string} written the file's identity when it was written
   */
  constructor(store, id, text, written) {
    this.#store = store;
    this.#id = id;
    this.#text = text;
    this.#file = store.entryPath(id);
    this.#verified = written;
    this.#arm();
    // The file may have changed between the write and the watch.
    this.#look();
  }

  stop() {
    this.#stopped = true;
    this.#disarm();
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = null;
  }

  #look() {
    if (this.#stopped) return;
    try {
      // A rewrite is looked at once more with the new watch armed: a change between the
      // rename and the watch would otherwise go unseen until the next event.
      if (this.#ensurePresent()) this.#ensurePresent();
      this.#lastError = '';
    } catch (e) {
      const message = `wsreg: cannot restore the entry ${this.#id} in ${this.#store.dir}: ${/** @type {Error} */ (e).message}`;
      if (message !== this.#lastError) process.emitWarning(message);
      this.#lastError = message;
      if (!this.#watcher) this.#startTicker();
    }
  }

  /** Rewrites the file unless it is the version known to hold the entry, or holds it; says whether it wrote. */
  #ensurePresent() {
    const now = fileIdAt(this.#file);
    if (now !== null && now === this.#verified) return false;
    if (now !== null) {
      const found = this.#store.read(this.#id);
      if (found?.text != null && holds(found.text, this.#text)) {
        this.#verified = found.fileId;
        if (!this.#watcher) this.#arm();
        return false;
      }
    }
    this.#disarm();
    this.#verified = this.#store.write(this.#id, this.#text);
    this.#arm();
    return true;
  }

  #arm() {
    this.#disarm();
    try {
      const watcher = fs.watch(this.#file, { persistent: false }, () => this.#look());
      watcher.on('error', () => {
        this.#disarm();
        this.#startTicker();
      });
      this.#watcher = watcher;
      if (this.#ticker) clearInterval(this.#ticker);
      this.#ticker = null;
    } catch {
      this.#startTicker();
    }
  }

  #disarm() {
    this.#watcher?.close();
    this.#watcher = null;
  }

  #startTicker() {
    if (this.#ticker || this.#stopped) return;
    this.#ticker = setInterval(() => this.#look(), FALLBACK_TICK_MS);
    this.#ticker.unref();
  }
}

/**
 * Whether a file's text holds the entry whose canonical text is `expected`.
 * @param {string} text
 * @param {string} expected
 */
function holds(text, expected) {
  if (text === expected) return true;
  try {
    return canonicalFileText(JSON.parse(text)) === expected;
  } catch {
    return false;
  }
}
