// A server's health as an endpoint reports it (docs/api.md, "Health"), put in words
// for a page. The endpoint's text is not trusted: an unknown state reads `unknown`.

/**
 * @typedef {import('../index.js').ServerEntry} ServerEntry
 * @typedef {import('../index.js').HealthState} HealthState
 * @typedef {import('../index.js').HealthSummary} HealthSummary
 */

/** @type {readonly HealthState[]} */
const STATES = ['ok', 'unresponsive', 'unknown', 'none'];

/**
 * The state, a short text (`ok · 0.4 ms`, `unresponsive`, `unknown`, `not probed`) and
 * when it was found. An entry without a probe result (an endpoint that does not probe)
 * is `unknown`; one that asks not to be probed is `none`.
 * @param {ServerEntry} server
 * @returns {HealthSummary}
 */
export function describeHealth(server) {
  const h = server.health;
  if (h === 'none') return { state: 'none', text: 'not probed', checkedAt: null };
  if (typeof h !== 'object' || h === null || !STATES.includes(h.state)) return { state: 'unknown', text: 'unknown', checkedAt: null };
  const checkedAt = typeof h.checkedAt === 'string' ? h.checkedAt : null;
  if (h.state === 'none') return { state: 'none', text: 'not probed', checkedAt };
  const latency = h.state === 'ok' && typeof h.latencyMs === 'number' && Number.isFinite(h.latencyMs) ? ` · ${h.latencyMs} ms` : '';
  return { state: h.state, text: `${h.state}${latency}`, checkedAt };
}
