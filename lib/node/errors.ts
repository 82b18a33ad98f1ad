/** The errors of lib/node. */

/** A bad configuration; the message names the key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The node cannot start or serve as asked (a port in use, credentials that do not fit, …). */
export class NodeError extends Error {
  override name = "NodeError";
}

/**
 * The node refuses to start: its identity or its data directory is not fit to run (a key that is
 * not the certificate's, a certificate of another realm or CA, a client or expired certificate,
 * a data directory another node holds, its node id alive elsewhere, a dev CA that is not there).
 * Nothing was written. `macula node up` exits 2.
 */
export class StartError extends NodeError {
  override name = "StartError";
}
