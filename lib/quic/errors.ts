/**
 * Every error class of lib/quic, each saying what went wrong in words an operator can act on,
 * and the text of close codes. Each constructor takes `ErrorOptions`: an error raised because of
 * another carries it as `cause`.
 */

/** TLS alert descriptions (RFC 8446 §6), carried in QUIC as CRYPTO_ERROR 0x100 + alert. */
const TLS_ALERTS: Record<number, string> = {
  0: "close_notify",
  10: "unexpected_message",
  20: "bad_record_mac",
  40: "handshake_failure",
  42: "bad_certificate: the certificate was rejected",
  43: "unsupported_certificate: the certificate type or key is not supported",
  44: "certificate_revoked",
  45: "certificate_expired: the certificate is expired or not yet valid",
  46: "certificate_unknown: the certificate could not be verified",
  47: "illegal_parameter",
  48: "unknown_ca: the certificate is not signed by a trusted CA",
  49: "access_denied",
  50: "decode_error",
  51: "decrypt_error: a signature did not verify",
  70: "protocol_version",
  71: "insufficient_security",
  80: "internal_error",
  90: "user_canceled",
  109: "missing_extension",
  110: "unsupported_extension",
  112: "unrecognized_name",
  116: "certificate_required: no client certificate was presented",
  120: "no_application_protocol: no ALPN protocol in common",
};

/** QUIC transport error codes (RFC 9000 §20.1). */
const TRANSPORT_ERRORS: Record<number, string> = {
  0x0: "no error",
  0x1: "internal error",
  0x2: "connection refused",
  0x3: "flow control error",
  0x4: "stream limit error",
  0x5: "stream state error",
  0x6: "final size error",
  0x7: "frame encoding error",
  0x8: "transport parameter error",
  0x9: "connection id limit error",
  0xa: "protocol violation",
  0xb: "invalid token",
  0xc: "application error",
  0xd: "crypto buffer exceeded",
  0xe: "key update error",
  0xf: "AEAD limit reached",
  0x10: "no viable path",
};

/** Describes a QUIC transport or TLS error code as text. */
export function describeTransportCode(code: number): string {
  if (code >= 0x100 && code <= 0x1ff) {
    const alert = code - 0x100;
    return `TLS alert ${TLS_ALERTS[alert] ?? `#${alert}`}`;
  }
  return TRANSPORT_ERRORS[code] ?? `transport error 0x${code.toString(16)}`;
}

/** Who ended a connection. */
export type CloseInitiator = "local" | "peer" | "idle" | "endpoint";

/** How a connection ended. */
export interface CloseInfo {
  /** Which side ended it: this side, the peer, an idle timeout, or this endpoint shutting down. */
  initiator: CloseInitiator;
  /** True for an application close code (`conn.close(code, reason)`), false for a transport or TLS one. */
  app: boolean;
  /** The close code. */
  code: number;
  /** The reason text sent with the close (may be empty). */
  reason: string;
  /** One line for people: who closed, why, and the code's meaning. */
  message: string;
}

/** Base class of every lib/quic error. */
export class QuicError extends Error {
  override name = "QuicError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A connection failed to establish or was closed; `info` says how. */
export class ConnectionClosedError extends QuicError {
  override name = "ConnectionClosedError";
  constructor(readonly info: CloseInfo, options?: ErrorOptions) {
    super(info.message, options);
  }
}

/** The peer reset the stream (RESET_STREAM) with an application code. */
export class StreamResetError extends QuicError {
  override name = "StreamResetError";
  constructor(readonly code: number, options?: ErrorOptions) {
    super(`stream reset by peer with code ${code}`, options);
  }
}

/** The peer asked us to stop sending on the stream (STOP_SENDING) with an application code. */
export class StreamStoppedError extends QuicError {
  override name = "StreamStoppedError";
  constructor(readonly code: number, options?: ErrorOptions) {
    super(`peer stopped reading the stream (STOP_SENDING) with code ${code}`, options);
  }
}

/** Builds the human message for a close. */
export function closeMessage(
  initiator: CloseInitiator,
  app: boolean,
  code: number,
  reason: string,
): string {
  const who = initiator === "local"
    ? "closed locally"
    : initiator === "peer"
    ? "closed by peer"
    : initiator === "idle"
    ? "idle timeout (no packets from the peer)"
    : "endpoint closed";
  if (initiator === "idle") return `connection ${who}`;
  const what = app ? `application code ${code}` : describeTransportCode(code);
  return `connection ${who}: ${what}${reason ? ` (${reason})` : ""}`;
}

/**
 * Parses the code out of quiche errors such as `StreamReset(42)` or `StreamStopped(7)`; quiche's
 * error is the `cause`.
 */
export function quicheStreamError(e: unknown): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /^(StreamReset|StreamStopped)\((\d+)\)/.exec(msg);
  const cause = { cause: e };
  if (m) {
    const code = Number(m[2]);
    return m[1] === "StreamReset"
      ? new StreamResetError(code, cause)
      : new StreamStoppedError(code, cause);
  }
  return new QuicError(`stream error: ${msg}`, cause);
}
