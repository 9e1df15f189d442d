// The Rust `wsreg` binary, the reference reader and writer these tests compare with:
// $WSREG_BIN, else target/debug/wsreg of this repository. A missing binary fails the
// tests that need it, with a message saying how to build it.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

export const WSREG_BIN = process.env.WSREG_BIN ? path.resolve(process.env.WSREG_BIN) : path.join(REPO_ROOT, 'target', 'debug', 'wsreg');

/**
 * Runs `wsreg ARGS…` to completion and returns its stdout.
 * @param {string[]} args
 */
export function runWsreg(args) {
  if (!fs.existsSync(WSREG_BIN)) throw new Error(`the wsreg binary is missing at ${WSREG_BIN}: run \`cargo build\` first, or set WSREG_BIN`);
  return execFileSync(WSREG_BIN, args, { encoding: 'utf8', timeout: 20000, env: { ...process.env, WSREG_LOG: 'error' } });
}

/**
 * The live servers of the registry `dir`, as `wsreg list --json` prints them.
 * @param {string} dir
 * @returns {import('../../index.js').ServerEntry[]}
 */
export function listed(dir) {
  return JSON.parse(runWsreg(['list', '--json', '--registry', dir])).servers;
}
