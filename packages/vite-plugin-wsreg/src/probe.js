// One health probe of one server (docs/api.md, "Health"), over node:net and node:http:
//
// - `url` (ws://): a WebSocket handshake as a same-origin client would make it (`Host`
//   the url's authority, `Origin: http://<authority>`) marked `X-Wsreg-Probe: 1`, then
//   a ping, its pong, a close;
// - `healthUrl` (http://): a GET that must answer 2xx;
// - wss:// and https:// would need TLS: a TCP connect only.
//
// A probe resolves to its round trip in milliseconds, or null when the server failed it
// (refused, no 101, a bad Sec-WebSocket-Accept, no pong, not 2xx, or nothing within the
// timeout). It never rejects, and its socket is gone by the timeout at the latest.

import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {(latencyMs: number | null) => void} Settle
 */

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const PING_PAYLOAD = Buffer.from('wsreg-probe');
/** A close frame's payload: status 1000, normal closure. */
const CLOSE_NORMAL = Buffer.from([0x03, 0xe8]);
/** More unread bytes than this (a handshake answer, frames before the pong) fail the probe: nothing is buffered without bound. */
const MAX_BUFFERED = 1024 * 1024;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/**
 * Probes one entry: `healthUrl` when it has one, else its `url`.
 * @param {Pick<ServerEntry, 'url' | 'healthUrl'>} entry
 * @param {number} timeoutMs
 * @returns {Promise<number | null>} the round trip (ms, to 0.1), or null
 */
export function probe(entry, timeoutMs) {
  let url;
  try {
    url = new URL(entry.healthUrl ?? entry.url);
  } catch {
    return Promise.resolve(null);
  }
  switch (url.protocol) {
    case 'ws:':
      return attempt(timeoutMs, (settle) => websocketProbe(url, settle));
    case 'http:':
      return attempt(timeoutMs, (settle) => httpProbe(url, settle));
    case 'wss:':
    case 'https:':
      return attempt(timeoutMs, (settle) => tcpProbe(url, settle));
    default:
      return Promise.resolve(null);
  }
}

/**
 * Runs one probe: `start` opens a connection and calls `settle(true | false)` once it
 * knows; the timeout settles a failure. The connection is destroyed by the timeout at
 * the latest (a probe may close gracefully after it settled).
 * @param {number} timeoutMs
 * @param {(settle: (ok: boolean) => void) => { destroy(): void, once(event: 'close', fn: () => void): void }} start
 * @returns {Promise<number | null>}
 */
function attempt(timeoutMs, start) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let settled = false;
    const settle = (/** @type {boolean} */ ok) => {
      if (settled) return;
      settled = true;
      resolve(ok ? Math.round((performance.now() - t0) * 10) / 10 : null);
    };
    const connection = start(settle);
    const timer = setTimeout(() => {
      settle(false);
      connection.destroy();
    }, timeoutMs);
    connection.once('close', () => {
      clearTimeout(timer);
      settle(false);
    });
  });
}

/**
 * @param {URL} url a ws:// URL
 * @param {(ok: boolean) => void} settle
 */
function websocketProbe(url, settle) {
  // One draw of entropy per probe: the key's 16 bytes, then the masks of the ping and the close.
  const random = crypto.randomBytes(24);
  const key = random.toString('base64', 0, 16);
  const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  const socket = net.connect({ host: hostOf(url), port: portOf(url) });
  socket.setNoDelay(true);
  socket.on('error', () => settle(false));
  socket.once('connect', () => {
    socket.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\n` +
        `Host: ${url.host}\r\n` +
        `Origin: http://${url.host}\r\n` +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${key}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        'X-Wsreg-Probe: 1\r\n\r\n',
    );
  });
  /** @type {Buffer} */
  let buffered = Buffer.alloc(0);
  let upgraded = false;
  const fail = () => {
    settle(false);
    socket.destroy();
  };
  socket.on('data', (/** @type {Buffer} */ chunk) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    if (!upgraded) {
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return void (buffered.length > MAX_BUFFERED && fail());
      const head = buffered.subarray(0, end).toString('latin1');
      buffered = buffered.subarray(end + 4);
      if (!/^HTTP\/1\.1 101 /.test(head) || headerOf(head, 'sec-websocket-accept') !== accept) return fail();
      upgraded = true;
      socket.write(clientFrame(OP_PING, PING_PAYLOAD, random.subarray(16, 20)));
    }
    // The server may speak first (a Yjs server sends its sync step): skip frames up to the pong.
    for (let frame = readFrame(buffered); frame; frame = readFrame(buffered)) {
      buffered = buffered.subarray(frame.length);
      if (frame.opcode === OP_CLOSE) return fail();
      if (frame.opcode === OP_PONG && frame.payload.equals(PING_PAYLOAD)) {
        settle(true);
        // Close as a client does; the server's close and FIN end the socket.
        socket.end(clientFrame(OP_CLOSE, CLOSE_NORMAL, random.subarray(20, 24)));
        return;
      }
    }
    if (buffered.length > MAX_BUFFERED) fail();
  });
  return socket;
}

/**
 * @param {URL} url an http:// URL
 * @param {(ok: boolean) => void} settle
 */
function httpProbe(url, settle) {
  const req = http.get(url, { agent: false, headers: { 'X-Wsreg-Probe': '1' } }, (res) => {
    const status = res.statusCode ?? 0;
    settle(status >= 200 && status < 300);
    req.destroy();
  });
  req.on('error', () => settle(false));
  return req;
}

/**
 * @param {URL} url
 * @param {(ok: boolean) => void} settle
 */
function tcpProbe(url, settle) {
  const socket = net.connect({ host: hostOf(url), port: portOf(url) });
  socket.on('error', () => settle(false));
  socket.once('connect', () => {
    settle(true);
    socket.destroy();
  });
  return socket;
}

/** @param {URL} url */
function hostOf(url) {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/** @param {URL} url */
function portOf(url) {
  if (url.port) return Number(url.port);
  return url.protocol === 'wss:' || url.protocol === 'https:' ? 443 : 80;
}

/**
 * The value of a header in a response head (first one; names case-insensitive).
 * @param {string} head
 * @param {string} name lowercase
 */
function headerOf(head, name) {
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
  }
  return null;
}

/**
 * A masked client frame (FIN set) with a payload of at most 125 bytes.
 * @param {number} opcode
 * @param {Buffer} payload
 * @param {Buffer} mask 4 random bytes
 */
function clientFrame(opcode, payload, mask) {
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i] ^ mask[i % 4];
  return frame;
}

/**
 * The first whole frame in `buf`, or null while it is incomplete.
 * @param {Buffer} buf
 * @returns {{ opcode: number, payload: Buffer, length: number } | null}
 */
function readFrame(buf) {
  if (buf.length < 2) return null;
  const masked = (buf[1] & 0x80) !== 0;
  let size = buf[1] & 0x7f;
  let offset = 2;
  if (size === 126) {
    if (buf.length < 4) return null;
    size = buf.readUInt16BE(2);
    offset = 4;
  } else if (size === 127) {
    if (buf.length < 10) return null;
    size = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const maskAt = offset;
  if (masked) offset += 4;
  if (buf.length < offset + size) return null;
  const payload = Buffer.from(buf.subarray(offset, offset + size));
  if (masked) for (let i = 0; i < size; i++) payload[i] ^= buf[maskAt + (i % 4)];
  return { opcode: buf[0] & 0x0f, payload, length: offset + size };
}
