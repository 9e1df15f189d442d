// Watching the registry: push, not poll.
//
// Writers replace servers.json by rename, so the *directory* is watched (a
// watch on the file itself would follow the old, unlinked inode). Events are
// debounced by a few ms. A slower re-check (500 ms) catches what no file event
// announces: a server killed with SIGKILL leaves its entry behind, and only
// liveness says it is gone. The file is re-read only when its identity
// (inode, size, mtime, ctime) changed; liveness is re-evaluated every time.

import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { readRegistryFile } from './file.js';
import { evaluateRegistry, parseFileRead } from './registry.js';

/**
 * @typedef {import('../index.js').RegistryState} RegistryState
 * @typedef {import('../index.js').ParseResult} ParseResult
 * @typedef {import('../index.js').ReaderContext} ReaderContext
 * @typedef {import('../index.js').RegistryWatcherOptions} RegistryWatcherOptions
 */

/**
 * Emits `change` (with the new {@link RegistryState}) whenever the list of
 * live servers, or the reader's error, changes; `warning` (a string) once for
 * each new warning.
 */
export class RegistryWatcher extends EventEmitter {
  /** @param {RegistryWatcherOptions} options */
  constructor(options) {
    super();
    this.file = path.resolve(options.file);
    this.dir = path.dirname(this.file);
    this.base = path.basename(this.file);
    this.debounceMs = options.debounceMs ?? 5;
    this.recheckMs = options.recheckMs ?? 500;
    /** @type {ReaderContext} */
    this.context = options.context ?? {};
    /** @type {RegistryState} */
    this.state = { servers: [], dead: [], error: null, errorCode: null, warnings: [] };
    /** @type {ParseResult | null} */
    this.parsed = null;
    /** @type {import('../index.js').FileRead['kind'] | null} */
    this.readKind = null;
    /** @type {string | null} */
    this.readError = null;
    /** @type {string[]} */
    this.fileWarnings = [];
    this.identity = '';
    this.fingerprint = '';
    /** @type {Set<string>} */
    this.warned = new Set();
    /** @type {fs.FSWatcher | null} */
    this.fsWatcher = null;
    /** Identity (dev:ino:birth time) of the directory being watched. */
    this.watchedDir = '';
    /** @type {NodeJS.Timeout | null} */
    this.debounceTimer = null;
    /** @type {NodeJS.Timeout | null} */
    this.recheckTimer = null;
    /** @type {Promise<RegistryState> | null} */
    this.running = null;
    /** @type {Promise<RegistryState> | null} */
    this.queued = null;
    this.forceRead = true;
    this.closed = false;
    /** @type {Promise<RegistryState> | null} */
    this.readyPromise = null;
  }

  /**
   * Starts watching; resolves once the first read is done.
   * @returns {Promise<RegistryState>}
   */
  start() {
    if (!this.readyPromise) {
      this.watchDirectory();
      this.recheckTimer = setInterval(() => {
        // Watch again if the directory appeared, or was replaced (a watch
        // follows the inode it was set on, not the path).
        if (!this.fsWatcher || this.directoryIdentity() !== this.watchedDir) this.watchDirectory();
        void this.refresh();
      }, this.recheckMs);
      this.recheckTimer.unref();
      this.readyPromise = this.refresh();
    }
    return this.readyPromise;
  }

  /** The state of the last evaluation. */
  current() {
    return this.state;
  }

  /**
   * Re-reads (if the file changed) and re-evaluates liveness now. Calls made
   * while one runs share one more run after it.
   * @param {{ force?: boolean }} [options] force: re-read even if unchanged
   * @returns {Promise<RegistryState>}
   */
  refresh(options = {}) {
    if (options.force) this.forceRead = true;
    if (this.running) {
      this.queued ??= this.running.then(() => {
        this.queued = null;
        return this.refresh();
      });
      return this.queued;
    }
    this.running = this.evaluate().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Stops watching; no event is emitted after this. */
  close() {
    this.closed = true;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    this.fsWatcher?.close();
    this.fsWatcher = null;
    this.removeAllListeners('change');
  }

  /** @private */
  directoryIdentity() {
    try {
      // The inode number of a deleted directory is soon reused: birth time too.
      const st = fs.statSync(this.dir);
      return `${st.dev}:${st.ino}:${st.birthtimeMs}`;
    } catch {
      return '';
    }
  }

  /** @private */
  watchDirectory() {
    if (this.closed) return;
    this.fsWatcher?.close();
    this.fsWatcher = null;
    this.watchedDir = this.directoryIdentity();
    if (!this.watchedDir) return;
    try {
      const watcher = fs.watch(this.dir, { persistent: false }, (_event, filename) => {
        if (filename == null || filename.toString() === this.base) this.schedule();
      });
      watcher.on('error', () => {
        // The directory went away (or the watch broke): the re-check timer
        // keeps the list right and tries to watch again.
        watcher.close();
        if (this.fsWatcher === watcher) this.fsWatcher = null;
        this.schedule();
      });
      this.fsWatcher = watcher;
      // The directory may have appeared (or been replaced) since the last read.
      this.forceRead = true;
    } catch {
      this.fsWatcher = null; // no directory yet: retried by the re-check timer
    }
  }

  /** @private */
  schedule() {
    if (this.closed) return;
    this.forceRead = true;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      void this.refresh();
    }, this.debounceMs);
    this.debounceTimer.unref();
  }

  /**
   * @private
   * @returns {Promise<RegistryState>}
   */
  async evaluate() {
    const identity = await this.fileIdentity();
    if (this.forceRead || identity !== this.identity || this.parsed === null) {
      this.forceRead = false;
      this.identity = identity;
      const read = await readRegistryFile(this.file);
      this.readKind = read.kind;
      this.readError = read.kind === 'refused' ? read.error : null;
      this.fileWarnings = read.warnings;
      this.parsed = parseFileRead(read);
    }

    /** @type {RegistryState} */
    let state;
    if (this.readKind === 'refused' && this.readError) {
      state = { servers: [], dead: [], error: this.readError, errorCode: 'refused', warnings: this.fileWarnings };
    } else {
      const evaluated = evaluateRegistry(/** @type {ParseResult} */ (this.parsed), this.context);
      state = { ...evaluated, warnings: [...this.fileWarnings, ...evaluated.warnings] };
    }
    this.publish(state);
    return this.state;
  }

  /**
   * @private
   * @param {RegistryState} state
   */
  publish(state) {
    if (this.closed) return;
    for (const w of state.warnings) {
      if (!this.warned.has(w)) {
        this.warned.add(w);
        this.emit('warning', w);
      }
    }
    if (state.error && !this.warned.has(state.error)) {
      this.warned.add(state.error);
      this.emit('warning', state.error);
    }
    // Warnings that went away may come back later and deserve a new line.
    for (const w of this.warned) {
      if (!state.warnings.includes(w) && state.error !== w) this.warned.delete(w);
    }
    const fingerprint = JSON.stringify([state.error, state.servers]);
    this.state = state;
    if (fingerprint !== this.fingerprint) {
      this.fingerprint = fingerprint;
      this.emit('change', state);
    }
  }

  /**
   * @private
   * @returns {Promise<string>}
   */
  async fileIdentity() {
    try {
      const st = await fs.promises.lstat(this.file, { bigint: true });
      return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}`;
    } catch (err) {
      return `missing:${/** @type {NodeJS.ErrnoException} */ (err).code}`;
    }
  }
}
