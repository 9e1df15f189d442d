// One health probe (src/probe.js) against real servers: `wsreg echo`, `wsreg yjs`
// (which speaks first: its sync step comes before the pong), `wsreg echo --auth token`
// (a 401 is an answer) and a Node `ws` server pass,
// each without a complaint in its log and without a TIME_WAIT socket left behind (the
// probe resets the connection once both close frames are exchanged); and servers that
// get the handshake or the ping wrong fail.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { probe } from '../src/probe.js';
import { tempRegistry } from './helpers/registry-writer.js';
import { startWsregServer } from './helpers/wsreg-bin.js';

const TIME_WAIT = '06';

/**
 * The TCP sockets in TIME_WAIT with `port` at either end (/proc/net/tcp, tcp6), as
 * "local remote" address pairs.
 * @param {number} port
 */
function timeWaitSockets(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/tcp', '/proc/net/tcp6']
    .flatMap((table) => fs.readFileSync(table, 'latin1').split('\n').slice(1))
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[3] === TIME_WAIT && (f[1]?.endsWith(`:${hex}`) || f[2]?.endsWith(`:${hex}`)))
    .map((f) => `${f[1]} ${f[2]}`);
}

/**
 * Runs `fn`; returns the TIME_WAIT sockets on `port` that were not there before it (an
 * earlier connection of another test may have had `port` as its own, ephemeral, one).
 * @param {number} port
 * @param {() => Promise<void>} fn
 */
async function newTimeWaitSockets(port, fn) {
  const before = new Set(timeWaitSockets(port));
  await fn();
  return timeWaitSockets(port).filter((s) => !before.has(s));
}

/**
 * A raw TCP server that answers each connection's first bytes with `answer(request)`.
 * @param {(request: string) => Buffer} answer
 */
async function rawServer(answer) {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', (d) => socket.write(answer(d.toString('latin1'))));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
  const port = /** @type {net.AddressInfo} */ (server.address()).port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

/**
 * A 101 answer to `request`, with a right Sec-WebSocket-Accept unless `accept` is given.
 * @param {string} request
 * @param {string} [accept]
 */
function switching(request, accept) {
  const key = /\r\nSec-WebSocket-Key: (\S+)\r\n/.exec(request)?.[1] ?? '';
  const right = crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept ?? right}\r\n\r\n`;
}

describe('a probe of a real server passes, quietly, and leaves no TIME_WAIT', () => {
  const reg = tempRegistry('wsreg-probe-');
  after(() => fs.rmSync(reg.root, { recursive: true, force: true }));

  for (const subcommand of /** @type {const} */ (['echo', 'yjs'])) {
    test(`wsreg ${subcommand}`, async () => {
      const server = await startWsregServer(subcommand, reg.dir);
      try {
        const entry = subcommand === 'yjs' ? { url: `${server.entry.url.replace(/\/$/, '')}/probe-room` } : server.entry;
        const left = await newTimeWaitSockets(server.entry.port, async () => {
          for (let i = 0; i < 5; i++) {
            const latency = await probe(entry, 1000);
            assert.equal(typeof latency, 'number', `probe ${i} of ${entry.url} failed`);
          }
        });
        assert.deepEqual(left, [], 'sockets left in TIME_WAIT');
        assert.doesNotMatch(server.stderr, /WARN|ERROR/, 'the server complained');
      } finally {
        server.child.kill('SIGTERM');
        await server.exited;
      }
    });
  }

  test('wsreg echo --auth token: its 401 says it is up (the probe carries no token)', async () => {
    const server = await startWsregServer('echo', reg.dir, ['--auth', 'token']);
    try {
      const left = await newTimeWaitSockets(server.entry.port, async () => {
        assert.equal(typeof (await probe(server.entry, 1000)), 'number');
      });
      assert.deepEqual(left, [], 'sockets left in TIME_WAIT');
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  test('a Node ws server: a ping, then a close with 1000, each seen by the server', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => wss.once('listening', resolve));
    /** @type {{ pinged: boolean, code: number, error: Error | null }[]} */
    const seen = [];
    const closed = new Promise((resolve) =>
      wss.on('connection', (socket) => {
        const record = { pinged: false, code: 0, error: /** @type {Error | null} */ (null) };
        seen.push(record);
        socket.on('ping', () => (record.pinged = true));
        socket.on('error', (e) => (record.error = e));
        socket.on('close', (code) => resolve((record.code = code)));
      }),
    );
    try {
      const { port } = /** @type {net.AddressInfo} */ (wss.address());
      const left = await newTimeWaitSockets(port, async () => {
        assert.equal(typeof (await probe({ url: `ws://127.0.0.1:${port}/` }, 1000)), 'number');
        await closed;
      });
      assert.deepEqual(seen, [{ pinged: true, code: 1000, error: null }]);
      assert.deepEqual(left, [], 'sockets left in TIME_WAIT');
    } finally {
      await new Promise((resolve) => wss.close(() => resolve(undefined)));
    }
  });
});

describe('a probe fails a server that', () => {
  const cases = /** @type {[string, (request: string) => Buffer][]} */ ([
    ['answers 101 with a wrong Sec-WebSocket-Accept', (r) => Buffer.from(switching(r, 'd3JvbmcgYWNjZXB0IGtleQ=='))],
    ['answers 200', () => Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')],
    ['closes (a close frame) instead of the pong', (r) => Buffer.concat([Buffer.from(switching(r)), Buffer.from([0x88, 0x02, 0x03, 0xe8])])],
    ['pongs with another payload', (r) => Buffer.concat([Buffer.from(switching(r)), Buffer.from([0x8a, 0x02, 0x6e, 0x6f])])],
  ]);
  for (const [what, answer] of cases) {
    test(what, async () => {
      const server = await rawServer(answer);
      try {
        assert.equal(await probe({ url: server.url }, 500), null);
      } finally {
        await server.close();
      }
    });
  }

  test('is not there (connection refused)', async () => {
    const server = await rawServer(() => Buffer.alloc(0));
    const { url } = server;
    await server.close();
    assert.equal(await probe({ url }, 500), null);
  });
});
