/** The errors of lib/observe's admin listener. */
import { bindProblem } from "../quic/mod.ts";

/** The admin listener cannot start as asked (a port in use, an address not of this machine, …). */
export class AdminError extends Error {
  override name = "AdminError";
}

/**
 * Why a TCP listener could not be bound to `host:port`, in words, with what to do (the wording of
 * lib/quic `bindProblem`, for the admin listener's TCP port).
 */
export function listenProblem(host: string, port: number, e: unknown): string {
  return bindProblem(host, port, e, {
    proto: "tcp",
    what: "admin listener",
    choose: "admin.listen or --admin, or port 0 for a free one, or off to turn it off",
  });
}
