// Host and Origin checks for the registry routes (DESIGN.md, principle 5): the
// same checks as `wsreg serve` (crates/wsreg/src/http/guard.rs), held to the same
// shared cases (testdata/guard/cases.json, test/guard-vectors.test.js).
//
// Host: exactly one, a loopback name (localhost, *.localhost, 127.x.x.x, [::1])
// or one that Vite's `allowedHosts` allows; anything else is refused (DNS
// rebinding). Parsed strictly: browsers send only well-formed values.
// Origin: at most one; none (and no `Sec-Fetch-Site: cross-site`), a loopback
// origin, or one that Vite's `cors` setting allows; anything else is refused (a
// web site reading the registry). `null` never. Never `*`.

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
    const hosts = headerValues(req, 'host');
    if (hosts.length === 0 || hosts[0] === '') return refuse('host', 'missing Host header');
    if (hosts.length > 1) return refuse('host', 'more than one Host header');
    const hostHeader = hosts[0];
    const host = hostnameOf(hostHeader);
    if (host === null || !(isLoopbackHostname(host) || hostAllowed(host, allowedHosts))) {
      return refuse('host', `Host ${JSON.stringify(hostHeader.slice(0, 300))} is not a loopback name nor in allowedHosts`);
    }

    const origins = headerValues(req, 'origin');
    if (origins.length === 0) {
      // No Origin: not a CORS request. A browser still says where it comes from.
      if (headerValues(req, 'sec-fetch-site').some((v) => v.toLowerCase() === 'cross-site')) {
        return refuse('cross-site', 'cross-site request (Sec-Fetch-Site) is not allowed');
      }
      return { ok: true, allowOrigin: null };
    }
    if (origins.length > 1) return refuse('origin', 'more than one Origin header');
    const origin = origins[0];
    // `null`: a sandboxed frame or a file: page, of any site; never allowed.
    if (origin !== 'null') {
      if (isLoopbackOrigin(origin)) return { ok: true, allowOrigin: origin };
      if (isOriginUrl(origin) && (await corsAllows(cors, origin))) return { ok: true, allowOrigin: origin };
    }
    return refuse('origin', `cross-site Origin ${JSON.stringify(origin.slice(0, 300))} is not allowed`);
  };
}

/**
 * Every value of a request header, in order (`headersDistinct` keeps the
 * repeats that `headers` joins or drops).
 * @param {IncomingMessage} req
 * @param {string} name lowercase
 * @returns {string[]}
 */
function headerValues(req, name) {
  const distinct = req.headersDistinct?.[name];
  if (distinct) return distinct;
  const value = req.headers[name];
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/**
 * Whether an Origin is `http://` or `https://` and a loopback authority, as a
 * browser writes it: nothing after the authority, not even `/`.
 * @param {string} origin
 * @returns {boolean}
 */
export function isLoopbackOrigin(origin) {
  const m = /^https?:\/\/([^/]*)$/.exec(origin);
  if (!m) return false;
  const host = hostnameOf(m[1]);
  return host !== null && isLoopbackHostname(host);
}

/**
 * Whether `cors` may be asked about an Origin at all: a URL with an origin of
 * its own (not `file:` or `data:`, whose origin is opaque).
 * @param {string} origin
 * @returns {boolean}
 */
function isOriginUrl(origin) {
  try {
    return new URL(origin).origin !== 'null';
  } catch {
    return false;
  }
}

/**
 * The host name of a Host header or an origin's authority (lowercase, brackets
 * kept for IPv6), or null when the value is malformed: an empty host,
 * characters no host name has, a colon outside brackets, text after `]` that is
 * not a port, a port that is not 1 to 5 digits or is above 65535.
 * @param {string} hostHeader
 * @returns {string | null}
 */
export function hostnameOf(hostHeader) {
  const h = hostHeader.toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(h);
  if (!m) return null;
  if (m[2] !== undefined && Number(m[2]) > 65535) return null;
  return m[1];
}

/**
 * Whether a host name (lowercase, IPv6 in brackets) is a loopback name:
 * `localhost` or a name ending in `.localhost` (dot-separated non-empty labels,
 * so no trailing dot: `localhost.` is refused, as Vite refuses it), an IPv4
 * address in 127.0.0.0/8 written as browsers write it (no leading zeros), or
 * `[::1]`.
 * @param {string} host a lowercase host name, IPv6 in brackets
 * @returns {boolean}
 */
export function isLoopbackHostname(host) {
  if (host === '[::1]') return true;
  if (!/^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/.test(host)) return false;
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const v4 = /^127\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/.exec(host);
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
 * @param {'host' | 'origin' | 'cross-site'} check which check refused
 * @param {string} error
 * @returns {GuardResult}
 */
function refuse(check, error) {
  return { ok: false, status: 403, error, check };
}
