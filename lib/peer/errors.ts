/** The errors of lib/peer: sessions, requests and node addresses. */

/** Why a session operation failed. */
export type SessionErrorCode =
  | "protocol"
  | "version"
  | "identity"
  | "timeout"
  | "cancelled"
  | "remote"
  | "closed";

/** A session failure; `remoteCode` is set for errors the peer's handler returned. */
export class SessionError extends Error {
  override name = "SessionError";
  constructor(
    readonly code: SessionErrorCode,
    message: string,
    readonly remoteCode?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A request that cannot be served or an answer that cannot be used: names the method and field. */
export class RequestError extends Error {
  override name = "RequestError";
  /** The code the peer sees in the session's `ERR` frame. */
  readonly wireCode: string = "handler_error";
}

/** A request the asker may not make (its role or groups): the peer sees `permission_denied`. */
export class PermissionError extends RequestError {
  override name = "PermissionError";
  override readonly wireCode = "permission_denied";
}

/** A request about something the peer does not know (a node id): the peer sees `not_found`. */
export class NotFoundError extends RequestError {
  override name = "NotFoundError";
  override readonly wireCode = "not_found";
}

/** A node URL that cannot be used; the message names what was parsed and the input. */
export class UrlError extends Error {
  override name = "UrlError";
}
