// Debian's Chromium for every browser test and for the discovery benchmark: the one
// place that knows where it is (/usr/bin/chromium, or $CHROMIUM_PATH), which flags it
// runs with, and how it is launched: headless, driven by playwright-core, in a fresh
// profile of its own that close() removes. A missing browser throws a clear error; no
// test is ever skipped for want of it.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** No sandbox (tests may run as root), no GPU, and nothing Chromium would fetch or sync on its own. */
export const CHROMIUM_ARGS = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]);

/** Throws (never skips) when the browser is missing. */
export function requireChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install it with \`apt-get install -y chromium\``);
  }
}

/**
 * @typedef {NonNullable<Parameters<typeof chromium.launchPersistentContext>[1]>} ContextOptions
 * @typedef {{ context: import('playwright-core').BrowserContext, profile: string, close(): Promise<void> }} Chromium
 */

/**
 * Headless Chromium in a fresh profile (so two of them share nothing): a persistent
 * context, and close(), which closes it and removes the profile.
 * @param {Omit<ContextOptions, 'executablePath' | 'args'>} [options] more context options (viewport, timeout, …)
 * @returns {Promise<Chromium>}
 */
export async function launchChromium(options = {}) {
  requireChromium();
  const profile = mkdtempSync(join(tmpdir(), 'wsreg-chromium-'));
  const removeProfile = () => rmSync(profile, { recursive: true, force: true });
  const context = await chromium
    .launchPersistentContext(profile, { headless: true, ...options, executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] })
    .catch((e) => {
      removeProfile();
      throw e;
    });
  return {
    context,
    profile,
    async close() {
      await context.close();
      removeProfile();
    },
  };
}
