/**
 * lib/client: the light client that applications and the CLI use to talk to a node — `connect()`
 * gives a `Client` that publishes, subscribes, calls and serves over one session, reconnecting on
 * its own — and the saved contexts (node address + credentials) the CLI's client commands resolve.
 * docs/client.md and docs/contexts.md are the guides.
 *
 * @example
 * ```ts
 * import { connect } from "./mod.ts";
 * const c = await connect(); // quic://127.0.0.1:4433 with ./macula-data/client
 * c.publish("greetings.en", "hello");
 * await c.close();
 * ```
 * @module
 */
export { Client, connect } from "./client.ts";
export {
  type CallOptions,
  type ClientCredentials,
  type ClientStatus,
  type ConnectOptions,
  DEFAULTS,
  type SubscribeOptions,
} from "./options.ts";
export { ClientError } from "./errors.ts";
export { Message } from "./message.ts";
export { Subscription, type SubscriptionStats } from "./subscription.ts";
export type { CallContext, Handler, Registration } from "./serve.ts";
export {
  checkContextName,
  configDir,
  type Context,
  ContextError,
  contextNameProblem,
  CONTEXTS_FILE,
  CONTEXTS_VERSION,
  ContextStore,
  CREDS_FILES,
  DEFAULT_CREDS,
  DEFAULT_SERVER,
  ENV,
  type Env,
  resolveTarget,
  type Target,
} from "./contexts.ts";
/** What calls reject with (`RpcError`) and bad topics throw (`TopicError`), from lib/messaging. */
export { RpcError, type RpcErrorCode, TopicError } from "../messaging/mod.ts";
/** What `resolveTarget` throws for a bad address, from lib/peer. */
export { UrlError } from "../peer/mod.ts";
