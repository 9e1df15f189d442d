// One server as a card. Text only: every field goes through textContent. Its health (the
// plugin's probe: ok, unresponsive, unknown, none) is a row and `data-health`; an
// unresponsive server keeps its card, marked.

import { describeHealth } from 'wsreg-client';

/** @typedef {import('wsreg-client').ServerEntry} ServerEntry */

/**
 * @param {ServerEntry} server
 * @param {string} status
 * @returns {HTMLElement}
 */
export function renderCard(server, status) {
  const card = document.createElement('article');
  card.className = 'card';
  card.dataset.id = server.id;
  card.dataset.port = String(server.port);
  card.dataset.kind = server.kind;
  card.dataset.status = status;
  const health = describeHealth(server);
  card.dataset.health = health.state;

  const title = document.createElement('h2');
  title.className = 'name';
  title.textContent = server.name ?? server.id;
  const badge = document.createElement('span');
  badge.className = 'status';
  badge.textContent = status;
  title.append(' ', badge);
  card.append(title);

  const fields = document.createElement('dl');
  /** @type {[string, string | null][]} */
  const rows = [
    ['id', server.id],
    ['kind', server.kind],
    ['url', server.url],
    ['project', server.project],
    ['session', server.session],
    ['pid', String(server.pid)],
    ['started', server.startedAt],
    ['health', health.text],
  ];
  for (const [label, value] of rows) {
    if (value === null) continue;
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.className = `field-${label}`;
    dd.textContent = value;
    if (label === 'health' && health.checkedAt) dd.title = `checked ${health.checkedAt}`;
    fields.append(dt, dd);
  }
  card.append(fields);

  if (Object.keys(server.meta).length > 0) {
    const meta = document.createElement('pre');
    meta.className = 'meta';
    meta.textContent = JSON.stringify(server.meta, null, 2);
    card.append(meta);
  }

  const last = document.createElement('p');
  last.className = 'last-message';
  last.title = 'last message received';
  card.append(last);
  return card;
}

/**
 * @param {HTMLElement} card
 * @param {string} status
 */
export function updateStatus(card, status) {
  card.dataset.status = status;
  const badge = card.querySelector('.status');
  if (badge) badge.textContent = status;
}
