/**
 * Token buckets per key (a peer, an address): `take(key, n, now)` spends `n` tokens when the
 * key's bucket holds them. Buckets refill at `perSecond` up to `burst`; at most `maxKeys` are
 * kept (the least recently used is forgotten first, which only ever gives a key a full bucket
 * back), so a flood of new keys costs bounded memory.
 *
 * @example
 * ```ts
 * const punches = new RateLimiter<string>({ perSecond: 0.5, burst: 4, maxKeys: 4096 });
 * if (!punches.take(peerId, 1, monoNow())) throw new Error("too many punch requests");
 * ```
 */
export class RateLimiter<K> {
  readonly #buckets = new Map<K, Bucket<K>>();
  /**
   * The buckets from least to most recently used, as a linked list: a `take` moves its bucket to
   * the end without touching the Map (a delete and re-insert per take was most of the cost of a
   * router's INTEREST frame).
   */
  #oldest: Bucket<K> | undefined;
  #newest: Bucket<K> | undefined;

  constructor(readonly o: { perSecond: number; burst: number; maxKeys: number }) {}

  /** Spends `n` tokens of `key` at `now` (ms); false, spending nothing, when it has fewer. */
  take(key: K, n: number, now: number): boolean {
    const { perSecond, burst, maxKeys } = this.o;
    let b = this.#buckets.get(key);
    if (b) {
      if (b !== this.#newest) {
        this.#unlink(b);
        this.#append(b);
      }
    } else {
      if (this.#buckets.size >= maxKeys && this.#oldest) this.forget(this.#oldest.key);
      b = { key, tokens: burst, at: now, older: undefined, newer: undefined };
      this.#buckets.set(key, b);
      this.#append(b);
    }
    b.tokens = Math.min(burst, b.tokens + Math.max(0, now - b.at) * perSecond / 1000);
    b.at = now;
    if (b.tokens < n) return false;
    b.tokens -= n;
    return true;
  }

  /** Forgets `key` (its next `take` starts from a full bucket). */
  forget(key: K): void {
    const b = this.#buckets.get(key);
    if (!b) return;
    this.#buckets.delete(key);
    this.#unlink(b);
  }

  /** Keys held now. */
  get size(): number {
    return this.#buckets.size;
  }

  #unlink(b: Bucket<K>): void {
    if (b.older) b.older.newer = b.newer;
    else this.#oldest = b.newer;
    if (b.newer) b.newer.older = b.older;
    else this.#newest = b.older;
    b.older = b.newer = undefined;
  }

  #append(b: Bucket<K>): void {
    b.older = this.#newest;
    if (this.#newest) this.#newest.newer = b;
    else this.#oldest = b;
    this.#newest = b;
  }
}

/** One key's tokens, and its neighbours in the order of use. */
interface Bucket<K> {
  readonly key: K;
  tokens: number;
  at: number;
  older: Bucket<K> | undefined;
  newer: Bucket<K> | undefined;
}
