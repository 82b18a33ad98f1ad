/**
 * Layer 6, messaging: pub/sub and RPC. The sans-IO router (`Router`: what a node does with its
 * clients' and peer nodes' bus frames), the bus frames themselves, topic syntax, the subscription
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
  MAX_ID,
  MAX_PAYLOAD_LIMIT,
  ROUTE_CHANNEL,
} from "./frames.ts";
export {
  type BusOperation,
  type Link,
  Router,
  ROUTER_LIMITS,
  type RouterOptions,
  type RouterSend,
  type RouterStats,
} from "./router.ts";
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
