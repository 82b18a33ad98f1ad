/**
 * QUIC streams as async iterables of `Uint8Array` chunks (reading) plus a promise-returning
 * `write()` (writing), with backpressure both ways:
 *
 * - reading: at most `readBufferBytes` are pulled out of quiche and held for a slow reader; past
 *   that the stream is left in quiche, whose flow control then stops the sender;
 * - writing: `write()` resolves at once while the stream's own queue holds less than
 *   `writeBufferBytes`, and otherwise when the queue drains into quiche (which takes only what
 *   flow control allows). `await` every write and memory stays bounded.
 *
 * Small writes made in the same tick are coalesced into one `streamSend`.
 */
import { QUIC_DEFAULTS } from "./defaults.ts";
import { QuicError, quicheStreamError } from "./errors.ts";
import type { Connection } from "./native.ts";

/** What a stream needs from its connection. */
export interface StreamOwner {
  readonly native: Connection;
  /** The stream has data or a FIN to push into quiche. */
  wantWrite(s: QuicStream): void;
  /** The reader made room: pull more from quiche. */
  wantRead(s: QuicStream): void;
  /** Both directions are finished: forget the stream. */
  streamDone(s: QuicStream): void;
}

const EMPTY = new Uint8Array(0);
const RESOLVED = Promise.resolve();
/** Writes smaller than this are concatenated with their neighbours before `streamSend`. */
const COALESCE_BELOW = 16 * 1024;

/**
 * Where stream data is received: quiche copies into a large slab and the application gets views
 * of it, so big reads cost no second copy and few allocations. Small reads are copied out (and
 * the space reused) so a retained small chunk never pins a slab.
 */
export class RecvSlab {
  static readonly SIZE = 512 * 1024;
  static readonly AREA = 64 * 1024;
  /** Reads smaller than this are copied out. */
  static readonly COPY_BELOW = 16 * 1024;
  #buf = new Uint8Array(RecvSlab.SIZE);
  #off = 0;

  /** A view of at least `AREA` bytes to receive into. */
  area(): Uint8Array {
    if (RecvSlab.SIZE - this.#off < RecvSlab.AREA) {
      this.#buf = new Uint8Array(RecvSlab.SIZE);
      this.#off = 0;
    }
    return this.#buf.subarray(this.#off, this.#off + RecvSlab.AREA);
  }

  /** The first `n` bytes of the last area, as a chunk the caller owns. */
  take(n: number): Uint8Array {
    const start = this.#off;
    if (n < RecvSlab.COPY_BELOW) return this.#buf.slice(start, start + n);
    this.#off += n;
    return this.#buf.subarray(start, start + n);
  }
}

/** Shutdown direction in quiche's `streamShutdown`. */
const SHUTDOWN_READ = 0;
const SHUTDOWN_WRITE = 1;

/** One QUIC stream. Use `for await (const chunk of stream)` to read, `write`/`end` to write. */
export class QuicStream implements AsyncIterable<Uint8Array> {
  /** Bidirectional streams can be read and written; unidirectional ones only one way. */
  readonly bidi: boolean;
  /** True when this side opened the stream. */
  readonly local: boolean;

  // Reading.
  #chunks: Uint8Array[] = [];
  #chunkHead = 0;
  #buffered = 0;
  #readDone: boolean;
  #readError: Error | null = null;
  #reader: ((v: void) => void) | null = null;

  // Writing.
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #finRequested = false;
  #writeDone: boolean;
  #writeError: Error | null = null;
  #drainWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #blocked = false;

  constructor(
    private readonly owner: StreamOwner,
    readonly id: number,
    isClient: boolean,
    private readonly readBufferBytes: number,
    private readonly writeBufferBytes: number,
  ) {
    this.bidi = (id & 2) === 0;
    this.local = ((id & 1) === 1) !== isClient;
    // A unidirectional stream has only the direction its opener writes.
    this.#readDone = !this.bidi && this.local;
    this.#writeDone = !this.bidi && !this.local;
  }

  /** Bytes received and not yet read by the application. */
  get readableBytes(): number {
    return this.#buffered;
  }

  /** Bytes written by the application and not yet taken by quiche. */
  get writableBytes(): number {
    return this.#pendingBytes;
  }

  /** True while the writer is waiting on flow control. */
  get blocked(): boolean {
    return this.#blocked;
  }

