// wsreg-node: register a Node server in the wsreg registry of local WebSocket servers
// (docs/registry-format.md) and keep it there while the process lives. No dependencies.

export { register } from './register.js';
export { registerServer } from './server.js';
export { Registration } from './registration.js';
export { EntryError } from './entry.js';
