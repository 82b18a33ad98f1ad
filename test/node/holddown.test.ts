/** Hold-downs (lib/node/holddown.ts): doubling, its cap, forgetting, and the bound on identities. */
import { describe, expect, test } from "bun:test";
import { HOLD_DOWN, HoldDowns } from "../../lib/node/holddown.ts";

describe("hold-downs", () => {
  test("a strike holds an identity down for a second; the refusal says how long and why", () => {
    const h = new HoldDowns();
    expect(h.check("a", 0)).toBeNull();
    h.strike("a", "too many refused operations", 10_000);
    expect(h.check("a", 10_000)).toBe(
      "held down for 1 s more: a session of this certificate was closed for misbehaving (too many refused operations)",
    );
    expect(h.check("b", 10_000)).toBeNull(); // others are not affected
    expect(h.check("a", 10_000 + HOLD_DOWN.firstMs)).toBeNull(); // over
    expect(h.stats(10_000 + 1)).toEqual({ held: 1, strikes: 1, refused: 1 });
    expect(h.stats(10_000 + HOLD_DOWN.firstMs)).toEqual({ held: 0, strikes: 1, refused: 1 });
  });

  test("repeats double the hold-down up to the cap; a long quiet time forgets them", () => {
    const h = new HoldDowns();
    let now = 0;
    const held: number[] = [];
    for (let i = 0; i < 10; i++) {
      h.strike("a", "x", now);
      let ms = 0;
      while (h.check("a", now + ms) !== null) ms += 250;
      held.push(ms);
      now += ms; // strikes again as soon as it is let back in
    }
    expect(held).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000]);
    // Quiet for `forgetMs` after the last hold-down ended: the next strike is a first one again.
    now += HOLD_DOWN.forgetMs;
    h.strike("a", "x", now);
    expect(h.check("a", now + 999)).not.toBeNull();
    expect(h.check("a", now + 1000)).toBeNull();
  });

  test("the identities held are bounded: the oldest strikes go first", () => {
    const h = new HoldDowns();
    for (let i = 0; i <= HOLD_DOWN.maxIdentities; i++) h.strike(`id${i}`, "x", 0);
    expect(h.stats(0).held).toBe(HOLD_DOWN.maxIdentities);
    expect(h.check("id0", 0)).toBeNull(); // the oldest, let go
    expect(h.check(`id${HOLD_DOWN.maxIdentities}`, 0)).not.toBeNull();
  });
});
