// The prototype's registry writer, kept as it was so the benchmarks compare against it
// honestly: read the whole file, change the list, write it back. No lock, no temp file,
// no version, `Date.now()` for startedAt, and a file that does not parse is replaced by
// an empty list. Concurrent writers therefore lose each other's entries; that loss is
// what the storm benchmark counts.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The file the prototype used, unless WSREG_REGISTRY points elsewhere (the benchmarks). */
export const registryFile =
  process.env.WSREG_REGISTRY || path.join(os.homedir(), '.peer-plan', 'servers.json');

function readServers() {
  try {
    const doc = JSON.parse(fs.readFileSync(registryFile, 'utf8'));
    return Array.isArray(doc.servers) ? doc.servers : [];
  } catch {
    return [];
  }
}

function writeServers(servers) {
  fs.mkdirSync(path.dirname(registryFile), { recursive: true });
  fs.writeFileSync(registryFile, JSON.stringify({ servers }, null, 2));
}

/** Appends `{id, port, pid, startedAt}` to the file. */
export function register(entry) {
  writeServers([...readServers().filter((s) => s.id !== entry.id), entry]);
}

/** Removes the entry with this id. */
export function unregister(id) {
  writeServers(readServers().filter((s) => s.id !== id));
}
