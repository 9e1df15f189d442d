// Real WebSocket echo servers for the tests (the `ws` package), on 127.0.0.1. Like
// wsreg's own servers, they do not count an endpoint's health probe (a connection
// marked `X-Wsreg-Probe`, docs/api.md) among their clients; `ws` answers its ping.

import WebSocket, { WebSocketServer } from 'ws';

/**
 * Starts an echo server; `port` 0 picks a free one.
 * @param {number} [port]
 */
export async function startEcho(port = 0) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  /** @type {{ code: number, reason: string }[]} */
  const closes = [];
  let connections = 0;
  /** @type {Set<import('ws').WebSocket>} */
  const clients = new Set();
  wss.on('connection', (socket, req) => {
    if (req.headers['x-wsreg-probe'] !== undefined) return;
    connections += 1;
    clients.add(socket);
    socket.on('close', () => clients.delete(socket));
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
  });
  const actualPort = /** @type {import('node:net').AddressInfo} */ (wss.address()).port;
  return {
    port: actualPort,
    url: `ws://127.0.0.1:${actualPort}/`,
    closes,
    get connections() {
      return connections;
    },
    get clients() {
      return clients.size;
    },
    /** Drops every client at once and keeps listening: the clients may come back. */
    dropClients() {
      for (const c of wss.clients) c.terminate();
    },
    /** Stops listening and drops every client at once (like a crash). */
    async kill() {
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(() => resolve(undefined)));
    },
  };
}

/**
 * Opens one WebSocket to `server` and waits until the server has it. A connection some
 * client had already started to the server is accepted before it (on loopback, in
 * order), so this bounds a check that no such connection was made. The probe counts
 * in `server.connections`.
 * @param {{ url: string, connections: number }} server
 */
export async function probe(server) {
  const before = server.connections;
  const ws = new WebSocket(server.url);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  await waitFor(() => server.connections > before, 3000, 'the probe accepted');
  ws.close();
}

/**
 * Waits until `check()` is truthy (polling every few ms), or throws.
 * @template T
 * @param {() => T} check
 * @param {number} [timeoutMs]
 * @param {string} [what]
 * @returns {Promise<T>}
 */
export async function waitFor(check, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
