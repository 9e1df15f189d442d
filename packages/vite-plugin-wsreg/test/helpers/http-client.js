// A small HTTP and Server-Sent-Events client over real sockets (node:http),
// so tests can send the Host and Origin headers a browser would not let them.

import http from 'node:http';

/**
 * @typedef {{ status: number, headers: http.IncomingHttpHeaders, text: string, json: any }} Response
 */

/**
 * @param {string} url
 * @param {{ method?: string, headers?: Record<string, string> }} [options]
 * @returns {Promise<Response>}
 */
export function request(url, options = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.setTimeout(10000, () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * @typedef {{ event: string, data: string, at: number }} SseEvent
 */

/**
 * Opens an event stream. Events are queued; `next()` takes the next one.
 * @param {string} url
 * @param {Record<string, string>} [headers]
 */
export async function openEventStream(url, headers = {}) {
  /** @type {SseEvent[]} */
  const queue = [];
  /** @type {string[]} */
  const comments = [];
  /** @type {Array<() => void>} */
  let waiters = [];
  let ended = false;
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  /** @type {http.ClientRequest} */
  let req;
  /** @type {http.IncomingMessage} */
  const res = await new Promise((resolve, reject) => {
    req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, resolve);
    req.on('error', reject);
  });
  let buffer = '';
  let event = 'message';
  /** @type {string[]} */
  let data = [];
  res.setEncoding('utf8');
  res.on('data', (/** @type {string} */ chunk) => {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (data.length) queue.push({ event, data: data.join('\n'), at: performance.now() });
        event = 'message';
        data = [];
        wake();
      } else if (line.startsWith(':')) {
        comments.push(line);
        wake();
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  });
  res.on('end', () => {
    ended = true;
    wake();
  });
  res.on('error', () => {
    ended = true;
    wake();
  });

  /** @param {number} ms */
  const waitForWake = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      waiters.push(() => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });

  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    comments,
    /**
     * The next event, optionally the next one that satisfies `accept`.
     * @param {{ timeoutMs?: number, accept?: (e: SseEvent) => boolean }} [options]
     * @returns {Promise<SseEvent>}
     */
    async next(options = {}) {
      const deadline = performance.now() + (options.timeoutMs ?? 5000);
      for (;;) {
        while (queue.length) {
          const e = /** @type {SseEvent} */ (queue.shift());
          if (!options.accept || options.accept(e)) return e;
        }
        if (ended) throw new Error('event stream ended');
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`no matching event within ${options.timeoutMs ?? 5000} ms`);
        await waitForWake(left);
      }
    },
    /**
     * The next comment line (`: keep-alive`) received after this call.
     * @param {{ timeoutMs?: number }} [options]
     * @returns {Promise<string>}
     */
    async nextComment(options = {}) {
      const seen = comments.length;
      const deadline = performance.now() + (options.timeoutMs ?? 5000);
      while (comments.length === seen) {
        if (ended) throw new Error('event stream ended');
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`no comment within ${options.timeoutMs ?? 5000} ms`);
        await waitForWake(left);
      }
      return comments[seen];
    },
    /** Events received and not yet taken. */
    pending() {
      return queue.slice();
    },
    close() {
      req.destroy();
    },
  };
}
