/** The errors of lib/sim. */

/** A scenario the simulator cannot run as given (an unknown node, a bad partition, …). */
export class SimError extends Error {
  override name = "SimError";
}
