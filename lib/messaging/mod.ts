/**
 * lib/messaging: the sans-IO core of pub/sub and RPC — topic syntax, the subscription trie with
 * queue groups, bounded subscription buffers, the procedure registry and pending-call table, and
 * JSON payload helpers. docs/messaging.md is the reference.
 */
export * from "./topics.ts";
export * from "./trie.ts";
export * from "./buffer.ts";
export * from "./rpc.ts";
export * from "./json.ts";
