import { defineConfig } from 'vite';
import wsreg from 'vite-plugin-wsreg';

// The registry is ~/.peer-plan/servers.json, or $WSREG_REGISTRY.
export default defineConfig({
  plugins: [wsreg()],
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
