/**
 * The errors of lib/nat. Each constructor takes `ErrorOptions`: an error raised because of
 * another carries it as `cause`. (Each is also exported from the file that raises it.)
 */

/** Reaching a node failed, or a traversal request was refused; the message says what was tried. */
export class TraversalError extends Error {
  override name = "TraversalError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A message that is not valid STUN; the message says what was wrong (stun.ts). */
export class StunError extends Error {
  override name = "StunError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Punching did not give a connection; `tried` says what was attempted (punch.ts). */
export class PunchError extends Error {
  override name = "PunchError";
  constructor(message: string, readonly tried: string[], options?: ErrorOptions) {
    super(message, options);
  }
}

/** A relay quota refused an allocation; the message names the limit (relay.ts). */
export class RelayRefused extends Error {
  override name = "RelayRefused";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
