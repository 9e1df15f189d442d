// Registry entries (docs/registry-format.md, "One entry, one file"): validating one
// entry into its canonical form, decoding JSON bytes strictly (no lossy UTF-8, no lone
// surrogates), and parsing the legacy file (version 1 and the prototype), whose
// elements are validated each on its own. Liveness is not decided here.

import { formatTimestamp, parseStartedAt, parseTimestamp } from './time.js';

/** A legacy file larger than this is not read at all: it counts as corrupt. */
export const MAX_LEGACY_FILE_BYTES = 16 * 1024 * 1024;
/** More entries than this make the whole legacy file corrupt. */
export const MAX_ENTRIES = 65536;

/** 1–128 bytes, not starting with `.` (a name starting with `.` is no entry file). */
const ID = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,127}$/;
const KIND = /^[a-z][a-z0-9-]{0,31}$/;
const WHITESPACE_ONLY = /^[ \t\r\n]*$/;
const MAX_PID = 4194304;
const MAX_TTL_SECS = 31536000;
const MAX_META_BYTES = 4096;

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('../index.js').ParseResult} ParseResult
 */

/**
 * Decodes JSON bytes strictly: not UTF-8, not JSON or a lone surrogate is an error.
 * @param {Uint8Array} bytes
 * @returns {{ value: unknown } | { error: string }}
 */
export function decodeJson(bytes) {
  const text = decodeUtf8(bytes);
  if (text === null) return { error: 'not UTF-8' };
  return parseJsonText(text);
}

/**
 * Parses the bytes of the legacy file. Lenient per entry, strict on the whole:
 * missing/empty → no servers; not UTF-8, not JSON, too big, not an object or a
 * version other than 1 → corrupt (no entries from it); invalid entries are skipped
 * with a warning naming their index and id.
 *
 * @param {Uint8Array | null} bytes the file's content, null when it does not exist
 * @returns {ParseResult}
 */
export function parseRegistry(bytes) {
  if (bytes === null) return { status: 'ok', format: 'missing', entries: [], warnings: [] };
  if (bytes.byteLength > MAX_LEGACY_FILE_BYTES) {
    return corrupt(`file is ${bytes.byteLength} bytes, over the limit of ${MAX_LEGACY_FILE_BYTES}`);
  }
  const text = decodeUtf8(bytes);
  if (text === null) return corrupt('not UTF-8');
  if (WHITESPACE_ONLY.test(text)) return { status: 'ok', format: 'empty', entries: [], warnings: [] };
  const parsed = parseJsonText(text);
  if ('error' in parsed) return corrupt(parsed.error);
  const doc = parsed.value;
  if (!isPlainObject(doc)) return corrupt(`not a JSON object (${describeType(doc)})`);
  /** @type {'v1' | 'prototype'} */
  let format = 'prototype';
  if (Object.hasOwn(doc, 'version')) {
    if (doc.version !== 1) return corrupt(`unsupported version ${JSON.stringify(doc.version)} (a legacy file is version 1)`);
    format = 'v1';
  }
  if (!Object.hasOwn(doc, 'servers')) return { status: 'ok', format, entries: [], warnings: [] };
  const servers = doc.servers;
  if (!Array.isArray(servers)) return corrupt('"servers" is not an array');
  if (servers.length > MAX_ENTRIES) {
    return corrupt(`${servers.length} entries, over the limit of ${MAX_ENTRIES}`);
  }

  /** @type {ServerEntry[]} */
  const entries = [];
  /** @type {string[]} */
  const warnings = [];
  const seen = new Set();
  servers.forEach((raw, index) => {
    const result = validateEntry(raw);
    if ('error' in result) {
      warnings.push(`entry ${index}${describeId(raw)}: skipped: ${result.error}`);
      return;
    }
    if (seen.has(result.entry.id)) {
      warnings.push(`entry ${index}${describeId(raw)}: skipped: duplicate id`);
      return;
    }
    seen.add(result.entry.id);
    entries.push(result.entry);
  });
  return { status: 'ok', format, entries, warnings };
}

