// Shared by the browser tests: the wsreg binary ($WSREG_BIN, else target/debug/wsreg),
// processes that are killed by PID when a test ends, the line a server prints when it
// listens, and Chromium (chromium.js) sized and timed for these tests. Every wait has a
// deadline; a missing binary or browser fails the test loudly rather than skipping it.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { launchChromium, requireChromium } from './chromium.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const WSREG_BIN = process.env.WSREG_BIN ?? join(ROOT, 'target/debug/wsreg');
/** The longest any single step may take. */
export const STEP_MS = 15000;

/** Throws (never skips) when the binary or the browser is missing. */
export function requireTools() {
  if (!existsSync(WSREG_BIN)) {
    throw new Error(`${WSREG_BIN} is missing: build it with \`cargo build\` or set WSREG_BIN`);
  }
  requireChromium();
}

/** A temporary registry and the processes started against it. */
export class Sandbox {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'wsreg-e2e-'));
    this.registry = join(this.dir, 'servers.json');
    /** @type {Set<Proc>} */
    this.procs = new Set();
  }

  /**
   * Starts `wsreg --registry <this> ...args`.
   * @param {string[]} args
   */
  wsreg(...args) {
    return this.track(new Proc(WSREG_BIN, ['--registry', this.registry, ...args], { WSREG_LOG: 'warn' }));
  }

  /**
   * Starts any other command (e.g. a process whose PID an entry borrows).
   * @param {string} cmd
   * @param {string[]} args
   */
  spawn(cmd, ...args) {
    return this.track(new Proc(cmd, args, {}));
  }

  /**
   * Starts a stand-in server: a process that listens on a loopback port of its own and
   * does nothing else (readers show an entry only while its process listens on its port).
   * @returns {Promise<{ proc: Proc, port: number }>}
   */
  async listener() {
    const code = "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port));";
    const proc = this.spawn(process.execPath, '-e', code);
    const port = Number((await proc.line(/^(\d+)$/))[1]);
    return { proc, port };
  }

  /** @param {Proc} proc */
  track(proc) {
    this.procs.add(proc);
    return proc;
  }

  /** Kills (SIGKILL, by PID) whatever is still running, and removes the directory. */
  async cleanup() {
    for (const proc of this.procs) proc.kill('SIGKILL');
    await Promise.all([...this.procs].map((p) => p.exited));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class Proc {
  /**
   * @param {string} cmd
   * @param {string[]} args
   * @param {Record<string, string>} env
   */
  constructor(cmd, args, env) {
    this.child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    /** @type {string[]} */
    this.lines = [];
    /** @type {Set<() => void>} */
    this.waiters = new Set();
    /** @type {Promise<{ code: number | null, signal: NodeJS.Signals | null }>} */
    this.exited = new Promise((done) => {
      this.child.on('exit', (code, signal) => {
        this.status = { code, signal };
        for (const wake of this.waiters) wake();
        done({ code, signal });
      });
    });
    /** @type {{ code: number | null, signal: NodeJS.Signals | null } | undefined} */
    this.status = undefined;
    if (!this.child.stdout) throw new Error('stdout is piped');
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.lines.push(line);
      for (const wake of this.waiters) wake();
    });
  }

  get pid() {
    if (this.child.pid === undefined) throw new Error('the process did not start');
    return this.child.pid;
  }

  /**
   * The first stdout line matching `re`, within STEP_MS.
   * @param {RegExp} re
   * @returns {Promise<RegExpMatchArray>}
   */
  line(re) {
    return new Promise((resolvePromise, reject) => {
      const check = () => {
        for (const line of this.lines) {
          const m = line.match(re);
          if (m) return finish(() => resolvePromise(m));
        }
        if (this.status) finish(() => reject(new Error(`exited (${JSON.stringify(this.status)}) before printing ${re}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no line ${re} within ${STEP_MS} ms`))), STEP_MS);
      /** @param {() => void} then */
      const finish = (then) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        then();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** The listening line: `{ url, id }`. */
  async listening() {
    const m = await this.line(/ listening on (\S+)(?: id (\S+))?/);
    return { url: m[1], id: m[2] ?? null };
  }

  /** @param {NodeJS.Signals} signal */
  kill(signal) {
    if (!this.status && this.child.pid !== undefined) process.kill(this.child.pid, signal);
  }

  /** Waits for the exit, within STEP_MS. */
  async waitExit() {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`pid ${this.pid} still running after ${STEP_MS} ms`)), STEP_MS);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Headless Chromium (chromium.js) at 1280×800, every step within STEP_MS; close() removes its profile. */
export async function launchBrowser() {
  const browser = await launchChromium({ viewport: { width: 1280, height: 800 }, timeout: STEP_MS });
  browser.context.setDefaultTimeout(STEP_MS);
  return browser;
}
