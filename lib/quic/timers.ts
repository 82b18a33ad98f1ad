/**
 * One timer per endpoint: a min-heap of deadlines with lazy deletion, armed with a single
 * `setTimeout` for the earliest one.
 */

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
  #heap: Entry<T>[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #armedAt = Infinity;
  #live = 0;
  constructor(private readonly fire: (items: T[]) => void) {}

  /** Sets (or clears, with `null`) the deadline of `item`, replacing any earlier one. */
  set(item: T, at: number | null): void {
    item.timerGen++;
    if (at === null) return;
    this.#push({ at, item, gen: item.timerGen });
    if (this.#heap.length > Math.max(1024, 4 * this.#live)) this.#compact();
    if (at < this.#armedAt) this.#arm(at);
  }

  /** Number of entries held (live and stale); for tests and stats. */
  get size(): number {
    return this.#heap.length;
  }

  /** Cancels the timer; entries stay but nothing fires until `set` is called again. */
  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#armedAt = Infinity;
    this.#heap = [];
  }

  #arm(at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(() => this.#run(), Math.max(0, at - Date.now()));
  }

  #run(): void {
    this.#timer = null;
    this.#armedAt = Infinity;
    const now = Date.now();
    const due: T[] = [];
    while (this.#heap.length > 0 && this.#heap[0]!.at <= now) {
      const e = this.#pop();
      if (e.gen === e.item.timerGen) {
        e.item.timerGen++;
        due.push(e.item);
      }
    }
    if (due.length > 0) this.fire(due);
    const top = this.#heap[0];
    if (top && top.at < this.#armedAt) this.#arm(top.at);
  }

  #compact(): void {
    this.#heap = this.#heap.filter((e) => e.gen === e.item.timerGen);
    this.#live = this.#heap.length;
    // Heapify.
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #push(e: Entry<T>): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= e.at) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  #pop(): Entry<T> {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.#down(0);
    }
    return top;
  }

  #down(i: number): void {
    const h = this.#heap;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1]!.at < h[c]!.at) c++;
      if (h[c]!.at >= e.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = e;
  }
}
