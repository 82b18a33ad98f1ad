/** RateLimiter: token buckets per key, refilled by the clock given, bounded in keys. */
import { describe, expect, test } from "bun:test";
import { RateLimiter } from "../../lib/util/mod.ts";

describe("RateLimiter", () => {
  test("a burst, then the rate; spending nothing when refused", () => {
    const r = new RateLimiter<string>({ perSecond: 2, burst: 3, maxKeys: 10 });
    expect([1, 2, 3, 4].map(() => r.take("a", 1, 0))).toEqual([true, true, true, false]);
    expect(r.take("a", 1, 499)).toBe(false); // 0.998 tokens
    expect(r.take("a", 1, 500)).toBe(true); // one token in 500 ms at 2/s
    expect(r.take("a", 2, 1000)).toBe(false); // only one came back
    expect(r.take("a", 1, 1000)).toBe(true);
    expect(r.take("b", 3, 1000)).toBe(true); // keys are independent
    expect(r.take("a", 1, 100_000)).toBe(true); // refills only up to the burst
    expect([1, 2, 3].map(() => r.take("a", 1, 100_000))).toEqual([true, true, false]);
  });

  test("at most maxKeys buckets: the least recently used is forgotten (a full bucket again)", () => {
    const r = new RateLimiter<number>({ perSecond: 0, burst: 1, maxKeys: 3 });
    for (const k of [1, 2, 3]) expect(r.take(k, 1, 0)).toBe(true);
    expect(r.take(1, 1, 0)).toBe(false); // 1 is now the most recent
    expect(r.take(4, 1, 0)).toBe(true); // 2 goes
    expect(r.size).toBe(3);
    expect(r.take(3, 1, 0)).toBe(false);
    expect(r.take(2, 1, 0)).toBe(true); // forgotten: starts full
    r.forget(2);
    expect(r.take(2, 1, 0)).toBe(true);
  });
});

test("a bucket taken out of the middle of the order keeps the rest in order", () => {
  const r = new RateLimiter<number>({ perSecond: 0, burst: 1, maxKeys: 3 });
  for (const k of [1, 2, 3]) expect(r.take(k, 1, 0)).toBe(true);
  expect(r.take(2, 1, 0)).toBe(false); // 1, 3, 2
  r.forget(3); // 1, 2
  expect(r.take(4, 1, 0)).toBe(true); // 1, 2, 4
  expect(r.take(5, 1, 0)).toBe(true); // 1 goes
  expect(r.take(1, 1, 0)).toBe(true); // forgotten: full again; 2 goes
  expect(r.take(4, 1, 0)).toBe(false);
  expect(r.take(2, 1, 0)).toBe(true);
  expect(r.size).toBe(3);
});
