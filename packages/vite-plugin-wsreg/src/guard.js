// Host and Origin checks for the registry routes (DESIGN.md, principle 5).
//
// Host: a loopback name (localhost, *.localhost, 127.x.x.x, [::1]) or one that
// Vite's `allowedHosts` allows; anything else is refused (DNS rebinding).
// Origin: none (and not `Sec-Fetch-Site: cross-site`), the page's own origin, a
// loopback origin, or one that Vite's `cors` setting allows; anything else is
// refused (a web site reading the registry). Never `*`.

/**
 * @typedef {import('../index.js').GuardOptions} GuardOptions
 * @typedef {import('../index.js').GuardResult} GuardResult
 * @typedef {import('node:http').IncomingMessage} IncomingMessage
 */

/**
 * @param {GuardOptions} [options]
 * @returns {(req: IncomingMessage) => Promise<GuardResult>}
 */
export function createGuard(options = {}) {
  const allowedHosts = options.allowedHosts ?? [];
  const cors = options.cors ?? false;
  return async function guard(req) {
    const hostHeader = req.headers.host;
    if (!hostHeader) return refuse('missing Host header');
    const host = hostnameOf(hostHeader);
    if (host === null || !(isLoopbackHostname(host) || hostAllowed(host, allowedHosts))) {
      return refuse(`Host ${JSON.stringify(hostHeader.slice(0, 300))} is not a loopback name nor in allowedHosts`);
    }

    const origin = req.headers.origin;
    if (origin === undefined) {
      // No Origin: not a CORS request. A browser still says where it comes from.
      if (req.headers['sec-fetch-site'] === 'cross-site') return refuse('cross-site request (Sec-Fetch-Site) is not allowed');
      return { ok: true, allowOrigin: null };
    }
    /** @type {URL} */
    let url;
    try {
      url = new URL(origin);
    } catch {
      return refuse(`Origin ${JSON.stringify(origin.slice(0, 300))} is not allowed`);
    }
    if (url.origin === 'null') return refuse('Origin "null" is not allowed');
    if (url.host.toLowerCase() === hostHeader.toLowerCase()) return { ok: true, allowOrigin: origin };
    const originHost = url.hostname.toLowerCase();
    if ((url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHostname(originHost)) {
      return { ok: true, allowOrigin: origin };
    }
    if (await corsAllows(cors, origin)) return { ok: true, allowOrigin: origin };
    return refuse(`cross-site Origin ${JSON.stringify(origin.slice(0, 300))} is not allowed`);
  };
}

/**
 * The host name of a Host header (lowercase, brackets kept for IPv6), or null.
 * @param {string} hostHeader
 * @returns {string | null}
 */
export function hostnameOf(hostHeader) {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return null;
    const rest = h.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
    const v6 = h.slice(0, end + 1);
    return /^\[[0-9a-f:.]+\]$/.test(v6) ? v6 : null;
  }
  // A DNS name or an IPv4 address, nothing else (no '/', spaces, '@', …).
  const m = /^([a-z0-9_.-]+)(?::\d{1,5})?$/.exec(h);
  return m ? m[1] : null;
}

/**
 * @param {string} host a lowercase host name, IPv6 in brackets
 * @returns {boolean}
 */
export function isLoopbackHostname(host) {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === '[::1]' || host === '::1') return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return v4 !== null && v4.slice(1).every((octet) => Number(octet) <= 255);
}

/**
 * Vite's `allowedHosts`: `true` allows all; a name starting with `.` allows
 * that domain and its subdomains; other names must match exactly.
 * @param {string} host
 * @param {true | readonly string[]} allowedHosts
 */
export function hostAllowed(host, allowedHosts) {
  if (allowedHosts === true) return true;
  return allowedHosts.some((allowed) => {
    const a = allowed.toLowerCase();
    if (a.startsWith('.')) return host === a.slice(1) || host.endsWith(a);
    return host === a;
  });
}

/**
 * Whether Vite's `cors` setting (the options of the `cors` middleware) lets
 * `origin` read responses. `true`, an options object without `origin`,
 * `origin: true` and `origin: '*'` allow every origin; it is still echoed
 * back, never answered with `*`.
 * @param {GuardOptions['cors']} cors
 * @param {string} origin
 * @returns {Promise<boolean>}
 */
export async function corsAllows(cors, origin) {
  if (cors === true) return true;
  if (!cors) return false;
  if (!('origin' in cors) || cors.origin === undefined) return true;
  const allowed = await resolveOriginOption(cors.origin, origin);
  return allowed === '*' || matchOrigin(allowed, origin);
}

/**
 * @param {unknown} option
 * @param {string} origin
 * @returns {Promise<unknown>}
 */
function resolveOriginOption(option, origin) {
  if (typeof option !== 'function') return Promise.resolve(option);
  return new Promise((resolve) => {
    try {
      option(origin, (/** @type {unknown} */ err, /** @type {unknown} */ allowed) => resolve(err ? false : allowed));
    } catch {
      resolve(false);
    }
  });
}

/**
 * @param {unknown} allowed
 * @param {string} origin
 * @returns {boolean}
 */
function matchOrigin(allowed, origin) {
  if (allowed === true) return true;
  if (typeof allowed === 'string') return allowed === origin;
  if (allowed instanceof RegExp) {
    allowed.lastIndex = 0;
    return allowed.test(origin);
  }
  if (Array.isArray(allowed)) return allowed.some((a) => matchOrigin(a, origin));
  return false;
}

/**
 * @param {string} error
 * @returns {GuardResult}
 */
function refuse(error) {
  return { ok: false, status: 403, error };
}
