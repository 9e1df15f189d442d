// Types of vite-plugin-wsreg (hand-written; the code is JavaScript with JSDoc).

import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CorsOptions, Plugin } from 'vite';

// One definition of the API's types, shared with the browser library.
import type { Health, HealthState, RegistryDocument, ServerEntry } from 'wsreg-client';
export type { Health, HealthState, RegistryDocument, ServerEntry };

/** Keep servers whose `project` / `kind` equal these; null or '' matches all. */
export interface ServerFilter {
  project?: string | null;
  kind?: string | null;
}

/** Where the registry lives (docs/registry-format.md, "Where it lives"). */
export interface RegistryLocation {
  /** The registry directory: one `<id>.json` file per server. */
  dir: string;
  /** The read-only legacy file (version 1): always `dir` + `.json`. */
  legacyFile: string;
  /** Whether the path came from the caller or `WSREG_REGISTRY` (not the default). */
  named: boolean;
}

/** The legacy file's parse; `corrupt` (unreadable, or a version other than 1) gives no entries. */
export type ParseResult =
  | { status: 'ok'; format: 'v1' | 'prototype' | 'empty' | 'missing'; entries: ServerEntry[]; warnings: string[] }
  | { status: 'corrupt'; reason: string };

/** What the process table knows of a PID that exists. */
export interface ProcessInfo {
  /** Start time (Linux: clock ticks since boot, /proc/<pid>/stat field 22); null when unknown. */
  startTime: number | null;
  zombie: boolean;
}

/**
 * Whether a process holds a LISTEN socket on a port: `unreadable`, its descriptors cannot
 * be read (another user's process); `unchecked`, the system cannot tell (not Linux).
 * Readers show the entry unless the answer is `no`.
 */
export type Listening = 'yes' | 'no' | 'unreadable' | 'unchecked';

export interface ProcessTable {
  /** undefined: no such process. */
  lookup(pid: number): ProcessInfo | undefined;
  /** Whether process `pid` holds a LISTEN socket on TCP `port`; absent: `unchecked`. */
  listens?(pid: number, port: number): Listening;
}

export interface LivenessContext {
  hostname: string;
  /** ms since the epoch */
  now: number;
  processes: ProcessTable;
}

/** What a reader may be told instead of asking the machine (tests, vectors). */
export interface ReaderContext {
  hostname?: string;
  now?: number | (() => number);
  processes?: ProcessTable;
}

export interface RegistryState {
  /** Live entries, ordered by `startedAt`, then `id`. */
  servers: ServerEntry[];
  dead: { entry: ServerEntry; reason: string }[];
  /** Set when the registry directory is refused (a symlink, another user's, not a directory); then `servers` is empty. */
  error: string | null;
  /** One per skipped file or legacy element, each naming it; and a directory open to others. */
  warnings: string[];
}

/** A RegistryState with each entry's last probe result (entries without one are `unknown`, or `none`). */
export interface ProbedState extends RegistryState {
  /** id → the probe result; only entries probed since someone subscribed. */
  health: ReadonlyMap<string, Health>;
}

export interface HealthMonitorOptions {
  /** Probe period while someone is subscribed, ms (default 5000); 0 turns probes off. */
  intervalMs?: number;
  /** A probe that has not passed within this has failed, ms (default 1000). */
  timeoutMs?: number;
  /** Probes at a time, at most (default 64). */
  concurrency?: number;
  /** Only entries that match are probed (the plugin's own project/kind). */
  filter?: ServerFilter;
}

/**
 * The watcher's live list plus health probes (docs/api.md, "Health"): probes run only
 * while someone is subscribed; `change` is emitted when the list changes and when a
 * probe finds a new state, never for a probe that changes nothing.
 */
export declare class HealthMonitor extends EventEmitter {
  constructor(watcher: RegistryWatcher, options?: HealthMonitorOptions);
  readonly intervalMs: number;
  /** The number of subscribers now. */
  readonly subscribers: number;
  /** Whether probes run now. */
  readonly active: boolean;
  current(): ProbedState;
  /** The watcher's refresh, with health. */
  refresh(): ProbedState;
  /** Counts a subscriber until the returned function is called. */
  subscribe(): () => void;
  close(): void;
  on(event: 'change', listener: (state: ProbedState) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}
export declare const DEFAULT_HEALTH_INTERVAL_MS: 5000;
export declare const PROBE_TIMEOUT_MS: 1000;
/** One probe: a WebSocket handshake, ping and pong to `url`, or a GET of `healthUrl` (2xx); TCP only for wss:// and https://. The round trip in ms, or null. */
export declare function probe(entry: Pick<ServerEntry, 'url' | 'healthUrl'>, timeoutMs: number): Promise<number | null>;

/** The outcome of opening one registry file (O_NOFOLLOW, checked before it is read). */
export type FileRead =
  | { kind: 'missing' }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'oversized'; size: number }
  | { kind: 'refused'; error: string };

