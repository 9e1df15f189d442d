// The Yjs example page: one Y.Doc, synced through every live `yjs` server of the
// registry (a MultiProvider), a shared text area and the list of who is here.
// Registry fields and names are untrusted: shown with textContent, never as HTML.
//
// URL parameters: ?room=NAME (default "wsreg-demo") and ?name=YOU (default a guest name).

import * as Y from 'yjs';
import { subscribe, subscribeHot } from 'wsreg-client';
import { MultiProvider } from './multi-provider.js';
import { bindTextarea } from './textarea-binding.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') || 'wsreg-demo';
const name = params.get('name') || `guest-${Math.floor(Math.random() * 9000 + 1000)}`;
const colors = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080'];
const color = colors[Math.floor(Math.random() * colors.length)];

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const textarea = /** @type {HTMLTextAreaElement} */ ($('text'));
const serverList = $('servers');
const peopleList = $('people');
const summary = $('summary');
$('room').textContent = room;

const doc = new Y.Doc();
const ytext = doc.getText('text');
bindTextarea(ytext, textarea);

const providers = new MultiProvider(doc, room, { onChange: render });
providers.setLocalState({ user: { name, color } });

function render() {
  const statuses = providers.statuses();
  serverList.replaceChildren(...statuses.map(({ server, status, synced }) => {
    const li = document.createElement('li');
    li.dataset.id = server.id;
    li.dataset.port = String(server.port);
    li.dataset.status = status;
    li.dataset.synced = String(synced);
    li.textContent = `${server.name ?? server.id} · ${server.url} · ${status}${synced ? ', synced' : ''}`;
    return li;
  }));
  const connected = statuses.filter((s) => s.status === 'connected').length;
  summary.dataset.servers = String(statuses.length);
  summary.dataset.connected = String(connected);
  summary.textContent = statuses.length === 0
    ? 'No yjs server yet: start one with `wsreg yjs`.'
    : `Synced through ${connected} of ${statuses.length} yjs server${statuses.length === 1 ? '' : 's'}`;
  textarea.disabled = false;

  const people = [...providers.people()].sort(([a], [b]) => a - b);
  peopleList.replaceChildren(...people.map(([clientId, state]) => {
    const li = document.createElement('li');
    const who = String(state.user?.name ?? `client ${clientId}`);
    li.dataset.name = who;
    li.textContent = clientId === doc.clientID ? `${who} (you)` : who;
    if (typeof state.user?.color === 'string') li.style.borderColor = state.user.color;
    return li;
  }));
}

// In `vite dev` the list comes over the HMR channel; in a built page (vite preview,
// `wsreg serve --static dist`, any static host with the API beside it) over SSE.
const filter = { kind: 'yjs' };
const follow = (/** @type {import('wsreg-client').ServerEntry[]} */ servers) => providers.update(servers);
if (import.meta.hot) subscribeHot(import.meta.hot, follow, filter);
else subscribe(follow, filter);
render();
