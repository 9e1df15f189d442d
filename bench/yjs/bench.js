// wsreg yjs against the reference y-websocket server (@y/websocket-server), same loads,
// same run, on loopback. Run through bench/yjs/run.sh, which builds target/release/wsreg
// and installs this directory's packages first. Writes the Markdown table to stdout.
//
// Server CPU is utime+stime from /proc/<pid>/stat (10 ms ticks) over each load; RSS is
// VmRSS from /proc/<pid>/status. Rate loads use raw WebSocket clients that send updates
// made beforehand by a yjs Doc and count the update messages they receive (a room
// forwards updates in order, so the k-th received is the k-th sent): the clients' own
// CPU stays out of the latency. The memory load uses the real y-websocket providers.
// Every loop is bounded in count and in time.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { WebsocketProvider } from 'y-websocket'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '../..')
const quick = process.argv.includes('--quick')
const SECONDS = quick ? 2 : 8
const RATE = 1000
const READERS = 50
const FLOOD = quick ? 2000 : 5000
const ROOMS = quick ? 50 : 200
const CYCLES = quick ? 3 : 20
const ROUNDS = quick ? 1 : 3
const WRITERS = 8
const PER_WRITER = quick ? 1000 : 3000
const LIMIT_MS = 60_000
const TICK = 0.01 // seconds per clock tick (USER_HZ is 100 on Linux)

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const started = performance.now()
const progress = what => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${what}\n`)

function cpuSeconds (pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK
}

function sysSeconds (pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]) * TICK
}

async function freePort () {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  return port
}

/** Starts a server; resolves once it listens, with { name, pid, url, stop }. */
async function startServer (kind, dataDir) {
  let child, url
  if (kind === 'wsreg') {
    const registry = fs.mkdtempSync(path.join(os.tmpdir(), 'wsreg-bench-yjs-'))
    const args = ['yjs', '--port', '0', ...(dataDir ? ['--data-dir', dataDir] : [])]
    child = spawn(process.env.WSREG_BIN ?? path.join(root, 'target/release/wsreg'), args, {
      env: { ...process.env, WSREG_REGISTRY: registry, RUST_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    url = await lineMatching(child, /listening on (ws:\/\/\S+?)\/? /)
  } else if (kind === 'floor') {
    child = spawn(path.join(root, 'target/release/wsreg-bench'), ['ws-fanout'], {
      stdio: ['ignore', 'pipe', 'inherit']
    })
    url = await lineMatching(child, /listening on (ws:\/\/\S+?)\/? /)
  } else {
    const port = await freePort()
    child = spawn(process.execPath, [path.join(here, 'node_modules/@y/websocket-server/src/server.js')], {
      env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit']
    })
    await lineMatching(child, /running at/)
    url = `ws://127.0.0.1:${port}`
  }
  return {
    name: kind,
    pid: child.pid,
    url,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  }
}

function lineMatching (child, pattern) {
  return new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => reject(new Error(`no ${pattern} in: ${seen}`)), 10_000)
    child.stdout.on('data', chunk => {
      seen += chunk
      const m = pattern.exec(seen)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    child.on('exit', code => reject(new Error(`server exited (${code}): ${seen}`)))
  })
}

/** `count` y-websocket update frames, each typing one character, made beforehand. */
function updateFrames (count, name = 'text') {
  const doc = new Y.Doc()
  const text = doc.getText(name)
  const frames = []
  doc.on('update', update => {
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 0)
    encoding.writeVarUint(e, 2)
    encoding.writeVarUint8Array(e, update)
    frames.push(encoding.toUint8Array(e))
  })
  for (let i = 0; i < count; i++) text.insert(text.length, String.fromCharCode(97 + i % 26))
  return frames
}

/** A raw client of `room` that records when each update message arrives. */
async function rawClient (server, room) {
  const ws = new WebSocket(`${server.url}/${room}`)
  ws.binaryType = 'nodebuffer'
  const client = { ws, times: [], onUpdate: null }
  ws.on('message', data => {
    if (data[0] === 0 && data[1] === 2) {
      client.times.push(performance.now())
      client.onUpdate?.()
    }
  })
  await once(ws, 'message') // the server's sync step 1: joined
  return client
}

function until (what, check) {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const poll = () => {
      if (check()) return resolve()
      if (Date.now() - started > LIMIT_MS) return reject(new Error(`timed out: ${what}`))
      setTimeout(poll, 5)
    }
    poll()
  })
}

