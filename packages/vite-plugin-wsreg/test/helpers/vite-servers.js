// Real Vite servers for the tests: a dev server (createServer) and a preview
// server (preview) of a tiny site in a temp directory, with the plugin.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vite8 from 'vite';
import wsreg from '../../src/index.js';

/**
 * @typedef {import('../../index.js').WsregOptions} WsregOptions
 * @typedef {{ allowedHosts?: true | string[], cors?: import('vite').CorsOptions | boolean }} HttpOptions
 * @typedef {{ mode: 'dev' | 'preview', url: string, port: number, close: () => Promise<void>, dev: import('vite').ViteDevServer | null, warnings: string[] }} Started
 */

/** A temp project: index.html, and dist/index.html for preview. */
export function makeSite() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-site-'));
  const html = '<!doctype html><title>wsreg test</title><p>site</p>\n';
  fs.writeFileSync(path.join(root, 'index.html'), html);
  fs.mkdirSync(path.join(root, 'dist'));
  fs.writeFileSync(path.join(root, 'dist', 'index.html'), html);
  return root;
}

/**
 * A logger that keeps warnings (the plugin's included) for assertions.
 * @param {string[]} warnings
 * @returns {import('vite').Logger}
 */
function quietLogger(warnings) {
  /** @type {Set<string>} */
  const warned = new Set();
  return {
    hasWarned: false,
    info() {},
    warn(msg) {
      warnings.push(msg);
    },
    warnOnce(msg) {
      if (!warned.has(msg)) warnings.push(msg);
      warned.add(msg);
    },
    error(msg) {
      warnings.push(`error: ${msg}`);
    },
    clearScreen() {},
    hasErrorLogged() {
      return false;
    },
  };
}

/**
 * @param {'dev' | 'preview'} mode
 * @param {{ root: string, plugin?: WsregOptions, http?: HttpOptions }} options
 * @param {{ createServer: Function, preview: Function }} [vite] another Vite major (default: the workspace's)
 * @returns {Promise<Started>}
 */
export async function startVite(mode, options, vite = vite8) {
  /** @type {string[]} */
  const warnings = [];
  const common = {
    root: options.root,
    configFile: /** @type {false} */ (false),
    cacheDir: path.join(options.root, '.vite-cache'),
    customLogger: quietLogger(warnings),
    plugins: [wsreg(options.plugin)],
  };
  const http = { host: '127.0.0.1', port: 0, strictPort: true, ...options.http };
  if (mode === 'dev') {
    /** @type {import('vite').ViteDevServer} */
    const server = await vite.createServer({ ...common, server: { ...http, watch: null } });
    await server.listen();
    const port = /** @type {import('node:net').AddressInfo} */ (server.httpServer?.address()).port;
    return { mode, url: `http://127.0.0.1:${port}`, port, close: () => server.close(), dev: server, warnings };
  }
  /** @type {import('vite').PreviewServer} */
  const server = await vite.preview({ ...common, preview: { ...http, open: false } });
  const port = /** @type {import('node:net').AddressInfo} */ (server.httpServer.address()).port;
  return { mode, url: `http://127.0.0.1:${port}`, port, close: () => server.close(), dev: null, warnings };
}
