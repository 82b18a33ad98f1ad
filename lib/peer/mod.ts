/**
 * Layer 4, peers: an authenticated session over one QUIC connection (`PeerSession`: the version
 * handshake bound to the certificate, requests, one-way channels, a graceful close), the request
 * registry every node answers through (`RequestRegistry`, `defineRequest`, `ask`), the frame
 * writer of long-lived channels (`ChannelWriter`), and node addresses (`quic://host:port`).
 */
export {
  PeerSession,
  REQUEST_CANCELLED,
  type RequestHandler,
  SESSION_REFUSED,
  type SessionOptions,
} from "./session.ts";
export { sessionCodec, VERSIONS } from "./frames.ts";
export {
  type Access,
  type AccessCheck,
  ask,
  type Body,
  decodeBody,
  defineRequest,
  encodeBody,
  type MethodHandler,
  RequestRegistry,
  type RequestSpec,
  rolesOnly,
} from "./requests.ts";
export { ChannelWriter } from "./writer.ts";
export { DEFAULT_PORT, formatUrl, type NodeUrl, parseUrl, SCHEME } from "./url.ts";
export {
  NotFoundError,
  PermissionError,
  RequestError,
  SessionError,
  type SessionErrorCode,
  UrlError,
} from "./errors.ts";