function percentile (sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
}

/** One writer sends `frames` at `rate`/s (Infinity: as fast as it can) to `readers`. */
async function fanOut (server, room, readers, frames, rate) {
  const writer = await rawClient(server, room)
  const clients = []
  for (let i = 0; i < readers; i++) clients.push(await rawClient(server, room))
  const sent = []
  const cpu0 = cpuSeconds(server.pid)
  const sys0 = sysSeconds(server.pid)
  const t0 = performance.now()
  let n = 0
  while (n < frames.length) {
    const due = rate === Infinity ? frames.length : Math.min(frames.length, Math.floor((performance.now() - t0) * rate / 1000) + 1)
    for (; n < due; n++) {
      sent.push(performance.now())
      writer.ws.send(frames[n])
    }
    await new Promise(resolve => setImmediate(resolve))
    if (rate !== Infinity && n < due + 1) await sleep(1)
  }
  await until('every reader has every update', () => clients.every(c => c.times.length >= frames.length))
  const elapsed = (performance.now() - t0) / 1000
  const cpu = cpuSeconds(server.pid) - cpu0
  const sys = sysSeconds(server.pid) - sys0
  const latencies = sent.map((t, k) => Math.max(...clients.map(c => c.times[k])) - t).sort((a, b) => a - b)
  for (const c of [writer, ...clients]) c.ws.close()
  return {
    cpuPerUpdateUs: cpu / frames.length * 1e6,
    kernelShare: sys / cpu,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    deliveriesPerSec: frames.length * readers / elapsed
  }
}

/** `rooms` rooms, two y-websocket providers each, 10 KiB typed by one, synced to the other. */
async function loadRooms (server, cycle, rooms) {
  const providers = []
  for (let r = 0; r < rooms; r++) {
    const docs = [new Y.Doc(), new Y.Doc()]
    const pair = docs.map(doc => new WebsocketProvider(server.url, `mem-${cycle}-${r}`, doc, {
      WebSocketPolyfill: WebSocket, disableBc: true, resyncInterval: -1
    }))
    providers.push(...pair)
    await until('both providers synced', () => pair.every(p => p.synced))
    if (r % 50 === 0) progress(`room ${r}`)
    docs[0].getText('text').insert(0, 'x'.repeat(10 * 1024))
    await until('the second provider has the text', () => docs[1].getText('text').length === 10 * 1024)
  }
  return providers
}

async function unload (providers) {
  for (const p of providers) p.destroy()
  // The servers notice the closes asynchronously; RSS settles within a second here.
  await sleep(1000)
}

function memKiB (pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = name => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)[1])
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile') }
}

/**
 * Memory per room is what a room adds: measured from the server as it is after one room
 * has come and gone (the first room pages in code and allocator pools that no later room
 * needs again). RSS after unloading is compared with the server as it started.
 */
async function memory (server, cycles = CYCLES) {
  const empty = memKiB(server.pid)
  await unload(await loadRooms(server, 'warm-up', 1))
  const warm = memKiB(server.pid)
  let loaded
  const after = []
  for (let cycle = 0; cycle < cycles; cycle++) {
    const providers = await loadRooms(server, cycle, ROOMS)
    if (cycle === 0) loaded = memKiB(server.pid)
    await unload(providers)
    after.push(memKiB(server.pid))
  }
  const perRoom = field => (loaded[field] - warm[field]) / ROOMS
  const worst = after.reduce((a, b) => (b.rss > a.rss ? b : a))
  return {
    empty: empty.rss,
    warm: warm.rss,
    loadedPerRoom: perRoom('rss'),
    anonPerRoom: perRoom('anon'),
    afterFirst: after[0].rss,
    afterLast: after[after.length - 1].rss,
    afterMax: worst.rss,
    afterMaxAnon: worst.anon - empty.anon,
    afterMaxFile: worst.file - empty.file
  }
}

