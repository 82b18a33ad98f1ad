/**
 * Layer 6, messaging: pub/sub and RPC. The sans-IO router (`Router`: what a node does with its
 * clients' and peer nodes' bus frames, routed mesh-wide by signed interest records), the bus
 * frames themselves, topic syntax, the subscription
 * trie with queue groups, bounded subscription buffers, the procedure registry and pending-call
 * table, and JSON payload helpers. docs/messaging.md is the reference.
 */
export * from "./topics.ts";
export * from "./trie.ts";
export * from "./buffer.ts";
export * from "./rpc.ts";
export * from "./json.ts";
export {
  BUS_FRAMES,
  busCodec,
  CLIENT_CHANNEL,
  DEFAULT_MAX_PAYLOAD,
  MAX_DESTS,
  MAX_GROUPS,
  MAX_ID,
  MAX_PAYLOAD_LIMIT,
  MAX_RECORD_PROCS,
  MAX_RECORD_SUBS,
  ROUTE_CHANNEL,
  SHORT_ID_CHARS,
  SHORTCUT_CHANNEL,
} from "./frames.ts";
export {
  INTEREST_DOMAIN,
  interestBytes,
  type InterestRecord,
  type InterestSigner,
  type InterestSub,
  type InterestVerifier,
  ownInterest,
  unsignedInterest,
  unsignedVerifier,
} from "./interest.ts";
export {
  type BusOperation,
  type Link,
  type OriginSnapshot,
  Router,
  ROUTER_LIMITS,
  type RouterObserver,
  type RouterOptions,
  type RouterSend,
  type RouterStats,
  type ShortcutOptions,
  type ShortcutPlan,
  SHORTCUTS,
} from "./router.ts";
export {
  isTraceparent,
  isTracestate,
  MAX_TRACEPARENT_BYTES,
  MAX_TRACESTATE_BYTES,
  MAX_TRACESTATE_MEMBERS,
  spanContextOf,
  traceparentOf,
  tracestateOf,
} from "./tracecontext.ts";
export {
  isRpcErrorCode,
  JsonError,
  ProtocolError,
  RPC_ERROR_CODES,
  RPC_ERROR_NUMBERS,
  RPC_ERROR_TEXT,
  RpcError,
  type RpcErrorCode,
  rpcErrorCodeOf,
  TopicError,
} from "./errors.ts";
