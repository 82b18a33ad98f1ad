/** The distance-vector path table of lib/mesh/routing (docs/routing.md). */
import { expect, test } from "bun:test";
import { MAX_HOPS, PathTable } from "../../lib/mesh/routing/mod.ts";

test("the best path: fewest hops, then lowest RTT sum, then the lower link id", () => {
  const t = new PathTable();
  expect(t.offer("far", "r2", 3, 1.5)).toBe(true);
  expect(t.offer("far", "r1", 2, 9)).toBe(true); // fewer hops, whatever the RTT
  expect(t.best("far")).toEqual({ link: "r1", hops: 2, rtt: 9 });
  expect(t.offer("far", "r4", 2, 1.5)).toBe(true); // same hops, lower RTT
  expect(t.offer("far", "r0", 2, 1.5)).toBe(true); // same hops and RTT, lower id
  expect(t.offer("far", "r3", 2, 1.5)).toBe(false); // same hops and RTT, higher id
  expect(t.best("far")?.link).toBe("r0");
  expect(t.offers("far")).toBe(5);
  // Only the RTT of the best changed: nothing for the neighbours to hear (no hop or link change).
  expect(t.offer("far", "r0", 2, 1.2)).toBe(false);
});

test("a withdrawal, a dropped link, and an offer at the hop limit each fall back to the next best", () => {
  const t = new PathTable();
  t.offer("far", "r1", 2, 1);
  t.offer("far", "r2", 4, 5);
  t.offer("other", "r1", 1, 1);
  expect(t.offer("far", "r1", MAX_HOPS, 1)).toBe(true); // infinity: a withdrawal
  expect(t.best("far")?.link).toBe("r2");
  expect(t.dropLink("r1")).toEqual(["other"]);
  expect(t.best("other")).toBeUndefined();
  expect(t.withdraw("far", "r2")).toBe(true);
  expect(t.size).toBe(0);
});

test("nextHop: a frame goes back where it came from only when no other path is offered", () => {
  const t = new PathTable();
  t.offer("far", "r1", 2, 1);
  t.offer("far", "r2", 3, 4);
  t.offer("far", "r3", 3, 2);
  expect(t.nextHop("far", undefined)?.link).toBe("r1");
  expect(t.nextHop("far", "r2")?.link).toBe("r1");
  expect(t.nextHop("far", "r1")).toEqual({ link: "r3", hops: 3, rtt: 2 });
  t.withdraw("far", "r2");
  t.withdraw("far", "r3");
  expect(t.nextHop("far", "r1")?.link).toBe("r1");
  expect(t.nextHop("nowhere", "r1")).toBeUndefined();
});

test("a link being let go offers a last resort: any other path wins, an origin only it reaches keeps it", () => {
  const t = new PathTable();
  t.offer("far", "r1", 1, 1);
  t.offer("far", "r2", 5, 9);
  t.offer("only", "r1", 2, 1);
  expect(t.retire("r1")).toEqual(["far"]);
  expect(t.best("far")?.link).toBe("r2");
  expect(t.best("only")?.link).toBe("r1");
  expect(t.retire("r1")).toEqual([]); // once
  // A better offer over the retiring link changes nothing; a new link beats it.
  expect(t.offer("far", "r1", 1, 0.1)).toBe(false);
  expect(t.offer("only", "r3", 9, 20)).toBe(true);
  expect(t.best("only")?.link).toBe("r3");
  expect(t.nextHop("far", "r2")?.link).toBe("r1"); // still the way out when nothing else is left
  // Gone: no longer retiring (a new link with the same id would count in full).
  t.dropLink("r1");
  t.offer("far", "r1", 1, 1);
  expect(t.best("far")?.link).toBe("r1");
});
test("a slot offers without a lookup and stays valid when its origin's offers come and go", () => {
  const t = new PathTable();
  const s = t.slot("far");
  expect(t.size).toBe(0); // a slot alone is no origin
  expect(t.offerTo(s, "r1", 2, 1)).toBe(true);
  expect(t.best("far")).toEqual({ link: "r1", hops: 2, rtt: 1 });
  expect(t.offerTo(s, "r2", 2, 0.5)).toBe(true);
  expect(t.offers("far")).toBe(2);
  t.withdraw("far", "r1");
  t.withdraw("far", "r2");
  expect(t.size).toBe(0);
  // Emptied, then offered again through the same slot: a fresh entry, no stale best.
  expect(t.offerTo(s, "r3", 5, 9)).toBe(true);
  expect(t.best("far")).toEqual({ link: "r3", hops: 5, rtt: 9 });
  t.forget("far");
  expect(t.best("far")).toBeUndefined();
  expect(t.offerTo(s, "r4", 3, 3)).toBe(true);
  expect(t.best("far")?.link).toBe("r4");
  // A stale slot whose origin another entry holds now offers to that entry.
  t.forget("far");
  t.offer("far", "r5", 1, 1);
  expect(t.offerTo(s, "r6", 4, 4)).toBe(false);
  expect(t.offers("far")).toBe(2);
  expect(t.best("far")?.link).toBe("r5");
});

test("dropLink and retire report origins in the order the link started offering them", () => {
  const t = new PathTable();
  t.offer("b", "r1", 1, 1);
  t.offer("a", "r1", 1, 1);
  t.offer("c", "r1", 1, 1);
  t.withdraw("b", "r1");
  t.offer("b", "r1", 1, 1); // started again: now last
  t.offer("a", "r2", 3, 3);
  expect(t.retire("r1")).toEqual(["a"]);
  expect(t.dropLink("r1")).toEqual(["c", "b"]);
  expect(t.size).toBe(1);
});
