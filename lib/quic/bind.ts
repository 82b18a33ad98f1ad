/**
 * The one wording of a failed bind, for `node up`, `stun serve`, `netcheck` and the admin
 * listener alike.
 */

/**
 * Why a UDP socket could not be bound to `host:port`, in words, with what to do: every command
 * and the node say a port in use or a wrong address the same way (no errno names).
 */
export function bindProblem(
  host: string,
  port: number,
  e: unknown,
  o: { proto?: "udp" | "tcp"; what?: string; choose?: string } = {},
): string {
  const code = (e as NodeJS.ErrnoException).code;
  const at = `${o.what ? `${o.what}: ` : ""}cannot listen on ${o.proto ?? "udp"} ${
    host.includes(":") ? `[${host}]` : host
  }:${port}`;
  if (code === "EADDRINUSE") {
    return `${at}: the port is in use (another node or program has it; choose another with ` +
      `${o.choose ?? "--listen or --port, or 0 for a free one"})`;
  }
  if (code === "EADDRNOTAVAIL") return `${at}: ${host} is not an address of this machine`;
  if (code === "EACCES" || code === "EPERM") {
    return `${at}: permission denied (ports below 1024 need privileges)`;
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "ENOENT") {
    return `${at}: ${host} is not a host name this machine can resolve`;
  }
  return `${at}: ${(e as Error).message}`;
}
