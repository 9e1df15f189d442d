// Watching the registry: push, not poll; idle is free (DESIGN.md, principle 4).
//
// Two fs.watch watches (inotify on Linux, whose mask in Node holds no open or access
// events: reading the registry wakes nobody, and nobody's reads wake this):
// - the registry directory: an event names one file, and only that file is looked at
//   again (an lstat, and a parse only if its identity changed), so one change costs
//   one file's parse whatever the number of entries;
// - the directory's parent, for the two names that matter there: the directory (it
//   appeared, went or was replaced: watch it anew and list it) and the legacy file.
//   While the parent does not exist either, the nearest existing ancestor is watched
//   for the next name on the way down instead.
// Events are batched for `debounceMs` (a timer started by the first event, not
// restarted by later ones, so a stream of events cannot starve the update).
//
// Exits that touch no file (a SIGKILLed server leaves its file behind) and leases
// that run out are seen by a liveness re-check every `recheckMs`: Node has no pidfd to
// be told. That timer runs only while some live entry can end so (mayEndUnseen: a
// process on this host, a lease), and it re-checks liveness only: no listing, no file
// read. While nothing is registered, nothing runs at all. With `pushWhileHeld` it runs
// only while someone wants pushes (`hold()`: the plugin holds while a stream or page is
// subscribed): a request's `refresh()` re-checks liveness itself, so with nobody
// subscribed an idle plugin reads nothing at all, even with servers listed.
//
// A local entry is shown only while its process holds a LISTEN socket on its port
// (liveness.js, sockets.js). Nothing announces a closed listener, and that timer must
// stay a /proc/<pid>/stat read, so the port is asked elsewhere: once for each entry when
// it arrives (the verdict is kept by entry object: a changed file is a new entry), and
// for every entry again when a reader asks (`refresh`: a GET, a stream or page
// connecting; `recheckListeners`: each health round) — before the answer when the last
// such check is `LISTEN_RECHECK_MS` old, else once that long after it (and a change is
// pushed). One check reads the LISTEN tables once for all entries. Idle, nothing runs.

import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { RegistryCache } from './cache.js';
import { isEntryFileName } from './entry-file.js';
import { message } from './file.js';
import { listeningVerdict, mayEndUnseen } from './liveness.js';
import { registryLocation } from './location.js';
import { resolveContext, stateOf } from './registry.js';

/**
 * @typedef {import('../index.js').RegistryState} RegistryState
 * @typedef {import('../index.js').ReaderContext} ReaderContext
 * @typedef {import('../index.js').RegistryWatcherOptions} RegistryWatcherOptions
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('./liveness.js').Verdict} Verdict
 */

/** Every entry's listening socket is checked again on readers' asks at most this often, ms. */
export const LISTEN_RECHECK_MS = 1000;

/**
 * Emits `change` (with the new {@link RegistryState}) whenever the list of live
 * servers, or the reader's error, changes; `warning` (a string) once for each new
 * warning.
 */
export class RegistryWatcher extends EventEmitter {
  /** @param {RegistryWatcherOptions} [options] */
  constructor(options = {}) {
    super();
    this.location = registryLocation(options.registry);
    this.debounceMs = options.debounceMs ?? 5;
    this.recheckMs = options.recheckMs ?? 500;
    /** Whether the liveness timer waits for a holder (see `hold`). */
    this.pushWhileHeld = options.pushWhileHeld ?? false;
    /** How many holders want changes pushed (see `hold`). */
    this.holders = 0;
    /** @type {ReaderContext} */
    this.context = options.context ?? {};
    this.cache = new RegistryCache(this.location);
    /** @type {RegistryState} */
    this.state = { servers: [], dead: [], error: null, warnings: [] };
    /** The cache generation whose warnings were announced. */
    this.announced = -1;
    /** @type {Set<string>} */
    this.warned = new Set();
    /** @type {fs.FSWatcher | null} */
    this.directoryWatch = null;
    /** Identity of the watched directory ('' when there is none). */
    this.directoryId = '';
    /** @type {fs.FSWatcher | null} */
    this.ancestorWatch = null;
    this.ancestor = '';
    this.ancestorId = '';
    /** Entry file names named by events since the last update. */
    /** @type {Set<string>} */
    this.pendingNames = new Set();
    this.pendingLegacy = false;
    this.pendingScan = false;
    /** @type {NodeJS.Timeout | null} */
    this.debounceTimer = null;
    /** Set only while some live entry may end unseen by any file event. */
    /** @type {NodeJS.Timeout | null} */
    this.livenessTimer = null;
    /** What each entry's port was last found to be (listeningVerdict), by entry object. */
    /** @type {WeakMap<ServerEntry, Verdict>} */
    this.listening = new WeakMap();
    /** Set when the next update is to ask every entry's port again. */
    this.listenCheckDue = false;
    /** When every entry's port was last asked (performance.now()). */
    this.listenCheckedAt = 0;
    /** Set while a reader's ask waits for LISTEN_RECHECK_MS to pass since the last check. */
    /** @type {NodeJS.Timeout | null} */
    this.listenTimer = null;
    this.started = false;
    this.closed = false;
  }

