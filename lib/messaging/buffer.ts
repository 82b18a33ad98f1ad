/**
 * A bounded per-subscription message buffer with an explicit overflow policy. Drops are counted
 * and readable through `stats()`, never silent. Pure state plus promises for the consumer: no
 * timers, no clock.
 *
 * Bounds: at most `maxMessages` messages and `maxBytes` bytes queued (a message's size comes
 * from `sizeOf`, by default its `byteLength`). When a push would exceed either bound:
 *
 * - `"drop-oldest"` (the default): evict the oldest queued messages until the new one fits; the
 *   evicted ones are counted in `dropped` / `droppedBytes`. A slow consumer sees the freshest
 *   data and the producer (the node's receive loop, shared by every subscription on a session)
 *   never stalls.
 * - `"drop-newest"`: keep the queue as it is and discard the incoming message (counted). This is
 *   what the NATS client does for a slow consumer.
 * - `"block"`: refuse the message (`push` returns `"full"`, counted in `refused`, not in
 *   `dropped`); the producer must hold it and wait for `writable()` before retrying. This is
 *   the backpressure signal; nothing is lost unless the producer gives up.
 *
 * A message larger than either bound on its own can never fit: under every policy it is
 * discarded, counted in `dropped` and `oversize`, and `push` returns `"dropped"`.
 *
 * @example
 * ```ts
 * import { MessageBuffer } from "./buffer.ts";
 * const buf = new MessageBuffer<Uint8Array>({ maxMessages: 2 });
 * buf.push(new Uint8Array([1]));
 * buf.push(new Uint8Array([2]));
 * buf.push(new Uint8Array([3])); // "evicted": [1] was dropped
 * buf.stats().dropped; // 1
 * buf.close();
 * for await (const m of buf) console.log(m); // [2], [3], then the loop ends
 * ```
 */

/** What happens when a push would exceed a bound. */
export type OverflowPolicy = "drop-oldest" | "drop-newest" | "block";

/** The overflow policies, default first. */
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ["drop-oldest", "drop-newest", "block"];

/** Default bound on queued messages. */
export const DEFAULT_MAX_MESSAGES = 65_536;
/** Default bound on queued bytes (64 MiB). */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** Options for `MessageBuffer`. */
export interface BufferOptions<T> {
  /** Queued-message bound (≥ 1); default `DEFAULT_MAX_MESSAGES`. */
  maxMessages?: number;
  /** Queued-byte bound (≥ 1); default `DEFAULT_MAX_BYTES`. */
  maxBytes?: number;
  /** Default `"drop-oldest"`. */
  policy?: OverflowPolicy;
  /** Size of one message in bytes; default its `byteLength` (0 when it has none). */
  sizeOf?: (message: T) => number;
}

/**
 * What `push` did: `"queued"`; `"evicted"` (queued, older messages dropped to make room);
 * `"dropped"` (the new message was discarded: drop-newest or oversize); `"full"` (block policy:
 * refused, retry after `writable()`); `"closed"` (the buffer is closed: discarded, counted in
 * `refused`).
 */
export type PushResult = "queued" | "evicted" | "dropped" | "full" | "closed";

/** Counters and levels, for inspection and metrics. Counters only grow. */
export interface BufferStats {
  readonly policy: OverflowPolicy;
  /** Messages queued now. */
  readonly length: number;
  /** Bytes queued now. */
  readonly bytes: number;
  readonly maxMessages: number;
  readonly maxBytes: number;
  /** Messages accepted into the queue, ever. */
  readonly accepted: number;
  /** Messages handed to the consumer, ever. */
  readonly delivered: number;
  /** Messages lost to overflow (evicted, discarded as newest, or oversize). */
  readonly dropped: number;
  /** Bytes of the messages counted in `dropped`. */
  readonly droppedBytes: number;
  /** Of `dropped`, the messages larger than a bound on their own. */
  readonly oversize: number;
  /** Pushes refused without loss on our side: `"full"` (block policy) and `"closed"`. */
  readonly refused: number;
  /** The most messages ever queued at once. */
  readonly highWater: number;
  readonly closed: boolean;
}

interface Waiter<T> {
  resolve(result: IteratorResult<T>): void;
  reject(error: Error): void;
}

function defaultSize(message: unknown): number {
  const n = (message as { byteLength?: unknown } | null)?.byteLength;
  return typeof n === "number" ? n : 0;
}

function bound(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return v;
}

/**
 * The buffer. One consumer: iterate it with `for await` (the loop ends once the buffer is
 * closed and drained), or pull with `shift()`. Several pending `next()` calls are served in
 * order. Leaving a `for await` loop early (`break`, `return`, a throw) closes the buffer and
 * discards what is queued, like unsubscribing.
 */
export class MessageBuffer<T> implements AsyncIterable<T> {
  readonly policy: OverflowPolicy;
  readonly maxMessages: number;
  readonly maxBytes: number;
  private readonly sizeOf: (message: T) => number;
  /** Ring of queued messages: `items[head .. head+length)` with their sizes in `sizes`. */
  private items: (T | undefined)[] = [];
  private sizes: number[] = [];
  private head = 0;
  private count = 0;
  private byteCount = 0;
  private readonly waiters: Waiter<T>[] = [];
  private writers: (() => void)[] = [];
  private isClosed = false;
  /** Why the buffer was closed, when it ended in an error (iteration throws it, after the queue). */
  private error: Error | undefined;
  private nAccepted = 0;
  private nDelivered = 0;
  private nDropped = 0;
  private nDroppedBytes = 0;
  private nOversize = 0;
  private nRefused = 0;
  private high = 0;

