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
 * The QUIC engine alone: docs/quic.md. A first application across three nodes, under Bun and
 * Deno: docs/tutorial.md. This reference is built by `npm run docs` (dist/api/index.html).
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
  ContextError,
  type Handler,
  Message,
  type Registration,
  type SubscribeOptions,
  Subscription,
} from "./lib/client/mod.ts";
export {
  ConfigError,
  Node,
  NodeError,
  type NodeSnapshot,
  type NodeStartOptions,
  parseConfig,
  StartError,
} from "./lib/node/mod.ts";
export { JsonError, RpcError, type RpcErrorCode, TopicError } from "./lib/messaging/mod.ts";
export { PermissionError, RequestError, SessionError, UrlError } from "./lib/peer/mod.ts";
export {
  type Denial,
  parsePermissions,
  Permissions,
  type PermissionsConfig,
  PolicyError,
} from "./lib/policy/mod.ts";
export { WireError } from "./lib/wire/mod.ts";
export * from "./lib/quic/mod.ts";
export {
  checkRealm,
  IdentityError,
  NameError,
  nodeIdFromSpki,
  nodeIdText,
  parseMaculaUri,
  type PeerIdentity,
  realmProblem,
  realmTag,
  type Role,
  Verifier,
} from "./lib/identity/mod.ts";
export { VERSION } from "./lib/util/mod.ts";
