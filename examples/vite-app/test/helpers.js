// Shared by the example app's browser tests: the app's real Vite dev server
// (its own vite.config.js) on a temp registry, and Chromium.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, createServer, preview } from 'vite';

export const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export { launchChromium } from '../../../packages/wsreg-client/test/helpers/browser.js';

/** A temp registry directory (0700) and its servers.json path. */
export function tempRegistry() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-app-'));
  fs.chmodSync(dir, 0o700);
  return { dir, file: path.join(dir, 'servers.json') };
}

/**
 * Starts the example app exactly as `npm run dev` does, but on a free port
 * and with WSREG_REGISTRY pointing at `registry`.
 * @param {string} registry
 */
export async function startApp(registry) {
  const saved = process.env.WSREG_REGISTRY;
  process.env.WSREG_REGISTRY = registry;
  try {
    const server = await createServer({
      root: APP_DIR,
      configLoader: 'native',
      logLevel: 'silent',
      server: { port: 0, strictPort: true, watch: null },
    });
    await server.listen();
    const port = /** @type {import('node:net').AddressInfo} */ (server.httpServer?.address()).port;
    return { server, url: `http://127.0.0.1:${port}/` };
  } finally {
    if (saved === undefined) delete process.env.WSREG_REGISTRY;
    else process.env.WSREG_REGISTRY = saved;
  }
}

/**
 * Builds the example app into a temp directory and serves it with
 * `vite preview` (its own vite.config.js), WSREG_REGISTRY = `registry`.
 * @param {string} registry
 */
export async function buildAndPreviewApp(registry) {
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-app-dist-'));
  const saved = process.env.WSREG_REGISTRY;
  process.env.WSREG_REGISTRY = registry;
  try {
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
  } finally {
    if (saved === undefined) delete process.env.WSREG_REGISTRY;
    else process.env.WSREG_REGISTRY = saved;
  }
}
