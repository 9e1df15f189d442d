// vite-plugin-wsreg: `wsreg(options)` serves the live wsreg registry in
// `vite dev` and `vite preview`, and pushes every change to the page.

import { createAuthMiddleware, loadOrCreateToken } from './auth.js';
import { createGuard } from './guard.js';
import { HealthMonitor } from './health.js';
import { attachHmr, clientHotChannel, subscribeHmrPages } from './hmr.js';
import { createRegistryRoutes } from './http.js';
import { registryLocation } from './location.js';
import { RegistryWatcher } from './watch.js';

export * from './registry.js';
export { createGuard, hostAllowed, hostnameOf, isLoopbackHostname, corsAllows } from './guard.js';
export { createRegistryRoutes } from './http.js';
export { attachHmr, clientHotChannel, subscribeHmrPages, ERROR_EVENT, REQUEST_EVENT, SERVERS_EVENT } from './hmr.js';
export { HealthMonitor, DEFAULT_HEALTH_INTERVAL_MS, PROBE_TIMEOUT_MS } from './health.js';
export { probe } from './probe.js';
export { RegistryWatcher } from './watch.js';
export { createAuthMiddleware, loadOrCreateToken, tokenMatches } from './auth.js';

/**
 * @typedef {import('../index.js').WsregOptions} WsregOptions
 * @typedef {import('vite').Plugin} Plugin
 * @typedef {import('vite').ViteDevServer} ViteDevServer
 * @typedef {import('vite').PreviewServer} PreviewServer
 */

/**
 * The Vite plugin.
 *
 * ```js
 * import wsreg from 'vite-plugin-wsreg';
 * export default { plugins: [wsreg()] };
 * ```
 * @param {WsregOptions} [options]
 * @returns {Plugin}
 */
export default function wsreg(options = {}) {
  const interval = options.healthInterval;
  if (interval !== undefined && !(typeof interval === 'number' && Number.isFinite(interval) && interval >= 0)) {
    throw new TypeError(`vite-plugin-wsreg: healthInterval must be a number of milliseconds, 0 or more (0 turns probes off); got ${String(interval)}`);
  }
  return {
    name: 'vite-plugin-wsreg',
    configureServer(server) {
      mount(server, options, 'dev');
    },
    configurePreviewServer(server) {
      mount(server, options, 'preview');
    },
  };
}
export { wsreg };

/**
 * @param {ViteDevServer | PreviewServer} server
 * @param {WsregOptions} options
 * @param {'dev' | 'preview'} mode
 */
function mount(server, options, mode) {
  const { logger } = server.config;
  const http = mode === 'dev' ? server.config.server : server.config.preview;
  if (options.auth === 'token') {
    const token = loadOrCreateToken(registryLocation(options.registry).dir);
    server.middlewares.use(createAuthMiddleware(token));
    server.httpServer?.once('listening', () => {
      const address = /** @type {import('node:net').AddressInfo} */ (server.httpServer?.address());
      logger.info(`[wsreg] open http://127.0.0.1:${address.port}/?token=${token}`);
    });
  }
  const filter = { project: options.project ?? null, kind: options.kind ?? null };
  const watcher = new RegistryWatcher({
    registry: options.registry,
    debounceMs: options.debounceMs,
    recheckMs: options.recheckMs,
    context: options.context,
    pushWhileHeld: true,
  });
  watcher.on('warning', (/** @type {string} */ w) => logger.warn(`[wsreg] ${w}`, { timestamp: true }));
  const monitor = new HealthMonitor(watcher, { intervalMs: options.healthInterval, filter });

  const routes = createRegistryRoutes({
    route: options.route,
    monitor,
    guard: createGuard({ allowedHosts: http.allowedHosts, cors: http.cors }),
    filter,
    keepAliveMs: options.keepAliveMs,
  });
  server.middlewares.use(routes.middleware);

  /** @type {(() => void)[]} */
  const detach = [];
  if (mode === 'dev' && options.hmr !== false) {
    const dev = /** @type {ViteDevServer} */ (server);
    const hot = clientHotChannel(dev);
    if (hot) detach.push(attachHmr(hot, monitor, filter), subscribeHmrPages(dev.ws, monitor));
  }
  watcher.start();

  const stop = () => {
    for (const f of detach) f();
    routes.close();
    monitor.close();
    watcher.close();
  };
  server.httpServer?.once('close', stop);
}
