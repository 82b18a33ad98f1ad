/**
 * The bus frames: pub/sub and RPC between a client and its node, and between two nodes
 * (docs/wire-protocol.md, "Bus"). Each side of a session writes them on one unidirectional
 * stream, the bus, opened as channel `client` (a client attaching to a node) or `route` (a node
 * peering with a node).
 */
import { Codec, type FrameSpec } from "../wire/mod.ts";
import { MAX_TOPIC_BYTES } from "./topics.ts";
import { MAX_TRACEPARENT_BYTES, MAX_TRACESTATE_BYTES } from "./tracecontext.ts";

/** Largest payload the protocol can carry in one frame; a node's own limit may be lower. */
export const MAX_PAYLOAD_LIMIT = 16 * 1024 * 1024;
/** A node's default payload limit (NATS uses 1 MB too). */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** The largest id (subscription, call, ping) a peer may use: 2^53 − 1. */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

const ID = { kind: "uint", max: MAX_ID } as const;
const TOPIC = { kind: "str", max: MAX_TOPIC_BYTES } as const;
const PAYLOAD = { kind: "bytes", max: MAX_PAYLOAD_LIMIT } as const;
/**
 * W3C trace context, last in the frames that carry a message or a call (docs/tracing.md): absent
 * when not traced, so an untraced frame is the same bytes as before. Bounded here; the exact W3C
 * format is checked where the frame is taken (lib/messaging/tracecontext.ts).
 */
const TRACE = [
  { name: "traceparent", kind: "str", max: MAX_TRACEPARENT_BYTES, optional: true },
  { name: "tracestate", kind: "str", max: MAX_TRACESTATE_BYTES, optional: true },
] as const;

/** Characters of a node id's text a FWD or CALL names its destination by (80 bits). */
export const SHORT_ID_CHARS = 16;
/** Destinations one FWD may name (a larger fan-out goes as several FWDs). */
export const MAX_DESTS = 1024;
/** (node, queue group) pairs one FWD may name. With `MAX_DESTS`, a FWD's fields other than the payload stay within the codec's 64 KiB of room. */
export const MAX_GROUPS = 256;
/** Subscriptions (distinct pattern and queue) one node's interest record may list. */
export const MAX_RECORD_SUBS = 1024;
/** Procedures one node's interest record may list. */
export const MAX_RECORD_PROCS = 1024;

const GROUP = [
  { name: "node", kind: "str", max: SHORT_ID_CHARS },
  { name: "queue", kind: "str", max: 64 },
] as const;
const INTEREST_SUB = [
  { name: "pattern", ...TOPIC },
  { name: "queue", kind: "str", max: 64, optional: true },
] as const;

