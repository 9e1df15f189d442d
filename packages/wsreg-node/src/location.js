// Where the registry directory is (docs/registry-format.md, "Where it lives"): the
// `registry` option, else WSREG_REGISTRY, else ~/.peer-plan/servers. A path ending in
// `.json` names the legacy file of version 1, and the directory is that path without
// `.json`. The path is made absolute once, so a later chdir does not move the entry.
// `given` tells a path the user named from the default: only the default is created
// with its parents (a typo must not start a registry no reader looks at).

import os from 'node:os';
import path from 'node:path';
import { EntryError } from './entry.js';

/**
 * @param {string | undefined} registry
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {{ dir: string, given: boolean }}
 */
export function registryDir(registry, env = process.env) {
  if (registry !== undefined && typeof registry !== 'string') {
    throw new EntryError('registry', `registry must be a path (got ${typeof registry})`);
  }
  const named = registry || env.WSREG_REGISTRY;
  if (!named) return { dir: path.join(os.homedir(), '.peer-plan', 'servers'), given: false };
  const stem = named.endsWith('.json') ? named.slice(0, -'.json'.length) : '';
  return { dir: path.resolve(stem && !stem.endsWith('/') ? stem : named), given: true };
}
