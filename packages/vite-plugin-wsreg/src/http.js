// The HTTP API, as `wsreg serve` serves it (DESIGN.md, "HTTP API"):
//
//   GET <route>[?project=P&kind=K]         → 200 {"version":1,"servers":[…]}
//   GET <route>/events[?project=P&kind=K]  → text/event-stream: event `servers`
//                                            on connect and on every change,
//                                            a keep-alive comment every 15 s
//
// Errors are JSON `{"error":"…"}`. While the registry cannot be read (its
// directory is a symlink, another user's, not a directory) GET answers 500 and
// the stream sends an event `registry-error` instead of `servers`. Answers come
// from answer.js: one serialisation per change, the same string to every stream.
// Each open stream is a subscriber of the health monitor: probes run while one is open.

import { answerFor } from './answer.js';

/**
 * @typedef {import('node:http').IncomingMessage} IncomingMessage
 * @typedef {import('node:http').ServerResponse} ServerResponse
 * @typedef {import('../index.js').ProbedState} ProbedState
 * @typedef {import('../index.js').ServerFilter} ServerFilter
 * @typedef {import('../index.js').RegistryRoutesOptions} RegistryRoutesOptions
 * @typedef {import('../index.js').RegistryRoutes} RegistryRoutes
 * @typedef {{ res: ServerResponse, filters: ServerFilter[], last: string, timer: NodeJS.Timeout, unsubscribe: () => void }} StreamClient
 */

/**
 * Builds the connect-style middleware for the registry routes.
 * @param {RegistryRoutesOptions} options
 * @returns {RegistryRoutes}
 */
export function createRegistryRoutes(options) {
  const route = normaliseRoute(options.route ?? '/api/registry');
  const eventsRoute = `${route}/events`;
  const { monitor, guard } = options;
  const baseFilter = options.filter ?? {};
  const keepAliveMs = options.keepAliveMs ?? 15000;
  /** @type {Set<StreamClient>} */
  const clients = new Set();

  /** @param {ProbedState} state */
  const onChange = (state) => {
    for (const client of clients) push(client, state);
  };
  monitor.on('change', onChange);

  /**
   * @param {IncomingMessage} req
   * @param {ServerResponse} res
   * @param {(err?: unknown) => void} next
   */
  async function middleware(req, res, next) {
    /** @type {URL} */
    let url;
    try {
      url = new URL(req.url ?? '/', 'http://route.invalid');
    } catch {
      return next();
    }
    const { pathname } = url;
    if (pathname !== route && !pathname.startsWith(`${route}/`)) return next();

    try {
      // Vite's own CORS middleware may have answered `*` already: not here.
      res.removeHeader('Access-Control-Allow-Origin');
      res.setHeader('Vary', 'Origin');
      const verdict = await guard(req);
      if (!verdict.ok) return sendJson(res, verdict.status, { error: verdict.error });
      if (verdict.allowOrigin) res.setHeader('Access-Control-Allow-Origin', verdict.allowOrigin);

      if (pathname !== route && pathname !== eventsRoute) {
        return sendJson(res, 404, { error: `no such registry route: ${pathname.slice(0, 200)}` });
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return sendJson(res, 405, { error: `method ${req.method} not allowed; use GET` });
      }
      const filters = [baseFilter, filterFromQuery(url.searchParams)];
      if (pathname === route) {
        const answer = answerFor(monitor.refresh(), filters);
        return sendText(res, answer.status, answer.body, req.method === 'HEAD');
      }
      return openStream(req, res, filters);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      return sendJson(res, 500, { error: `registry: ${err instanceof Error ? err.message : String(err)}` });
    }
  }

  /**
   * @param {IncomingMessage} req
   * @param {ServerResponse} res
   * @param {ServerFilter[]} filters
   */
  function openStream(req, res, filters) {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'X-Accel-Buffering': 'no',
    });
    if (req.method === 'HEAD') return void res.end();
    res.write('retry: 1000\n\n');
    const timer = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs);
    timer.unref();
    /** @type {StreamClient} */
    const client = { res, filters, last: '', timer, unsubscribe: monitor.subscribe() };
    const drop = () => {
      clearInterval(timer);
      client.unsubscribe();
      clients.delete(client);
    };
    req.on('close', drop);
    res.on('close', drop);
    res.on('error', drop);
    clients.add(client);
    push(client, monitor.refresh());
  }

  return {
    middleware,
    get streams() {
      return clients.size;
    },
    close() {
      monitor.off('change', onChange);
      for (const client of clients) {
        clearInterval(client.timer);
        client.unsubscribe();
        client.res.end();
      }
      clients.clear();
    },
  };
}

/**
 * @param {StreamClient} client
 * @param {ProbedState} state
 */
function push(client, state) {
  const { frame } = answerFor(state, client.filters);
  if (frame === client.last) return;
  client.last = frame;
  client.res.write(frame);
}

/**
 * @param {URLSearchParams} params
 * @returns {ServerFilter}
 */
export function filterFromQuery(params) {
  return { project: params.get('project') || null, kind: params.get('kind') || null };
}

/**
 * @param {ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {boolean} [headOnly]
 */
function sendJson(res, status, body, headOnly = false) {
  sendText(res, status, JSON.stringify(body), headOnly);
}

/**
 * @param {ServerResponse} res
 * @param {number} status
 * @param {string} text JSON
 * @param {boolean} [headOnly]
 */
function sendText(res, status, text, headOnly = false) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(headOnly ? undefined : text);
}

/** @param {string} route */
function normaliseRoute(route) {
  const withSlash = route.startsWith('/') ? route : `/${route}`;
  return withSlash.length > 1 ? withSlash.replace(/\/+$/, '') : withSlash;
}
