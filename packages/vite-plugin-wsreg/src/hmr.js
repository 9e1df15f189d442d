// Pushing the live list over Vite's HMR channel (dev only: preview has none).
//
// Event `wsreg:servers` carries the API document `{"version":1,"servers":[…]}`
// to every page on each change; `wsreg:registry-error` carries `{"error":"…"}`
// while the registry cannot be read. A page whose listener is ready sends
// `wsreg:get-servers` (optionally `{project, kind}`) and gets the current list
// back, so it never misses the first one. Documents come from answer.js: built once
// per change (Vite serialises the message once for all pages).

import { answerFor } from './answer.js';

/**
 * @typedef {import('../index.js').RegistryState} RegistryState
 * @typedef {import('../index.js').ServerFilter} ServerFilter
 * @typedef {import('../index.js').RegistryWatcher} RegistryWatcher
 * @typedef {{ send(event: string, payload?: any): void }} HotClient
 * @typedef {{
 *   send(event: string, payload?: any): void,
 *   on(event: string, listener: (data: any, client: HotClient) => void): void,
 *   off?(event: string, listener: Function): void,
 * }} HotChannel
 */

export const SERVERS_EVENT = 'wsreg:servers';
export const ERROR_EVENT = 'wsreg:registry-error';
export const REQUEST_EVENT = 'wsreg:get-servers';

/**
 * The client environment's hot channel (Vite 6+: `server.environments.client.hot`),
 * else `server.ws` (the Vite 5/6 name of the same channel).
 * @param {{ environments?: Record<string, { hot?: unknown }>, ws?: unknown }} server
 * @returns {HotChannel | null}
 */
export function clientHotChannel(server) {
  const hot = server.environments?.client?.hot ?? server.ws;
  return hot ? /** @type {HotChannel} */ (hot) : null;
}

/**
 * @param {HotChannel} hot
 * @param {RegistryWatcher} watcher
 * @param {ServerFilter} [filter] the plugin's own project/kind filter
 * @returns {() => void} detaches
 */
export function attachHmr(hot, watcher, filter = {}) {
  /**
   * @param {{ send(event: string, payload?: any): void }} target
   * @param {RegistryState} state
   * @param {ServerFilter[]} filters
   */
  const sendState = (target, state, filters) => {
    const answer = answerFor(state, filters);
    if (answer.status === 200) target.send(SERVERS_EVENT, answer.document);
    else target.send(ERROR_EVENT, { error: answer.error });
  };
  /** @param {RegistryState} state */
  const onChange = (state) => sendState(hot, state, [filter]);
  /**
   * @param {unknown} data
   * @param {HotClient} client
   */
  const onRequest = (data, client) => {
    const asked = /** @type {Record<string, unknown> | null | undefined} */ (data);
    /** @type {ServerFilter} */
    const requested = {
      project: typeof asked?.project === 'string' ? asked.project : null,
      kind: typeof asked?.kind === 'string' ? asked.kind : null,
    };
    sendState(client, watcher.refresh(), [filter, requested]);
  };
  watcher.on('change', onChange);
  hot.on(REQUEST_EVENT, onRequest);
  return () => {
    watcher.off('change', onChange);
    hot.off?.(REQUEST_EVENT, onRequest);
  };
}
