// One health probe of one server (docs/api.md, "Health"), over node:net and node:http:
//
// - `url` (ws://): a WebSocket handshake as a same-origin client would make it (`Host`
//   the url's authority, `Origin: http://<authority>`) marked `X-Wsreg-Probe: 1`, then
//   a ping, its pong, a close. The ping and the close leave in one write (a server
//   answers frames in order, so the pong still comes before its close: one write and
//   one wake fewer than waiting for the pong to send the close), and once the server's
//   close has come the connection ends with a reset, so neither side keeps a TIME_WAIT
//   socket (100 servers every 5 s would keep ~1,200, which every LISTEN-table read
//   parses). A 401 (`--auth token`) is an answer: ok;
// - `healthUrl` (http://): a GET that must answer 2xx;
// - wss:// and https:// would need TLS: a TCP connect only.
//
// A probe resolves to its round trip in milliseconds, or null when the server failed it
// (refused, no 101 nor 401, a bad Sec-WebSocket-Accept, no pong, not 2xx, or nothing within the
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
/** Each probe draws 24 random bytes (the key's 16, the two masks) from a pool refilled by one call per this many probes. */
const POOL_PROBES = 256;
let pool = Buffer.alloc(0);
let poolAt = 0;
/**
 * Every probe's socket reads into this one buffer (`onread`): its callback handles the
 * bytes before the next read can land, and copies only an incomplete rest. A stream's
 * 'data' would allocate a 64 KiB chunk per read, and garbage costs more than the probe
 * in a process with a heap as big as Vite's.
 */
const READ_BUFFER = Buffer.allocUnsafe(16 * 1024);
const EMPTY = Buffer.alloc(0);

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
  const random = randomBytes24();
  const key = random.toString('base64', 0, 16);
  const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
  /** @type {Buffer} what is left of earlier reads: a copy (reads land in the shared READ_BUFFER) */
  let buffered = EMPTY;
  let upgraded = false;
  let ponged = false;
  const fail = () => {
    settle(false);
    socket.destroy();
  };
  /** @param {Buffer} chunk valid only until this returns */
  const onData = (chunk) => {
    let data = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    buffered = EMPTY;
    if (!upgraded) {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return keep(data);
      const head = data.toString('latin1', 0, end);
      data = data.subarray(end + 4);
      // A server started with `--auth token` answers 401: it is up (the probe does not
      // carry the user's token to whatever an entry names).
      if (/^HTTP\/1\.1 401 /.test(head)) {
        settle(true);
        return void socket.resetAndDestroy();
      }
      if (!/^HTTP\/1\.1 101 /.test(head) || headerOf(head, 'sec-websocket-accept') !== accept) return fail();
      upgraded = true;
      socket.write(Buffer.concat([clientFrame(OP_PING, PING_PAYLOAD, random.subarray(16, 20)), clientFrame(OP_CLOSE, CLOSE_NORMAL, random.subarray(20, 24))]));
    }
    // The server may speak first (a Yjs server sends its sync step): skip frames up to the pong.
    for (let frame = readFrame(data); frame; frame = readFrame(data)) {
      data = data.subarray(frame.length);
      if (frame.opcode === OP_PONG && frame.payload.equals(PING_PAYLOAD)) {
        ponged = true;
        settle(true);
      } else if (frame.opcode === OP_CLOSE) {
        // Before the pong, the ping went unanswered. After it, the closing handshake is
        // done: a reset ends the connection with no TIME_WAIT left on either side.
        if (!ponged) return fail();
        socket.resetAndDestroy();
        return;
      }
    }
    keep(data);
  };
  /** @param {Buffer} rest an incomplete head or frame, kept (copied) for the next read */
  const keep = (rest) => {
    if (rest.length > MAX_BUFFERED) return fail();
    buffered = Buffer.from(rest);
  };
  // No setNoDelay: each write follows the server's answer, which acknowledged all before
  // it, so Nagle never holds one back.
  const socket = net.connect({
    host: hostOf(url),
    port: portOf(url),
    onread: {
      buffer: READ_BUFFER,
      callback: (n) => {
        onData(READ_BUFFER.subarray(0, n));
        return true; // keep reading
      },
    },
  });
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
  return socket;
}

/** The key's 16 bytes, then the masks of the ping and the close: a slice of the pool (crypto's CSPRNG), drawn once. */
function randomBytes24() {
  if (poolAt + 24 > pool.length) {
    pool = crypto.randomFillSync(Buffer.allocUnsafe(24 * POOL_PROBES));
    poolAt = 0;
  }
  poolAt += 24;
  return pool.subarray(poolAt - 24, poolAt);
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
