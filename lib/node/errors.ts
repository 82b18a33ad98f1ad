/** The errors of lib/node. */

/** A bad configuration; the message names the key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** The node cannot start or serve as asked (a port in use, credentials that do not fit, …). */
export class NodeError extends Error {
  override name = "NodeError";
}
