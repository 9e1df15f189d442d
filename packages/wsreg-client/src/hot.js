// subscribeHot(): the live list over Vite's HMR channel (`import.meta.hot`),
// as pushed by vite-plugin-wsreg in `vite dev`.

import { filterServers } from './filter.js';

/**
 * @typedef {import('../index.js').ServersCallback} ServersCallback
 * @typedef {import('../index.js').HotContext} HotContext
 */

/**
 * Listens for `wsreg:servers` (and `wsreg:registry-error`), then asks for the
 * current list with `wsreg:get-servers`, so the first list is never missed.
 * @param {HotContext} hot `import.meta.hot`
 * @param {ServersCallback} callback
 * @param {{ project?: string | null, kind?: string | null }} [filter]
 * @returns {() => void} unsubscribe
 */
export function subscribeHot(hot, callback, filter = {}) {
  let stopped = false;
  /** @param {any} doc */
  const onServers = (doc) => {
    if (stopped || !doc || !Array.isArray(doc.servers)) return;
    callback(filterServers(doc.servers, filter), { source: 'hmr', error: null, stale: false });
  };
  /** @param {any} body */
  const onError = (body) => {
    if (stopped) return;
    callback([], { source: 'hmr', error: String(body?.error ?? 'registry error'), stale: false });
  };
  hot.on('wsreg:servers', onServers);
  hot.on('wsreg:registry-error', onError);
  hot.send('wsreg:get-servers', { project: filter.project ?? null, kind: filter.kind ?? null });
  return () => {
    stopped = true;
    hot.off?.('wsreg:servers', onServers);
    hot.off?.('wsreg:registry-error', onError);
  };
}