/**
 * Validates one element of `servers` and returns it in canonical form
 * (every field, in the order of the contract, defaults filled in).
 *
 * @param {unknown} raw
 * @returns {{ entry: ServerEntry } | { error: string }}
 */
export function validateEntry(raw) {
  if (!isPlainObject(raw)) return { error: 'not a JSON object' };
  const e = /** @type {Record<string, unknown>} */ (raw);

  const id = e.id;
  if (typeof id !== 'string') return { error: '"id" is missing or not a string' };
  if (!ID.test(id)) return { error: '"id" must be 1–128 bytes of A-Z a-z 0-9 - _ . ~, not starting with .' };

  let kind = 'unknown';
  if (e.kind !== undefined && e.kind !== null) {
    if (typeof e.kind !== 'string' || !KIND.test(e.kind)) {
      return { error: '"kind" must be 1–32 bytes matching [a-z][a-z0-9-]*' };
    }
    kind = e.kind;
  }

  const name = optionalString(e, 'name', 256);
  if (typeof name === 'object' && name !== null) return name;
  const project = optionalString(e, 'project', 256);
  if (typeof project === 'object' && project !== null) return project;
  const session = optionalString(e, 'session', 256);
  if (typeof session === 'object' && session !== null) return session;
  const host = optionalString(e, 'host', 255);
  if (typeof host === 'object' && host !== null) return host;

  const port = e.port;
  if (!isIntegerIn(port, 1, 65535)) return { error: '"port" is missing or not an integer in 1–65535' };

  let url = `ws://127.0.0.1:${port}/`;
  if (e.url !== undefined && e.url !== null) {
    if (typeof e.url !== 'string') return { error: '"url" is not a string' };
    if (utf8Length(e.url) > 2048) return { error: '"url" is over 2048 bytes' };
    if (!e.url.startsWith('ws://') && !e.url.startsWith('wss://')) {
      return { error: '"url" does not start with ws:// or wss://' };
    }
    url = e.url;
  }

  const pid = e.pid;
  if (!isIntegerIn(pid, 1, MAX_PID)) return { error: `"pid" is missing or not an integer in 1–${MAX_PID}` };

  /** @type {number | null} */
  let pidStartTime = null;
  if (e.pidStartTime !== undefined && e.pidStartTime !== null) {
    if (!isIntegerIn(e.pidStartTime, 0, Number.MAX_SAFE_INTEGER)) {
      return { error: '"pidStartTime" is not a non-negative integer' };
    }
    pidStartTime = e.pidStartTime;
  }

  let startedAtMs = 0;
  if (e.startedAt !== undefined && e.startedAt !== null) {
    const ms = parseStartedAt(e.startedAt);
    if (ms === null) {
      return { error: '"startedAt" is neither YYYY-MM-DDTHH:MM:SS[.fraction]Z nor a number of milliseconds' };
    }
    startedAtMs = ms;
  }

  /** @type {number | null} */
  let ttlSecs = null;
  if (e.ttlSecs !== undefined && e.ttlSecs !== null) {
    if (!isIntegerIn(e.ttlSecs, 1, MAX_TTL_SECS)) return { error: `"ttlSecs" is not an integer in 1–${MAX_TTL_SECS}` };
    ttlSecs = e.ttlSecs;
  }

  /** @type {string | null} */
  let heartbeatAt = null;
  if (e.heartbeatAt !== undefined && e.heartbeatAt !== null) {
    const ms = typeof e.heartbeatAt === 'string' ? parseTimestamp(e.heartbeatAt) : null;
    if (ms === null) return { error: '"heartbeatAt" is not YYYY-MM-DDTHH:MM:SS[.fraction]Z' };
    heartbeatAt = formatTimestamp(ms);
  }

  /** @type {Record<string, unknown>} */
  let meta = {};
  if (e.meta !== undefined && e.meta !== null) {
    if (!isPlainObject(e.meta)) return { error: '"meta" is not a JSON object' };
    const size = utf8Length(JSON.stringify(e.meta));
    if (size > MAX_META_BYTES) return { error: `"meta" is ${size} bytes serialised, over ${MAX_META_BYTES}` };
    meta = /** @type {Record<string, unknown>} */ (e.meta);
  }

  /** @type {string | null} */
  let healthUrl = null;
  if (e.healthUrl !== undefined && e.healthUrl !== null) {
    if (typeof e.healthUrl !== 'string') return { error: '"healthUrl" is not a string' };
    if (utf8Length(e.healthUrl) > 2048) return { error: '"healthUrl" is over 2048 bytes' };
    if (!e.healthUrl.startsWith('http://') && !e.healthUrl.startsWith('https://')) {
      return { error: '"healthUrl" does not start with http:// or https://' };
    }
    healthUrl = e.healthUrl;
  }

  if (e.health !== undefined && e.health !== null && e.health !== 'none') {
    return { error: '"health" must be "none" when given' };
  }

  /** @type {ServerEntry} */
  const entry = {
    id,
    kind,
    name: /** @type {string | null} */ (name),
    project: /** @type {string | null} */ (project),
    session: /** @type {string | null} */ (session),
    host: /** @type {string | null} */ (host),
    port: /** @type {number} */ (port),
    url,
    pid: /** @type {number} */ (pid),
    pidStartTime,
    startedAt: formatTimestamp(startedAtMs),
    ttlSecs,
    heartbeatAt,
    meta,
  };
  // Printed only when set, after meta, `health` last (the API puts its probe result there).
  if (healthUrl !== null) entry.healthUrl = healthUrl;
  if (e.health === 'none') entry.health = 'none';
  return { entry };
}