export interface GuardOptions {
  /** Vite's `server.allowedHosts` / `preview.allowedHosts`. */
  allowedHosts?: true | readonly string[];
  /** Vite's `server.cors` / `preview.cors`. */
  cors?: boolean | CorsOptions;
}

export type GuardResult =
  | { ok: true; allowOrigin: string | null }
  /** `check`: which check refused, as the shared cases in testdata/guard/ name it. */
  | { ok: false; status: number; error: string; check: 'host' | 'origin' | 'cross-site' };

export interface RegistryWatcherOptions {
  /** The registry directory (or a legacy `….json` path, see `registryLocation`). Default: `WSREG_REGISTRY`, else `~/.peer-plan/servers/`. */
  registry?: string | null;
  /** Batching of file events, ms (default 5). */
  debounceMs?: number;
  /** Liveness re-check period while some live entry may end unseen (a process on this host, a lease), ms (default 500). */
  recheckMs?: number;
  context?: ReaderContext;
  /**
   * Run the liveness re-check timer only while someone holds the watcher (`hold()`),
   * as the plugin does while a stream or page is subscribed; `refresh()` re-checks
   * regardless. Default false: the timer runs whenever it is needed.
   */
  pushWhileHeld?: boolean;
}

export declare class RegistryWatcher extends EventEmitter {
  constructor(options?: RegistryWatcherOptions);
  readonly location: RegistryLocation;
  /** The liveness re-check timer: null while no live entry may end unseen. */
  readonly livenessTimer: NodeJS.Timeout | null;
  /** Starts watching and reads the registry. */
  start(): RegistryState;
  /** Counts one who wants changes pushed (see `pushWhileHeld`); returns the release. */
  hold(): () => void;
  current(): RegistryState;
  /**
   * Applies pending file events and re-checks liveness now; asks every local entry's
   * port again (see `recheckListeners`).
   */
  refresh(): RegistryState;
  /**
   * Checks whether every local entry's process still listens on its port: now if the
   * last such check is a second old, else a second after it (a change is emitted).
   */
  recheckListeners(): void;
  close(): void;
  on(event: 'change', listener: (state: RegistryState) => void): this;
  on(event: 'warning', listener: (warning: string) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface RegistryRoutesOptions {
  /** Default `/api/registry`; events at `${route}/events`. */
  route?: string;
  /** Where the answers come from; each open event stream is one of its subscribers. */
  monitor: HealthMonitor;
  guard: (req: IncomingMessage) => Promise<GuardResult>;
  filter?: ServerFilter;
  /** Keep-alive comment period of the event stream, ms (default 15000). */
  keepAliveMs?: number;
}

export interface RegistryRoutes {
  middleware(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): Promise<void>;
  /** Number of open event streams. */
  readonly streams: number;
  /** Ends the event streams and stops listening to the watcher. */
  close(): void;
}

export interface WsregOptions {
  /**
   * The registry directory. Default: `WSREG_REGISTRY`, else `~/.peer-plan/servers/`.
   * Relative to the current directory. The legacy file `<dir>.json` is read too; a
   * path ending in `.json` names that legacy file and means the directory beside it
   * without `.json` (so a version 1 setting such as `…/servers.json` keeps working).
   */
  registry?: string;
  /** Route of the API. Default `/api/registry`. */
  route?: string;
  /** Only serve servers of this project. */
  project?: string;
  /** Only serve servers of this kind. */
  kind?: string;
  /** Push the list over HMR as `wsreg:servers` (dev only). Default true. */
  hmr?: boolean;
  /** Keep-alive comment period of the event stream, ms. Default 15000. */
  keepAliveMs?: number;
  /** Batching of registry file events, ms. Default 5. */
  debounceMs?: number;
  /** Liveness re-check period while a live server on this host (or a lease) is listed, ms. Default 500. */
  recheckMs?: number;
  /**
   * Health probes of the listed servers, every this many ms while an event stream or an
   * HMR page is connected (and at once for a new server); 0 turns them off. Default 5000.
   */
  healthInterval?: number;
  /** For tests: hostname, clock and process table to use instead of the machine's. */
  context?: ReaderContext;
  /** `'token'`: every request needs the per-user token kept in `auth-token` beside the registry, as `wsreg serve --auth token` (docs/security.md). */
  auth?: 'none' | 'token';
}

/** The Vite plugin: `plugins: [wsreg()]`. */
export default function wsreg(options?: WsregOptions): Plugin;
export { wsreg };
export declare function loadOrCreateToken(registryDir: string): string;
export declare function tokenMatches(token: string, presented: string): boolean;
export declare function createAuthMiddleware(
  token: string,
): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next: () => void) => void;

// The reader, usable on its own.
export declare const MAX_ENTRY_FILE_BYTES: number;
export declare const MAX_LEGACY_FILE_BYTES: number;
export declare const MAX_ENTRIES: number;
export declare function registryLocation(given?: string | null, env?: NodeJS.ProcessEnv): RegistryLocation;
export declare function isEntryFileName(name: string): boolean;
export declare function parseEntryFile(bytes: Uint8Array, name: string): { entry: ServerEntry } | { error: string };
export declare function parseRegistry(bytes: Uint8Array | null): ParseResult;
export declare function validateEntry(raw: unknown): { entry: ServerEntry } | { error: string };
export declare function parseTimestamp(text: string): number | null;
export declare function formatTimestamp(ms: number): string;
export declare function liveness(
  entry: ServerEntry,
  ctx: LivenessContext,
): { live: true } | { live: false; reason: string };
export declare function mayEndUnseen(entry: ServerEntry, ctx: LivenessContext): boolean;
export declare function parseProcStat(text: string): ProcessInfo | undefined;
export declare function listeningVerdict(
  entry: ServerEntry,
  ctx: LivenessContext,
): { live: true } | { live: false; reason: string };
export declare function processVerdict(
  entry: ServerEntry,
  ctx: LivenessContext,
): { live: true } | { live: false; reason: string };
export declare function processTableFromMap(
  map: Record<string, number | null>,
  sockets?: Record<string, number[] | null>,
): ProcessTable;
/** One look at this machine: the LISTEN tables are read at its first `listens` and kept; make a new one per check. */
export declare function systemProcessTable(): ProcessTable;
export declare function resolveContext(ctx?: ReaderContext): LivenessContext;
/** Reads the registry once (a directory, or a legacy `….json` path; default as the plugin's). */
export declare function readRegistry(registry?: string | null, ctx?: ReaderContext): RegistryState;
export declare function filterServers(servers: readonly ServerEntry[], filter?: ServerFilter): ServerEntry[];
export declare function toDocument(servers: readonly ServerEntry[], filters?: readonly ServerFilter[]): RegistryDocument;

// Pieces of the plugin.
export declare function createGuard(options?: GuardOptions): (req: IncomingMessage) => Promise<GuardResult>;
export declare function hostnameOf(hostHeader: string): string | null;
export declare function isLoopbackHostname(host: string): boolean;
export declare function hostAllowed(host: string, allowedHosts: true | readonly string[]): boolean;
export declare function corsAllows(cors: GuardOptions['cors'], origin: string): Promise<boolean>;
export declare function createRegistryRoutes(options: RegistryRoutesOptions): RegistryRoutes;

export interface HotChannelLike {
  send(event: string, payload?: any): void;
  on(event: string, listener: (data: any, client: { send(event: string, payload?: any): void }) => void): void;
  off?(event: string, listener: Function): void;
}
export declare const SERVERS_EVENT: 'wsreg:servers';
export declare const ERROR_EVENT: 'wsreg:registry-error';
export declare const REQUEST_EVENT: 'wsreg:get-servers';
export declare function clientHotChannel(server: object): HotChannelLike | null;
export declare function attachHmr(hot: HotChannelLike, monitor: HealthMonitor, filter?: ServerFilter): () => void;
/** Counts each page connected to `server.ws` as a subscriber of the monitor until its socket closes. */
export declare function subscribeHmrPages(
  ws: { on(event: 'connection', listener: (socket: any) => void): void; off(event: 'connection', listener: Function): void },
  monitor: HealthMonitor,
): () => void;