/** Bus frame types 32–63: every one must be understood. */
export const BUS_FRAMES: readonly FrameSpec[] = [
  {
    type: 32,
    name: "INFO",
    fields: [
      { name: "node", kind: "str", max: 52 },
      { name: "max_payload", kind: "uint", max: MAX_PAYLOAD_LIMIT },
    ],
  },
  {
    type: 33,
    name: "SUB",
    fields: [
      { name: "sid", ...ID },
      { name: "pattern", ...TOPIC },
      { name: "queue", kind: "str", max: 64, optional: true },
    ],
  },
  { type: 34, name: "UNSUB", fields: [{ name: "sid", ...ID }] },
  {
    type: 35,
    name: "PUB",
    fields: [{ name: "topic", ...TOPIC }, { name: "payload", ...PAYLOAD }, ...TRACE],
  },
  {
    type: 36,
    name: "MSG",
    fields: [
      { name: "sid", ...ID },
      { name: "topic", ...TOPIC },
      { name: "payload", ...PAYLOAD },
      ...TRACE,
    ],
  },
  // N→N: a message on its way to the nodes in `dests` (docs/routing.md). Each is delivered once,
  // at that node, to its plain subscriptions and to the queue groups `groups` lists for it.
  {
    type: 37,
    name: "FWD",
    fields: [
      { name: "topic", ...TOPIC },
      { name: "payload", ...PAYLOAD },
      { name: "ttl", kind: "uint", max: 255 },
      { name: "dests", kind: "strs", max: MAX_DESTS, itemMax: SHORT_ID_CHARS },
      { name: "groups", kind: "records", max: MAX_GROUPS, fields: GROUP },
      ...TRACE,
    ],
  },
  { type: 38, name: "REG", fields: [{ name: "proc", ...TOPIC }] },
  { type: 39, name: "UNREG", fields: [{ name: "proc", ...TOPIC }] },
  {
    type: 40,
    name: "CALL",
    fields: [
      { name: "id", ...ID },
      { name: "proc", ...TOPIC },
      { name: "payload", ...PAYLOAD },
      { name: "timeout_ms", kind: "uint", max: 86_400_000 },
      { name: "strategy", kind: "str", max: 16, optional: true },
      // N→N: the node the call is for (its short id) and the hops left.
      { name: "to", kind: "str", max: SHORT_ID_CHARS, optional: true },
      { name: "ttl", kind: "uint", max: 255, optional: true },
      ...TRACE,
    ],
  },
  {
    type: 41,
    name: "REPLY",
    fields: [{ name: "id", ...ID }, { name: "payload", ...PAYLOAD }],
  },
  {
    type: 42,
    name: "FAIL",
    fields: [
      { name: "id", ...ID },
      { name: "code", kind: "uint", max: 255 },
      { name: "message", kind: "str", max: 4096 },
    ],
  },
  // `expired`: the caller cancels because its deadline passed (its node counts a timeout).
  {
    type: 43,
    name: "CANCEL",
    fields: [{ name: "id", ...ID }, { name: "expired", kind: "bool", max: 1, optional: true }],
  },
  { type: 44, name: "PING", fields: [{ name: "id", ...ID }] },
  { type: 45, name: "PONG", fields: [{ name: "id", ...ID }] },
  {
    type: 46,
    name: "LOST",
    fields: [{ name: "sid", ...ID }, { name: "count", kind: "uint", max: MAX_ID }],
  },
  {
    type: 47,
    name: "ERROR",
    fields: [
      { name: "code", kind: "str", max: 64 },
      { name: "message", kind: "str", max: 4096 },
      { name: "sid", ...ID, optional: true },
      { name: "proc", ...TOPIC, optional: true },
    ],
  },
  // N→N: "I have taken `count` of your FWDs in all" (delivery accounting; lib/node/links.ts).
  { type: 48, name: "RCVD", fields: [{ name: "count", kind: "uint", max: MAX_ID }] },
  // N→N: what a node's clients subscribe to and serve, signed by that node (`origin`), and this
  // sender's cost to reach it; `hops` 255 withdraws the sender's path (docs/routing.md).
  {
    type: 49,
    name: "INTEREST",
    fields: [
      { name: "origin", kind: "str", max: 52 },
      { name: "version", kind: "uint", max: MAX_ID },
      { name: "hops", kind: "uint", max: 255 },
      { name: "rtt_us", kind: "uint", max: 0xffffffff },
      { name: "subs", kind: "records", max: MAX_RECORD_SUBS, fields: INTEREST_SUB },
      { name: "procs", kind: "strs", max: MAX_RECORD_PROCS, itemMax: MAX_TOPIC_BYTES },
      { name: "key", kind: "bytes", max: 128 },
      { name: "sig", kind: "bytes", max: 128 },
    ],
  },
  // N→N: "I am letting this route go: take other paths; answer RETIRE once you have"
  // (docs/routing.md, "Letting a route go"; lib/node/links.ts).
  { type: 50, name: "RETIRE", fields: [] },
];

/** The bus codec: frames up to the payload limit plus room for the other fields (a FWD's queues). */
export const busCodec = new Codec(BUS_FRAMES, MAX_PAYLOAD_LIMIT + 64 * 1024);

/**
 * The channel a client opens to its node, the one a node opens to a peer node it routes with
 * (an overlay route), and the one it opens to a far node its own traffic goes to directly (a
 * shortcut, docs/routing.md "Shortcuts": no interest travels on it).
 */
export const CLIENT_CHANNEL = "client";
export const ROUTE_CHANNEL = "route";
export const SHORTCUT_CHANNEL = "shortcut";
