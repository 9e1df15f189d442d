// A multi-provider: one Y.Doc synced through every discovered Yjs server at once.
//
// `update(servers)` is fed the live registry list; it opens a y-websocket
// WebsocketProvider for each new server and destroys the providers of servers that left.
// All providers share the document, so an update that arrives from one server is sent
// on to every other one (y-websocket forwards every update whose origin is not itself):
// the page bridges the servers, and as long as one of them is up, typing syncs.
//
// Each provider has its own Awareness (same client id), because a provider clears the
// remote states of its awareness when its connection drops; a shared one would blank the
// "who is here" list whenever any single server went away. `people()` merges them.
// BroadcastChannel is off: tabs of this page must sync through the servers, not around them.

import { WebsocketProvider } from 'y-websocket';
import { Awareness } from 'y-protocols/awareness';

/** @typedef {import('wsreg-client').ServerEntry} ServerEntry */
/** @typedef {{ server: ServerEntry, provider: WebsocketProvider, awareness: Awareness, status: string }} Link */

export class MultiProvider {
  /**
   * @param {import('yjs').Doc} doc
   * @param {string} room
   * @param {{ onChange?: () => void, WebSocketPolyfill?: typeof WebSocket }} [options]
   */
  constructor(doc, room, { onChange = () => {}, WebSocketPolyfill } = {}) {
    this.doc = doc;
    this.room = room;
    this.onChange = onChange;
    this.WebSocketPolyfill = WebSocketPolyfill;
    /** @type {Map<string, Link>} server id → its link */
    this.links = new Map();
    /** @type {Record<string, unknown> | null} */
    this.localState = null;
  }

  /** Follows the live list: connects to newcomers, drops leavers. @param {ServerEntry[]} servers */
  update(servers) {
    const ids = new Set(servers.map((s) => s.id));
    for (const [id, link] of this.links) {
      if (!ids.has(id)) {
        this.links.delete(id);
        link.provider.destroy();
        link.awareness.destroy();
      }
    }
    for (const server of servers) {
      if (!this.links.has(server.id)) this.links.set(server.id, this.#open(server));
    }
    this.onChange();
  }

  /** @param {ServerEntry} server @returns {Link} */
  #open(server) {
    const awareness = new Awareness(this.doc);
    awareness.setLocalState(this.localState);
    const provider = new WebsocketProvider(server.url, this.room, this.doc, {
      awareness,
      disableBc: true,
      ...(this.WebSocketPolyfill ? { WebSocketPolyfill: this.WebSocketPolyfill } : {}),
    });
    /** @type {Link} */
    const link = { server, provider, awareness, status: 'connecting' };
    provider.on('status', (/** @type {{ status: string }} */ { status }) => {
      link.status = status;
      this.onChange();
    });
    provider.on('sync', () => this.onChange());
    awareness.on('change', () => this.onChange());
    return link;
  }

  /** Sets this user's presence on every server. @param {Record<string, unknown>} state */
  setLocalState(state) {
    this.localState = state;
    for (const { awareness } of this.links.values()) awareness.setLocalState(state);
  }

  /** Everyone present on any server: client id → state (this client included). */
  people() {
    /** @type {Map<number, any>} */
    const all = new Map();
    for (const { awareness } of this.links.values()) {
      for (const [clientId, state] of awareness.getStates()) {
        if (state && Object.keys(state).length > 0) all.set(clientId, state);
      }
    }
    if (this.localState) all.set(this.doc.clientID, this.localState);
    return all;
  }

  /** One line per server: its entry, the connection's status and whether it synced. */
  statuses() {
    return [...this.links.values()].map(({ server, status, provider }) => ({
      server,
      status,
      synced: provider.synced,
    }));
  }

  destroy() {
    this.update([]);
  }
}
