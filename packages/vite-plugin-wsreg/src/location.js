// Where the registry lives (docs/registry-format.md, "Where it lives").
//
// A registry path names the directory; the read-only legacy file is that path with
// `.json` appended. A path that itself ends in `.json` names the legacy file (how
// version 1 was configured), and the directory is the same path without `.json`, so
// `WSREG_REGISTRY=/x/servers.json` keeps working as `/x/servers/` + `/x/servers.json`.
// `named` tells a path the user gave from the default: only for a named directory does
// a missing parent deserve a warning (a typo must not go unnoticed).

import os from 'node:os';
import path from 'node:path';

/** @typedef {import('../index.js').RegistryLocation} RegistryLocation */

/**
 * The registry's directory and legacy file: `given` (the plugin's `registry` option),
 * else `WSREG_REGISTRY`, else `$HOME/.peer-plan/servers/`. A relative path is taken
 * from the current directory, as the `wsreg` command does.
 * @param {string | null} [given]
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {RegistryLocation}
 */
export function registryLocation(given, env = process.env) {
  const named = given || env.WSREG_REGISTRY;
  if (!named) {
    const dir = path.join(os.homedir(), '.peer-plan', 'servers');
    return { dir, legacyFile: `${dir}.json`, named: false };
  }
  const resolved = path.resolve(named);
  const dir = resolved.endsWith('.json') ? resolved.slice(0, -'.json'.length) : resolved;
  return { dir, legacyFile: `${dir}.json`, named: true };
}
