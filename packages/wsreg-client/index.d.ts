// Types of wsreg-client (hand-written; the code is JavaScript with JSDoc).

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
  /** An HTTP(S) URL probed with a GET (2xx is healthy) instead of a WebSocket handshake to `url`; present only when set. */
  healthUrl?: string;
  /**
   * In an entry file, `"none"`: never probe this server (present only when set). In the
   * API's answers and events, always the endpoint's last probe result, as the last key.
   */
  health?: 'none' | Health;
}

/** What a health probe found (docs/api.md, "Health"). */
export type HealthState = 'ok' | 'unresponsive' | 'unknown' | 'none';

/** A server's health in words, for a page (describeHealth). */
export interface HealthSummary {
  state: HealthState;
  /** `ok · 0.4 ms`, `unresponsive`, `unknown` or `not probed`. */
  text: string;
  checkedAt: string | null;
}

/** A server's health in words: an entry without a probe result is `unknown`. */
export declare function describeHealth(server: ServerEntry): HealthSummary;

/** The probe result an endpoint adds to each entry of its answers. */
export interface Health {
  state: HealthState;
  /** When the probe that found this state ran (`YYYY-MM-DDTHH:MM:SS.mmmZ`); null when `unknown` or `none`. */
  checkedAt: string | null;
  /** Round trip of that probe, ms; null unless `ok`. */
  latencyMs: number | null;
}

/** The answer of `GET /api/registry` and the data of the SSE `servers` event: `{"version":1,"servers":[…]}` */
export interface RegistryDocument {
  version: 1;
  servers: ServerEntry[];
}

export interface SubscriptionInfo {
  /** Where this list came from. */
  source: 'sse' | 'poll' | 'hmr';
  /** Why the list may be wrong: the registry's error, or the endpoint unreachable. */
  error: string | null;
  /** True when the endpoint could not be reached and this is the last list known. */
  stale: boolean;
}

export type ServersCallback = (servers: ServerEntry[], info: SubscriptionInfo) => void;

export interface SubscribeOptions {
  /** Origin of the registry endpoint; '' (default) is this page's origin. */
  base?: string;
  /** Default `/api/registry`. */
  route?: string;
  project?: string | null;
  kind?: string | null;
  /** Polling period once the stream failed, ms (default 5000). */
  pollIntervalMs?: number;
  /** Stream errors in a row before polling (default 3). */
  maxStreamErrors?: number;
  /** While polling, try the stream again this often, ms (default 30000). */
  streamRetryMs?: number;
  /** Defaults to globalThis.EventSource. */
  EventSource?: typeof EventSource;
  /** Defaults to globalThis.fetch. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

/** Calls back with the live list now and on every change; returns unsubscribe. */
export declare function subscribe(callback: ServersCallback, options?: SubscribeOptions): () => void;

export type ConnectionStatus = 'connecting' | 'connected' | 'disconnected';

export interface StatusInfo {
  /** Reconnect attempt number (0: the first connection). */
  attempt?: number;
  /** Close code and reason of the socket that dropped. */
  code?: number;
  reason?: string;
  /** The server left the list: its socket was closed and is forgotten. */
  removed?: boolean;
  error?: string;
}

export interface ConnectAllOptions {
  onStatus?: (server: ServerEntry, status: ConnectionStatus, info: StatusInfo) => void;
  onMessage?: (server: ServerEntry, data: unknown, event: MessageEvent) => void;
  /** Only connect to the servers for which this returns true. */
  filter?: (server: ServerEntry) => boolean;
  /** First reconnect delay, ms (default 250); doubles up to maxDelayMs. */
  initialDelayMs?: number;
  /** Largest reconnect delay, ms (default 5000). */
  maxDelayMs?: number;
  protocols?: string | string[];
  binaryType?: BinaryType;
  /** Defaults to globalThis.WebSocket. */
  WebSocket?: typeof WebSocket;
}

export interface Connections {
  /** The new live list: connects to newcomers, closes and forgets leavers. */
  update(servers: readonly ServerEntry[] | RegistryDocument): void;
  /** Sends to every open socket; returns how many. */
  sendAll(data: string | ArrayBuffer | Blob | ArrayBufferView<ArrayBuffer>): number;
  /** Sends to one server's socket if it is open. */
  send(id: string, data: string | ArrayBuffer | Blob | ArrayBufferView<ArrayBuffer>): boolean;
  /** id → status of every server in the list. */
  statuses(): Map<string, ConnectionStatus>;
  /** Closes every socket; no reconnect after this. */
  close(): void;
}

/** One WebSocket per live server, reconnected with exponential backoff. */
export declare function connectAll(options?: ConnectAllOptions): Connections;

/** The part of Vite's `import.meta.hot` that subscribeHot uses. */
export interface HotContext {
  on(event: string, cb: (payload: any) => void): void;
  off?(event: string, cb: (payload: any) => void): void;
  send(event: string, data?: any): void;
}

/** The live list over Vite's HMR channel (vite-plugin-wsreg in `vite dev`). */
export declare function subscribeHot(
  hot: HotContext,
  callback: ServersCallback,
  filter?: { project?: string | null; kind?: string | null },
): () => void;

export declare function backoffDelay(attempt: number, initialMs?: number, maxMs?: number): number;
export declare function filterServers(
  servers: readonly ServerEntry[],
  filter?: { project?: string | null; kind?: string | null },
): ServerEntry[];
export declare function registryUrl(
  base: string,
  route: string,
  suffix: string,
  filter?: { project?: string | null; kind?: string | null },
): string;