  /**
   * Starts watching and reads the registry (once; later calls return the current state).
   * @returns {RegistryState}
   */
  start() {
    if (!this.started && !this.closed) {
      this.started = true;
      this.watchPaths(); // before the listing, so that no change falls between the two
      this.cache.scan();
      this.listenCheckedAt = performance.now(); // every entry is new: all are asked
      this.update();
    }
    return this.state;
  }

  /** The state of the last evaluation. */
  current() {
    return this.state;
  }

  /**
   * Applies the events not yet applied and re-checks liveness now (what a request
   * does, so that it never answers with a server that just died); asks every entry's
   * port again (see `recheckListeners`).
   * @returns {RegistryState}
   */
  refresh() {
    if (!this.started) return this.start();
    if (this.listenCheckIsDue()) this.listenCheckDue = true;
    this.flush();
    return this.state;
  }

  /**
   * Asks whether every local entry's process still listens on its port: now when the
   * last such check is LISTEN_RECHECK_MS old, else that long after it; a change is
   * published as any other. Does not wait. (A health round, and every refresh.)
   */
  recheckListeners() {
    if (!this.started || this.closed) return;
    if (!this.listenCheckIsDue()) return;
    this.listenCheckDue = true;
    this.flush();
  }

  /**
   * Whether a check of every port is due now; if not, makes sure one runs when it is.
   * @private
   */
  listenCheckIsDue() {
    if (this.closed) return false;
    const wait = this.listenCheckedAt + LISTEN_RECHECK_MS - performance.now();
    if (wait <= 0) return true;
    if (!this.listenTimer) {
      this.listenTimer = setTimeout(() => {
        this.listenTimer = null;
        this.listenCheckDue = true;
        this.flush();
      }, Math.ceil(wait));
      this.listenTimer.unref();
    }
    return false;
  }

  /**
   * Counts one who wants changes pushed while it lasts. With `pushWhileHeld`, the
   * liveness timer runs only while someone holds, and the first holder gets a re-check
   * at once (an exit that came while nobody held is pushed now).
   * @returns {() => void} lets go (idempotent)
   */
  hold() {
    let held = true;
    this.holders += 1;
    if (this.holders === 1 && this.pushWhileHeld && this.started) this.update();
    return () => {
      if (!held) return;
      held = false;
      this.holders -= 1;
      if (this.holders === 0 && this.pushWhileHeld) this.setLivenessTimer(false);
    };
  }

