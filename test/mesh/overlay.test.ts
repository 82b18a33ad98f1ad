import { describe, expect, test } from "bun:test";
import { type Rng, seededRng } from "../../lib/mesh/types.ts";
import { compareXor, idHex, MemberSet, SortedMembers } from "../../lib/mesh/overlay/members.ts";
import { Overlay } from "../../lib/mesh/overlay/overlay.ts";

const testRng = (seed: number): Rng => seededRng(seed);

function randomId(rng: Rng): Uint8Array {
  const id = new Uint8Array(32);
  for (let i = 0; i < 32; i++) id[i] = Math.floor(rng() * 256);
  return id;
}

function ids(n: number, seed: number): Uint8Array[] {
  const rng = testRng(seed);
  return Array.from({ length: n }, () => randomId(rng));
}

/** Brute force: the `n` members closest to `target` by XOR. */
function bruteClosest(members: Uint8Array[], target: Uint8Array, n: number): string[] {
  return members
    .filter((m) => idHex(m) !== idHex(target))
    .sort((a, b) => compareXor(a, b, target))
    .slice(0, n)
    .map(idHex);
}

const keys = (xs: { id: Uint8Array }[]) => xs.map((x) => idHex(x.id)).sort();

/** An overlay fed `members`, with every planned connect reported up. */
function settled(self: Uint8Array, members: Uint8Array[], seed: number, k = 8, near = 2): Overlay {
  const o = new Overlay({ self, k, near, rng: testRng(seed) });
  members.forEach((m, i) => o.memberUp(m, `n${i}`));
  for (const c of o.drain().connect) o.linkUp(c.id, "out");
  return o;
}

describe("MemberSet.closest", () => {
  test("matches brute force XOR order, including with skipped members", () => {
    const rng = testRng(7);
    for (const n of [1, 2, 5, 33, 500]) {
      const all = ids(n, 100 + n);
      const set = new MemberSet();
      for (const id of all) set.add(id, "a");
      for (let trial = 0; trial < 20; trial++) {
        const target = trial % 2 === 0 ? randomId(rng) : all[trial % n]!;
        for (const want of [1, 2, 3, 8, 40]) {
          const got = set.closest(target, want, (k) => k === idHex(target)).map((m) => m.key);
          expect(got).toEqual(bruteClosest(all, target, want));
        }
        const skipped = new Set(bruteClosest(all, target, 3));
        const got = set.closest(target, 4, (k) => skipped.has(k) || k === idHex(target));
        expect(got.map((m) => m.key)).toEqual(
          bruteClosest(all, target, 7).filter((k) => !skipped.has(k)).slice(0, 4),
        );
      }
    }
  });

  test("ids sharing long prefixes (clustered) still resolve exactly", () => {
    const rng = testRng(3);
    const all = Array.from({ length: 300 }, () => {
      const id = new Uint8Array(32);
      id[31] = Math.floor(rng() * 256); // all differ only in the last byte or two
      id[30] = Math.floor(rng() * 2);
      return id;
    });
    const uniq = [...new Map(all.map((a) => [idHex(a), a])).values()];
    const set = new MemberSet();
    for (const id of uniq) set.add(id, "a");
    for (let t = 0; t < 20; t++) {
      const target = uniq[t]!;
      const got = set.closest(target, 5, (k) => k === idHex(target)).map((m) => m.key);
      expect(got).toEqual(bruteClosest(uniq, target, 5));
    }
  });

  test("add/remove keep sorted order; a shared table is copied on write", () => {
    const all = ids(50, 9);
    const table = SortedMembers.from(all.map((id, i) => ({ id, addr: `n${i}` })));
    const a = new MemberSet(table);
    const b = new MemberSet(table);
    a.remove(idHex(all[0]!));
    expect(a.size).toBe(49);
    expect(b.size).toBe(50);
    expect(table.size).toBe(50);
    expect(b.get(idHex(all[0]!))?.addr).toBe("n0");
    b.add(all[1]!, "moved");
    expect(table.get(idHex(all[1]!))?.addr).toBe("n1");
    const sorted = a.all().map((m) => m.key);
    expect(sorted).toEqual([...sorted].sort());
  });
});