/** WRITERS clients flood a room of a persistent wsreg; an observer counts what is forwarded. */
async function persistence (server) {
  const writers = []
  for (let w = 0; w < WRITERS; w++) writers.push(await rawClient(server, 'durable'))
  const observer = await rawClient(server, 'durable')
  const frames = writers.map((_, w) => updateFrames(PER_WRITER, `w${w}`))
  progress(`${WRITERS} writers joined, sending`)
  const total = WRITERS * PER_WRITER
  const t0 = performance.now()
  writers.forEach((c, w) => frames[w].forEach(f => c.ws.send(f)))
  await until('the observer has every update', () => observer.times.length >= total)
  const elapsed = (performance.now() - t0) / 1000
  for (const c of [...writers, observer]) c.ws.close()
  return { ackedPerSec: total / elapsed }
}

/** Runs `load` against a fresh server of `kind`. */
async function withServer (kind, load) {
  const server = await startServer(kind)
  try {
    return await load(server)
  } finally {
    await server.stop()
  }
}

/** The loads, each run on a fresh server. */
const LOADS = {
  pair: s => fanOut(s, 'pair', 1, updateFrames(SECONDS * RATE), RATE),
  fan: s => fanOut(s, 'fan', READERS, updateFrames(SECONDS * RATE), RATE),
  flood: s => fanOut(s, 'flood', READERS, updateFrames(FLOOD), Infinity),
  memory,
  // Memory per room alone: one cycle of load and unload.
  rooms: s => memory(s, 1)
}

async function run (kind, load) {
  progress(`${kind}: ${load}`)
  return await withServer(kind, LOADS[load])
}

/** The median of `values` (sorts them). */
const median = values => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]

/**
 * The rate loads, in ROUNDS rounds that each run every server once in turn (wsreg, the
 * reference, the floor), so that a noisy minute on this shared machine falls on all of
 * them alike. Each figure is the median of its rounds; `rounds` keeps every round's CPU
 * per update for the table.
 */
async function measureRates () {
  const kinds = ['wsreg', 'reference', 'floor']
  const runs = Object.fromEntries(kinds.map(kind => [kind, { pair: [], fan: [] }]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of kinds) {
      for (const load of ['pair', 'fan']) runs[kind][load].push(await run(kind, load))
    }
  }
  const summary = results => ({
    ...Object.fromEntries(Object.keys(results[0]).map(field => [field, median(results.map(r => r[field]))])),
    rounds: results.map(r => r.cpuPerUpdateUs)
  })
  return Object.fromEntries(kinds.map(kind => [kind, {
    pair: summary(runs[kind].pair),
    fan: summary(runs[kind].fan)
  }]))
}

/**
 * The flood, and the memory load with its CYCLES cycles, once; memory per room in ROUNDS
 * rounds on fresh servers (the first is the memory load's), since the reference's
 * figure moves with its garbage collector (77–144 KiB in single runs).
 */
async function measureOnce (kind) {
  const flood = await run(kind, 'flood')
  const mem = await run(kind, 'memory')
  const perRoom = [mem.loadedPerRoom]
  const anonPerRoom = [mem.anonPerRoom]
  for (let round = 1; round < ROUNDS; round++) {
    const again = await run(kind, 'rooms')
    perRoom.push(again.loadedPerRoom)
    anonPerRoom.push(again.anonPerRoom)
  }
  return {
    flood,
    mem: { ...mem, loadedPerRoom: median(perRoom.slice()), anonPerRoom: median(anonPerRoom), perRoomRounds: perRoom }
  }
}

