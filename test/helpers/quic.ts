/** Helpers for tests that run real QUIC endpoints on 127.0.0.1. */
import { afterEach } from "bun:test";
import { setImmediate } from "node:timers";
import {
  type QuicConnection,
  QuicEndpoint,
  type QuicEndpointOptions,
  type QuicStream,
  type UdpSocket,
} from "../../lib/quic/mod.ts";
import { type DevCa, makeCa, tlsFor } from "../../lib/identity/devca.ts";

let sharedCa: DevCa | null = null;

/** One CA for the whole test file (key generation is the slow part). */
export async function ca(): Promise<DevCa> {
  sharedCa ??= await makeCa("ed25519");
  return sharedCa;
}

type Opts = Omit<QuicEndpointOptions, "tls">;

/**
 * `endpoint()` for a test file: every endpoint it makes is closed after each test. Call once at
 * the top of the file.
 */
export function closingEndpoints(): {
  ep: typeof endpoint;
  track: (e: QuicEndpoint) => QuicEndpoint;
} {
  const open: QuicEndpoint[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((e) => e.close()));
  });
  const track = (e: QuicEndpoint) => {
    open.push(e);
    return e;
  };
  return { ep: async (...args) => track(await endpoint(...args)), track };
}

/** An endpoint on 127.0.0.1 with a fresh certificate from the test CA. */
export async function endpoint(opts: Opts = {}, theCa?: DevCa): Promise<QuicEndpoint> {
  const c = theCa ?? await ca();
  return QuicEndpoint.bind({ host: "127.0.0.1", tls: await tlsFor(c), ...opts });
}

/** Echoes every stream of every connection accepted by `ep` until it closes. */
export function serveEcho(ep: QuicEndpoint): void {
  void (async () => {
    for await (const conn of ep) echoStreams(conn);
  })();
}

/** Echoes every stream the peer opens on `conn`. */
export function echoStreams(conn: QuicConnection): void {
  void (async () => {
    for await (const s of conn.streams()) void echo(s).catch(() => {});
  })();
}

/**
 * Streams every chunk back, one chunk behind, so the FIN always rides with the last chunk (a
 * FIN sent alone can be lost with the quiche we ship: docs/quic.md, "Known issues").
 */
async function echo(s: QuicStream): Promise<void> {
  let last: Uint8Array | null = null;
  for await (const c of s) {
    if (last) await s.write(last);
    last = c;
  }
  await s.end(last ?? undefined);
}

/**
 * Yields to the event loop until `cond()` holds, checking after every turn; fails after
 * `limitMs` (a bounded wait for a condition, not a sleep).
 */
export async function until(cond: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  if (cond()) return;
  throw new Error(`gave up after ${limitMs} ms waiting for: ${what}`);
}

/** Deterministic bytes (xorshift) so tests can check content, not just length. */
export function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A seeded PRNG in [0, 1). */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/**
 * `inner` with its sends going through `send` (a test's filter or recorder, which passes them on
 * or not). With `runs`, GSO runs are kept (`gso`, `sendRun` through `send` too); without, the
 * wrapper has no GSO and the endpoint sends packet by packet.
 */
export function wrapSocket(
  inner: UdpSocket,
  send: (d: Uint8Array, port: number, host: string, pass: (d: Uint8Array) => void) => void,
  runs = false,
): UdpSocket {
  const wrapped: UdpSocket = {
    get host() {
      return inner.host;
    },
    get port() {
      return inner.port;
    },
    stats: inner.stats,
    send: (d, port, host) => send(d, port, host, (x) => inner.send(x, port, host)),
    flush: () => inner.flush(),
    setTTL: (t) => inner.setTTL(t),
    close: () => inner.close(),
  };
  if (!runs || !inner.sendRun) return wrapped;
  return Object.defineProperties(wrapped, {
    gso: { get: () => inner.gso },
    sendRun: {
      value: (d: Uint8Array, port: number, host: string) =>
        send(d, port, host, (x) => inner.sendRun!(x, port, host)),
    },
  });
}