/**
 * @param {Record<string, unknown>} e
 * @param {string} key
 * @param {number} maxBytes
 * @returns {string | null | { error: string }}
 */
function optionalString(e, key, maxBytes) {
  const v = e[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') return { error: `"${key}" is not a string` };
  if (utf8Length(v) > maxBytes) return { error: `"${key}" is over ${maxBytes} bytes` };
  return v;
}

/**
 * @param {unknown} v
 * @param {number} min
 * @param {number} max
 * @returns {v is number}
 */
function isIntegerIn(v, min, max) {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/**
 * @param {unknown} v
 * @returns {v is Record<string, unknown>}
 */
export function isPlainObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** @param {string} s */
function utf8Length(s) {
  return Buffer.byteLength(s, 'utf8');
}

/** @param {unknown} raw */
function describeId(raw) {
  if (isPlainObject(raw) && typeof raw.id === 'string') return ` (id ${JSON.stringify(raw.id.slice(0, 140))})`;
  return '';
}

/**
 * What a JSON value is, for messages.
 * @param {unknown} v
 */
export function describeType(v) {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/**
 * @param {Uint8Array} bytes
 * @returns {string | null}
 */
function decodeUtf8(bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * @param {string} text
 * @returns {{ value: unknown } | { error: string }}
 */
function parseJsonText(text) {
  try {
    return { value: JSON.parse(text, rejectLoneSurrogates) };
  } catch (err) {
    return { error: `not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** @param {string} reason @returns {ParseResult} */
function corrupt(reason) {
  return { status: 'corrupt', reason };
}

/**
 * JSON.parse reviver: a string or key holding a lone surrogate (`"\ud800"`) is
 * not valid Unicode, so the document is refused as a strict reader would.
 * @param {string} key
 * @param {unknown} value
 */
function rejectLoneSurrogates(key, value) {
  if (!key.isWellFormed() || (typeof value === 'string' && !value.isWellFormed())) {
    throw new SyntaxError('lone surrogate in a string');
  }
  return value;
}
