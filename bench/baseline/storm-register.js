// One writer of the baseline storm: starts, says `ready`, waits for a line on stdin (the
// runner releases all writers at once), registers one entry the prototype's way, exits.
// The entry names the runner's PID (WSREG_BENCH_PID) so that it stays live after this
// process exits, and a port unique to this writer (WSREG_BENCH_PORT) to be counted by.

import { register } from './prototype-registry.js';

const pid = Number(process.env.WSREG_BENCH_PID);
const port = Number(process.env.WSREG_BENCH_PORT);
process.stdout.write('ready\n');
process.stdin.once('data', () => {
  register({ id: `storm-${port}`, port, pid, startedAt: Date.now() });
  process.exit(0);
});
