// Health probes of the live servers (docs/api.md, "Health"), on top of the watcher.
//
// A HealthMonitor publishes what the routes and HMR answer: the watcher's state plus
// each entry's last probe result (`state.health`, id → Health). It probes only while
// someone is subscribed (an event stream, an HMR page): every `intervalMs`, and a new
// entry at once, at most `concurrency` probes at a time. A probe that finds the state
// an entry already has changes nothing; a new state is published (one new state object,
// so answer.js builds one new document) and the watcher's listeners are told. With no
// subscriber there is no timer and no probe, and every state is back to `unknown`.
// Each round also asks the watcher to check every entry's listening socket again
// (`recheckListeners`: at most once a second), so that a server that closed its listener
// leaves a subscribed page's list without anyone reloading it.

import { EventEmitter } from 'node:events';
import { probe } from './probe.js';
import { filterServers } from './registry.js';
import { formatTimestamp } from './time.js';

/**
 * @typedef {import('../index.js').Health} Health
 * @typedef {import('../index.js').HealthMonitorOptions} HealthMonitorOptions
 * @typedef {import('../index.js').ProbedState} ProbedState
 * @typedef {import('../index.js').RegistryState} RegistryState
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('./watch.js').RegistryWatcher} RegistryWatcher
 */

export const DEFAULT_HEALTH_INTERVAL_MS = 5000;
/** A probe that has not passed within this has failed (the contract's 1 s). */
export const PROBE_TIMEOUT_MS = 1000;
/**
 * Probes at a time: a wider window lets one wake of the event loop serve more probes
 * (bench/probe-cost.js, 100 servers, rounds 2.5 s apart: ~360 µs of CPU a probe at 64,
 * ~440-560 at 16), and keeps at most this many sockets open.
 */
const DEFAULT_CONCURRENCY = 64;
/** Results found within this of each other are published together (a first round of 100 servers is one push, not 100). */
const COALESCE_MS = 25;

/** @type {Health} */
const UNKNOWN = Object.freeze({ state: 'unknown', checkedAt: null, latencyMs: null });
/** @type {Health} */
const NONE = Object.freeze({ state: 'none', checkedAt: null, latencyMs: null });

/**
 * The health an answer shows for an entry of a published state.
 * @param {ProbedState} state
 * @param {ServerEntry} entry
 * @returns {Health}
 */
export function healthOf(state, entry) {
  if (entry.health === 'none') return NONE;
  return state.health.get(entry.id) ?? UNKNOWN;
}

/**
 * What a probe of this entry connects to; a result holds only while it is the same.
 * @param {ServerEntry} entry
 */
function targetOf(entry) {
  return entry.healthUrl ?? entry.url;
}

/** @param {ServerEntry} entry */
function runKey(entry) {
  return `${entry.id}\n${targetOf(entry)}`;
}

/**
 * Emits `change` (with the new {@link ProbedState}) when the watcher's list changes and
 * when a probe finds a new state.
 */
export class HealthMonitor extends EventEmitter {
  /**
   * @param {RegistryWatcher} watcher
   * @param {HealthMonitorOptions} [options]
   */
  constructor(watcher, options = {}) {
    super();
    this.watcher = watcher;
    this.intervalMs = options.intervalMs ?? DEFAULT_HEALTH_INTERVAL_MS;
    this.timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.filter = options.filter ?? {};
    this.subscribers = 0;
    /** id → the last result found for that entry's current target. */
    /** @type {Map<string, { target: string, health: Health }>} */
    this.results = new Map();
    /** Entries waiting for a probe, by id. */
    /** @type {Map<string, ServerEntry>} */
    this.queue = new Map();
    /** Probes under way, by id and target (an entry that moved is probed anew at once). */
    /** @type {Set<string>} */
    this.running = new Set();
    /** Incremented when probing stops, so that late results are dropped. */
    this.epoch = 0;
    /** @type {NodeJS.Timeout | null} */
    this.timer = null;
    /** Set while a probe's new state waits to be published. */
    /** @type {NodeJS.Timeout | null} */
    this.publishTimer = null;
    this.closed = false;
    /** @type {ProbedState} */
    this.state = { ...watcher.current(), health: new Map() };
    /** The entries probed now, by id: what a probe's result is checked against (one lookup, not a scan of the list per result). */
    /** @type {Map<string, ServerEntry>} */
    this.probedById = this.probed();
    this.onWatcherChange = (/** @type {RegistryState} */ state) => this.take(state);
    watcher.on('change', this.onWatcherChange);
  }

  /** The state last published. */
  current() {
    return this.state;
  }

  /**
   * The watcher's refresh (pending events applied, liveness re-checked), with health.
   * @returns {ProbedState}
   */
  refresh() {
    this.watcher.refresh(); // a change comes back through take()
    return this.state;
  }

