/** The errors of lib/wire. */

/**
 * A bad frame or field: `frame` names the frame type (or the request method), `field` the field
 * where known, `detail` what was wrong with it.
 */
export class WireError extends Error {
  override name = "WireError";
  constructor(
    readonly frame: string,
    readonly field: string | null,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`${frame}${field ? `.${field}` : ""}: ${detail}`, options);
  }
}
