// subscribe(): the live list of servers, pushed over Server-Sent Events, with
// polling as the fallback when the stream keeps failing.

import { filterServers } from './filter.js';
import { registryUrl } from './url.js';

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('../index.js').SubscribeOptions} SubscribeOptions
 * @typedef {import('../index.js').SubscriptionInfo} SubscriptionInfo
 * @typedef {import('../index.js').ServersCallback} ServersCallback
 */

const CLOSED = 2; // EventSource.CLOSED

/**
 * Calls `callback(servers, info)` with the live list now and after every
 * change. Uses `EventSource` on `${base}/api/registry/events`; after
 * `maxStreamErrors` failures in a row (or at once if the stream is refused)
 * it polls `${base}/api/registry` every `pollIntervalMs` instead, and tries
 * the stream again every `streamRetryMs`.
 *
 * While the registry endpoint is unreachable the last list is kept and
 * passed again with `info.stale = true` and `info.error` set. When the
 * registry itself reports an error (e.g. an unsupported version) the list is
 * empty and `info.error` says why.
 *
 * @param {ServersCallback} callback
 * @param {SubscribeOptions} [options]
 * @returns {() => void} unsubscribe
 */
export function subscribe(callback, options = {}) {
  const base = options.base ?? '';
  const route = options.route ?? '/api/registry';
  const filter = { project: options.project ?? null, kind: options.kind ?? null };
  const pollIntervalMs = options.pollIntervalMs ?? 5000;
  const maxStreamErrors = options.maxStreamErrors ?? 3;
  const streamRetryMs = options.streamRetryMs ?? 30000;
  const EventSourceImpl = options.EventSource ?? globalThis.EventSource;
  const fetchImpl = options.fetch ?? ((/** @type {string} */ url, /** @type {RequestInit} */ init) => globalThis.fetch(url, init));
  const streamUrl = registryUrl(base, route, '/events', filter);
  const listUrl = registryUrl(base, route, '', filter);

  let stopped = false;
  /** @type {EventSource | null} */
  let source = null;
  let streamErrors = 0;
  /** @type {ReturnType<typeof setInterval> | null} */
  let pollTimer = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let retryTimer = null;
  /** @type {AbortController | null} */
  let inflight = null;
  /** @type {ServerEntry[]} */
  let last = [];
  /** @type {string | null} */
  let lastKey = null;

  /**
   * @param {ServerEntry[]} servers
   * @param {SubscriptionInfo} info
   */
  function deliver(servers, info) {
    if (stopped) return;
    const key = JSON.stringify([servers, info.error, info.stale]);
    if (info.error === null) last = servers;
    if (key === lastKey) return;
    lastKey = key;
    callback(servers, info);
  }

  /** @param {string} text @returns {any} */
  function parse(text) {
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }

  function openStream() {
    if (stopped) return;
    if (typeof EventSourceImpl !== 'function') {
      startPolling();
      return;
    }
    const es = new EventSourceImpl(streamUrl);
    source = es;
    es.addEventListener('servers', (event) => {
      if (source !== es) return;
      const doc = parse(/** @type {MessageEvent} */ (event).data);
      if (!doc || !Array.isArray(doc.servers)) return;
      streamErrors = 0;
      stopPolling();
      deliver(filterServers(doc.servers, filter), { source: 'sse', error: null, stale: false });
    });
    es.addEventListener('registry-error', (event) => {
      if (source !== es) return;
      const body = parse(/** @type {MessageEvent} */ (event).data);
      streamErrors = 0;
      stopPolling();
      deliver([], { source: 'sse', error: String(body?.error ?? 'registry error'), stale: false });
    });
    es.addEventListener('error', () => {
      if (source !== es) return;
      streamErrors += 1;
      if (es.readyState === CLOSED || streamErrors >= maxStreamErrors) {
        es.close();
        source = null;
        streamErrors = 0;
        startPolling();
        scheduleStreamRetry();
      }
    });
  }

  function scheduleStreamRetry() {
    if (stopped || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      // Polling goes on until the stream delivers its first event.
      if (!source) openStream();
    }, streamRetryMs);
  }

  function startPolling() {
    if (stopped || pollTimer) return;
    void poll();
    pollTimer = setInterval(() => void poll(), pollIntervalMs);
  }

  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
    inflight?.abort();
    inflight = null;
  }

  async function poll() {
    if (stopped || inflight) return;
    const controller = new AbortController();
    inflight = controller;
    try {
      const res = await fetchImpl(listUrl, {
        headers: { Accept: 'application/json' },
        cache: 'no-store',
        signal: controller.signal,
      });
      const body = parse(await res.text());
      if (controller.signal.aborted) return;
      if (res.ok && body && Array.isArray(body.servers)) {
        deliver(filterServers(body.servers, filter), { source: 'poll', error: null, stale: false });
      } else if (body && typeof body.error === 'string' && res.status >= 500) {
        deliver([], { source: 'poll', error: body.error, stale: false });
      } else {
        deliver(last, { source: 'poll', error: `registry answered ${res.status}${body?.error ? `: ${body.error}` : ''}`, stale: true });
      }
    } catch (err) {
      if (controller.signal.aborted) return;
      deliver(last, { source: 'poll', error: `registry unreachable: ${err instanceof Error ? err.message : String(err)}`, stale: true });
    } finally {
      if (inflight === controller) inflight = null;
    }
  }

  openStream();

  return function unsubscribe() {
    stopped = true;
    source?.close();
    source = null;
    stopPolling();
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
  };
}
