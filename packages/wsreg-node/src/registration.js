// A live registration: the entry written, kept present by a Keeper, and removed by
// `close()` or when the process ends (exit.js), whichever comes first.

import { entryFileText } from './entry.js';
import { removeOnExit } from './exit.js';
import { Keeper } from './keeper.js';

export class Registration {
  #store;
  #entry;
  #keeper;
  #cancelExitHook;
  #closed = false;

  /**
   * Writes the entry and starts keeping it.
   * @param {import('./store.js').Store} store
   * @param {import('../index.js').ServerEntry} entry
   */
  constructor(store, entry) {
    const text = entryFileText(entry);
    const written = store.write(entry.id, text);
    this.#store = store;
    this.#entry = Object.freeze({ ...entry, meta: Object.freeze(entry.meta) });
    this.#keeper = new Keeper(store, entry.id, text, written);
    this.#cancelExitHook = removeOnExit(() => this.#remove());
  }

  /** The entry as written. */
  get entry() {
    return this.#entry;
  }

  get id() {
    return this.#entry.id;
  }

  /** The entry file. */
  get file() {
    return this.#store.entryPath(this.#entry.id);
  }

  /** Stops keeping the entry and removes it; later calls do nothing. */
  async close() {
    this.#remove();
  }

  #remove() {
    if (this.#closed) return;
    this.#closed = true;
    this.#keeper.stop();
    this.#cancelExitHook();
    this.#store.remove(this.#entry.id);
  }
}
