// Token auth for the Vite plugin (`wsreg({ auth: 'token' })`), the same contract as
// `wsreg serve --auth token` (docs/security.md): the per-user secret in `auth-token`
// beside the registry directory, in its parent (64 hex digits, mode 0600, made by the first server that needs
// it, refused if others can read it, is a symlink or is not ours), presented as
// `Authorization: Bearer <token>`, `?token=<token>` or the `wsreg_token` cookie, and
// compared in constant time. A page load with the right `?token=` gets the cookie
// (HttpOnly, SameSite=Strict, Path=/) and a 303 to the same URL without the token; the
// browser then sends that cookie with the page's WebSocket upgrades to wsreg servers on
// the same host name (cookies are not per port). Everything else without the token: 401.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const TOKEN_FILE = 'auth-token';
export const COOKIE = 'wsreg_token';

/**
 * The token for the registry directory `registryDir`: read from `auth-token` beside
 * it (in its parent), or made.
 * @param {string} registryDir
 * @returns {string}
 */
export function loadOrCreateToken(registryDir) {
  const dir = path.dirname(registryDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, TOKEN_FILE);
  const existing = readToken(file);
  if (existing !== null) return existing;
  const token = crypto.randomBytes(32).toString('hex');
  const tmp = path.join(dir, `.${TOKEN_FILE}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  fs.writeFileSync(tmp, `${token}\n`, { mode: 0o600, flag: 'wx' });
  try {
    fs.linkSync(tmp, file); // fails if another server made it first: then use theirs
    return token;
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
    const theirs = readToken(file);
    if (theirs === null) throw new Error(`${file} vanished while being read`);
    return theirs;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * @param {string} file
 * @returns {string | null} the token, or null when there is no file
 */
function readToken(file) {
  let fd;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = /** @type {NodeJS.ErrnoException} */ (err).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new Error(`refusing ${file}: it is a symbolic link`);
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
      throw new Error(`refusing ${file}: it is owned by uid ${st.uid}, not by this user`);
    }
    if ((st.mode & 0o077) !== 0) {
      throw new Error(
        `refusing ${file}: other users can read it (mode ${(st.mode & 0o777).toString(8)}); delete it and a new token is made at the next start`,
      );
    }
    const text = fs.readFileSync(fd, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/i.test(text)) throw new Error(`${file} does not hold a token (64 hex digits)`);
    return text;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Whether `presented` is `token`, in time that does not depend on where they differ.
 * @param {string} token
 * @param {string} presented
 */
export function tokenMatches(token, presented) {
  const a = Buffer.from(token);
  const b = Buffer.from(presented);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/**
 * Connect-style middleware for the whole server (page, assets, API).
 * @param {string} token
 * @returns {(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next: () => void) => void}
 */
export function createAuthMiddleware(token) {
  return function auth(req, res, next) {
    const url = new URL(req.url ?? '/', 'http://auth.invalid');
    const fromQuery = url.searchParams.getAll('token');
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const cookies = (req.headers.cookie ?? '')
      .split(';')
      .map((c) => c.trim())
      .filter((c) => c.startsWith(`${COOKIE}=`))
      .map((c) => c.slice(COOKIE.length + 1));
    const presented = [...fromQuery, ...(bearer ? [bearer] : []), ...cookies];
    if (!presented.some((p) => tokenMatches(token, p))) {
      res.statusCode = 401;
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('WWW-Authenticate', 'Bearer realm="wsreg"');
      res.end(JSON.stringify({ error: 'this server needs its token: open the link printed at start' }));
      return;
    }
    if (fromQuery.length > 0 && req.method === 'GET' && !url.pathname.startsWith('/api/')) {
      url.searchParams.delete('token');
      res.statusCode = 303;
      res.setHeader('Set-Cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`);
      res.setHeader('Location', url.pathname + url.search);
      res.setHeader('Cache-Control', 'no-store');
      res.end();
      return;
    }
    next();
  };
}
