// The entry a Node server writes (docs/registry-format.md, "One entry, one file"):
// built from the caller's options, checked against the rules and limits of the Rust
// library (crates/wsreg/src/registry/model.rs), and serialised in its canonical form —
// the bytes `model::entry_file_json` writes for the same fields, so a reader cannot tell
// a file written from Node from one written by Rust.
//
// Everything is checked before anything touches the disk, and a bad option throws an
// EntryError naming the field. Lengths are UTF-8 bytes, as in Rust. Strings must be
// well-formed Unicode: JSON.stringify would write a lone surrogate as `\ud800`, which
// the Rust reader rejects, so the file would be an invalid entry.

import crypto from 'node:crypto';
import os from 'node:os';
import { ownStartTime } from './start-time.js';

const MAX_KIND_BYTES = 32;
const MAX_LABEL_BYTES = 256;
const MAX_HOST_BYTES = 255;
const MAX_URL_BYTES = 2048;
const MAX_META_BYTES = 4096;

/** The options an entry is built from; anything else is a mistake worth an error. */
const OPTION_KEYS = new Set(['kind', 'port', 'name', 'project', 'session', 'host', 'url', 'meta', 'registry']);

/** The id alphabet of the Rust library: base 32 without i, l, o, u. */
const ID_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** A rejected option: `field` names it. */
export class EntryError extends Error {
  /**
   * @param {string} field
   * @param {string} message
   */
  constructor(field, message) {
    super(message);
    this.name = 'EntryError';
    this.field = field;
  }
}

/**
 * The entry for this process, every field in the canonical order.
 * @param {import('../index.js').RegisterOptions} options
 * @returns {import('../index.js').ServerEntry}
 */
export function buildEntry(options) {
  if (options === null || typeof options !== 'object') throw new EntryError('options', 'options must be an object');
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new EntryError(key, `${key} is not an option (${[...OPTION_KEYS].join(', ')})`);
  }
  const kind = options.kind ?? 'ws';
  if (typeof kind !== 'string' || kind.length > MAX_KIND_BYTES || !/^[a-z][a-z0-9-]*$/.test(kind)) {
    throw new EntryError('kind', `kind must be a lowercase word of at most ${MAX_KIND_BYTES} bytes ([a-z][a-z0-9-]*) (got ${JSON.stringify(kind)})`);
  }
  const port = options.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new EntryError('port', `port must be an integer from 1 to 65535 (got ${JSON.stringify(port)})`);
  }
  const url = text('url', options.url ?? `ws://127.0.0.1:${port}/`, MAX_URL_BYTES);
  if (!url.startsWith('ws://') && !url.startsWith('wss://')) {
    throw new EntryError('url', `url must start with ws:// or wss:// (got ${JSON.stringify(url)})`);
  }
  return {
    id: `${kind}-${sortableId()}`,
    kind,
    name: optionalText('name', options.name, MAX_LABEL_BYTES),
    project: optionalText('project', options.project, MAX_LABEL_BYTES),
    session: optionalText('session', options.session, MAX_LABEL_BYTES),
    host: text('host', options.host ?? os.hostname(), MAX_HOST_BYTES),
    port,
    url,
    pid: process.pid,
    pidStartTime: ownStartTime(),
    startedAt: new Date().toISOString(),
    ttlSecs: null,
    heartbeatAt: null,
    meta: checkedMeta(options.meta ?? {}),
  };
}

/**
 * An entry file's content: `{"version":2, …the entry's fields…}` and a newline.
 * @param {object} entry
 */
export function entryFileText(entry) {
  return `${JSON.stringify({ version: 2, ...entry })}\n`;
}

/**
 * What `entryFileText` makes of a parsed file, or null when it is no entry file: two files
 * that say the same in another layout or key order (or with unknown fields) compare equal.
 * @param {unknown} doc
 */
export function canonicalFileText(doc) {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return null;
  const file = /** @type {Record<string, unknown>} */ (doc);
  if (file.version !== 2) return null;
  const { id, kind, name, project, session, host, port, url, pid, pidStartTime, startedAt, ttlSecs, heartbeatAt, meta } = file;
  const fields = { id, kind, name, project, session, host, port, url, pid, pidStartTime, startedAt, ttlSecs, heartbeatAt, meta: meta ?? {} };
  const entry = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v ?? null]));
  return entryFileText(entry);
}

let idCounter = 0;

/**
 * 22 base-32 characters that sort in creation order, as the Rust library's ids do: 10
 * of the millisecond clock and 3 of a per-process counter, most significant first
 * (readers list entries of the same `startedAt` millisecond by id), then 9 random.
 */
function sortableId() {
  /** @param {bigint} value @param {number} chars */
  const digits = (value, chars) =>
    Array.from({ length: chars }, (_, i) => ID_ALPHABET[Number((value >> BigInt(5 * (chars - 1 - i))) & 31n)]).join('');
  const random = Array.from(crypto.randomBytes(9), (b) => ID_ALPHABET[b & 31]).join('');
  return digits(BigInt(Date.now()), 10) + digits(BigInt(idCounter++ & 0x7fff), 3) + random;
}

/**
 * @param {string} field
 * @param {unknown} value
 * @param {number} max
 */
function text(field, value, max) {
  if (typeof value !== 'string') throw new EntryError(field, `${field} must be a string (got ${typeof value})`);
  if (!value.isWellFormed()) throw new EntryError(field, `${field} is not well-formed Unicode (it holds a lone surrogate)`);
  const bytes = Buffer.byteLength(value);
  if (bytes > max) throw new EntryError(field, `${field} is ${bytes} bytes, over the limit of ${max}`);
  return value;
}

/**
 * @param {string} field
 * @param {unknown} value
 * @param {number} max
 */
function optionalText(field, value, max) {
  return value === undefined || value === null ? null : text(field, value, max);
}

/**
 * A plain object that serialises to JSON of at most MAX_META_BYTES; returned as it will be
 * written (what JSON keeps of it: no undefined, no functions).
 * @param {unknown} meta
 * @returns {Record<string, unknown>}
 */
function checkedMeta(meta) {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    throw new EntryError('meta', 'meta must be a plain object');
  }
  let json;
  try {
    json = JSON.stringify(meta, (key, value) => {
      if (!key.isWellFormed() || (typeof value === 'string' && !value.isWellFormed())) {
        throw new Error('it holds a lone surrogate');
      }
      return value;
    });
  } catch (e) {
    throw new EntryError('meta', `meta cannot be written as JSON: ${/** @type {Error} */ (e).message}`);
  }
  const bytes = Buffer.byteLength(json);
  if (bytes > MAX_META_BYTES) throw new EntryError('meta', `meta is ${bytes} bytes, over the limit of ${MAX_META_BYTES}`);
  return JSON.parse(json);
}
