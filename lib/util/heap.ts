/**
 * A binary min-heap ordered by `less`. Pure (no clocks, no IO), for deadline queues that delete
 * lazily: stale entries stay until popped, or until `retain` compacts them away.
 */
export class MinHeap<E> {
  #h: E[] = [];
  constructor(private readonly less: (a: E, b: E) => boolean) {}

  /** Entries held (live and stale). */
  get size(): number {
    return this.#h.length;
  }

  /** The smallest entry, or undefined when empty. */
  peek(): E | undefined {
    return this.#h[0];
  }

  push(e: E): void {
    const h = this.#h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(e, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  /** Removes and returns the smallest entry, or undefined when empty. */
  pop(): E | undefined {
    const h = this.#h;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0) {
      h[0] = last!;
      this.#down(0);
    }
    return top;
  }

  /** Keeps only the entries `keep` accepts (compaction after lazy deletion). */
  retain(keep: (e: E) => boolean): void {
    this.#h = this.#h.filter(keep);
    for (let i = (this.#h.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  clear(): void {
    this.#h = [];
  }

  #down(i: number): void {
    const h = this.#h;
    const n = h.length;
    const e = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.less(h[c + 1]!, h[c]!)) c++;
      if (!this.less(h[c]!, e)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = e;
  }
}
