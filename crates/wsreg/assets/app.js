// The page's behaviour: render what wsreg-client reports. Discovery (SSE with a polling
// fallback) and the sockets (one per server, reconnect with backoff) live in the library,
// so the logic exists once; this file only draws cards and the message log.
//
// Everything a registry entry says is untrusted (any local process can register any
// name): it reaches the DOM only through textContent and data-* attributes, never HTML.
//
// A server that leaves the registry keeps its card, marked disconnected, for LEAVE_MS so
// the eye (and a test) sees it go; then the card is removed. Each card carries data-id,
// data-port, data-status (its socket) and data-health (the endpoint's probe: ok,
// unresponsive, unknown, none) for scripts. An unresponsive server stays listed, marked.

import { connectAll, describeHealth, subscribe } from '/wsreg-client/src/index.js';

const LEAVE_MS = 1200;
const LOG_LIMIT = 200;

/** @type {Map<string, { el: HTMLElement, server: any, leaving: ReturnType<typeof setTimeout> | null }>} */
const cards = new Map();

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const cardList = $('cards');
const count = $('count');
const feed = $('feed');
const empty = $('empty');
const log = $('log');
const form = /** @type {HTMLFormElement} */ ($('send'));
const input = /** @type {HTMLInputElement} */ ($('message'));

/** A short label for a server: its name, else its id. */
const label = (/** @type {any} */ server) => server.name || server.id;

/**
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {number} secs */
function duration(secs) {
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m ${String(secs % 60).padStart(2, '0')}s`;
  if (secs < 86400) return `${Math.floor(secs / 3600)}h ${String(Math.floor(secs / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(secs / 86400)}d ${String(Math.floor(secs / 3600) % 24).padStart(2, '0')}h`;
}

/** @param {any} server */
function uptime(server) {
  const started = Date.parse(server.startedAt);
  return Number.isNaN(started) ? '—' : duration(Math.max(0, Math.floor((Date.now() - started) / 1000)));
}

/** @param {any} server */
function createCard(server) {
  const card = el('li', 'card');
  const head = el('div', 'card-head');
  head.append(el('h3', 'name'), el('span', 'badge'));
  const facts = el('dl', 'facts');
  for (const [key, title] of [['kind', 'kind'], ['project', 'project'], ['port', 'port'], ['pid', 'pid'], ['uptime', 'up'], ['health', 'health']]) {
    const row = el('div', 'fact');
    row.append(el('dt', '', title), el('dd', `fact-${key}`));
    facts.append(row);
  }
  card.append(head, facts, el('p', 'url'));
  return card;
}

/**
 * @param {HTMLElement} card
 * @param {any} server
 */
function fillCard(card, server) {
  card.dataset.id = server.id;
  card.dataset.port = String(server.port);
  card.title = server.id;
  const text = (/** @type {string} */ selector, /** @type {string} */ value) => {
    /** @type {HTMLElement} */ (card.querySelector(selector)).textContent = value;
  };
  text('.name', label(server));
  text('.fact-kind', server.kind);
  text('.fact-project', server.project || '—');
  text('.fact-port', String(server.port));
  text('.fact-pid', String(server.pid));
  text('.fact-uptime', uptime(server));
  text('.url', server.url);
  const health = describeHealth(server);
  card.dataset.health = health.state;
  text('.fact-health', health.text);
  /** @type {HTMLElement} */ (card.querySelector('.fact-health')).title = health.checkedAt ? `checked ${health.checkedAt}` : '';
}

/**
 * @param {HTMLElement} card
 * @param {string} status
 */
function setStatus(card, status) {
  card.dataset.status = status;
  /** @type {HTMLElement} */ (card.querySelector('.badge')).textContent = status;
}

/** @param {any[]} servers */
function render(servers) {
  const live = new Set(servers.map((s) => s.id));
  for (const [id, card] of cards) if (!live.has(id)) leave(id);
  for (const server of servers) {
    let card = cards.get(server.id);
    if (card?.leaving) {
      // Back before its card was gone: start afresh.
      clearTimeout(card.leaving);
      card.el.remove();
      card = undefined;
    }
    if (!card) {
      const node = createCard(server);
      setStatus(node, 'connecting');
      card = { el: node, server, leaving: null };
      cards.set(server.id, card);
    }
    card.server = server;
    fillCard(card.el, server);
    cardList.append(card.el); // keeps registry order; a card already in place stays.
  }
  const n = servers.length;
  count.textContent = `${n} server${n === 1 ? '' : 's'}`;
  empty.hidden = n > 0;
}

/** @param {string} id */
function leave(id) {
  const card = cards.get(id);
  if (!card || card.leaving) return;
  setStatus(card.el, 'disconnected');
  card.el.classList.add('leaving');
  card.leaving = setTimeout(() => {
    card.el.remove();
    if (cards.get(id) === card) cards.delete(id);
  }, LEAVE_MS);
}

/**
 * @param {'out' | 'in' | 'note'} direction
 * @param {string} who
 * @param {string} text
 */
function addLog(direction, who, text) {
  const entry = el('li', `entry entry-${direction}`);
  entry.dataset.direction = direction;
  const time = el('time', 'when', new Date().toLocaleTimeString());
  entry.append(time, el('span', 'who', who), el('span', 'what', text));
  log.prepend(entry);
  while (log.children.length > LOG_LIMIT) log.lastElementChild?.remove();
}

/** @param {unknown} data */
function describe(data) {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return `‹${data.byteLength} bytes›`;
  if (data instanceof Blob) return `‹${data.size} bytes›`;
  return String(data);
}

const connections = connectAll({
  onStatus(server, status, info) {
    const card = cards.get(server.id);
    if (!card || card.leaving) return;
    if (info.removed) return leave(server.id);
    setStatus(card.el, status);
  },
  onMessage(server, data) {
    addLog('in', `← ${label(server)}`, describe(data));
  },
});

subscribe((servers, info) => {
  render(servers);
  connections.update(servers);
  feed.dataset.state = info.error ? 'error' : info.source;
  feed.textContent = info.error
    ? `registry: ${info.error}${info.stale ? ' (showing the last list)' : ''}`
    : info.source === 'sse'
      ? 'live'
      : 'polling every 5 s';
});

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = input.value;
  if (!text) return;
  const sent = connections.sendAll(text);
  addLog(sent ? 'out' : 'note', `→ ${sent} server${sent === 1 ? '' : 's'}`, sent ? text : `not sent (no server connected): ${text}`);
  input.value = '';
});

setInterval(() => {
  for (const card of cards.values()) {
    /** @type {HTMLElement} */ (card.el.querySelector('.fact-uptime')).textContent = uptime(card.server);
  }
}, 1000);
