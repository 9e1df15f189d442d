#!/usr/bin/env node
// An MCP server (official TypeScript SDK, stdio transport) that holds one Y.Doc — a
// Y.Array of strings, "notes" — and serves it over the y-websocket protocol on a port
// the OS picks, registered in the wsreg registry (kind `yjs`), so that a page finds it
// by project and shows the notes live while an agent adds them through the tools
// `append_note` and `read_notes`.
//
// When the MCP client goes away (stdin ends), or on SIGINT/SIGTERM/SIGHUP, it
// unregisters, closes every WebSocket and exits.
//
// Options (arguments win over the environment):
//   --project P   WSREG_PROJECT   the namespace the page filters on (default "mcp-yjs")
//   --session S   WSREG_SESSION   a session label (default none)
//   --name N      WSREG_NAME      the label shown on pages (default "mcp-yjs notes")
//   --room R                      the y-websocket room (URL path) it serves (default "notes")
//   WSREG_REGISTRY                the registry directory (default ~/.peer-plan/servers)
//
// stdout is the MCP channel: everything else goes to stderr.

import http from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';
import * as Y from 'yjs';
import * as syncProtocol from 'y-protocols/sync';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { registerServer } from 'wsreg-node';

const { values: args } = parseArgs({
  options: {
    project: { type: 'string' },
    session: { type: 'string' },
    name: { type: 'string' },
    room: { type: 'string' },
  },
});
const project = args.project ?? process.env.WSREG_PROJECT ?? 'mcp-yjs';
const session = args.session ?? process.env.WSREG_SESSION ?? null;
const name = args.name ?? process.env.WSREG_NAME ?? 'mcp-yjs notes';
const room = args.room ?? 'notes';

/** @param {string} message */
const log = (message) => process.stderr.write(`mcp-yjs: ${message}\n`);

// ---------------------------------------------------------------- the document

const doc = new Y.Doc();
/** @type {Y.Array<string>} */
const notes = doc.getArray('notes');
const MAX_NOTE = 10_000;

// ------------------------------------------------- y-websocket, on 127.0.0.1:0

const MESSAGE_SYNC = 0;
const MESSAGE_AWARENESS = 1;
const awareness = new awarenessProtocol.Awareness(doc);
awareness.setLocalState(null); // the server itself is nobody

/** @type {Map<import('ws').WebSocket, Set<number>>} each socket → the awareness clients it controls */
const conns = new Map();

/** @param {import('ws').WebSocket} ws @param {Uint8Array} message */
function send(ws, message) {
  if (ws.readyState === ws.OPEN) ws.send(message, (err) => { if (err) ws.terminate(); });
}

/** @param {Uint8Array} message */
function broadcast(message) {
  for (const ws of conns.keys()) send(ws, message);
}

doc.on('update', (/** @type {Uint8Array} */ update) => {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_SYNC);
  syncProtocol.writeUpdate(encoder, update);
  broadcast(encoding.toUint8Array(encoder));
});

awareness.on('update', (/** @type {{added: number[], updated: number[], removed: number[]}} */ changes, /** @type {unknown} */ origin) => {
  const changed = [...changes.added, ...changes.updated, ...changes.removed];
  const controlled = origin instanceof Object ? conns.get(/** @type {any} */ (origin)) : undefined;
  if (controlled) {
    for (const id of changes.added) controlled.add(id);
    for (const id of changes.removed) controlled.delete(id);
  }
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MESSAGE_AWARENESS);
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, changed));
  broadcast(encoding.toUint8Array(encoder));
});

/** @param {import('ws').WebSocket} ws @param {Uint8Array} data */
function onMessage(ws, data) {
  const decoder = decoding.createDecoder(data);
  const encoder = encoding.createEncoder();
  const type = decoding.readVarUint(decoder);
  if (type === MESSAGE_SYNC) {
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    syncProtocol.readSyncMessage(decoder, encoder, doc, ws);
    if (encoding.length(encoder) > 1) send(ws, encoding.toUint8Array(encoder));
  } else if (type === MESSAGE_AWARENESS) {
    awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoder), ws);
  }
}

/**
 * Loopback only, against DNS rebinding and cross-site WebSocket hijacking: the Host
 * must be a loopback name, and an Origin, when sent, a loopback origin.
 * @param {string} hostname lowercase, IPv6 in brackets
 */
function isLoopbackName(hostname) {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]'
    || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
/** @param {http.IncomingMessage} req */
function allowed(req) {
  try {
    if (!isLoopbackName(new URL(`http://${req.headers.host ?? ''}`).hostname)) return false;
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackName(url.hostname);
  } catch {
    return false;
  }
}

