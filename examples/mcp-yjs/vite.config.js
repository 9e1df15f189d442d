import { defineConfig } from 'vite';
import wsreg from 'vite-plugin-wsreg';

/**
 * The page's Vite config. `registry` is the registry directory the plugin reads
 * (default $WSREG_REGISTRY, else ~/.peer-plan/servers/); the test passes a private one.
 * @param {{ registry?: string }} [options]
 * @returns {import('vite').UserConfig}
 */
export function mcpYjsConfig({ registry } = {}) {
  return {
    plugins: [wsreg(registry === undefined ? {} : { registry })],
    // Keep Vite's cache in the workspace's node_modules, not in a second one here.
    cacheDir: '../../node_modules/.vite/mcp-yjs',
    server: { host: '127.0.0.1' },
    preview: { host: '127.0.0.1' },
  };
}

export default defineConfig(mcpYjsConfig());
