// Type check only (not a test): the implementation's exports must fit the
// hand-written index.d.ts.
import * as impl from '../src/index.js';

/** @type {typeof import('../index.js')} */
export const checked = impl;
