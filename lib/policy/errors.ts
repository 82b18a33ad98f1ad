/** The errors of lib/policy. */

/** A permissions configuration that cannot be used; the message names the rule and the problem. */
export class PolicyError extends Error {
  override name = "PolicyError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}
