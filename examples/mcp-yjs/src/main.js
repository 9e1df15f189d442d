// The page: finds the MCP server's Yjs document by project in the registry (Server-Sent
// Events from vite-plugin-wsreg or `wsreg serve`), syncs it with a y-websocket provider
// and shows the notes live; when the server leaves the registry it says so and keeps
// the last notes, dimmed, until a server of the project appears again.
//
// Notes and registry fields are untrusted: shown with textContent, never as HTML.
//
// URL parameters: ?project=P (default "mcp-yjs"), ?session=S (only that session's server).

import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { subscribe } from 'wsreg-client';

/** @typedef {import('wsreg-client').ServerEntry} ServerEntry */

const params = new URLSearchParams(location.search);
const project = params.get('project') || 'mcp-yjs';
const session = params.get('session');

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const status = $('status');
const serverLine = $('server');
const notesList = $('notes');
$('project').textContent = project;

/** @type {{ server: ServerEntry, doc: Y.Doc, provider: WebsocketProvider } | null} */
let current = null;

/** @param {'waiting' | 'connecting' | 'connected' | 'disconnected' | 'gone'} state @param {string} text */
function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

/** @param {ServerEntry} server */
const label = (server) => `${server.name ?? server.id} (pid ${server.pid}${server.session ? `, session ${server.session}` : ''})`;

/** @param {Y.Array<string>} notes */
function renderNotes(notes) {
  const items = notes.toArray();
  notesList.replaceChildren(...items.map((note) => {
    const li = document.createElement('li');
    li.textContent = String(note);
    return li;
  }));
  notesList.dataset.count = String(items.length);
}

/** @param {ServerEntry} server */
function connect(server) {
  const doc = new Y.Doc();
  const notes = doc.getArray('notes');
  const room = typeof server.meta?.room === 'string' ? server.meta.room : 'notes';
  const provider = new WebsocketProvider(server.url, room, doc, { disableBc: true });
  current = { server, doc, provider };
  notesList.dataset.stale = 'false';
  notes.observe(() => renderNotes(/** @type {Y.Array<string>} */ (notes)));
  renderNotes(/** @type {Y.Array<string>} */ (notes));
  serverLine.textContent = `${label(server)} · ${server.url}`;
  serverLine.dataset.id = server.id;
  show('connecting', `Connecting to ${label(server)}…`);
  provider.on('status', (/** @type {{ status: string }} */ { status: s }) => {
    if (current?.provider !== provider) return;
    if (s === 'connected') show('connected', `Live: ${label(server)}`);
    else if (s === 'disconnected') show('disconnected', `Lost the connection to ${label(server)}; retrying…`);
  });
}

/** @param {ServerEntry[]} servers @param {{ error?: string | null, stale?: boolean }} info */
function follow(servers, info) {
  const mine = session ? servers.filter((s) => s.session === session) : servers;
  if (current && mine.some((s) => s.id === current?.server.id && s.url === current.server.url)) return;
  if (current) {
    // The server left the registry: it is gone. Keep its last notes, dimmed.
    const { server, provider, doc } = current;
    current = null;
    provider.destroy();
    doc.destroy();
    notesList.dataset.stale = 'true';
    show('gone', `The server is gone: ${label(server)} left the registry.`);
  }
  const next = mine.at(-1); // the newest (the list is ordered by startedAt)
  if (next) connect(next);
  else if (info.error) show(status.dataset.state === 'gone' ? 'gone' : 'waiting', `${status.textContent} Registry error: ${info.error}`);
  else if (status.dataset.state !== 'gone') show('waiting', `No server of project "${project}" yet: start your MCP client.`);
}

subscribe(follow, { project, kind: 'yjs' });
