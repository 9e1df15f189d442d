// The example page: every live server of the registry as a card, one
// WebSocket per server, a message sent to all of them. All registry text is
// untrusted and rendered with textContent, never as HTML.

import { connectAll, subscribe, subscribeHot } from 'wsreg-client';
import { renderCard, updateStatus } from './card.js';

/** @typedef {import('wsreg-client').ServerEntry} ServerEntry */

const list = /** @type {HTMLElement} */ (document.getElementById('servers'));
const empty = /** @type {HTMLElement} */ (document.getElementById('empty'));
const registryStatus = /** @type {HTMLElement} */ (document.getElementById('registry-status'));
const form = /** @type {HTMLFormElement} */ (document.getElementById('send-form'));
const input = /** @type {HTMLInputElement} */ (document.getElementById('send-text'));
const sendResult = /** @type {HTMLElement} */ (document.getElementById('send-result'));

/** @type {Map<string, HTMLElement>} */
const cards = new Map();
/** @type {WeakMap<HTMLElement, string>} what each card shows, to redraw only on change */
const shown = new WeakMap();

const connections = connectAll({
  onStatus(server, status) {
    const card = cards.get(server.id);
    if (card) updateStatus(card, status);
  },
  onMessage(server, data) {
    const card = cards.get(server.id);
    const out = card?.querySelector('.last-message');
    if (out) out.textContent = typeof data === 'string' ? data : `(${describeBinary(data)})`;
  },
});

/**
 * @param {ServerEntry[]} servers
 * @param {import('wsreg-client').SubscriptionInfo} info
 */
function show(servers, info) {
  const seen = new Set();
  for (const server of servers) {
    seen.add(server.id);
    const json = JSON.stringify(server);
    const old = cards.get(server.id);
    if (old && shown.get(old) === json) continue;
    const card = renderCard(server, old?.dataset.status ?? 'connecting');
    shown.set(card, json);
    if (old) old.replaceWith(card);
    cards.set(server.id, card);
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.remove();
      cards.delete(id);
    }
  }
  // In the registry's order (append moves a card that is already there).
  for (const server of servers) list.append(/** @type {HTMLElement} */ (cards.get(server.id)));
  connections.update(servers);
  for (const [id, status] of connections.statuses()) {
    const card = cards.get(id);
    if (card) updateStatus(card, status);
  }

  empty.hidden = servers.length > 0;
  registryStatus.dataset.source = info.source;
  registryStatus.dataset.count = String(servers.length);
  registryStatus.classList.toggle('error', info.error !== null);
  registryStatus.textContent = info.error
    ? `Registry: ${info.error}`
    : `${servers.length} live server${servers.length === 1 ? '' : 's'} (via ${info.source})`;
}

// In `vite dev` the list comes over the HMR channel; in `vite preview` (or
// any static host of the built page) over Server-Sent Events.
if (import.meta.hot) subscribeHot(import.meta.hot, show);
else subscribe(show);

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const sent = connections.sendAll(input.value);
  sendResult.textContent = `sent to ${sent} server${sent === 1 ? '' : 's'}`;
});

/** @param {unknown} data */
function describeBinary(data) {
  if (data instanceof ArrayBuffer) return `${data.byteLength} bytes`;
  return 'binary';
}
