/**
 * The mesh's message-passing cores (membership, later the DHT) as their drivers see them: the
 * deterministic simulator (lib/sim) and the node runtime (lib/node). They follow the one sans-IO
 * contract of lib/util/sansio.ts — `now` passed in, actions drained, `nextWake()` — with messages
 * between addresses as input and output. Also here: seeded randomness for simulations.
 */
import type { Rng, SansIoCore } from "../util/mod.ts";

export type { Rng };

/** Where a peer is reached: opaque to the core (`"n42"` in the simulator, `quic://h:p` for real). */
export type Addr = string;

/** One message to send. `size` is its encoded size in bytes (for traffic accounting and MTU). */
export interface Outgoing<M> {
  to: Addr;
  msg: M;
  size: number;
}

/** What a core asks of its driver since the last drain. */
export interface Output<M, E> {
  send: Outgoing<M>[];
  events: E[];
}

/** A message-passing core: the sans-IO contract, with messages in (`receive`) and out (`drain`). */
export interface Core<M, E> extends SansIoCore<Output<M, E>> {
  /** This core's own address. */
  readonly addr: Addr;
  /** A message arrived from `from`. */
  receive(now: number, from: Addr, msg: M): void;
}

/** 128 bits of state from a string (cyrb128: four mixed 32-bit lanes). */
function hash128(s: string): [number, number, number, number] {
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0; i < s.length; i++) {
    const k = s.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

/** sfc32 over the given state: 53-bit doubles in [0, 1). Period at least 2^32, typically 2^127. */
function sfc32(state: [number, number, number, number]): Rng {
  let [a, b, c, d] = state;
  if ((a | b | c | d) === 0) d = 1;
  const next32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next32();
  return () => ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
}

/**
 * A deterministic random stream (sfc32) for a seed and an optional label: the same arguments give
 * the same stream; different seeds or labels give unrelated ones.
 */
export function seededRng(seed: number | string, ...label: (string | number)[]): Rng {
  if (typeof seed === "number" && !Number.isFinite(seed)) {
    throw new RangeError(`seed must be a finite number, got ${seed}`);
  }
  return sfc32(hash128(`${seed}\u0000${label.join("\u0000")}`));
}

/** A uniform integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** Shuffles `a` in place (Fisher–Yates) with `rng`; returns it. */
export function shuffle<T>(a: T[], rng: Rng): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}
