/**
 * The bus frames: pub/sub and RPC between a client and its node, and between two nodes
 * (docs/wire-protocol.md, "Bus"). Each side of a session writes them on one unidirectional
 * stream, the bus, opened as channel `client` (a client attaching to a node) or `route` (a node
 * peering with a node).
 */
import { Codec, type FrameSpec } from "../wire/mod.ts";
import { MAX_TOPIC_BYTES } from "./topics.ts";

/** Largest payload the protocol can carry in one frame; a node's own limit may be lower. */
export const MAX_PAYLOAD_LIMIT = 16 * 1024 * 1024;
/** A node's default payload limit (NATS uses 1 MB too). */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** The largest id (subscription, call, ping) a peer may use: 2^53 − 1. */
export const MAX_ID = Number.MAX_SAFE_INTEGER;

const ID = { kind: "uint", max: MAX_ID } as const;
const TOPIC = { kind: "str", max: MAX_TOPIC_BYTES } as const;
const PAYLOAD = { kind: "bytes", max: MAX_PAYLOAD_LIMIT } as const;

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
    fields: [{ name: "topic", ...TOPIC }, { name: "payload", ...PAYLOAD }],
  },
  {
    type: 36,
    name: "MSG",
    fields: [{ name: "sid", ...ID }, { name: "topic", ...TOPIC }, { name: "payload", ...PAYLOAD }],
  },
  {
    type: 37,
    name: "FWD",
    fields: [
      { name: "topic", ...TOPIC },
      { name: "payload", ...PAYLOAD },
      { name: "queues", kind: "strs", max: 256, itemMax: 64 },
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
  { type: 43, name: "CANCEL", fields: [{ name: "id", ...ID }] },
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
];

/** The bus codec: frames up to the payload limit plus room for the other fields (a FWD's queues). */
export const busCodec = new Codec(BUS_FRAMES, MAX_PAYLOAD_LIMIT + 64 * 1024);

/** The channel a client opens to its node, and the one a node opens to a peer node. */
export const CLIENT_CHANNEL = "client";
export const ROUTE_CHANNEL = "route";
