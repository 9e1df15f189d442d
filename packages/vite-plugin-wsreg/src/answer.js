// The registry's answer to a reader, built once per change (DESIGN.md, principle 4).
//
// For one state and one set of filters, the JSON text of `GET /api/registry`, the
// Server-Sent-Events frame and the document pushed over HMR are built on first use and
// kept as long as the state is current (a WeakMap keyed by the state object, which the
// watcher replaces on each change): a change costs one serialisation, and every event
// stream with the same filters is written the very same string. A few filter sets per
// state are kept; past that (a client trying every `?project=`) answers are built but
// not kept, so memory stays bounded. Each entry carries its probe result as its last
// key, `health` (docs/api.md, "Health"): the state object changes when one does.

import { healthOf } from './health.js';
import { toDocument } from './registry.js';

/**
 * @typedef {import('../index.js').ProbedState} ProbedState
 * @typedef {import('../index.js').ServerFilter} ServerFilter
 * @typedef {import('../index.js').RegistryDocument} RegistryDocument
 * @typedef {{ status: 200, document: RegistryDocument, body: string, frame: string }
 *   | { status: 500, error: string, body: string, frame: string }} Answer
 */

const KEPT_FILTER_SETS = 32;

/** @type {WeakMap<ProbedState, Map<string, Answer>>} */
const answers = new WeakMap();

/**
 * The answer for a state seen through filters (all must match).
 * @param {ProbedState} state
 * @param {readonly ServerFilter[]} filters
 * @returns {Answer}
 */
export function answerFor(state, filters) {
  let byFilters = answers.get(state);
  if (!byFilters) {
    byFilters = new Map();
    answers.set(state, byFilters);
  }
  // Filters that match all are left out: `[{}, {}]` and `[{}]` are one answer.
  const active = filters.filter((f) => f.project || f.kind);
  const key = JSON.stringify(active.map((f) => [f.project || '', f.kind || '']));
  let answer = byFilters.get(key);
  if (!answer) {
    answer = build(state, active);
    if (byFilters.size < KEPT_FILTER_SETS) byFilters.set(key, answer);
  }
  return answer;
}

/**
 * @param {ProbedState} state
 * @param {readonly ServerFilter[]} filters
 * @returns {Answer}
 */
function build(state, filters) {
  if (state.error) {
    const body = JSON.stringify({ error: state.error });
    return { status: 500, error: state.error, body, frame: `event: registry-error\ndata: ${body}\n\n` };
  }
  const listed = toDocument(state.servers, filters);
  // `health` is the entry's last key when it has one ("none"): the result takes its place.
  const document = { ...listed, servers: listed.servers.map((entry) => ({ ...entry, health: healthOf(state, entry) })) };
  const body = JSON.stringify(document);
  return { status: 200, document, body, frame: `event: servers\ndata: ${body}\n\n` };
}