const httpServer = http.createServer((_req, res) => {
  res.writeHead(426, { 'content-type': 'text/plain' }).end(`a y-websocket server: connect to /${room}\n`);
});
const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
httpServer.on('upgrade', (req, socket, head) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const refuse = (/** @type {string} */ status) => { socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`); };
  if (!allowed(req)) return refuse('403 Forbidden');
  if (path !== `/${room}`) return refuse('404 Not Found');
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.binaryType = 'arraybuffer';
    conns.set(ws, new Set());
    ws.on('message', (data) => {
      try {
        onMessage(ws, new Uint8Array(/** @type {ArrayBuffer} */ (data)));
      } catch (e) {
        log(`bad message from a client: ${e}`);
        ws.close(1003);
      }
    });
    ws.on('close', () => {
      const controlled = conns.get(ws);
      conns.delete(ws);
      if (controlled?.size) awarenessProtocol.removeAwarenessStates(awareness, [...controlled], null);
    });
    // Sync step 1 (what we have), and who is here.
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MESSAGE_SYNC);
    syncProtocol.writeSyncStep1(encoder, doc);
    send(ws, encoding.toUint8Array(encoder));
    const states = awareness.getStates();
    if (states.size > 0) {
      const a = encoding.createEncoder();
      encoding.writeVarUint(a, MESSAGE_AWARENESS);
      encoding.writeVarUint8Array(a, awarenessProtocol.encodeAwarenessUpdate(awareness, [...states.keys()]));
      send(ws, encoding.toUint8Array(a));
    }
  });
});
// A dead peer must not hold the process: ping every 30 s, drop who did not answer.
const alive = new WeakSet();
wss.on('connection', (ws) => { alive.add(ws); ws.on('pong', () => alive.add(ws)); });
const pinger = setInterval(() => {
  for (const ws of conns.keys()) {
    if (!alive.has(ws)) { ws.terminate(); continue; }
    alive.delete(ws);
    ws.ping();
  }
}, 30_000);
pinger.unref();

httpServer.listen(0, '127.0.0.1');
const registration = await registerServer(httpServer, { kind: 'yjs', name, project, session, meta: { room, mcp: 'stdio' } });
const url = registration.entry.url;
log(`notes served at ${url.replace(/\/$/, '')}/${room} (project ${project}${session ? `, session ${session}` : ''}, id ${registration.id})`);

// ----------------------------------------------------------------- MCP, on stdio

const mcp = new McpServer({ name: 'wsreg-mcp-yjs', version: '0.1.0' });

mcp.registerTool('append_note', {
  title: 'Append a note',
  description: `Appends a line of text to the shared notes (a Yjs document shown live on every page connected to ${url}, project "${project}").`,
  inputSchema: { text: z.string().min(1).max(MAX_NOTE).describe('The note: one line of text') },
  outputSchema: { index: z.number().int(), count: z.number().int() },
}, async ({ text }) => {
  const line = text.replace(/\r?\n/g, ' ');
  notes.push([line]);
  const count = notes.length;
  return {
    content: [{ type: 'text', text: `Appended note ${count} of ${count}.` }],
    structuredContent: { index: count - 1, count },
  };
});

mcp.registerTool('read_notes', {
  title: 'Read the notes',
  description: 'Returns every note of the shared document, oldest first, one per line (including those typed on the page).',
  inputSchema: {},
  outputSchema: { notes: z.array(z.string()) },
}, async () => {
  const all = notes.toArray();
  return {
    content: [{ type: 'text', text: all.length ? all.map((n, i) => `${i + 1}. ${n}`).join('\n') : '(no notes yet)' }],
    structuredContent: { notes: all },
  };
});

// ----------------------------------------------------------------- the way out

let closing = false;
/** @param {string} why @param {number} code */
async function shutdown(why, code) {
  if (closing) return;
  closing = true;
  clearInterval(pinger);
  await registration.close(); // first: the pages learn that the server is gone
  for (const ws of conns.keys()) ws.terminate();
  wss.close();
  httpServer.close();
  await mcp.close().catch(() => {});
  log(`${why}: unregistered ${registration.id} and closed`);
  process.exit(code);
}

process.stdin.on('end', () => { void shutdown('stdin closed', 0); });
process.stdin.on('close', () => { void shutdown('stdin closed', 0); });
for (const [signal, number] of /** @type {const} */ ([['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]])) {
  process.on(signal, () => { void shutdown(signal, 128 + number); });
}

const transport = new StdioServerTransport();
await mcp.connect(transport);