  /** Whether probes run now: someone is subscribed and probing is on. */
  get active() {
    return this.subscribers > 0 && this.intervalMs > 0 && !this.closed;
  }

  /**
   * Counts a subscriber while it lasts: probing runs while there is one, and the
   * watcher is held (its exits are pushed).
   * @returns {() => void} ends the subscription (idempotent)
   */
  subscribe() {
    let ended = false;
    const release = this.watcher.hold(); // changes are pushed to a subscriber
    this.subscribers += 1;
    if (this.subscribers === 1) this.start();
    return () => {
      if (ended) return;
      ended = true;
      release();
      this.subscribers -= 1;
      if (this.subscribers === 0) this.stop();
    };
  }

  /** Stops probing for good and lets go of the watcher. */
  close() {
    this.stop();
    this.closed = true;
    this.watcher.off('change', this.onWatcherChange);
    this.removeAllListeners('change');
  }

  /** @private */
  start() {
    if (!this.active || this.timer) return;
    this.timer = setInterval(() => this.round(), this.intervalMs);
    this.timer.unref();
    this.round();
  }

  /**
   * A health round: the listeners checked again (a change comes back through take()),
   * then every probed entry queued.
   * @private
   */
  round() {
    this.watcher.recheckListeners();
    this.enqueueAll();
  }

  /** @private */
  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.epoch += 1;
    if (this.publishTimer) clearTimeout(this.publishTimer);
    this.publishTimer = null;
    this.queue.clear();
    this.running.clear();
    if (this.results.size > 0) {
      this.results.clear();
      this.publish();
    }
  }

  /**
   * The entries probing is about, by id: the live ones of the plugin's filter that want it.
   * @private
   * @returns {Map<string, ServerEntry>}
   */
  probed() {
    const probed = filterServers(this.state.servers, this.filter).filter((e) => e.health !== 'none');
    return new Map(probed.map((e) => [e.id, e]));
  }

  /**
   * A new list from the watcher: results of entries gone (or now elsewhere) are
   * dropped, newcomers are probed at once.
   * @private
   * @param {RegistryState} registry
   */
  take(registry) {
    this.state = { ...registry, health: this.state.health };
    const wanted = this.probed();
    this.probedById = wanted;
    for (const [id, result] of this.results) {
      const entry = wanted.get(id);
      if (!entry || targetOf(entry) !== result.target) this.results.delete(id);
    }
    for (const id of this.queue.keys()) if (!wanted.has(id)) this.queue.delete(id);
    this.publish();
    if (!this.active) return;
    for (const entry of wanted.values()) if (!this.results.has(entry.id)) this.enqueue(entry);
    this.pump();
  }

  /** @private */
  enqueueAll() {
    for (const entry of this.probedById.values()) this.enqueue(entry);
    this.pump();
  }

  /**
   * @private
   * @param {ServerEntry} entry
   */
  enqueue(entry) {
    if (!this.running.has(runKey(entry))) this.queue.set(entry.id, entry);
  }

  /**
   * Starts queued probes while fewer than `concurrency` run.
   * @private
   */
  pump() {
    for (const [id, entry] of this.queue) {
      if (this.running.size >= this.concurrency) return;
      const key = runKey(entry);
      this.queue.delete(id);
      this.running.add(key);
      const epoch = this.epoch;
      void probe(entry, this.timeoutMs).then((latencyMs) => {
        if (epoch !== this.epoch) return;
        this.running.delete(key);
        this.record(entry, latencyMs);
        this.pump();
      });
    }
  }

  /**
   * Keeps a probe's outcome if the entry is still listed as probed; publishes a new state.
   * @private
   * @param {ServerEntry} entry
   * @param {number | null} latencyMs
   */
  record(entry, latencyMs) {
    const current = this.probedById.get(entry.id);
    if (!current || targetOf(current) !== targetOf(entry)) return;
    const state = latencyMs === null ? 'unresponsive' : 'ok';
    if (this.results.get(entry.id)?.health.state === state) return;
    this.results.set(entry.id, {
      target: targetOf(entry),
      health: { state, checkedAt: formatTimestamp(Date.now()), latencyMs },
    });
    if (!this.publishTimer) {
      this.publishTimer = setTimeout(() => this.publish(), COALESCE_MS);
      this.publishTimer.unref();
    }
  }

  /**
   * A new state object (answers are built once per state), and the listeners told.
   * @private
   */
  publish() {
    if (this.publishTimer) clearTimeout(this.publishTimer);
    this.publishTimer = null;
    if (this.closed) return;
    const health = new Map([...this.results].map(([id, r]) => [id, r.health]));
    this.state = { ...this.state, health };
    this.emit('change', this.state);
  }
}
