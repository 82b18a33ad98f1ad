/**
 * Batches encoded frames for one long-lived stream: every frame written in the same tick goes to
 * the stream as one write, so a burst of small frames costs one hand-off to QUIC, not one each.
 * `backlog` tells the layer above how much is waiting, for its own overflow policy.
 */
import type { QuicStream } from "../quic/mod.ts";

/** A frame writer over one stream. */
export class ChannelWriter {
  #parts: Uint8Array[] = [];
  #bytes = 0;
  #scheduled = false;
  #error: Error | null = null;
  /** The stream's answer to the last write: settled once its queue is under its write buffer. */
  #lastWrite: Promise<void> = Promise.resolve();
  readonly #flush = () => this.#doFlush();

  constructor(
    readonly stream: QuicStream,
    private readonly onError: (e: Error) => void = () => {},
  ) {}

  /** Queues one encoded frame (never split, never reordered). False once the stream failed. */
  write(frame: Uint8Array): boolean {
    if (this.#error) return false;
    this.#parts.push(frame);
    this.#bytes += frame.length;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flush);
    }
    return true;
  }

  /** Writes what is queued and ends the stream (the peer reads to its end). No writes after. */
  end(): void {
    this.#doFlush();
    if (this.#error) return;
    this.#error = new Error("stream ended");
    this.stream.end().catch(() => {});
  }

  /**
   * Resolves once what is queued has gone to the stream and the stream holds less than its write
   * buffer (QUIC took the rest), or the stream failed: a producer that awaits it between bursts
   * keeps `backlog` bounded.
   */
  drained(): Promise<void> {
    if (this.#error) return Promise.resolve();
    this.#doFlush();
    return this.#lastWrite;
  }

  /** Bytes queued here or in the stream and not yet taken by QUIC. */
  get backlog(): number {
    return this.#bytes + this.stream.writableBytes;
  }

  /** The error that ended the stream, if any. */
  get error(): Error | null {
    return this.#error;
  }

  #doFlush(): void {
    this.#scheduled = false;
    const parts = this.#parts;
    if (parts.length === 0 || this.#error) return;
    let data: Uint8Array;
    if (parts.length === 1) data = parts[0]!;
    else {
      data = new Uint8Array(this.#bytes);
      let off = 0;
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        const n = p.length;
        if (n > 64) data.set(p, off);
        else for (let j = 0; j < n; j++) data[off + j] = p[j]!; // cheaper than set() this small
        off += n;
      }
    }
    this.#parts = [];
    this.#bytes = 0;
    this.#lastWrite = this.stream.write(data).catch((e: Error) => {
      if (this.#error) return;
      this.#error = e;
      this.onError(e);
    });
  }
}
