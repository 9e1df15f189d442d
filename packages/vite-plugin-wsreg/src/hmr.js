// Pushing the live list over Vite's HMR channel (dev only: preview has none).
//
// Event `wsreg:servers` carries the API document `{"version":1,"servers":[…]}`
// to every page on each change; `wsreg:registry-error` carries `{"error":"…"}`
// while the registry cannot be read. A page whose listener is ready sends
// `wsreg:get-servers` (optionally `{project, kind}`) and gets the current list
// back, so it never misses the first one. Documents come from answer.js: built once
// per change (Vite serialises the message once for all pages).
//
// Every page connected to the HMR channel gets these pushes, so each one counts as a
// subscriber of the health monitor (probes run while there is one) from its connection
// to its close.

import { answerFor } from './answer.js';

/**
 * @typedef {import('../index.js').ProbedState} ProbedState
 * @typedef {import('../index.js').ServerFilter} ServerFilter
 * @typedef {import('../index.js').HealthMonitor} HealthMonitor
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
 * @param {HealthMonitor} monitor
 * @param {ServerFilter} [filter] the plugin's own project/kind filter
 * @returns {() => void} detaches
 */
export function attachHmr(hot, monitor, filter = {}) {
  /**
   * @param {{ send(event: string, payload?: any): void }} target
   * @param {ProbedState} state
   * @param {ServerFilter[]} filters
   */
  const sendState = (target, state, filters) => {
    const answer = answerFor(state, filters);
    if (answer.status === 200) target.send(SERVERS_EVENT, answer.document);
    else target.send(ERROR_EVENT, { error: answer.error });
  };
  /** @param {ProbedState} state */
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
    sendState(client, monitor.refresh(), [filter, requested]);
  };
  monitor.on('change', onChange);
  hot.on(REQUEST_EVENT, onRequest);
  return () => {
    monitor.off('change', onChange);
    hot.off?.(REQUEST_EVENT, onRequest);
  };
}

/**
 * Counts each page connected to Vite's HMR WebSocket server as a subscriber of the
 * monitor until its socket closes.
 * @param {{ on(event: 'connection', listener: (socket: { once(event: 'close', fn: () => void): unknown }) => void): void,
 *   off(event: 'connection', listener: Function): void }} ws `server.ws`
 * @param {HealthMonitor} monitor
 * @returns {() => void} stops counting new pages
 */
export function subscribeHmrPages(ws, monitor) {
  /** @param {{ once(event: 'close', fn: () => void): unknown }} socket */
  const onConnection = (socket) => {
    socket.once('close', monitor.subscribe());
  };
  ws.on('connection', onConnection);
  return () => ws.off('connection', onConnection);
}
