// Shared by the yjs-app tests: real `wsreg yjs` processes (found via $WSREG_BIN, default
// target/debug/wsreg of the repository), y-websocket clients over the `ws` package, and
// bounded waits. Every process started here is stopped by its PID when the test ends.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../../..');

/** The wsreg binary under test; fails loudly when it has not been built. */
export function wsregBin() {
  const bin = process.env.WSREG_BIN || join(repoRoot, 'target/debug/wsreg');
  if (!existsSync(bin)) {
    throw new Error(`${bin} does not exist: run \`cargo build\` or set WSREG_BIN`);
  }
  return bin;
}

const cleanups = new WeakMap();

/**
 * Runs `fn` when the test ends, after the clean-ups deferred later (last in, first out:
 * clients close before their server is killed, and the server dies before its directory
 * is removed). Every clean-up runs even if another one fails.
 */
export function defer(t, fn) {
  let stack = cleanups.get(t);
  if (!stack) {
    stack = [];
    cleanups.set(t, stack);
    t.after(async () => {
      const errors = [];
      while (stack.length) {
        try { await stack.pop()(); } catch (e) { errors.push(e); }
      }
      if (errors.length) throw errors[0];
    });
  }
  stack.push(fn);
}

/** A fresh temporary directory, removed when the test ends. */
export function tempDir(t, prefix = 'wsreg-yjs-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  defer(t, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Polls `check` every 20 ms until it returns a truthy value, for at most `ms`. */
export async function waitFor(check, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts `wsreg --registry R yjs --port 0 ARGS…` and resolves once it prints its
 * listening line: `{ url, port, pid, kill(signal), exited }`. It is SIGKILLed when the test
 * ends if still running.
 */
export async function startYjs(t, { registry, args = [] }) {
  const child = spawn(wsregBin(), ['--registry', registry, 'yjs', '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, WSREG_LOG: process.env.WSREG_LOG ?? 'warn' },
  });
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let running = true;
  exited.then(() => { running = false; });
  defer(t, async () => {
    if (running) {
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error('wsreg yjs did not start within 10 s')), 10_000);
    lines.on('line', (line) => {
      const m = / listening on (ws:\/\/\S+)/.exec(line);
      if (m) { clearTimeout(timer); resolveUrl(m[1].replace(/\/$/, '')); }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`wsreg yjs exited (${code ?? signal}) before listening`));
    });
  });
  return {
    url,
    port: Number(new URL(url).port),
    pid: child.pid,
    exited,
    kill(signal) { process.kill(child.pid, signal); return exited; },
  };
}

/**
 * A Y.Doc synced with `url` through the official y-websocket provider (the `ws` package as
 * WebSocket; no BroadcastChannel, so every change really goes through the server).
 */
export function client(t, url, room, { name } = {}) {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
  });
  if (name) provider.awareness.setLocalStateField('user', { name });
  defer(t, () => { provider.destroy(); doc.destroy(); });
  return { doc, provider, text: doc.getText('text') };
}

/** Resolves when the provider has completed its first sync with the server. */
export function synced(provider, ms = 10_000) {
  return waitFor(() => provider.synced, 'the first sync', ms);
}

/** The names in an awareness, other than the local client's. */
export function otherNames(provider) {
  const own = provider.awareness.clientID;
  return [...provider.awareness.getStates()]
    .filter(([id, state]) => id !== own && state.user)
    .map(([, state]) => state.user.name)
    .sort();
}

/** Drops a provider's connection without a goodbye, as a crashed tab would. */
export function vanish(provider) {
  provider.shouldConnect = false;
  provider.ws?.terminate();
}
