import { defineConfig } from 'vite';
import wsreg from 'vite-plugin-wsreg';

// The registry is ~/.peer-plan/servers.json, or $WSREG_REGISTRY.
export default defineConfig({
  plugins: [wsreg()],
  // Keep Vite's cache in the workspace's node_modules, not in a second one here.
  cacheDir: '../../node_modules/.vite/yjs-app',
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
