// `npm run dev` (in examples/yjs-app): the whole demo in one command.
//
// Starts two `wsreg yjs` servers (documents kept in .data/a and .data/b here) and the
// Vite dev server with the wsreg plugin, then prints the URL. Open it in two windows
// and type. Stop one server (its PID is printed) and typing still syncs through the
// other; start another `wsreg yjs` anywhere and the page picks it up. Ctrl-C stops all.
//
// wsreg is $WSREG_BIN, else the repository's target/debug/wsreg (built with cargo first
// if missing). The registry is the directory $WSREG_REGISTRY, else ~/.peer-plan/servers/.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const wsreg = process.env.WSREG_BIN || join(root, 'target/debug/wsreg');

if (!existsSync(wsreg)) {
  console.log(`${wsreg} is missing: building it with cargo`);
  const built = spawnSync('cargo', ['build', '--bin', 'wsreg'], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

const servers = ['a', 'b'].map((name) => {
  const dataDir = join(here, '.data', name);
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(wsreg, ['yjs', '--name', `yjs-${name}`, '--project', 'yjs-app', '--data-dir', dataDir], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('exit', (code, signal) => console.log(`wsreg yjs ${name} (pid ${child.pid}) ended: ${code ?? signal}`));
  return child;
});

const vite = await createServer({ root: here, configLoader: 'native' });
await vite.listen();
vite.printUrls();
console.log(`yjs servers: pids ${servers.map((s) => s.pid).join(', ')} (kill one to see the other carry on)`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  for (const s of servers) if (s.exitCode === null && s.signalCode === null) s.kill('SIGTERM');
  await vite.close();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
