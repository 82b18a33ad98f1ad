/** The errors of lib/observe's admin listener. */

/** The admin listener cannot start as asked (a port in use, an address not of this machine, …). */
export class AdminError extends Error {
  override name = "AdminError";
}

/**
 * Why a TCP listener could not be bound to `host:port`, in words, with what to do (the wording of
 * lib/quic `bindProblem`, for the admin listener's TCP port).
 */
export function listenProblem(host: string, port: number, e: unknown): string {
  const code = (e as { code?: string }).code;
  const at = `admin listener: cannot listen on tcp ${
    host.includes(":") ? `[${host}]` : host
  }:${port}`;
  if (code === "EADDRINUSE") {
    return `${at}: the port is in use (another node or program has it; choose another with ` +
      `admin.listen, or port 0 for a free one, or admin: null to turn it off)`;
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
