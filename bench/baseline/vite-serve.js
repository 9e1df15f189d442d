// The baseline registry endpoint: a Vite dev server with vite-plugin-wsreg, on a port
// the OS picks, rooted at the small page beside this file. Prints one line,
// `listening http://127.0.0.1:PORT/`, and stops on SIGINT/SIGTERM.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';
import wsreg from 'vite-plugin-wsreg';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), 'vite-app');
const server = await createServer({
  configFile: false,
  root,
  logLevel: 'warn',
  clearScreen: false,
  server: { host: '127.0.0.1', port: 0, strictPort: false },
  plugins: [wsreg({ registry: process.env.WSREG_REGISTRY })],
});
await server.listen();
const { port } = /** @type {import('node:net').AddressInfo} */ (server.httpServer?.address());
console.log(`listening http://127.0.0.1:${port}/`);
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
