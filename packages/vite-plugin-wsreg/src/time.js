// Timestamps of registry entries (docs/registry-format.md, "One entry, one file").
//
// Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, UTC only, uppercase `T` and `Z`,
// a real calendar date, 1 to 9 fraction digits. Output: always milliseconds,
// the fraction truncated (never rounded): `2026-11-25T12:00:00.000Z`.
// Years are limited to 1970–9999 (what every writer can produce; the epoch is
// the default for a missing `startedAt`).

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

/** Largest accepted instant: 9999-12-31T23:59:59.999Z, in ms since the epoch. */
export const MAX_TIMESTAMP_MS = 253402300799999;

/**
 * Parses a registry timestamp string to milliseconds since the Unix epoch.
 * @param {string} text
 * @returns {number | null} null when `text` is not of the accepted form
 */
export function parseTimestamp(text) {
  const m = TIMESTAMP.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const millis = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  if (year < 1970 || month < 1 || month > 12 || day < 1) return null;
  if (day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  return Date.UTC(year, month - 1, day, hour, minute, second, millis);
}

/**
 * Reads `startedAt`: a timestamp string, or (the prototype wrote `Date.now()`)
 * an integer number of milliseconds since the epoch.
 * @param {unknown} value
 * @returns {number | null} ms since the epoch, or null when invalid
 */
export function parseStartedAt(value) {
  if (typeof value === 'string') return parseTimestamp(value);
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_TIMESTAMP_MS) {
    return value;
  }
  return null;
}

/**
 * Formats ms since the epoch in the canonical form `YYYY-MM-DDTHH:MM:SS.mmmZ`.
 * @param {number} ms an integer in 0..MAX_TIMESTAMP_MS
 * @returns {string}
 */
export function formatTimestamp(ms) {
  return new Date(ms).toISOString();
}

/**
 * @param {number} year
 * @param {number} month 1–12
 */
function daysInMonth(year, month) {
  if (month === 2) {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return leap ? 29 : 28;
  }
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}
