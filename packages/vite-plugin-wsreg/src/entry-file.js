// One entry file of the registry directory, `<id>.json` (docs/registry-format.md,
// "One entry, one file" and "Reading"): which names are entry files at all, and the
// parse of one file's bytes into a canonical entry or the reason it is skipped.
//
// The entry rules are version 1's (validateEntry); on top of them a file must say
// `"version": 2` and hold the id its name says, so that a file copied or renamed by
// hand cannot pass for another server.

import { decodeJson, describeType, isPlainObject, validateEntry } from './model.js';

/** An entry file larger than this is not read at all. */
export const MAX_ENTRY_FILE_BYTES = 64 * 1024;

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 */

/**
 * Whether a name in the registry directory is an entry file. Names starting with `.`
 * (a write in progress) and names not ending in `.json` are passed over silently.
 * @param {string} name
 */
export function isEntryFileName(name) {
  return !name.startsWith('.') && name.endsWith('.json');
}

/**
 * Parses the bytes of `<dir>/<name>`.
 * @param {Uint8Array} bytes
 * @param {string} name the file name, `<id>.json`
 * @returns {{ entry: ServerEntry } | { error: string }}
 */
export function parseEntryFile(bytes, name) {
  const decoded = decodeJson(bytes);
  if ('error' in decoded) return decoded;
  const doc = decoded.value;
  if (!isPlainObject(doc)) return { error: `not a JSON object (${describeType(doc)})` };
  if (!Object.hasOwn(doc, 'version')) return { error: 'no "version" (an entry file is version 2)' };
  if (doc.version !== 2) return { error: `unsupported version ${JSON.stringify(doc.version)} (an entry file is version 2)` };
  const result = validateEntry(doc);
  if ('error' in result) return result;
  const stem = name.slice(0, -'.json'.length);
  if (result.entry.id !== stem) return { error: `"id" is ${JSON.stringify(result.entry.id)}, not the file name's ${JSON.stringify(stem)}` };
  return result;
}
