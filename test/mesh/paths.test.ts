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

test("many origins over many links: the table grows, and an origin's place is reused cleanly", () => {
  const t = new PathTable();
  const links = ["r1", "r2", "r3", "r4"];
  // 300 origins (past the first room of each link's offers), each offered by every link.
  for (let o = 0; o < 300; o++) {
    links.forEach((l, i) => t.offer(`o${o}`, l, 1 + ((o + i) % 4), 10 * i + o / 100));
  }
  expect(t.size).toBe(300);
  for (let o = 0; o < 300; o++) {
    const i = links.findIndex((_, j) => (o + j) % 4 === 0); // the one with 1 hop
    expect(t.best(`o${o}`)).toEqual({ link: links[i]!, hops: 1, rtt: 10 * i + o / 100 });
    expect(t.offers(`o${o}`)).toBe(4);
  }
  // Half the origins go; new ones take their places and start with no offer of the old ones.
  for (let o = 1; o < 300; o += 2) t.forget(`o${o}`);
  for (let o = 0; o < 150; o++) expect(t.offer(`n${o}`, "r2", 7, 7)).toBe(true);
  expect(t.size).toBe(300);
  for (let o = 0; o < 150; o++) {
    expect(t.offers(`n${o}`)).toBe(1);
    expect(t.best(`n${o}`)).toEqual({ link: "r2", hops: 7, rtt: 7 });
    expect(t.nextHop(`n${o}`, "r2")?.link).toBe("r2"); // no other offer (none left over)
  }
  // Dropping a link reports each origin it was best for, in the order it started offering them.
  const best1 = Array.from({ length: 75 }, (_, k) => 4 * k); // 1 hop over r1
  expect(t.dropLink("r1")).toEqual(best1.map((o) => `o${o}`));
  for (const o of best1) {
    expect(t.best(`o${o}`)).toEqual({ link: "r2", hops: 2, rtt: 10 + o / 100 });
  }
  expect(t.offers("o0")).toBe(3);
});
