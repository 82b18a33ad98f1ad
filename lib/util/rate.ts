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
  readonly #buckets = new Map<K, { tokens: number; at: number }>();

  constructor(readonly o: { perSecond: number; burst: number; maxKeys: number }) {}

  /** Spends `n` tokens of `key` at `now` (ms); false, spending nothing, when it has fewer. */
  take(key: K, n: number, now: number): boolean {
    const { perSecond, burst, maxKeys } = this.o;
    let b = this.#buckets.get(key);
    if (b) this.#buckets.delete(key); // re-inserted below: most recently used last
    else {
      b = { tokens: burst, at: now };
      if (this.#buckets.size >= maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    b.tokens = Math.min(burst, b.tokens + Math.max(0, now - b.at) * perSecond / 1000);
    b.at = now;
    this.#buckets.set(key, b);
    if (b.tokens < n) return false;
    b.tokens -= n;
    return true;
  }

  /** Forgets `key` (its next `take` starts from a full bucket). */
  forget(key: K): void {
    this.#buckets.delete(key);
  }

  /** Keys held now. */
  get size(): number {
    return this.#buckets.size;
  }
}
