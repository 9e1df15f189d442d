// Types of wsreg-node (hand-written; the code is JavaScript with JSDoc).

import type { AddressInfo } from 'node:net';

/** An entry as it is written to `<registry>/<id>.json` (every field, in this order, after `"version": 2`). */
export interface ServerEntry {
  /** `<kind>-<22 base-32 characters>` (they sort in creation order); the file name without `.json`. */
  id: string;
  kind: string;
  name: string | null;
  project: string | null;
  session: string | null;
  host: string | null;
  port: number;
  url: string;
  pid: number;
  /** This process's start time (Linux: clock ticks since boot, /proc/self/stat field 22). */
  pidStartTime: number | null;
  /** `YYYY-MM-DDTHH:MM:SS.mmmZ` */
  startedAt: string;
  ttlSecs: null;
  heartbeatAt: null;
  meta: Record<string, unknown>;
}

export interface RegisterOptions {
  /** What the server is: `[a-z][a-z0-9-]*`, at most 32 bytes. Default `ws`. */
  kind?: string;
  /** The port the server listens on, 1–65535. */
  port: number;
  /** A label shown on the page (at most 256 bytes). */
  name?: string | null;
  /** A namespace readers can filter on (at most 256 bytes). */
  project?: string | null;
  /** A session label (at most 256 bytes). */
  session?: string | null;
  /** Free-form JSON object, at most 4096 bytes serialised. */
  meta?: Record<string, unknown>;
  /** Where to connect: `ws://` or `wss://`, at most 2048 bytes. Default `ws://127.0.0.1:<port>/`. */
  url?: string;
  /** This machine's hostname as readers compare it (default `os.hostname()`); another name makes readers skip the PID check. */
  host?: string;
  /** The registry directory (a path ending in `.json` names the legacy file beside it). Default `$WSREG_REGISTRY`, else `~/.peer-plan/servers`. A directory given here is created only if its parent exists. */
  registry?: string;
}

/** `registerServer` takes the port from the server. */
export type RegisterServerOptions = Omit<RegisterOptions, 'port'>;

/** A live registration: the entry stays in the registry (and comes back if its file is deleted or corrupted) until `close()` or the end of the process. */
export declare class Registration {
  private constructor();
  /** The entry as written (frozen). */
  readonly entry: Readonly<ServerEntry>;
  readonly id: string;
  /** The entry file. */
  readonly file: string;
  /** Stops keeping the entry and removes its file; later calls do nothing. */
  close(): Promise<void>;
}

/** A rejected option; `field` names it. */
export declare class EntryError extends Error {
  readonly field: string;
}

/**
 * Registers a server of this process. Rejects with an EntryError naming the field for a bad
 * option (nothing is written), or with an Error when the registry directory cannot be used.
 */
export function register(options: RegisterOptions): Promise<Registration>;

/** Anything with `address()` and the `listening`/`error`/`close` events: `http.Server`, `net.Server`, a `ws` WebSocketServer. */
export interface ListeningServer {
  address(): AddressInfo | string | null;
  once(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

/** Waits until `server` listens, registers it with its port, and unregisters it when it closes. */
export function registerServer(server: ListeningServer, options?: RegisterServerOptions): Promise<Registration>;
