/**
 * Macula: mesh networking over QUIC.
 *
 * - `connect()` attaches to a node and gives a `Client`: `publish`, `subscribe` (an async
 *   iterator), `call`/`request`, `serve`/`register`, `flush`, `close`. It reconnects by itself and
 *   restores its subscriptions and procedures.
 * - `Node` runs a node in this process (what `macula node up` does).
 * - Below them: the QUIC engine (`QuicEndpoint`) and peer identity (`Verifier`, node ids, realms).
 *
 * @example Publish, subscribe and call through a node
 * ```ts
 * import { connect } from "macula";
 * const c = await connect({ url: "quic://127.0.0.1:4433", creds: "macula-data/client" });
 * const sub = c.subscribe("greetings.*");
 * c.serve("math.double", (p) => new TextEncoder().encode(String(2 * Number(new TextDecoder().decode(p)))));
 * await c.flush();
 * c.publish("greetings.en", "hello");
 * for await (const m of sub) { console.log(m.topic, m.text()); break; }
 * console.log(new TextDecoder().decode(await c.call("math.double", "21"))); // 42
 * await c.close();
 * ```
 *
 * The QUIC engine alone: docs/quic.md.
 *
 * @module
 */
export {
  type CallContext,
  type CallOptions,
  Client,
  ClientError,
  type ClientStatus,
  connect,
  type ConnectOptions,
  type Handler,
  Message,
  type Registration,
  type SubscribeOptions,
  Subscription,
} from "./lib/client/client.ts";
export { Node, type NodeSnapshot, type NodeStartOptions } from "./lib/node/node.ts";
export { parseConfig } from "./lib/node/config.ts";
export { RpcError, type RpcErrorCode } from "./lib/messaging/rpc.ts";
export { TopicError } from "./lib/messaging/topics.ts";
export * from "./lib/quic/mod.ts";
export {
  checkRealm,
  nodeIdFromSpki,
  nodeIdText,
  parseMaculaUri,
  realmProblem,
  realmTag,
} from "./lib/identity/names.ts";
export { IdentityError, type PeerIdentity, Verifier } from "./lib/identity/verify.ts";
export { VERSION } from "./lib/version.ts";
