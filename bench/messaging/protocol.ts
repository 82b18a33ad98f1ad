/**
 * What the messaging bench's processes share: topic names, the payload pattern, the client's
 * result lines and argument parsing. Process protocol: bench/messaging/README.md.
 */
export { flagMap, intFlag, strFlag } from "../lib/flags.ts";
/** The payloads, their check and the clock: the method `macula bench` shares (bench/lib/load.ts). */
export { checkPayload, makePayload, nowMs } from "../lib/load.ts";

/** The systems this bench knows; each has `<system>-node.ts` and `<system>-adapter.ts`. */
export type SystemName = "nats" | "macula";
export const SYSTEM_NAMES: readonly SystemName[] = ["nats", "macula"];

/** Pub/sub data topic (NATS subject syntax, which Macula topics share). */
export const DATA_TOPIC = "bench.data";
/** Subscriber `i` answers calls to `probeProc(i)` once its data subscription is in place. */
export const probeProc = (i: number): string => `bench.probe.${i}`;
/** The RPC procedure the responder serves: it echoes the payload. */
export const RPC_PROC = "bench.rpc";

/** Subscriber result: what arrived, checked message by message. */
export interface SubResult {
  role: "sub";
  id: number;
  size: number;
  /** Messages the publisher sends. */
  count: number;
  /** Messages that arrived (including duplicates and bad ones). */
  received: number;
  /** Distinct, well-formed sequence numbers in [0, count). */
  unique: number;
  duplicates: number;
  /** Wrong length, wrong bytes or sequence number out of range. */
  bad: number;
  firstBad?: string;
  /** Arrivals whose sequence number was lower than one already seen. */
  reordered: number;
  /** nowMs() of the first and last arrival; 0 if none. */
  first_ms: number;
  last_ms: number;
  /** Drops the client library itself counted, when it counts them. */
  client_dropped?: number;
}

/** Publisher result. */
export interface PubResult {
  role: "pub";
  size: number;
  count: number;
  /** nowMs() just before the first publish, and once the flush after the last one resolved. */
  start_ms: number;
  end_ms: number;
}

/** Requester result: sequential round trips, or a concurrent burst. */
export type CallResult =
  | { role: "call"; mode: "seq"; size: number; warmup: number; count: number; rtt_ns: number[] }
  | {
    role: "call";
    mode: "par";
    size: number;
    concurrency: number;
    calls: number;
    elapsed_ns: number;
  };

export type ClientResult = SubResult | PubResult | CallResult;

export function describeError(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

/** The router counters the routed workloads read (lib/messaging/router.ts `RouterStats`). */
export interface RouterCounters {
  published: number;
  delivered: number;
  /** FWD frames sent: this node's own publishes to other nodes, and messages it forwarded. */
  forwarded: number;
  /** CALLs taken: its clients' and those it passes on toward another node. */
  calls: number;
  replies: number;
  noRoute: number;
  hopLimit: number;
  shortcutsOpened: number;
  viaShortcut: number;
}

/**
 * What a Macula node process (macula-node.ts) writes to stderr when it stops, as one line:
 * `NODE_STATS_PREFIX` then this object as JSON. The routed workloads check the line with it.
 */
export const NODE_STATS_PREFIX = "macula-node: stats ";

export interface NodeStats {
  nodeId: string;
  /** Peer node ids with a route, just before the node stopped. */
  routes: string[];
  router: RouterCounters;
  /** `--line-peer`: routes to other nodes let go before the ready line, and after it. */
  lineRetiredBeforeReady: number;
  lineRetiredAfterReady: number;
}
