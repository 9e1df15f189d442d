// connectAll(): one WebSocket per live server, kept open while the server is
// in the list, reconnected with exponential backoff when it drops.

import { backoffDelay } from './backoff.js';

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('../index.js').ConnectionStatus} ConnectionStatus
 * @typedef {import('../index.js').ConnectAllOptions} ConnectAllOptions
 * @typedef {import('../index.js').Connections} Connections
 * @typedef {import('../index.js').StatusInfo} StatusInfo
 * @typedef {{
 *   server: ServerEntry,
 *   ws: WebSocket | null,
 *   status: ConnectionStatus,
 *   attempt: number,
 *   timer: ReturnType<typeof setTimeout> | null,
 *   removed: boolean,
 * }} Connection
 */

const OPEN = 1; // WebSocket.OPEN

/**
 * @param {ConnectAllOptions} [options]
 * @returns {Connections}
 */
export function connectAll(options = {}) {
  const WebSocketImpl = options.WebSocket ?? globalThis.WebSocket;
  const initialDelayMs = options.initialDelayMs ?? 250;
  const maxDelayMs = options.maxDelayMs ?? 5000;
  const binaryType = options.binaryType ?? 'arraybuffer';
  /** @type {Map<string, Connection>} */
  const connections = new Map();
  let closed = false;

  /**
   * @param {Connection} c
   * @param {ConnectionStatus} status
   * @param {StatusInfo} [info]
   */
  function setStatus(c, status, info = {}) {
    c.status = status;
    try {
      options.onStatus?.(c.server, status, info);
    } catch (err) {
      reportError(err);
    }
  }

  /** @param {Connection} c */
  function open(c) {
    if (closed || c.removed) return;
    setStatus(c, 'connecting', { attempt: c.attempt });
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new WebSocketImpl(c.server.url, options.protocols);
    } catch (err) {
      setStatus(c, 'disconnected', { error: err instanceof Error ? err.message : String(err) });
      retry(c);
      return;
    }
    ws.binaryType = binaryType;
    c.ws = ws;
    ws.addEventListener('open', () => {
      if (c.ws !== ws) return;
      c.attempt = 0;
      setStatus(c, 'connected');
    });
    ws.addEventListener('message', (event) => {
      if (c.ws !== ws) return;
      try {
        options.onMessage?.(c.server, event.data, event);
      } catch (err) {
        reportError(err);
      }
    });
    ws.addEventListener('close', (event) => {
      if (c.ws !== ws) return;
      c.ws = null;
      setStatus(c, 'disconnected', { code: event.code, reason: event.reason });
      retry(c);
    });
    // An 'error' is always followed by 'close', which does the work.
    ws.addEventListener('error', () => {});
  }

  /** @param {Connection} c */
  function retry(c) {
    if (closed || c.removed) return;
    const delay = backoffDelay(c.attempt, initialDelayMs, maxDelayMs);
    c.attempt += 1;
    c.timer = setTimeout(() => {
      c.timer = null;
      open(c);
    }, delay);
  }

  /** @param {Connection} c */
  function forget(c) {
    c.removed = true;
    connections.delete(c.server.id);
    if (c.timer) clearTimeout(c.timer);
    c.timer = null;
    const ws = c.ws;
    c.ws = null;
    if (ws && ws.readyState <= OPEN) ws.close(1000, 'server left the registry');
    setStatus(c, 'disconnected', { removed: true });
  }

  return {
    update(servers) {
      if (closed) return;
      const list = !servers ? [] : 'servers' in servers ? servers.servers : servers;
      /** @type {Map<string, ServerEntry>} */
      const wanted = new Map();
      for (const s of list) {
        if (s && typeof s.id === 'string' && typeof s.url === 'string' && (!options.filter || options.filter(s))) {
          wanted.set(s.id, s);
        }
      }
      for (const c of [...connections.values()]) {
        const next = wanted.get(c.server.id);
        // Gone, or the same id now at another address: a different server.
        if (!next || next.url !== c.server.url) forget(c);
      }
      for (const [id, server] of wanted) {
        const c = connections.get(id);
        if (c) {
          c.server = server;
          continue;
        }
        /** @type {Connection} */
        const fresh = { server, ws: null, status: 'connecting', attempt: 0, timer: null, removed: false };
        connections.set(id, fresh);
        open(fresh);
      }
    },
    sendAll(data) {
      let sent = 0;
      for (const c of connections.values()) {
        if (c.ws && c.ws.readyState === OPEN) {
          c.ws.send(data);
          sent += 1;
        }
      }
      return sent;
    },
    send(id, data) {
      const c = connections.get(id);
      if (!c?.ws || c.ws.readyState !== OPEN) return false;
      c.ws.send(data);
      return true;
    },
    statuses() {
      /** @type {Map<string, ConnectionStatus>} */
      const out = new Map();
      for (const [id, c] of connections) out.set(id, c.status);
      return out;
    },
    close() {
      if (closed) return;
      for (const c of [...connections.values()]) forget(c);
      closed = true;
    },
  };
}

/** @param {unknown} err */
function reportError(err) {
  // A callback that throws must not break the other connections.
  setTimeout(() => {
    throw err;
  });
}