  // ---------------------------------------------------------------- reading

  /**
   * Called by the connection: pull what quiche has, up to the read buffer bound. True when
   * something reached the application (data, the end, or an error).
   */
  pull(slab: RecvSlab): boolean {
    if (this.#readDone) {
      this.#discard(slab.area());
      return false;
    }
    const native = this.owner.native;
    let got = false;
    while (this.#buffered < this.readBufferBytes) {
      let r: [number, boolean] | null;
      try {
        r = native.streamRecv(this.id, slab.area());
      } catch (e) {
        this.#failRead(quicheStreamError(e));
        return true;
      }
      if (r === null) return got;
      const n = r[0];
      if (n > 0) {
        this.#chunks.push(slab.take(n));
        this.#buffered += n;
        got = true;
      }
      if (r[1]) {
        this.#readDone = true;
        this.#wakeReader();
        this.#maybeDone();
        return true;
      }
      if (n > 0) this.#wakeReader();
      // Less than the area: quiche had nothing more contiguous to give (saves a call).
      if (n < RecvSlab.AREA) return got;
    }
    return got;
  }

  /** Reads and drops data for a stream the application no longer reads. */
  #discard(scratch: Uint8Array): void {
    const native = this.owner.native;
    for (let i = 0; i < 1024; i++) {
      try {
        if (native.streamRecv(this.id, scratch) === null) return;
      } catch {
        return;
      }
    }
  }

  #wakeReader(): void {
    const r = this.#reader;
    if (r) {
      this.#reader = null;
      r();
    }
  }

  #failRead(e: Error): void {
    if (this.#readDone && this.#readError === null && this.#buffered === 0) {
      this.#maybeDone();
      return;
    }
    this.#readError = e;
    this.#readDone = true;
    this.#chunks = [];
    this.#chunkHead = 0;
    this.#buffered = 0;
    this.#wakeReader();
    this.#maybeDone();
  }

  /**
   * The next chunk, or `null` at the end of the stream. Rejects with `StreamResetError` when the
   * peer reset it, or `ConnectionClosedError` when the connection ended first.
   */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      if (this.#chunkHead < this.#chunks.length) {
        const c = this.#chunks[this.#chunkHead]!;
        this.#chunks[this.#chunkHead++] = EMPTY;
        if (this.#chunkHead === this.#chunks.length) {
          this.#chunks = [];
          this.#chunkHead = 0;
        }
        const before = this.#buffered;
        this.#buffered -= c.length;
        if (before >= this.readBufferBytes && this.#buffered < this.readBufferBytes) {
          this.owner.wantRead(this);
        }
        return c;
      }
      if (this.#readError) throw this.#readError;
      if (this.#readDone) return null;
      await new Promise<void>((r) => (this.#reader = r));
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const c = await this.read();
      if (c === null) return;
      yield c;
    }
  }

  /** Reads the whole stream into one buffer; rejects past `limit` bytes. */
  async readAll(limit: number = QUIC_DEFAULTS.readAllLimit): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for await (const c of this) {
      total += c.length;
      if (total > limit) {
        this.stopSending(0);
        throw new QuicError(`stream ${this.id} exceeded the ${limit}-byte limit of readAll`);
      }
      parts.push(c);
    }
    if (parts.length === 1) return parts[0]!;
    const out = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }

  /** Tells the peer to stop sending (STOP_SENDING) and drops what was buffered. */
  stopSending(code = 0): void {
    if (this.#readDone && this.#buffered === 0) return;
    try {
      this.owner.native.streamShutdown(this.id, SHUTDOWN_READ, code);
    } catch {
      // stream already gone in quiche
    }
    this.#failRead(new QuicError(`stream ${this.id}: reading stopped locally (code ${code})`));
    this.owner.wantWrite(this);
  }

  // ---------------------------------------------------------------- writing

  /**
   * Queues `data`. Resolves when it is safe to write more (at once while the queue is short).
   * The bytes must not be changed after the call. Rejects when the stream or connection failed.
   */
  write(data: Uint8Array): Promise<void> {
    if (this.#writeError) return Promise.reject(this.#writeError);
    if (this.#finRequested || this.#writeDone) {
      return Promise.reject(new QuicError(`stream ${this.id}: write after end`));
    }
    if (data.length === 0) return RESOLVED;
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    this.owner.wantWrite(this);
    if (this.#pendingBytes < this.writeBufferBytes) return RESOLVED;
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  /** Writes `data` (optional) and then FIN. Resolves when all of it has been handed to quiche. */
  end(data?: Uint8Array): Promise<void> {
    if (this.#writeError) return Promise.reject(this.#writeError);
    if (this.#finRequested || this.#writeDone) return RESOLVED;
    if (data && data.length > 0) {
      this.#pending.push(data);
      this.#pendingBytes += data.length;
    }
    this.#finRequested = true;
    this.owner.wantWrite(this);
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  /** Abandons sending (RESET_STREAM) with an application code; queued data is dropped. */
  reset(code = 0): void {
    if (this.#writeDone) return;
    try {
      this.owner.native.streamShutdown(this.id, SHUTDOWN_WRITE, code);
    } catch {
      // stream not yet known to quiche, or already gone
    }
    this.#failWrite(new QuicError(`stream ${this.id}: reset locally (code ${code})`));
    this.owner.wantWrite(this);
  }

  /**
   * Called by the connection: push queued data into quiche. Returns false while flow control
   * blocks the stream (the connection retries when quiche reports it writable).
   */
  push(): boolean {
    if (this.#writeDone) return true;
    const native = this.owner.native;
    try {
      while (this.#pending.length > 0) {
        let chunk = this.#pending[0]!;
        let taken = 1;
        if (chunk.length < COALESCE_BELOW && this.#pending.length > 1) {
          let total = chunk.length;
          while (taken < this.#pending.length && total < 4 * COALESCE_BELOW) {
            total += this.#pending[taken]!.length;
            taken++;
          }
          if (taken > 1) {
            const joined = new Uint8Array(total);
            let off = 0;
            for (let i = 0; i < taken; i++) {
              joined.set(this.#pending[i]!, off);
              off += this.#pending[i]!.length;
            }
            chunk = joined;
          }
        }
        const last = taken === this.#pending.length;
        const fin = last && this.#finRequested;
        const n = native.streamSend(this.id, chunk, fin);
        if (n === null || n === 0) {
          if (taken > 1) this.#pending.splice(0, taken, chunk);
          this.#blocked = true;
          return false;
        }
        this.#pendingBytes -= n;
        if (n < chunk.length) {
          this.#pending.splice(0, taken, chunk.subarray(n));
          this.#blocked = true;
          this.#wakeWriters();
          return false;
        }
        this.#pending.splice(0, taken);
        if (fin) this.#writeDone = true;
      }
      if (this.#finRequested && !this.#writeDone) {
        // A FIN alone (the data went out earlier). Known quiche bug (fixed upstream after the
        // version we ship, cloudflare/quiche#2525): if this FIN-only frame is lost once all data
        // was acknowledged and our read side is finished, the stream is collected and the FIN
        // never retransmitted. `end(lastChunk)` sends the FIN with data and avoids it.
        if (native.streamSend(this.id, EMPTY, true) === null) {
          this.#blocked = true;
          return false;
        }
        this.#writeDone = true;
      }
    } catch (e) {
      this.#failWrite(quicheStreamError(e));
      return true;
    }
    this.#blocked = false;
    this.#wakeWriters();
    if (this.#writeDone) this.#maybeDone();
    return true;
  }

  #wakeWriters(): void {
    if (this.#drainWaiters.length === 0) return;
    if (
      this.#finRequested
        ? this.#pendingBytes > 0 || !this.#writeDone
        : this.#pendingBytes >= this.writeBufferBytes
    ) {
      return;
    }
    const ws = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of ws) w.resolve();
  }

  #failWrite(e: Error): void {
    this.#writeError = e;
    this.#writeDone = true;
    this.#pending = [];
    this.#pendingBytes = 0;
    const ws = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of ws) w.reject(e);
    this.#maybeDone();
  }

  /** Called by the connection when it ends: every waiter learns why. */
  abort(e: Error): void {
    if (!this.#readDone || this.#buffered > 0) {
      // Data already received stays readable; the end of the stream becomes the error.
      this.#readError = e;
      this.#readDone = true;
      this.#wakeReader();
    }
    if (!this.#writeDone) this.#failWrite(e);
  }

  #maybeDone(): void {
    if (this.#readDone && this.#writeDone) this.owner.streamDone(this);
  }
}
