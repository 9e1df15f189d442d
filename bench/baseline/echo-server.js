// The baseline echo server: the prototype's Node `ws` server. Listens on a port the OS
// picks, echoes every message unchanged, registers itself the prototype's way and
// unregisters on SIGINT/SIGTERM. Prints one line, `listening ws://127.0.0.1:PORT/ id ID`,
// the same shape as `wsreg echo`, so the benchmark runner treats both alike.

import { WebSocketServer } from 'ws';
import { register, unregister } from './prototype-registry.js';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});

wss.on('listening', () => {
  const { port } = /** @type {import('node:net').AddressInfo} */ (wss.address());
  const id = `echo-${process.pid}-${Date.now()}`;
  register({ id, port, pid: process.pid, startedAt: Date.now() });
  console.log(`listening ws://127.0.0.1:${port}/ id ${id}`);
  const stop = () => {
    unregister(id);
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
});
