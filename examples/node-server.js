// A tiny WebSocket echo server written in Node, to show `wsreg run` registering a server
// that knows nothing about wsreg: it listens on 127.0.0.1:$PORT and echoes every message.
//
//   wsreg run --name node-echo -- node examples/node-server.js
//
// It exits on SIGINT/SIGTERM after closing its clients with 1001 (going away), and with
// status $EXIT_CODE, $EXIT_AFTER_MS after it started listening, when that is set (tests).
import { WebSocketServer } from 'ws';

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('node-server.js: set PORT to the port to listen on (wsreg run does)');
  process.exit(2);
}

const wss = new WebSocketServer({ host: '127.0.0.1', port });
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
});
wss.on('listening', () => {
  console.error(`node-server.js: listening on 127.0.0.1:${port}`);
  if (process.env.EXIT_AFTER_MS) {
    setTimeout(() => shutdown(Number(process.env.EXIT_CODE ?? 0)), Number(process.env.EXIT_AFTER_MS));
  }
});

function shutdown(code) {
  for (const client of wss.clients) client.close(1001, 'server shutting down');
  wss.close(() => process.exit(code));
}
process.on('SIGINT', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
