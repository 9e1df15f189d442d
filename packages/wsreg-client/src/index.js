// wsreg-client: find every WebSocket server registered on this machine and
// talk to all of them. Plain ES modules, no dependencies, no build step:
// import it from a page with `<script type="module">` and a relative path.
//
//   import { subscribe, connectAll } from './wsreg-client/index.js';
//   const conns = connectAll({ onStatus, onMessage });
//   const stop = subscribe((servers) => conns.update(servers));

export { backoffDelay } from './backoff.js';
export { connectAll } from './connect.js';
export { filterServers } from './filter.js';
export { describeHealth } from './health.js';
export { subscribeHot } from './hot.js';
export { subscribe } from './subscribe.js';
export { registryUrl } from './url.js';
