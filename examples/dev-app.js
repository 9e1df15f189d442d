// Shared by the example apps' tests: an app served by its own Vite dev server (its own
// vite.config.js, as `npm run dev` loads it) on a free port, reading a temporary registry
// through $WSREG_REGISTRY, which is put back as it was once the server is up.

import { createServer } from 'vite';

/**
 * Runs `start` with $WSREG_REGISTRY = `registry` (what the apps' vite.config.js hands
 * the plugin), then restores the variable, whether `start` succeeds or not.
 * @template T
 * @param {string} registry
 * @param {() => Promise<T>} start
 * @returns {Promise<T>}
 */
export async function withRegistry(registry, start) {
  const saved = process.env.WSREG_REGISTRY;
  process.env.WSREG_REGISTRY = registry;
  try {
    return await start();
  } finally {
    if (saved === undefined) delete process.env.WSREG_REGISTRY;
    else process.env.WSREG_REGISTRY = saved;
  }
}

/**
 * Starts the app in `root` exactly as `npm run dev` does, but on a free port, without
 * watching files, and with WSREG_REGISTRY pointing at `registry`.
 * @param {string} root the app's directory
 * @param {string} registry
 */
export function startDevApp(root, registry) {
  return withRegistry(registry, async () => {
    const server = await createServer({
      root,
      configLoader: 'native',
      logLevel: 'silent',
      server: { port: 0, strictPort: true, watch: null },
    });
    await server.listen();
    const port = /** @type {import('node:net').AddressInfo} */ (server.httpServer?.address()).port;
    return { server, url: `http://127.0.0.1:${port}/` };
  });
}
