/**
 * The client's own failures. Calls fail with `RpcError` (lib/messaging) and bad topics with
 * `TopicError`; everything else the client refuses or gives up on is a `ClientError` with a
 * stable `code`. An error that wraps another keeps it as `cause`.
 */
import { withTimeout } from "../util/mod.ts";

/**
 * A client-side failure: `code` is stable — `closed`, `disconnected`, `timeout`, `connect`,
 * `credentials`, `payload_too_large`, `duplicate`, or the code of an `ERROR` the node sent.
 *
 * @example
 * ```ts
 * import { ClientError } from "./errors.ts";
 * try {
 *   throw new ClientError("closed", "the client is closed");
 * } catch (e) {
 *   if (e instanceof ClientError && e.code === "closed") console.log("reconnect first");
 * }
 * ```
 */
export class ClientError extends Error {
  override name = "ClientError";
  constructor(readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/**
 * `p`, or a `ClientError` `timeout` ("`what`: no answer within `ms` ms") when it takes longer.
 * @internal
 */
export function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(p, ms, () => new ClientError("timeout", `${what}: no answer within ${ms} ms`));
}

/** A context problem: unknown name, bad name, corrupt file, refused overwrite. */
export class ContextError extends Error {
  override name = "ContextError";
}
