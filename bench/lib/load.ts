/**
 * The messaging load method, shared by bench/messaging (`npm run bench -- messaging`) and
 * `macula bench` (cli/commands/bench.ts), so that their figures mean the same thing:
 *
 * - **Payloads.** Message `seq` of `size` bytes: bytes 0–3 = `seq` u32 big-endian, byte j ≥ 4 =
 *   `(seq·31 + j·7) & 0xff`. A *stamped* payload (≥ 12 bytes) carries its send time in bytes
 *   4–11 instead (float64 big-endian, `nowMs()`), written just before the publish; the check
 *   then skips those bytes. Every arrival is checked: length, every byte, `seq` in range.
 * - **Arrivals.** One `Arrivals` per set of receivers that should see each message once (a
 *   subscriber, or all members of a queue group): distinct, duplicate, malformed and
 *   out-of-order messages, first and last arrival.
 * - **Publishing.** `publishLoop`: as fast as the client takes them, yielding to the event loop
 *   every `batch` messages (or paced to a rate), then the caller flushes.
 * - **Readiness.** Each subscriber serves a probe once its subscription is in place (and
 *   flushed); publishers call every probe until it answers (`untilCallable`) before they start,
 *   so that across nodes the interest has reached the publisher's node.
 * - **Calls.** `callLoop`: a warm-up burst (not timed), then `count` calls from `concurrency`
 *   loops sharing one connection; each round trip timed with `process.hrtime`, each reply
 *   checked by the caller.
 *
 * Plain TypeScript over structural interfaces (no lib/ imports), so the CLI and the benches
 * both use it as it is.
 */
import process from "node:process";
import { fillPing } from "../quic/protocol.ts";

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Where a stamped payload holds its send time, and the smallest payload that can hold one. */
export const STAMP_OFFSET = 4;
export const STAMPED_MIN_SIZE = 12;

/** Message `seq` of `size` bytes (≥ 4): bytes 0–3 = seq u32 BE, byte j ≥ 4 = (seq·31 + j·7) & 0xff. */
export function makePayload(seq: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  fillPing(b, seq);
  return b;
}

/** Writes the send time `tMs` (`nowMs()`) into a payload of at least `STAMPED_MIN_SIZE` bytes. */
export function stamp(p: Uint8Array, tMs: number): void {
  new DataView(p.buffer, p.byteOffset, p.byteLength).setFloat64(STAMP_OFFSET, tMs);
}

/** The send time a stamped payload carries. */
export function stampOf(p: Uint8Array): number {
  return new DataView(p.buffer, p.byteOffset, p.byteLength).getFloat64(STAMP_OFFSET);
}

/**
 * The sequence number of a well-formed payload of `size` bytes, or a description of the fault.
 * `stamped`: bytes 4–11 hold a send time and are not checked.
 */
export function checkPayload(p: Uint8Array, size: number, stamped = false): number | string {
  if (p.length !== size) return `payload is ${p.length} bytes, expected ${size}`;
  const seq = ((p[0] as number) * 2 ** 24) + (((p[1] as number) << 16) | ((p[2] as number) << 8) |
    (p[3] as number));
  const from = stamped ? STAMPED_MIN_SIZE : 4;
  for (let j = from; j < size; j++) {
    if (p[j] !== ((seq * 31 + j * 7) & 0xff)) return `message ${seq}: byte ${j} is wrong`;
  }
  return seq;
}

/** True when `a` and `b` hold the same bytes (an echo is checked this way). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Payloads built before the timed loop, up to this many bytes in all; beyond, one per send. */
const PREBUILD_BYTES = 64 * 1024 * 1024;

/** The payloads of messages `first` … `first + count - 1`: `at(i)` is message `first + i`. */
export function payloads(first: number, count: number, size: number): (i: number) => Uint8Array {
  if (count * size > PREBUILD_BYTES) return (i) => makePayload(first + i, size);
  const built: Uint8Array[] = [];
  for (let i = 0; i < count; i++) built.push(makePayload(first + i, size));
  return (i) => built[i] as Uint8Array;
}

/** What one arrival was. */
export type Arrival = "new" | "duplicate" | "bad";

/**
 * What arrived of `total` messages (sequence numbers 0 … total-1), checked message by message,
 * by one receiver or a group that should see each message once between them.
 */
export class Arrivals {
  readonly #seen: Uint8Array;
  #maxSeq = -1;
  received = 0;
  /** Distinct, well-formed sequence numbers in [0, total). */
  unique = 0;
  duplicates = 0;
  /** Wrong length, wrong bytes or sequence number out of range. */
  bad = 0;
  firstBad: string | undefined;
  /** Arrivals whose sequence number was lower than one already seen. */
  reordered = 0;
  /** `nowMs()` of the first and last arrival; 0 if none. */
  firstMs = 0;
  lastMs = 0;
  #onComplete: (() => void) | undefined;

  constructor(readonly total: number, readonly size: number, readonly stamped = false) {
    this.#seen = new Uint8Array(Math.ceil(total / 8));
  }

  /** True once every message arrived. */
  get complete(): boolean {
    return this.unique === this.total;
  }

  /** Calls `f` once every message has arrived (at once if they have). */
  onComplete(f: () => void): void {
    if (this.complete) f();
    else this.#onComplete = f;
  }