describe("Overlay.plan", () => {
  test("k outbound neighbours including the `near` XOR-closest (vs brute force)", () => {
    const all = ids(300, 1);
    for (let s = 0; s < 10; s++) {
      const self = all[s]!;
      for (const near of [2, 5]) {
        const o = new Overlay({ self, k: 8, near, rng: testRng(s) });
        all.forEach((m, i) => o.memberUp(m, `n${i}`));
        const plan = o.drain();
        expect(plan.connect.length).toBe(8);
        expect(plan.disconnect).toEqual([]);
        expect(new Set(plan.connect.map((c) => idHex(c.id))).size).toBe(8);
        expect(plan.connect.some((c) => idHex(c.id) === idHex(self))).toBe(false);
        const nearOnes = o.neighbours().filter((n) => n.role === "near");
        expect(keys(nearOnes)).toEqual(bruteClosest(all, self, near).sort());
        // addresses come from memberUp
        for (const c of plan.connect) {
          expect(c.addr).toBe(`n${all.findIndex((m) => idHex(m) === idHex(c.id))}`);
        }
      }
    }
  });

  test("random neighbours are spread uniformly over members", () => {
    const all = ids(40, 2);
    const self = all[0]!;
    const counts = new Map<string, number>();
    const near = new Set(bruteClosest(all, self, 2));
    for (let seed = 0; seed < 2000; seed++) {
      const o = new Overlay({ self, k: 8, near: 2, rng: testRng(seed) });
      all.forEach((m, i) => o.memberUp(m, `n${i}`));
      o.drain();
      for (const n of o.neighbours()) {
        if (n.role === "random") counts.set(idHex(n.id), (counts.get(idHex(n.id)) ?? 0) + 1);
      }
    }
    // 37 eligible members, 6 random picks each of 2000 runs: 324 expected per member.
    expect(counts.size).toBe(37);
    for (const [k, c] of counts) {
      expect(near.has(k)).toBe(false);
      expect(c).toBeGreaterThan(250);
      expect(c).toBeLessThan(400);
    }
  });

  test("fewer members than k: connects to all of them", () => {
    const all = ids(5, 4);
    const o = new Overlay({ self: all[0]!, rng: testRng(1) });
    all.forEach((m, i) => o.memberUp(m, `n${i}`));
    expect(keys(o.drain().connect)).toEqual(all.slice(1).map(idHex).sort());
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
    const more = ids(20, 5);
    more.forEach((m, i) => o.memberUp(m, `m${i}`));
    const fill = o.drain();
    expect(fill.connect.length).toBe(4); // 4 more to reach k = 8 (or near ones moved)
    expect(o.neighbours().length).toBe(8);
  });

  test("repairs after memberDown: a near neighbour is replaced by the next closest", () => {
    const all = ids(200, 6);
    const self = all[0]!;
    const o = settled(self, all, 1);
    const closest = bruteClosest(all, self, 3);
    const first = all.find((m) => idHex(m) === closest[0])!;
    o.memberDown(first);
    o.linkDown(first);
    const plan = o.drain();
    expect(plan.disconnect).toEqual([]);
    expect(o.neighbours().length).toBe(8);
    const nearNow = keys(o.neighbours().filter((n) => n.role === "near"));
    expect(nearNow).toEqual([closest[1]!, closest[2]!].sort());
    // The third closest is connected now unless it already was a random neighbour.
    expect(plan.connect.length).toBeLessThanOrEqual(1);
    for (const c of plan.connect) o.linkUp(c.id, "out");
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
  });

  test("repairs after memberDown: a random neighbour is replaced, its link closed", () => {
    const all = ids(200, 8);
    const o = settled(all[0]!, all, 2);
    const before = o.neighbours();
    const victim = before.find((n) => n.role === "random")!;
    o.memberDown(victim.id); // link still up: the overlay asks to close it
    const plan = o.drain();
    expect(plan.connect.length).toBe(1);
    expect(idHex(plan.connect[0]!.id)).not.toBe(idHex(victim.id));
    expect(plan.disconnect.map(idHex)).toEqual([idHex(victim.id)]);
    // untouched neighbours stay
    const after = new Set(keys(o.neighbours()));
    for (const n of before) if (n !== victim) expect(after.has(idHex(n.id))).toBe(true);
    o.linkDown(victim.id);
    o.linkUp(plan.connect[0]!.id, "out");
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
  });

  test("a link that replaces one being closed is decided again, not left open", () => {
    const all = ids(50, 9);
    const o = new Overlay({ self: all[0]!, k: 2, near: 1, maxConnections: 2, rng: testRng(3) });
    all.forEach((m, i) => o.memberUp(m, `n${i}`));
    for (const c of o.drain().connect) o.linkUp(c.id, "out");
    const chosen = new Set(keys(o.neighbours()));
    const extra = all.slice(1).find((m) => !chosen.has(idHex(m)))!;
    o.linkUp(extra, "in"); // over the budget: trimmed
    expect(o.drain().disconnect.map(idHex)).toEqual([idHex(extra)]);
    // Before that close is done, the peer's new connection replaces the old one (no linkDown).
    o.linkUp(extra, "in");
    expect(o.drain().disconnect.map(idHex)).toEqual([idHex(extra)]);
    o.linkDown(extra);
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
    expect(o.links().length).toBe(2);
  });

  test("a failed or refused connect is replaced and not redialled until clearAvoided", () => {
    const all = ids(100, 10);
    const self = all[0]!;
    const o = new Overlay({ self, rng: testRng(3) });
    all.forEach((m, i) => o.memberUp(m, `n${i}`));
    const first = o.drain().connect;
    const nearest = bruteClosest(all, self, 1)[0]!;
    const refused = first.find((c) => idHex(c.id) === nearest)!;
    for (const c of first) if (c !== refused) o.linkUp(c.id, "out");
    o.linkDown(refused.id); // dial failed
    const plan = o.drain();
    expect(plan.connect.length).toBe(1);
    expect(idHex(plan.connect[0]!.id)).not.toBe(nearest);
    expect(o.snapshot().avoided).toBe(1);
    o.linkUp(plan.connect[0]!.id, "out");
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
    o.clearAvoided();
    const retry = o.drain(); // the closest is near again; the displaced one is dropped
    expect(retry.connect.map((c) => idHex(c.id))).toEqual([nearest]);
    expect(retry.disconnect.length).toBe(1);
    expect(o.neighbours().length).toBe(8);
  });

  test("tick forgets the avoided peers every avoidMs: the sans-IO clock of the overlay", () => {
    const all = ids(50, 11);
    const self = all[0]!;
    const o = new Overlay({ self, rng: testRng(4), now: 1000, avoidMs: 500 });
    all.forEach((m, i) => o.memberUp(m, `n${i}`));
    const first = o.drain().connect;
    for (const c of first.slice(1)) o.linkUp(c.id, "out");
    o.linkDown(first[0]!.id);
    expect(o.snapshot().avoided).toBe(1);
    expect(o.nextWake()).toBe(1500);
    o.tick(1499);
    expect(o.snapshot().avoided).toBe(1);
    o.tick(1500);
    expect(o.snapshot().avoided).toBe(0);
    expect(o.nextWake()).toBe(2000);
  });

  test("bounded connections: surplus inbound trimmed, own outbound never", () => {
    const all = ids(500, 12);
    const self = all[0]!;
    const o = settled(self, all, 4);
    const mine = new Set(keys(o.neighbours()));
    const closeOnes = bruteClosest(all, self, 8);
    // 40 inbound links: 30 random members first, then the 10 closest non-neighbours.
    const strangers = all.slice(1).filter((m) => !mine.has(idHex(m)));
    const closeStrangers = strangers.filter((m) => closeOnes.includes(idHex(m)));
    const far = strangers.filter((m) => !closeOnes.includes(idHex(m))).slice(0, 34);
    for (const m of [...far, ...closeStrangers]) {
      expect(o.wouldAccept(m)).toBe(o.links().length < 16);
      o.linkUp(m, "in");
    }
    const inbound = far.length + closeStrangers.length;
    expect(o.links().length).toBe(8 + inbound);
    const plan = o.drain();
    expect(plan.connect).toEqual([]);
    expect(plan.disconnect.length).toBe(8 + inbound - 16);
    const dropped = new Set(plan.disconnect.map(idHex));
    for (const k of mine) expect(dropped.has(k)).toBe(false);
    for (const m of closeStrangers) expect(dropped.has(idHex(m))).toBe(false); // ring kept
    // Newest far ones go first: the first (16 - 8 - close) far links stay.
    const keptFar = far.filter((m) => !dropped.has(idHex(m)));
    expect(keptFar.map(idHex)).toEqual(far.slice(0, 8 - closeStrangers.length).map(idHex));
    for (const d of plan.disconnect) o.linkDown(d);
    expect(o.links().length).toBe(16);
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
    expect(o.wouldAccept(far[far.length - 1]!)).toBe(false);
  });

  test("an inbound link from a chosen neighbour satisfies it (no second connection)", () => {
    const all = ids(50, 13);
    const o = new Overlay({ self: all[0]!, rng: testRng(5) });
    all.forEach((m, i) => o.memberUp(m, `n${i}`));
    const nearest = all.find((m) => idHex(m) === bruteClosest(all, all[0]!, 1)[0])!;
    o.linkUp(nearest, "in");
    const plan = o.drain();
    expect(plan.connect.length).toBe(7);
    expect(plan.connect.some((c) => idHex(c.id) === idHex(nearest))).toBe(false);
    expect(o.neighbours().find((n) => idHex(n.id) === idHex(nearest))?.linked).toBe(true);
  });

  test("stable: no churn when nothing changes, none for far joins, one swap for a closer join", () => {
    const all = ids(1000, 14);
    const self = all[0]!;
    const o = settled(self, all.slice(0, 900), 6);
    const before = keys(o.neighbours());
    for (let i = 0; i < 5; i++) expect(o.drain()).toEqual({ connect: [], disconnect: [] });
    // Joins and leaves of members that are not neighbours and not closer than the near ones.
    const nearDist = o.neighbours().filter((n) => n.role === "near").map((n) => n.id);
    const farthestNear = nearDist.sort((a, b) => compareXor(a, b, self))[nearDist.length - 1]!;
    const farJoins = all.slice(900).filter((m) => compareXor(m, farthestNear, self) > 0);
    farJoins.forEach((m, i) => o.memberUp(m, `j${i}`));
    const mine = new Set(before);
    for (const m of all.slice(1, 900)) {
      if (!mine.has(idHex(m)) && compareXor(m, farthestNear, self) > 0) {
        o.memberDown(m);
        break;
      }
    }
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
    expect(keys(o.neighbours())).toEqual(before);
    // A closer member joins: it becomes near; the displaced near one is dropped.
    const closer = new Uint8Array(self);
    closer[31] = closer[31]! ^ 1;
    o.memberUp(closer, "closer");
    const plan = o.drain();
    expect(plan.connect.map((c) => idHex(c.id))).toEqual([idHex(closer)]);
    expect(plan.disconnect.length).toBe(1);
    expect(o.neighbours().length).toBe(8);
    o.linkUp(closer, "out");
    o.linkDown(plan.disconnect[0]!);
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
  });

  test("pending connects are not repeated; repeated memberUp only re-addresses", () => {
    const all = ids(30, 15);
    const o = new Overlay({ self: all[0]!, rng: testRng(8) });
    all.forEach((m, i) => o.memberUp(m, `n${i}`));
    const first = o.drain();
    expect(first.connect.length).toBe(8);
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
    const c = first.connect[0]!;
    o.memberUp(c.id, "new-addr");
    expect(o.neighbours().find((n) => idHex(n.id) === idHex(c.id))?.addr).toBe("new-addr");
    expect(o.drain()).toEqual({ connect: [], disconnect: [] });
    expect(o.snapshot().connecting).toBe(8);
  });

  test("snapshot, links, validation", () => {
    const all = ids(20, 16);
    const o = settled(all[0]!, all, 9, 4, 1);
    const s = o.snapshot();
    expect(s.k).toBe(4);
    expect(s.near).toBe(1);
    expect(s.maxConnections).toBe(8);
    expect(s.members).toBe(19);
    expect(s.self).toHaveLength(52);
    expect(s.neighbours.filter((n) => n.role === "near")).toHaveLength(1);
    expect(s.links.every((l) => l.dir === "out" && !l.closing)).toBe(true);
    expect(o.links()).toHaveLength(4);
    const rng = testRng(1);
    expect(() => new Overlay({ self: new Uint8Array(31), rng })).toThrow(/32 bytes/);
    expect(() => new Overlay({ self: all[0]!, k: 0, rng })).toThrow(RangeError);
    expect(() => new Overlay({ self: all[0]!, k: 4, near: 5, rng })).toThrow(RangeError);
    expect(() => new Overlay({ self: all[0]!, k: 8, maxConnections: 7, rng })).toThrow(RangeError);
    expect(() => o.memberUp(new Uint8Array(8), "x")).toThrow(/32 bytes/);
  });
});
