// Types of vite-plugin-wsreg (hand-written; the code is JavaScript with JSDoc).

import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CorsOptions, Plugin } from 'vite';

/** One live server, in the canonical form of the API (every field, in this order). */
export interface ServerEntry {
  id: string;
  kind: string;
  name: string | null;
  project: string | null;
  session: string | null;
  host: string | null;
  port: number;
  url: string;
  pid: number;
  pidStartTime: number | null;
  /** `YYYY-MM-DDTHH:MM:SS.mmmZ` */
  startedAt: string;
  ttlSecs: number | null;
  heartbeatAt: string | null;
  meta: Record<string, unknown>;
}

/** The answer of `GET /api/registry` and the data of the SSE `servers` event. */
export interface RegistryDocument {
  version: 1;
  servers: ServerEntry[];
}

/** Keep servers whose `project` / `kind` equal these; null or '' matches all. */
export interface ServerFilter {
  project?: string | null;
  kind?: string | null;
}

export type ParseResult =
  | { status: 'ok'; format: 'v1' | 'prototype' | 'empty' | 'missing'; entries: ServerEntry[]; warnings: string[] }
  | { status: 'corrupt'; reason: string }
  | { status: 'unsupported-version'; version: unknown; error: string };

/** What the process table knows of a PID that exists. */
export interface ProcessInfo {
  /** Start time (Linux: clock ticks since boot, /proc/<pid>/stat field 22); null when unknown. */
  startTime: number | null;
  zombie: boolean;
}

export interface ProcessTable {
  /** undefined: no such process. */
  lookup(pid: number): ProcessInfo | undefined;
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
  /** Live entries, in file order. */
  servers: ServerEntry[];
  dead: { entry: ServerEntry; reason: string }[];
  /** Set when the registry cannot be read at all (then `servers` is empty). */
  error: string | null;
  errorCode: 'unsupported-version' | 'refused' | null;
  warnings: string[];
}

export type FileRead =
  | { kind: 'missing'; warnings: string[] }
  | { kind: 'bytes'; bytes: Uint8Array; warnings: string[] }
  | { kind: 'oversized'; size: number; warnings: string[] }
  | { kind: 'refused'; error: string; warnings: string[] };

export interface GuardOptions {
  /** Vite's `server.allowedHosts` / `preview.allowedHosts`. */
  allowedHosts?: true | readonly string[];
  /** Vite's `server.cors` / `preview.cors`. */
  cors?: boolean | CorsOptions;
}

export type GuardResult =
  | { ok: true; allowOrigin: string | null }
  | { ok: false; status: number; error: string };

export interface RegistryWatcherOptions {
  /** Path of servers.json. */
  file: string;
  /** Debounce of directory events, ms (default 5). */
  debounceMs?: number;
  /** Liveness re-check period, ms (default 500). */
  recheckMs?: number;
  context?: ReaderContext;
}

export declare class RegistryWatcher extends EventEmitter {
  constructor(options: RegistryWatcherOptions);
  readonly file: string;
  /** Starts watching; resolves after the first read. */
  start(): Promise<RegistryState>;
  current(): RegistryState;
  /** Re-reads the file if it changed and re-evaluates liveness now. */
  refresh(options?: { force?: boolean }): Promise<RegistryState>;
  close(): void;
  on(event: 'change', listener: (state: RegistryState) => void): this;
  on(event: 'warning', listener: (warning: string) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export interface RegistryRoutesOptions {
  /** Default `/api/registry`; events at `${route}/events`. */
  route?: string;
  watcher: RegistryWatcher;
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
  /** Registry file. Default: `WSREG_REGISTRY`, else `~/.peer-plan/servers.json`. Relative to the current directory. */
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
  /** Debounce of registry directory events, ms. Default 5. */
  debounceMs?: number;
  /** Liveness re-check period, ms. Default 500. */
  recheckMs?: number;
  /** For tests: hostname, clock and process table to use instead of the machine's. */
  context?: ReaderContext;
  /** `'token'`: every request needs the per-user token kept in `auth-token` beside the registry, as `wsreg serve --auth token` (docs/security.md). */
  auth?: 'none' | 'token';
}

/** The Vite plugin: `plugins: [wsreg()]`. */
export default function wsreg(options?: WsregOptions): Plugin;
export { wsreg };
export declare function resolveRegistryPath(options?: WsregOptions): string;
export declare function loadOrCreateToken(registryFile: string): string;
export declare function tokenMatches(token: string, presented: string): boolean;
export declare function createAuthMiddleware(
  token: string,
): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, next: () => void) => void;

// The reader, usable on its own.
export declare const MAX_FILE_BYTES: number;
export declare const MAX_ENTRIES: number;
export declare function defaultRegistryPath(env?: NodeJS.ProcessEnv): string;
export declare function readRegistryFile(file: string, options?: { maxBytes?: number }): Promise<FileRead>;
export declare function parseRegistry(bytes: Uint8Array | null): ParseResult;
export declare function validateEntry(raw: unknown): { entry: ServerEntry } | { error: string };
export declare function parseTimestamp(text: string): number | null;
export declare function formatTimestamp(ms: number): string;
export declare function liveness(
  entry: ServerEntry,
  ctx: LivenessContext,
): { live: true } | { live: false; reason: string };
export declare function parseProcStat(text: string): ProcessInfo | undefined;
export declare function processTableFromMap(map: Record<string, number | null>): ProcessTable;
export declare function systemProcessTable(): ProcessTable;
export declare function resolveContext(ctx?: ReaderContext): LivenessContext;
export declare function evaluateRegistry(parsed: ParseResult, ctx?: ReaderContext): RegistryState;
export declare function readLiveServers(bytes: Uint8Array | null, ctx?: ReaderContext): RegistryState;
export declare function parseFileRead(read: FileRead): ParseResult;
export declare function readRegistry(file: string, ctx?: ReaderContext): Promise<RegistryState>;
export declare function filterServers(servers: readonly ServerEntry[], filter?: ServerFilter): ServerEntry[];
export declare function toDocument(servers: readonly ServerEntry[], filter?: ServerFilter): RegistryDocument;

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
export declare function attachHmr(hot: HotChannelLike, watcher: RegistryWatcher, filter?: ServerFilter): () => void;
