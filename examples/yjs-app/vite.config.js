import { defineConfig } from 'vite';
import wsreg from 'vite-plugin-wsreg';

// The registry is the directory ~/.peer-plan/servers/ (one file per server), or
// $WSREG_REGISTRY; a path ending in .json still works (the directory beside it).
export default defineConfig({
  plugins: [wsreg()],
  // Keep Vite's cache in the workspace's node_modules, not in a second one here.
  cacheDir: '../../node_modules/.vite/yjs-app',
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
