/**
 * The part of Macula's client and node API this bench uses, as the bench expects it
 * (`lib/node/node.ts` `Node`, `mod.ts` `connect`). The modules are loaded with `import()` from a
 * computed URL so that the bench type-checks and the `nats` side runs before they exist; the
 * `macula` system is skipped, with a message, while they are missing.
 */
import type { RouterCounters } from "./protocol.ts";

export interface MaculaNodeOptions {
  dataDir: string;
  listen: { host: string; port: number };
  join?: { host: string; port: number }[];
  /**
   * Share a development CA with another node (its `caDir`). The brief named it `caDir`;
   * lib/node/node.ts as written calls it `devCaDir`: macula-node.ts passes both.
   */
  caDir?: string;
  devCaDir?: string;
  /** Where the node reports what it does: a line at a time, or events (lib/util/log.ts `Log`). */
  log?: ((line: string) => void) | MaculaLog;
  /** `overlay.shortcuts`: 0 turns shortcuts off (docs/routing.md, "Shortcuts"). */
  overlay?: { shortcuts?: number };
}

/** lib/util/log.ts `Log`: an event name (`route.up`, …), a text, fields. */
export interface MaculaLog {
  debug(event: string, text: string, fields?: Record<string, unknown>): void;
  info(event: string, text: string, fields?: Record<string, unknown>): void;
  warn(event: string, text: string, fields?: Record<string, unknown>): void;
  error(event: string, text: string, fields?: Record<string, unknown>): void;
}

/** The router counters the routed workloads read. */
export type MaculaRouterStats = RouterCounters;

export interface MaculaNode {
  /** `quic://127.0.0.1:<port>` */
  readonly url: string;
  readonly nodeId: string;
  /** `ca.pem`, `cert.pem`, `key.pem` for clients (null when the node was given its own TLS). */
  readonly credsDir: string | null;
  readonly caDir: string | null;
  /** Peer node ids with a live route. */
  readonly routes: string[];
  /** Lets the route to `peer` go as the overlay does (drained, then closed); false: no route. */
  retireRoute(peer: string): boolean;
  waitForMembers(count: number, timeoutMs?: number): Promise<void>;
  readonly router: {
    readonly stats: MaculaRouterStats;
  };
  stop(): Promise<void>;
}

export interface MaculaNodeModule {
  Node: { start(opts: MaculaNodeOptions): Promise<MaculaNode> };
}

export interface MaculaMessage {
  topic: string;
  payload: Uint8Array;
}

export interface MaculaSubscription extends AsyncIterable<MaculaMessage> {
  unsubscribe(): void;
  stats(): { delivered: number; dropped: number };
}

export interface MaculaClient {
  publish(topic: string, payload: Uint8Array | string): void;
  flush(): Promise<void>;
  writable(): Promise<void>;
  subscribe(
    pattern: string,
    opts?: {
      queue?: string;
      maxMessages?: number;
      overflow?: "drop-oldest" | "drop-newest" | "block";
    },
  ): MaculaSubscription;
  call(proc: string, payload: Uint8Array, opts?: { timeoutMs?: number }): Promise<Uint8Array>;
  serve(
    proc: string,
    handler: (payload: Uint8Array) => Promise<Uint8Array> | Uint8Array,
  ): { ready: Promise<void>; stop(): void };
  close(): Promise<void>;
}

export interface MaculaClientModule {
  connect(opts: { url: string; creds: string }): Promise<MaculaClient>;
}

/** Where the two modules live, relative to this file. */
export const NODE_MODULE = new URL("../../lib/node/node.ts", import.meta.url);
export const CLIENT_MODULE = new URL("../../mod.ts", import.meta.url);

export async function loadNodeModule(): Promise<MaculaNodeModule> {
  const m = (await import(NODE_MODULE.href)) as Partial<MaculaNodeModule>;
  if (typeof m.Node?.start !== "function") {
    throw new Error("lib/node/node.ts does not export Node.start");
  }
  return m as MaculaNodeModule;
}

export async function loadClientModule(): Promise<MaculaClientModule> {
  const m = (await import(CLIENT_MODULE.href)) as Partial<MaculaClientModule>;
  if (typeof m.connect !== "function") throw new Error("mod.ts does not export connect");
  return m as MaculaClientModule;
}
