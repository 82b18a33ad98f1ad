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
import { PunchError } from "./errors.ts";

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

/** Punching did not give a connection (errors.ts). */
export { PunchError };

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
 * Probes `host:port`, then dials it: a handshake attempt every `attemptTimeoutMs`, up to
 * `attempts`, with fresh probes before each. An attempt is not abandoned when the next starts: the
 * first handshake to complete wins (a slow one may have completed at the peer already, which
 * would otherwise see its session closed), and the others are closed when they complete.
 * Resolves with the connection, or rejects with `PunchError` after the last attempt's time.
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
  let won: QuicConnection | null = null;
  let given = false;
  let resolveWin!: (c: QuicConnection) => void;
  const win = new Promise<QuicConnection>((r) => (resolveWin = r));
  for (let i = 0; i < attempts && !won; i++) {
    sendProbes(ep, host, port, o);
    const n = i + 1;
    ep.connect({ host, port }).then(
      (c) => {
        if (won || given) return void c.close(0, "punch attempt superseded");
        won = c;
        resolveWin(c);
      },
      (e) => tried.push(`attempt ${n}: ${(e as Error).message}`),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const c = await Promise.race([
      win,
      new Promise<null>((r) => (timer = setTimeout(() => r(null), each))),
    ]);
    clearTimeout(timer);
    if (c) return c;
  }
  given = true;
  if (won) return won;
  throw new PunchError(
    `no direct path to ${host}:${port} (${attempts} handshake attempts in ${attempts * each} ms${
      tried.length ? `: ${tried.join("; ")}` : ""
    })`,
    tried,
  );
}
