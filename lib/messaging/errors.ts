/** The errors of lib/messaging: bad names, bad JSON, protocol violations on the bus, RPC failures. */

/** A topic, pattern or procedure name that breaks the syntax rules; `message` names the rule. */
export class TopicError extends Error {
  override name = "TopicError";
}

/** A payload that is not valid JSON, or a value that cannot be encoded as JSON. */
export class JsonError extends Error {
  override name = "JsonError";
}

/** A frame the peer should not have sent: the session is closed with this message. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}

/**
 * The closed set of RPC error codes. Each has a stable number for the wire (`RPC_ERROR_NUMBERS`)
 * and a description (`RPC_ERROR_TEXT`).
 */
export type RpcErrorCode =
  | "no_provider"
  | "timeout"
  | "handler_error"
  | "payload_too_large"
  | "cancelled"
  | "unavailable"
  | "bad_request"
  | "permission_denied";

/** Every code, in wire-number order. */
export const RPC_ERROR_CODES: readonly RpcErrorCode[] = [
  "no_provider",
  "timeout",
  "handler_error",
  "payload_too_large",
  "cancelled",
  "unavailable",
  "bad_request",
  "permission_denied",
];

/** Stable wire numbers (1-based; 0 is never an error). */
export const RPC_ERROR_NUMBERS: Readonly<Record<RpcErrorCode, number>> = {
  no_provider: 1,
  timeout: 2,
  handler_error: 3,
  payload_too_large: 4,
  cancelled: 5,
  unavailable: 6,
  bad_request: 7,
  permission_denied: 8,
};

/** What each code means, used as the default message. */
export const RPC_ERROR_TEXT: Readonly<Record<RpcErrorCode, string>> = {
  no_provider: "no provider is registered for the procedure",
  timeout: "the call's deadline passed before a reply arrived",
  handler_error: "the provider's handler failed",
  payload_too_large: "the payload exceeds the size limit",
  cancelled: "the caller cancelled the call",
  unavailable: "the chosen provider went away before replying (session closed or unregistered)",
  bad_request: "the call is malformed (invalid procedure name or payload)",
  permission_denied: "the caller's certificate groups do not allow calling the procedure",
};

/** True when `code` is one of `RPC_ERROR_CODES`. */
export function isRpcErrorCode(code: unknown): code is RpcErrorCode {
  return typeof code === "string" && (RPC_ERROR_CODES as readonly string[]).includes(code);
}

/** The code for a wire number, or undefined for an unknown number. */
export function rpcErrorCodeOf(n: number): RpcErrorCode | undefined {
  return RPC_ERROR_CODES[n - 1];
}

/**
 * An RPC failure. `message` is `"<code>: <text>"`; for `handler_error`, `detail` is the
 * handler's own message.
 */
export class RpcError extends Error {
  override name = "RpcError";
  readonly code: RpcErrorCode;
  readonly detail: string | undefined;
  constructor(code: RpcErrorCode, detail?: string, options?: ErrorOptions) {
    if (!isRpcErrorCode(code)) throw new TypeError(`unknown RPC error code ${String(code)}`);
    super(`${code}: ${detail ?? RPC_ERROR_TEXT[code]}`, options);
    this.code = code;
    this.detail = detail;
  }
  /** The code's wire number. */
  get number(): number {
    return RPC_ERROR_NUMBERS[this.code];
  }
}