async function measureDurable () {
  progress('wsreg --data-dir: flood')
  const dir = fs.mkdtempSync(path.join(root, 'target', 'bench-yjs-data-'))
  const server = await startServer('wsreg', dir)
  try {
    return await persistence(server)
  } finally {
    await server.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

// One load against one server, printed as JSON (no table), for profiling by hand:
//   node bench/yjs/bench.js --only pair|fan|flood|memory [--server wsreg|reference|floor]
// WSREG_BIN=path runs that binary (a build with symbols, say) instead of target/release/wsreg.
const only = process.argv.indexOf('--only')
if (only !== -1) {
  const load = process.argv[only + 1]
  const at = process.argv.indexOf('--server')
  if (!LOADS[load]) throw new Error(`--only takes one of ${Object.keys(LOADS).join(', ')}, not ${load}`)
  console.log(JSON.stringify(await run(at === -1 ? 'wsreg' : process.argv[at + 1], load), null, 2))
  process.exit(0)
}

const rates = await measureRates()
const ours = { ...rates.wsreg, ...await measureOnce('wsreg') }
const ref = { ...rates.reference, ...await measureOnce('reference') }
const floor = rates.floor
const durable = await measureDurable()

const f1 = x => x.toFixed(1)
const f2 = x => x.toFixed(2)
const int = x => Math.round(x).toLocaleString('en-US')
const less = (a, b) => `${f2(b / a)}× less`
const target = (ok, what) => `${what}: ${ok ? 'met' : '**not met**'}`
const grown = m => m.afterMax / m.empty - 1
const grownWarm = m => m.afterMax / m.warm - 1
// The worst RSS after unloading without the code and libraries paged in meanwhile.
const grownAnon = m => (m.afterMax - m.afterMaxFile) / m.empty - 1
// A rate load's median CPU per update, and each round's.
const cpu = m => `${f1(m.cpuPerUpdateUs)} µs` + (ROUNDS > 1 ? ` (${m.rounds.map(f1).join(', ')})` : '')
// The median memory per room, and each round's.
const perRoom = m => `${f1(m.loadedPerRoom)} KiB` + (ROUNDS > 1 ? ` (${m.perRoomRounds.map(f1).join(', ')})` : '')
const rows = [
  ['A → server → B at 1,000 updates/s: server CPU per update', cpu(ours.pair), cpu(ref.pair), less(ours.pair.cpuPerUpdateUs, ref.pair.cpuPerUpdateUs), target(ours.pair.cpuPerUpdateUs * 3 <= ref.pair.cpuPerUpdateUs, '≤ 1/3')],
  ['same, latency p50 / p99', `${f2(ours.pair.p50)} / ${f2(ours.pair.p99)} ms`, `${f2(ref.pair.p50)} / ${f2(ref.pair.p99)} ms`, `p99 ${f2(ours.pair.p99 / ref.pair.p99)}×`, ''],
  ['same, the floor (a bare forwarder, below)', cpu(floor.pair), '', `${f2(ours.pair.cpuPerUpdateUs / floor.pair.cpuPerUpdateUs)}× the floor`, ''],
  [`1 writer → ${READERS} readers at 1,000/s: server CPU per update`, cpu(ours.fan), cpu(ref.fan), less(ours.fan.cpuPerUpdateUs, ref.fan.cpuPerUpdateUs), target(ours.fan.cpuPerUpdateUs * 3 <= ref.fan.cpuPerUpdateUs, '≤ 1/3')],
  ['same, share of that CPU spent in the kernel', `${f1(ours.fan.kernelShare * 100)} %`, `${f1(ref.fan.kernelShare * 100)} %`, '', ''],
  ['same, the floor (a bare forwarder, below)', `${cpu(floor.fan)}, kernel ${f1(floor.fan.kernelShare * 100)} %`, '', `${f2(ours.fan.cpuPerUpdateUs / floor.fan.cpuPerUpdateUs)}× the floor`, `1/3 of the reference is ${floor.fan.cpuPerUpdateUs * 3 <= ref.fan.cpuPerUpdateUs ? 'above' : '**below**'} the floor`],
  [`same, all ${READERS} have it, p50 / p99`, `${f2(ours.fan.p50)} / ${f2(ours.fan.p99)} ms`, `${f2(ref.fan.p50)} / ${f2(ref.fan.p99)} ms`, `p99 ${f2(ours.fan.p99 / ref.fan.p99)}×`, target(ours.fan.p99 * 2 <= ref.fan.p99, 'p99 ≤ 1/2')],
  [`flood fan-out (${int(FLOOD)} updates → ${READERS} readers), deliveries/s`, int(ours.flood.deliveriesPerSec), int(ref.flood.deliveriesPerSec), `${f2(ours.flood.deliveriesPerSec / ref.flood.deliveriesPerSec)}×`, ''],
  [`${ROOMS} rooms × 2 clients × 10 KiB: memory per room (RSS)`, perRoom(ours.mem), perRoom(ref.mem), less(ours.mem.loadedPerRoom, ref.mem.loadedPerRoom), target(ours.mem.loadedPerRoom * 5 <= ref.mem.loadedPerRoom, '≤ 1/5')],
  ['same, of it anonymous (heap, stacks)', `${f1(ours.mem.anonPerRoom)} KiB`, `${f1(ref.mem.anonPerRoom)} KiB`, '', ''],
  ['RSS: empty server', `${f1(ours.mem.empty / 1024)} MiB`, `${f1(ref.mem.empty / 1024)} MiB`, '', ''],
  [`RSS 1 s after every client left: cycle 1 / cycle ${CYCLES} / worst`, `${f1(ours.mem.afterFirst / 1024)} / ${f1(ours.mem.afterLast / 1024)} / ${f1(ours.mem.afterMax / 1024)} MiB (+${f1(grown(ours.mem) * 100)} %)`, `${f1(ref.mem.afterFirst / 1024)} / ${f1(ref.mem.afterLast / 1024)} / ${f1(ref.mem.afterMax / 1024)} MiB (+${f1(grown(ref.mem) * 100)} %)`, '', grown(ours.mem) <= 0.1 ? '≤ empty + 10 %: met' : `≤ empty + 10 %: over by the code paged in (+${int(ours.mem.afterMaxFile)} KiB file-backed); without it: two rows below`],
  ['same, worst, against the server after its first room came and went (its code paged in, nothing loaded)', `+${f1(grownWarm(ours.mem) * 100)} %`, `+${f1(grownWarm(ref.mem) * 100)} %`, '', target(grownWarm(ours.mem) <= 0.1, '≤ that + 10 %')],
  ['same, worst, without the code paged in meanwhile (file-backed), against the server as it started', `+${f1(grownAnon(ours.mem) * 100)} %`, `+${f1(grownAnon(ref.mem) * 100)} %`, '', target(grownAnon(ours.mem) <= 0.1, '≤ empty + 10 %')],
  ['same, worst: grown anonymous / file-backed (code paged in)', `+${int(ours.mem.afterMaxAnon)} / +${int(ours.mem.afterMaxFile)} KiB`, `+${int(ref.mem.afterMaxAnon)} / +${int(ref.mem.afterMaxFile)} KiB`, '', ''],
  [`--data-dir: ${WRITERS} writers flood ${int(WRITERS * PER_WRITER)} updates, acknowledged (forwarded) per second`, int(durable.ackedPerSec), 'n/a (its y-leveldb persistence is not fsynced per update)', '', target(durable.ackedPerSec >= 10_000, '≥ 10,000/s')]
]

const table = [
  '## `wsreg yjs` against the reference y-websocket server',
  '',
  `Rerun: \`bench/yjs/run.sh${quick ? ' --quick' : ''}\` (installs @y/websocket-server 0.1.1, yjs 13.6 and y-websocket 3.1 into bench/yjs/node_modules, builds target/release/wsreg and the floor, runs both servers and the floor under the same loads in one run, loopback only). ` +
    `Measured ${new Date().toISOString().slice(0, 10)} on a 2-core machine shared with other builds: single figures are noisy. The rate loads ran in ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}, each running wsreg, the reference and the floor in turn on fresh servers, and memory per room in as many on fresh servers (the first within the memory load); each figure is the median of its rounds, and the CPU and memory-per-room rows give every round in brackets.${quick ? ' **Quick run** (shorter loads, fewer rooms and cycles).' : ''}`,
  '',
  '| measure | wsreg yjs | reference | wsreg is | issue 15 target |',
  '|---|---|---|---|---|',
  ...rows.map(r => `| ${r.join(' | ')} |`),
  '',
  'Rate loads use raw WebSocket clients sending updates made beforehand by a yjs Doc (the k-th update a reader receives is the k-th sent: rooms forward in order); the memory load uses y-websocket providers. ' +
    'Each load runs on a fresh server. Memory per room is measured from the server after one room has come and gone (what a room adds; the first one also pages in code), RSS after unloading against the server as it started. "Acknowledged" is docs/yjs.md\'s: an update another client received is on disk (group commit: one fdatasync, about 4 ms here, covers every update that arrived meanwhile). ' +
    'In the fan-out most of the server\'s CPU is the kernel\'s: one loopback write per reader per update, which the reference pays as well. ' +
    'The floor is `wsreg-bench ws-fanout`, a WebSocket server that forwards each binary message to every other connection and does nothing else (no Yjs, one room, no queues, no timers): one read, one unmasking and one write per reader, made on the sender\'s task. No server that writes each update to each reader\'s socket can spend less per update than it does; wsreg goes below it under load by holding broadcasts for up to 4 ms and writing them to each reader together (docs/yjs.md, "Batching under load"), which is the latency in the fan-out p50 row.'
].join('\n')
console.log(table)
// Destroyed y-websocket providers can leave timers behind; the measurements are done.
process.exit(0)
