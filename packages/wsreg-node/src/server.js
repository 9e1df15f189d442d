// `registerServer`: registers an `http.Server`, a `net.Server` or a `ws` WebSocketServer
// once it listens, with the port it got (`server.address()`), and unregisters it when it
// closes. The default URL names the address it listens on; an unspecified address
// (`::`, `0.0.0.0`, what `listen(0)` binds) is reached at 127.0.0.1, as `wsreg` servers
// are registered.

import { register } from './register.js';

/** @typedef {import('../index.js').ListeningServer} ListeningServer */

/**
 * @param {ListeningServer} server
 * @param {import('../index.js').RegisterServerOptions} [options]
 */
export async function registerServer(server, options = {}) {
  const address = await listening(server);
  const registration = await register({ url: urlOf(address), ...options, port: address.port });
  server.once('close', () => {
    registration.close().catch((e) => process.emitWarning(`wsreg: cannot unregister ${registration.id}: ${e.message}`));
  });
  return registration;
}

/**
 * The server's TCP address, once it listens.
 * @param {ListeningServer} server
 * @returns {Promise<import('node:net').AddressInfo>}
 */
function listening(server) {
  /** @param {ReturnType<ListeningServer['address']>} address */
  const tcp = (address) => {
    if (typeof address === 'string') throw new Error(`the server listens on ${address}, not on a TCP port`);
    return address;
  };
  const now = tcp(server.address());
  if (now) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    const onListening = () => {
      server.off('error', onError);
      try {
        resolve(/** @type {import('node:net').AddressInfo} */ (tcp(server.address())));
      } catch (e) {
        reject(e);
      }
    };
    /** @param {Error} e */
    const onError = (e) => {
      server.off('listening', onListening);
      reject(e);
    };
    server.once('listening', onListening);
    server.once('error', onError);
  });
}

/** @param {import('node:net').AddressInfo} address */
function urlOf({ address, port }) {
  const unspecified = address === '::' || address === '0.0.0.0';
  const host = unspecified ? '127.0.0.1' : address.includes(':') ? `[${address}]` : address;
  return `ws://${host}:${port}/`;
}
