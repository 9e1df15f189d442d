// `register`: checks the options, writes the entry and keeps it present (registration.js).
// Nothing is written when an option is bad: the entry is built and checked first.

import { buildEntry } from './entry.js';
import { registryDir } from './location.js';
import { Registration } from './registration.js';
import { Store } from './store.js';

/**
 * @param {import('../index.js').RegisterOptions} options
 * @returns {Promise<Registration>}
 */
export async function register(options) {
  const entry = buildEntry(options);
  return new Registration(new Store(registryDir(options.registry)), entry);
}
