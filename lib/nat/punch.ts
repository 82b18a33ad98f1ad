/**
 * UDP hole punching for QUIC: both sides send probes from their QUIC socket to the other's public
 * address (as a rendezvous node saw it), so each NAT opens a mapping and a filter entry towards the
 * other; then one side runs the QUIC handshake on that path (docs/nat-traversal.md).
 *
 * The first probes go out with a small IP TTL: enough to leave the local NAT (creating its
 * mapping), expiring before the far NAT, which would otherwise see an unsolicited packet first and
 * — on Linux netfilter, as in most home routers — give its own host's outbound packet a different
 * port. Then probes with the normal TTL, then the handshake, with bounded attempts and time.
 */
import type { QuicConnection, QuicEndpoint } from "../quic/mod.ts";
import { withTimeout } from "../util/timeout.ts";

/** The first bytes of a punch probe (in the non-QUIC range of the first-byte demux). */
export const PUNCH_MAGIC = new Uint8Array([0x3f, 0x4d, 0x50, 0x55, 0x4e, 0x43, 0x48]); // "?MPUNCH"

/** True for a punch probe (the receiver counts and drops it). */
export function isPunch(b: Uint8Array): boolean {
  if (b.length < PUNCH_MAGIC.length) return false;
  for (let i = 0; i < PUNCH_MAGIC.length; i++) if (b[i] !== PUNCH_MAGIC[i]) return false;
  return true;
}

/** How hard to try. */
export interface PunchOptions {
  /** TTL of the first probes (must pass the local NAT, expire before the far one). Default 2. */
  lowTtl?: number;
  lowProbes?: number;
  probes?: number;
  /** Handshake attempts and the time each may take. Defaults 3 and 1500 ms. */
  attempts?: number;
  attemptTimeoutMs?: number;
  /** TTL the socket goes back to. Default 64. */
  normalTtl?: number;
}

/** Punching did not give a connection; `tried` says what was attempted. */
export class PunchError extends Error {
  override name = "PunchError";
  constructor(message: string, readonly tried: string[]) {
    super(message);
  }
}

function probe(seq: number): Uint8Array {
  const b = new Uint8Array(PUNCH_MAGIC.length + 1);
  b.set(PUNCH_MAGIC);
  b[PUNCH_MAGIC.length] = seq & 0xff;
  return b;
}

/** Sends the probes towards `host:port` from the endpoint's socket. */
export function sendProbes(
  ep: QuicEndpoint,
  host: string,
  port: number,
  o: PunchOptions = {},
): void {
  const low = o.lowProbes ?? 3;
  let seq = 0;
  if (low > 0) {
    ep.setTTL(o.lowTtl ?? 2);
    try {
      for (let i = 0; i < low; i++) ep.sendRaw(probe(seq++), host, port);
    } finally {
      ep.setTTL(o.normalTtl ?? 64);
    }
  }
  for (let i = 0; i < (o.probes ?? 3); i++) ep.sendRaw(probe(seq++), host, port);
}

/**
 * Probes `host:port`, then dials it: up to `attempts` handshakes of `attemptTimeoutMs` each, with
 * fresh probes before every one. Resolves with the connection, or rejects with `PunchError`.
 */
export async function punchConnect(
  ep: QuicEndpoint,
  host: string,
  port: number,
  o: PunchOptions = {},
): Promise<QuicConnection> {
  const tried: string[] = [];
  const attempts = o.attempts ?? 3;
  const each = o.attemptTimeoutMs ?? 1500;
  for (let i = 0; i < attempts; i++) {
    sendProbes(ep, host, port, o);
    const attempt = ep.connect({ host, port });
    try {
      return await withTimeout(attempt, each, () => new Error(`no handshake within ${each} ms`));
    } catch (e) {
      tried.push(`attempt ${i + 1}: ${(e as Error).message}`);
      // A handshake that completes after its attempt gave up is closed, not leaked.
      attempt.then((c) => c.close(0, "punch attempt superseded")).catch(() => {});
    }
  }
  throw new PunchError(`no direct path to ${host}:${port} (${tried.join("; ")})`, tried);
}