  constructor(options: BufferOptions<T> = {}) {
    this.maxMessages = bound(options.maxMessages, DEFAULT_MAX_MESSAGES, "maxMessages");
    this.maxBytes = bound(options.maxBytes, DEFAULT_MAX_BYTES, "maxBytes");
    const policy = options.policy ?? "drop-oldest";
    if (!OVERFLOW_POLICIES.includes(policy)) {
      throw new RangeError(
        `unknown overflow policy ${JSON.stringify(policy)}; use ${OVERFLOW_POLICIES.join(", ")}`,
      );
    }
    this.policy = policy;
    this.sizeOf = options.sizeOf ?? defaultSize;
  }

  /** Offers one message; see `PushResult`. Never throws for overflow. */
  push(message: T): PushResult {
    if (this.isClosed) {
      this.nRefused++;
      return "closed";
    }
    const size = this.sizeOf(message);
    // A consumer already waiting takes the message directly (the queue is empty then).
    const waiter = this.count === 0 ? this.waiters.shift() : undefined;
    if (waiter !== undefined && size <= this.maxBytes) {
      this.nAccepted++;
      this.nDelivered++;
      waiter.resolve({ value: message, done: false });
      return "queued";
    }
    if (waiter !== undefined) this.waiters.unshift(waiter);
    if (size > this.maxBytes) {
      this.drop(size);
      this.nOversize++;
      return "dropped";
    }
    const fits = () => this.count < this.maxMessages && this.byteCount + size <= this.maxBytes;
    let result: PushResult = "queued";
    if (!fits()) {
      if (this.policy === "block") {
        this.nRefused++;
        return "full";
      }
      if (this.policy === "drop-newest") {
        this.drop(size);
        return "dropped";
      }
      while (!fits()) {
        const evicted = this.take();
        this.drop(evicted.size);
      }
      result = "evicted";
    }
    this.append(message, size);
    this.nAccepted++;
    return result;
  }

  /** The next queued message without waiting, or undefined when the queue is empty. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const { message } = this.take();
    this.nDelivered++;
    this.wakeWriters();
    return message;
  }

  /**
   * Resolves when the buffer has room for at least one more message (below `maxMessages` and
   * `maxBytes`), or is closed; at once when that is true now. For the `"block"` policy's
   * producer: after a `"full"` push, await this and retry (a large message may need several
   * rounds).
   */
  writable(): Promise<void> {
    if (this.isClosed || (this.count < this.maxMessages && this.byteCount < this.maxBytes)) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.writers.push(resolve));
  }

  /**
   * Closes the buffer: later pushes return `"closed"`. By default queued messages are still
   * delivered and iteration ends after them; with `discard: true` they are dropped (counted)
   * and iteration ends at once. With `error`, iteration throws it instead of ending (after what
   * was queued). Idempotent.
   */
  close(options: { discard?: boolean; error?: Error } = {}): void {
    if (options.discard) {
      while (this.count > 0) this.drop(this.take().size);
    }
    if (this.isClosed) return;
    this.isClosed = true;
    this.error = options.error;
    this.wakeWriters();
    if (this.count === 0) {
      for (const w of this.waiters.splice(0)) this.end(w);
    }
  }

  private end(w: Waiter<T>): void {
    if (this.error) w.reject(this.error);
    else w.resolve({ value: undefined, done: true });
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Messages queued now. */
  get length(): number {
    return this.count;
  }

  /** Counters and levels. */
  stats(): BufferStats {
    return {
      policy: this.policy,
      length: this.count,
      bytes: this.byteCount,
      maxMessages: this.maxMessages,
      maxBytes: this.maxBytes,
      accepted: this.nAccepted,
      delivered: this.nDelivered,
      dropped: this.nDropped,
      droppedBytes: this.nDroppedBytes,
      oversize: this.nOversize,
      refused: this.nRefused,
      highWater: this.high,
      closed: this.isClosed,
    };
  }

  /** The next message, waiting for one; `done` once closed and drained (or the close's error). */
  next(): Promise<IteratorResult<T>> {
    if (this.count > 0) {
      const { message } = this.take();
      this.nDelivered++;
      this.wakeWriters();
      return Promise.resolve({ value: message, done: false });
    }
    if (this.isClosed) {
      return this.error
        ? Promise.reject(this.error)
        : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: (): Promise<IteratorResult<T>> => {
        this.close({ discard: true });
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private append(message: T, size: number): void {
    const cap = this.items.length;
    if (this.count === cap) {
      // Grow the ring (doubling), unrolling it so head is 0.
      const bigger = Math.max(8, cap * 2);
      const items: (T | undefined)[] = new Array(bigger);
      const sizes: number[] = new Array(bigger).fill(0);
      for (let i = 0; i < this.count; i++) {
        items[i] = this.items[(this.head + i) % cap];
        sizes[i] = this.sizes[(this.head + i) % cap] as number;
      }
      this.items = items;
      this.sizes = sizes;
      this.head = 0;
    }
    const at = (this.head + this.count) % this.items.length;
    this.items[at] = message;
    this.sizes[at] = size;
    this.count++;
    this.byteCount += size;
    if (this.count > this.high) this.high = this.count;
  }

  private take(): { message: T; size: number } {
    const message = this.items[this.head] as T;
    const size = this.sizes[this.head] as number;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.count--;
    this.byteCount -= size;
    if (this.isClosed && this.count === 0) {
      for (const w of this.waiters.splice(0)) this.end(w);
    }
    return { message, size };
  }

  private drop(size: number): void {
    this.nDropped++;
    this.nDroppedBytes += size;
  }

  private wakeWriters(): void {
    if (this.writers.length === 0) return;
    const writers = this.writers;
    this.writers = [];
    for (const w of writers) w();
  }
}