  /** Records one payload that arrived at `tMs` (`nowMs()`). */
  record(p: Uint8Array, tMs: number): Arrival {
    if (this.received === 0) this.firstMs = tMs;
    this.lastMs = tMs;
    this.received++;
    const seq = checkPayload(p, this.size, this.stamped);
    if (typeof seq === "string" || seq >= this.total) {
      this.bad++;
      this.firstBad ??= typeof seq === "string" ? seq : `sequence number ${seq} ≥ ${this.total}`;
      return "bad";
    }
    const byte = seq >>> 3;
    const bit = 1 << (seq & 7);
    if (((this.#seen[byte] as number) & bit) !== 0) {
      this.duplicates++;
      return "duplicate";
    }
    this.#seen[byte] = (this.#seen[byte] as number) | bit;
    if (seq < this.#maxSeq) this.reordered++;
    else this.#maxSeq = seq;
    if (++this.unique === this.total) this.#onComplete?.();
    return "new";
  }
}

/** Waits one macrotask: lets the client library's I/O run. */
export const macrotask = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * When each message is due at `rate` per second from the first: `wait(i)` resolves once
 * message `i` is due (at once when late: a stall is caught up, so the run keeps its rate on
 * average). No rate: never waits.
 */
export function schedule(rate: number | undefined): (i: number) => Promise<void> {
  if (rate === undefined) return () => Promise.resolve();
  let start: number | undefined;
  return async (i) => {
    start ??= performance.now();
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait >= 1) await sleep(wait);
  };
}

/** How `publishLoop` sends. */
export interface PublishPlan {
  count: number;
  /** Yield to the event loop every this many messages (unpaced). */
  batch: number;
  /** Messages per second; none = as fast as the client takes them. */
  rate?: number;
  /** Stops the loop early (the messages sent so far stay sent). */
  signal?: AbortSignal;
  /** Sends message `i`. */
  send(i: number): void;
  /**
   * The client's own pacing, awaited after each batch (unpaced): resolves once what was sent
   * has gone to the server (Macula's `writable()`); none, for a library without one.
   */
  writable?: () => Promise<void>;
}

/** Publishes `count` messages; returns how many were sent and `nowMs()` before the first. */
export async function publishLoop(plan: PublishPlan): Promise<{ sent: number; startMs: number }> {
  const due = schedule(plan.rate);
  const batch = Math.max(1, plan.batch);
  const startMs = nowMs();
  let sent = 0;
  for (let i = 0; i < plan.count; i++) {
    if (plan.signal?.aborted) break;
    if (plan.rate !== undefined) await due(i);
    plan.send(i);
    sent++;
    if (plan.rate === undefined && (i + 1) % batch === 0) {
      await macrotask();
      if (plan.writable) await plan.writable();
    }
  }
  return { sent, startMs };
}

/** One request/reply, as the bench's clients make it. */
export type CallFn = (proc: string, payload: Uint8Array, timeoutMs: number) => Promise<Uint8Array>;

/** Calls `proc` until it answers (the server side is in place), or throws after `limitMs`. */
export async function untilCallable(
  call: CallFn,
  proc: string,
  limitMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = performance.now() + limitMs;
  const ping = new Uint8Array([1, 2, 3, 4]);
  let last: unknown;
  while (performance.now() < deadline && !signal?.aborted) {
    try {
      await call(proc, ping, 500);
      return;
    } catch (e) {
      last = e;
      await sleep(50);
    }
  }
  if (signal?.aborted) return;
  const why = last instanceof Error ? last.message : String(last);
  throw new Error(`${proc} did not answer within ${limitMs} ms: ${why}`);
}

/** How `callLoop` calls. */
export interface CallPlan {
  /** Calls made first at the same concurrency, not timed. */
  warmup: number;
  count: number;
  concurrency: number;
  /** Calls per second in all; none = each loop calls again as soon as a reply came. */
  rate?: number;
  signal?: AbortSignal;
  /** Makes call `i` and checks its reply; a rejection ends the run unless `onError` takes it. */
  call(i: number): Promise<void>;
  /** The round trip of each measured call that succeeded, in nanoseconds. */
  onRtt?(ns: number, i: number): void;
  /** A measured call that failed; without it, the first failure rejects the loop. */
  onError?(e: unknown, i: number): void;
}

/**
 * Warm-up, then `count` calls from `concurrency` loops; returns the calls made and the
 * nanoseconds from the first measured call to the last reply.
 */
export async function callLoop(plan: CallPlan): Promise<{ calls: number; elapsedNs: number }> {
  const concurrency = Math.max(1, plan.concurrency);
  const burst = async (limit: number, measured: boolean): Promise<number> => {
    let next = 0;
    const due = schedule(measured ? plan.rate : undefined);
    const worker = async (): Promise<void> => {
      while (next < limit && !plan.signal?.aborted) {
        const i = next++;
        await due(i);
        const t0 = process.hrtime.bigint();
        try {
          await plan.call(i);
        } catch (e) {
          if (!measured || plan.onError === undefined) throw e;
          plan.onError(e, i);
          continue;
        }
        if (measured) plan.onRtt?.(Number(process.hrtime.bigint() - t0), i);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, limit) }, worker));
    return next;
  };
  await burst(plan.warmup, false);
  const t0 = process.hrtime.bigint();
  const calls = await burst(plan.count, true);
  return { calls, elapsedNs: Number(process.hrtime.bigint() - t0) };
}