  /** Stops watching; no event is emitted after this. */
  close() {
    this.closed = true;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.listenTimer) clearTimeout(this.listenTimer);
    this.listenTimer = null;
    this.setLivenessTimer(false);
    this.directoryWatch?.close();
    this.ancestorWatch?.close();
    this.directoryWatch = null;
    this.ancestorWatch = null;
    this.removeAllListeners('change');
  }

  /**
   * Watches the nearest existing ancestor and the directory, anew where either was
   * replaced (a watch follows the inode it was set on, not the path).
   * @private
   */
  watchPaths() {
    const { dir } = this.location;
    let ancestor = path.dirname(dir);
    while (!directoryIdentity(ancestor) && path.dirname(ancestor) !== ancestor) ancestor = path.dirname(ancestor);
    const ancestorId = directoryIdentity(ancestor);
    if (ancestor !== this.ancestor || ancestorId !== this.ancestorId || !this.ancestorWatch) {
      this.ancestorWatch?.close();
      this.ancestor = ancestor;
      this.ancestorId = ancestorId;
      this.ancestorWatch = this.watch(ancestor, (name) => this.onAncestorEvent(name));
    }
    const directoryId = directoryIdentity(dir);
    if (directoryId !== this.directoryId || !this.directoryWatch) {
      this.directoryWatch?.close();
      this.directoryId = directoryId;
      this.directoryWatch = directoryId ? this.watch(dir, (name) => this.onDirectoryEvent(name)) : null;
    }
  }

  /**
   * @private
   * @param {string} target
   * @param {(name: string | null) => void} onName
   * @returns {fs.FSWatcher | null}
   */
  watch(target, onName) {
    try {
      const watcher = fs.watch(target, { persistent: false }, (_event, name) => onName(name == null ? null : String(name)));
      watcher.on('error', () => {
        // The directory went (or the watch broke): look again, which watches anew.
        watcher.close();
        if (this.directoryWatch === watcher) this.directoryWatch = null;
        if (this.ancestorWatch === watcher) this.ancestorWatch = null;
        this.schedule('scan');
      });
      return watcher;
    } catch (err) {
      // Gone in between (the ancestor's watch tells when it is back), or no inotify
      // watch left: say so, the list then changes only on requests.
      const code = /** @type {NodeJS.ErrnoException} */ (err).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') this.emit('warning', `cannot watch ${target}: ${message(err)}`);
      return null;
    }
  }

  /**
   * @private
   * @param {string | null} name
   */
  onDirectoryEvent(name) {
    if (name === null) this.schedule('scan');
    else if (isEntryFileName(name)) this.schedule(name);
  }

  /**
   * @private
   * @param {string | null} name
   */
  onAncestorEvent(name) {
    const { dir, legacyFile } = this.location;
    const next = path.relative(this.ancestor, dir).split(path.sep)[0];
    if (name !== null && name === path.basename(legacyFile) && this.ancestor === path.dirname(dir)) this.schedule('legacy');
    else if (name === null || name === next || directoryIdentity(this.ancestor) !== this.ancestorId) this.schedule('scan');
  }

  /**
   * Notes what to look at again, and starts the batch timer if it is not running.
   * @private
   * @param {string} what an entry file name, or 'scan' / 'legacy' (neither ends in .json)
   */
  schedule(what) {
    if (this.closed) return;
    if (what === 'scan') this.pendingScan = true;
    else if (what === 'legacy') this.pendingLegacy = true;
    else this.pendingNames.add(what);
    if (this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => this.flush(), this.debounceMs);
    this.debounceTimer.unref();
  }

  /** @private */
  flush() {
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = null;
    if (this.closed) return;
    if (this.pendingScan) {
      this.watchPaths();
      this.cache.scan();
    } else {
      for (const name of this.pendingNames) this.cache.updateEntryFile(name);
      if (this.pendingLegacy) this.cache.updateLegacyFile();
    }
    this.pendingNames.clear();
    this.pendingLegacy = false;
    this.pendingScan = false;
    this.update();
  }

  /**
   * Re-checks liveness over what the cache holds (no file system access but /proc)
   * and publishes the outcome. Ports are asked for new entries only, or for all of them
   * when a check is due (`listenCheckDue`): the LISTEN tables are read only then.
   * @private
   */
  update() {
    if (this.closed) return;
    const live = resolveContext(this.context);
    const all = this.listenCheckDue;
    this.listenCheckDue = false;
    if (all) {
      this.listenCheckedAt = performance.now();
      if (this.listenTimer) clearTimeout(this.listenTimer);
      this.listenTimer = null;
    }
    const next = stateOf(this.cache, live, (entry) => {
      let verdict = all ? undefined : this.listening.get(entry);
      if (verdict === undefined) {
        verdict = listeningVerdict(entry, live);
        this.listening.set(entry, verdict);
      }
      return verdict;
    });
    const changed = next.error !== this.state.error || !sameEntries(next.servers, this.state.servers);
    // Keep the state object while nothing changed: answers built for it stay valid.
    if (changed || this.cache.generation !== this.announced) this.state = next;
    if (this.cache.generation !== this.announced) {
      this.announced = this.cache.generation;
      this.announceWarnings(next);
    }
    const pushed = !this.pushWhileHeld || this.holders > 0;
    this.setLivenessTimer(pushed && next.servers.some((entry) => mayEndUnseen(entry, live)));
    if (changed) this.emit('change', next);
  }

  /**
   * Emits each warning (and the error) not announced before; one that went away and
   * comes back is announced again.
   * @private
   * @param {RegistryState} state
   */
  announceWarnings(state) {
    const current = new Set(state.error ? [...state.warnings, state.error] : state.warnings);
    for (const w of current) if (!this.warned.has(w)) this.emit('warning', w);
    this.warned = current;
  }

  /**
   * @private
   * @param {boolean} needed
   */
  setLivenessTimer(needed) {
    if (needed && !this.livenessTimer && !this.closed) {
      this.livenessTimer = setInterval(() => this.update(), this.recheckMs);
      this.livenessTimer.unref();
    } else if (!needed && this.livenessTimer) {
      clearInterval(this.livenessTimer);
      this.livenessTimer = null;
    }
  }
}

/**
 * Identity of a real directory at `p` ('' if none, or a symlink: that is not watched).
 * The inode number of a removed directory is soon reused: the birth time tells them apart.
 * @param {string} p
 */
function directoryIdentity(p) {
  try {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    return st?.isDirectory() ? `${st.dev}:${st.ino}:${st.birthtimeMs}` : '';
  } catch {
    return '';
  }
}

/**
 * @param {readonly ServerEntry[]} a
 * @param {readonly ServerEntry[]} b
 */
function sameEntries(a, b) {
  return a.length === b.length && a.every((entry, i) => entry === b[i]);
}
