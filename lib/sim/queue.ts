/**
 * The simulator's event queue: one binary min-heap ordered by (time, sequence number), over
 * records of a single shape (so property access stays monomorphic) that are recycled through a
 * free list instead of being allocated per event; the keys are kept beside the records in typed
 * arrays, so that sifting reads no record. Specialised rather than `MinHeap` from
 * lib/util/heap.ts because the comparison is inlined; see docs/simulator.md for the measurement.
 */

/** Event kinds. */
export const DELIVER = 0;
export const TIMER = 1;
export const RESUME = 2;
export const ACTION = 3;

/** One scheduled event. Every field is always present, whatever the kind. */
export interface Ev {
  /** Sim time (ms) it fires at. */
  t: number;
  /** Tie-break: the order it was scheduled in. */
  seq: number;
  kind: number;
  /** Node index (DELIVER: recipient; TIMER/RESUME: owner); -1 for ACTION. */
  node: number;
  /** TIMER: the node's timer generation; RESUME: its pause generation; DELIVER: sender index. */
  gen: number;
  /** DELIVER: sender address. */
  from: string;
  /** DELIVER: the message. */
  msg: unknown;
  /** DELIVER: its size in bytes. */
  size: number;
  /** ACTION: what to run. */
  fn: (() => void) | null;
}

export class EventQueue {
  /**
   * The heap: its records, and their (time, sequence number) keys beside them in typed arrays.
   * A sift compares keys only, read from two dense arrays (children side by side), instead of
   * reaching into a record per comparison: in a queue of a million events every record is cold.
   */
  #h: Ev[] = [];
  #t = new Float64Array(1024);
  #s = new Float64Array(1024);
  #free: Ev[] = [];
  #seq = 0;

  /** Events queued (including stale timers and resumes not yet popped). */
  get size(): number {
    return this.#h.length;
  }

  /** The time of the earliest event, or Infinity when empty. */
  peekTime(): number {
    return this.#h.length === 0 ? Infinity : this.#t[0]!;
  }

  /** A blank record (recycled when possible), stamped with `t` and the next sequence number. */
  alloc(t: number, kind: number, node: number, gen: number): Ev {
    const e = this.#free.pop();
    const seq = this.#seq++;
    if (e === undefined) {
      return { t, seq, kind, node, gen, from: "", msg: undefined, size: 0, fn: null };
    }
    e.t = t;
    e.seq = seq;
    e.kind = kind;
    e.node = node;
    e.gen = gen;
    return e;
  }

  /** Returns a record popped earlier to the free list (dropping its references). */
  release(e: Ev): void {
    e.msg = undefined;
    e.fn = null;
    e.from = "";
    this.#free.push(e);
  }

  push(e: Ev): void {
    const h = this.#h;
    let i = h.length;
    if (i === this.#t.length) this.#grow();
    const ts = this.#t, ss = this.#s;
    h.push(e);
    const t = e.t, s = e.seq;
    while (i > 0) {
      const pi = (i - 1) >> 1;
      const pt = ts[pi]!;
      if (pt < t || (pt === t && ss[pi]! < s)) break;
      h[i] = h[pi]!;
      ts[i] = pt;
      ss[i] = ss[pi]!;
      i = pi;
    }
    h[i] = e;
    ts[i] = t;
    ss[i] = s;
  }

  /** Removes and returns the earliest event, or undefined when empty. */
  pop(): Ev | undefined {
    const h = this.#h;
    const top = h[0];
    const last = h.pop();
    const n = h.length;
    if (n === 0 || last === undefined) return top;
    const ts = this.#t, ss = this.#s;
    const t = ts[n]!, s = ss[n]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      let ct = ts[c]!, cs = ss[c]!;
      if (c + 1 < n) {
        const rt = ts[c + 1]!, rs = ss[c + 1]!;
        if (rt < ct || (rt === ct && rs < cs)) {
          c++;
          ct = rt;
          cs = rs;
        }
      }
      if (t < ct || (t === ct && s < cs)) break;
      h[i] = h[c]!;
      ts[i] = ct;
      ss[i] = cs;
      i = c;
    }
    h[i] = last;
    ts[i] = t;
    ss[i] = s;
    return top;
  }

  /** Keeps only the events `keep` accepts (the rest are recycled), and restores heap order. */
  retain(keep: (e: Ev) => boolean): void {
    const kept: Ev[] = [];
    for (const e of this.#h) {
      if (keep(e)) kept.push(e);
      else this.release(e);
    }
    kept.sort((a, b) => a.t - b.t || a.seq - b.seq); // a sorted array is a valid heap
    this.#h = kept;
    kept.forEach((e, i) => {
      this.#t[i] = e.t;
      this.#s[i] = e.seq;
    });
  }

  /** Twice the room for keys. */
  #grow(): void {
    const t = new Float64Array(2 * this.#t.length);
    const s = new Float64Array(2 * this.#s.length);
    t.set(this.#t);
    s.set(this.#s);
    this.#t = t;
    this.#s = s;
  }
}
