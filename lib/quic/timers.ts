/**
 * One timer per endpoint: a min-heap of deadlines with lazy deletion, armed with a single
 * `setTimeout` for the earliest one.
 */
import { MinHeap, monoNow } from "../util/mod.ts";

interface Entry<T> {
  at: number;
  item: T;
  gen: number;
}

/** Anything with a deadline generation (bumped whenever its deadline changes). */
export interface Timed {
  timerGen: number;
}

/** A min-heap scheduler calling `fire(item)` for each item whose deadline has passed. */
export class TimerHeap<T extends Timed> {
  readonly #heap = new MinHeap<Entry<T>>((a, b) => a.at < b.at);
  #timer: ReturnType<typeof setTimeout> | null = null;
  #armedAt = Infinity;
  #live = 0;
  constructor(private readonly fire: (items: T[]) => void) {}

  /** Sets (or clears, with `null`) the deadline of `item`, replacing any earlier one. */
  set(item: T, at: number | null): void {
    item.timerGen++;
    if (at === null) return;
    this.#heap.push({ at, item, gen: item.timerGen });
    if (this.#heap.size > Math.max(1024, 4 * this.#live)) {
      this.#heap.retain((e) => e.gen === e.item.timerGen);
      this.#live = this.#heap.size;
    }
    if (at < this.#armedAt) this.#arm(at);
  }

  /** Number of entries held (live and stale); for tests and stats. */
  get size(): number {
    return this.#heap.size;
  }

  /** Cancels the timer; entries stay but nothing fires until `set` is called again. */
  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#armedAt = Infinity;
    this.#heap.clear();
  }

  #arm(at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#armedAt = at;
    // Clamped: a delay past 2^31 - 1 ms fires at once; a far deadline fires early and re-arms.
    this.#timer = setTimeout(() => this.#run(), Math.min(2 ** 31 - 1, Math.max(0, at - monoNow())));
  }

  #run(): void {
    this.#timer = null;
    this.#armedAt = Infinity;
    const now = monoNow();
    const due: T[] = [];
    for (let e = this.#heap.peek(); e !== undefined && e.at <= now; e = this.#heap.peek()) {
      this.#heap.pop();
      if (e.gen === e.item.timerGen) {
        e.item.timerGen++;
        due.push(e.item);
      }
    }
    if (due.length > 0) this.fire(due);
    const top = this.#heap.peek();
    if (top && top.at < this.#armedAt) this.#arm(top.at);
  }
}
