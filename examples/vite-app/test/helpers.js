// Shared by the example app's browser tests: the app's real Vite dev server
// (its own vite.config.js) on a temp registry, and its `vite build` output
// under `vite preview`.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, preview } from 'vite';
import { startDevApp, withRegistry } from '../../dev-app.js';

export const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Starts the example app exactly as `npm run dev` does, but on a free port
 * and with WSREG_REGISTRY pointing at `registry`.
 * @param {string} registry
 */
export function startApp(registry) {
  return startDevApp(APP_DIR, registry);
}

/**
 * Builds the example app into a temp directory and serves it with
 * `vite preview` (its own vite.config.js), WSREG_REGISTRY = `registry`.
 * @param {string} registry
 */
export async function buildAndPreviewApp(registry) {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-app-dist-'));
  return withRegistry(registry, async () => {
    await build({ root: APP_DIR, configLoader: 'native', logLevel: 'silent', build: { outDir, emptyOutDir: true } });
    const server = await preview({
      root: APP_DIR,
      configLoader: 'native',
      logLevel: 'silent',
      build: { outDir },
      preview: { port: 0, strictPort: true, open: false },
    });
    const port = /** @type {import('node:net').AddressInfo} */ (server.httpServer.address()).port;
    return {
      url: `http://127.0.0.1:${port}/`,
      async close() {
        await server.close();
        fs.rmSync(outDir, { recursive: true, force: true });
      },
    };
  });
}
