// The Rust `wsreg` binary for the tests that run real `wsreg` processes.
// $WSREG_BIN, else target/debug/wsreg of this repository. No skipping: a
// missing binary (or one without the subcommand) fails the test, loudly.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readRegistry } from '../../src/registry.js';
import { REPO_ROOT } from './vectors.js';

export const WSREG_BIN = process.env.WSREG_BIN
  ? path.resolve(process.env.WSREG_BIN)
  : path.join(REPO_ROOT, 'target', 'debug', 'wsreg');

/** @type {Map<string, string>} */
const helpCache = new Map();

/**
 * Throws a clear error unless the binary exists and knows `subcommand`.
 * @param {string} subcommand
 */
export function requireWsreg(subcommand) {
  if (!fs.existsSync(WSREG_BIN)) {
    throw new Error(`the wsreg binary is missing at ${WSREG_BIN}: run \`cargo build\` first, or set WSREG_BIN`);
  }
  let help = helpCache.get('');
  if (help === undefined) {
    help = execFileSync(WSREG_BIN, ['--help'], { encoding: 'utf8', timeout: 10000 });
    helpCache.set('', help);
  }
  if (!new RegExp(`^\\s+${subcommand}\\s`, 'm').test(help)) {
    throw new Error(`${WSREG_BIN} has no \`${subcommand}\` subcommand (an old build? run \`cargo build\`)`);
  }
}

/**
 * Runs `wsreg ARGS…` to completion and returns its stdout.
 * @param {string[]} args
 * @param {NodeJS.ProcessEnv} [env]
 */
export function runWsreg(args, env = {}) {
  return execFileSync(WSREG_BIN, args, { encoding: 'utf8', timeout: 20000, env: { ...process.env, ...env } });
}

/**
 * Starts a `wsreg` server (`wsreg echo`, `wsreg yjs`) on a free port, registered in
 * `registry` (a registry directory), and waits until its entry is live there.
 * @param {'echo' | 'yjs'} subcommand
 * @param {string} registry
 * @param {string[]} [args] more options, e.g. ['--name', 'x']
 */
export async function startWsregServer(subcommand, registry, args = []) {
  requireWsreg(subcommand);
  const started = performance.now();
  const child = spawn(WSREG_BIN, [subcommand, ...args], {
    env: { ...process.env, WSREG_REGISTRY: registry, WSREG_LOG: process.env.WSREG_LOG ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdout.resume();
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 10000;
  for (;;) {
    const state = readRegistry(registry);
    const entry = state.servers.find((s) => s.pid === child.pid);
    if (entry) {
      return {
        child,
        entry,
        started,
        exited,
        get stderr() {
          return stderr;
        },
      };
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`wsreg ${subcommand} exited (${child.exitCode ?? child.signalCode}) before registering:\n${stderr}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`wsreg ${subcommand} did not register in ${registry} within 10 s:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
