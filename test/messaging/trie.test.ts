import { describe, expect, test } from "bun:test";
import { matches, TopicError } from "../../lib/messaging/topics.ts";
import {
  checkQueueGroup,
  type QueueStrategy,
  RandomPick,
  SubscriptionTrie,
} from "../../lib/messaging/trie.ts";
import { prng } from "../helpers/quic.ts";

const sorted = (xs: readonly string[]) => [...xs].sort();

describe("SubscriptionTrie basics", () => {
  test("plain subscribers with wildcards", () => {
    const t = new SubscriptionTrie<string>();
    t.add("a.b", "exact");
    t.add("a.*", "one");
    t.add("a.>", "tail");
    t.add(">", "all");
    t.add("*.c", "other");
    expect(sorted(t.match("a.b"))).toEqual(["all", "exact", "one", "tail"]);
    expect(sorted(t.match("a.b.c"))).toEqual(["all", "tail"]);
    expect(sorted(t.match("a"))).toEqual(["all"]);
    expect(sorted(t.match("x.c"))).toEqual(["all", "other"]);
    expect(t.hasInterest("zzz")).toBe(true);
    t.remove(">", "all");
    expect(t.hasInterest("zzz")).toBe(false);
  });

  test("a subscriber matched by several patterns receives once", () => {
    const t = new SubscriptionTrie<string>();
    t.add("a.b", "s");
    t.add("a.*", "s");
    t.add("a.>", "s");
    expect(t.match("a.b")).toEqual(["s"]);
  });

  test("duplicate add returns false; counts", () => {
    const t = new SubscriptionTrie<string>();
    expect(t.add("a.b", "s")).toBe(true);
    expect(t.add("a.b", "s")).toBe(false);
    expect(t.add("a.b", "s", "g")).toBe(true);
    expect(t.add("a.b", "s", "g")).toBe(false);
    expect(t.add("a.*", "s2")).toBe(true);
    expect(t.counts()).toEqual({ subscriptions: 3, patterns: 2, queueGroups: 1, nodes: 4 });
    expect(t.size).toBe(3);
    expect(t.has("a.b", "s", "g")).toBe(true);
    expect(t.has("a.b", "s", "h")).toBe(false);
  });

  test("invalid patterns and queue names are refused with the reason", () => {
    const t = new SubscriptionTrie<string>();
    expect(() => t.add("a.>.b", "s")).toThrow(/'>' must be the last segment/);
    expect(() => t.add("a..b", "s")).toThrow(TopicError);
    expect(() => t.add("a", "s", "bad group")).toThrow(/invalid queue group "bad group"/);
    expect(() => checkQueueGroup("")).toThrow(TopicError);
    expect(checkQueueGroup("workers.v2")).toBe("workers.v2");
    expect(t.size).toBe(0);
  });

  test("removal: exact subscriptions, pruning, removeSubscriber", () => {
    const t = new SubscriptionTrie<string>();
    t.add("a.b.c", "s1");
    t.add("a.b.c", "s2", "g");
    t.add("a.*", "s1");
    t.add("x.>", "s1", "g");
    expect(t.remove("a.b.c", "s1", "g")).toBe(false); // s1 is plain there
    expect(t.remove("a.b", "s1")).toBe(false); // interior node, no subscription
    expect(t.remove("nope.nope", "s1")).toBe(false);
    expect(t.remove("a.b.c", "s2", "g")).toBe(true);
    expect(t.remove("a.b.c", "s2", "g")).toBe(false);
    expect(t.match("a.b.c")).toEqual(["s1"]);
    expect(t.subscriptionsOf("s1")).toEqual([
      { pattern: "a.b.c", subscriber: "s1" },
      { pattern: "a.*", subscriber: "s1" },
      { pattern: "x.>", subscriber: "s1", queue: "g" },
    ]);
    expect(t.removeSubscriber("s1")).toBe(3);
    expect(t.removeSubscriber("s1")).toBe(0);
    expect(t.counts()).toEqual({ subscriptions: 0, patterns: 0, queueGroups: 0, nodes: 1 });
    expect(t.match("a.b.c")).toEqual([]);
  });

  test("removing one subscription of a shared leaf keeps the others", () => {
    const t = new SubscriptionTrie<string>();
    t.add("a.b", "s1");
    t.add("a.b", "s2");
    t.add("a.b.c", "s3");
    t.remove("a.b", "s1");
    expect(t.match("a.b")).toEqual(["s2"]);
    t.remove("a.b", "s2");
    expect(t.counts().patterns).toBe(1);
    expect(t.match("a.b.c")).toEqual(["s3"]); // the interior node survived for a.b.c
  });
});

describe("a trie without an index by subscriber (bySubscriber: false)", () => {
  test("adds, removes, matches and counts as an indexed one; asking by subscriber throws", () => {
    const r = prng(7);
    const words = ["a", "b", "c", "*"];
    const pattern = () =>
      Array.from({ length: 1 + Math.floor(r() * 3) }, () => words[Math.floor(r() * 4)]).join(".") +
      (r() < 0.2 ? ".>" : "");
    const indexed = new SubscriptionTrie<number>();
    const bare = new SubscriptionTrie<number>({ bySubscriber: false });
    const held: [string, number, string | undefined][] = [];
    for (let i = 0; i < 2000; i++) {
      const p = pattern(), s = Math.floor(r() * 300), q = r() < 0.2 ? "g" : undefined;
      expect(bare.add(p, s, q)).toBe(indexed.add(p, s, q));
      held.push([p, s, q]);
    }
    for (const [p, s, q] of held) {
      expect(bare.has(p, s, q)).toBe(indexed.has(p, s, q));
      expect(bare.has(p, s + 1000, q)).toBe(false);
      if (r() < 0.4) expect(bare.remove(p, s, q)).toBe(indexed.remove(p, s, q));
    }
    expect(bare.counts()).toEqual(indexed.counts());
    for (const t of ["a", "a.b", "b.c.a", "c.c.c.c"]) {
      expect(new Set(bare.match(t))).toEqual(new Set(indexed.match(t)));
    }
    expect(() => bare.subscriptionsOf(1)).toThrow(RangeError);
    expect(() => bare.removeSubscriber(1)).toThrow(RangeError);
  });

  test("a pattern is checked at every add, cached or not", () => {
    const t = new SubscriptionTrie<string>({ bySubscriber: false });
    t.add("x.y", "a");
    t.add("x.y", "b"); // checked before: no second check needed, same result
    expect(() => t.add("x..y", "c")).toThrow(TopicError);
    expect(() => t.add("x.y", "d", "bad group!")).toThrow(TopicError);
    expect(t.size).toBe(2);
  });
});

describe("queue groups", () => {
  test("exactly one member per group, plus every plain subscriber", () => {
    const t = new SubscriptionTrie<string>();
    t.add("orders.*", "audit");
    for (const w of ["w1", "w2", "w3"]) t.add("orders.>", w, "workers");
    for (const m of ["m1", "m2"]) t.add("orders.new", m, "mailers");
    for (let i = 0; i < 30; i++) {
      const got = t.match("orders.new");
      expect(got).toContain("audit");
      expect(got.filter((r) => r.startsWith("w")).length).toBe(1);
      expect(got.filter((r) => r.startsWith("m")).length).toBe(1);
      expect(got.length).toBe(3);
    }
  });

  test("fairness: N messages spread evenly (round-robin)", () => {
    const t = new SubscriptionTrie<number>();
    const members = 7;
    for (let m = 0; m < members; m++) t.add("jobs.>", m, "g");
    const hits = new Array(members).fill(0);
    const n = 7000;
    for (let i = 0; i < n; i++) {
      const got = t.match(`jobs.k${i % 13}`);
      expect(got.length).toBe(1);
      hits[got[0]!]++;
    }
    for (const h of hits) expect(h).toBe(n / members);
  });

  test("a group spans patterns: members on different patterns compete for one message", () => {
    const t = new SubscriptionTrie<string>();
    t.add("a.*", "x", "g");
    t.add("a.>", "y", "g");
    t.add("a.b", "z", "g");
    const seen = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const got = t.match("a.b");
      expect(got.length).toBe(1);
      seen.set(got[0]!, (seen.get(got[0]!) ?? 0) + 1);
    }
    expect(Object.fromEntries(seen)).toEqual({ x: 100, y: 100, z: 100 });
    // Only y's pattern matches a.b.c: it takes all.
    expect(t.match("a.b.c")).toEqual(["y"]);
  });

  test("a removed member stops receiving; the rest stay even", () => {
    const t = new SubscriptionTrie<string>();
    for (const w of ["a", "b", "c"]) t.add("q", w, "g");
    t.remove("q", "b", "g");
    const hits: Record<string, number> = {};
    for (let i = 0; i < 100; i++) for (const r of t.match("q")) hits[r] = (hits[r] ?? 0) + 1;
    expect(hits).toEqual({ a: 50, c: 50 });
  });

  test("strategy is injectable and deterministic given its state", () => {
    const run = (seed: number) => {
      const t = new SubscriptionTrie<string>({ strategy: new RandomPick(prng(seed)) });
      for (const w of ["a", "b", "c", "d"]) t.add("q.>", w, "g");
      return Array.from({ length: 50 }, () => t.match("q.x")[0]);
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
    const always: QueueStrategy<string> = { pick: (_g, c) => c.length - 1 };
    const t = new SubscriptionTrie<string>({ strategy: always });
    t.add("q", "first", "g");
    t.add("q", "last", "g");
    expect(t.match("q")).toEqual(["last"]);
    const broken = new SubscriptionTrie<string>({ strategy: { pick: () => 9 } });
    broken.add("q", "a", "g");
    expect(() => broken.match("q")).toThrow(/picked index 9 of 1/);
  });
});

describe("trie vs brute force (seeded random workload)", () => {
  const words = ["a", "b", "c", "d", "e", "f", "g", "h"];

  function randomTopic(r: () => number): string {
    const n = 1 + Math.floor(r() * 5);
    return Array.from({ length: n }, () => words[Math.floor(r() * words.length)]).join(".");
  }

  function randomPattern(r: () => number): string {
    const n = 1 + Math.floor(r() * 5);
    const segs: string[] = [];
    for (let i = 0; i < n; i++) {
      const x = r();
      if (i === n - 1 && x < 0.15) segs.push(">");
      else if (x < 0.35) segs.push("*");
      else segs.push(words[Math.floor(r() * words.length)]!);
    }
    return segs.join(".");
  }

  for (const seed of [1, 42, 2026]) {
    test(`seed ${seed}: 3000 subscriptions, 2000 topics, with removals`, () => {
      const r = prng(seed);
      const trie = new SubscriptionTrie<number>();
      const subs = new Map<string, [string, number]>();
      for (let i = 0; i < 3000; i++) {
        const p = randomPattern(r);
        const s = Math.floor(r() * 500);
        if (trie.add(p, s)) subs.set(`${p} ${s}`, [p, s]);
      }
      // Remove a third.
      for (const [k, [p, s]] of [...subs]) {
        if (r() < 0.33) {
          expect(trie.remove(p, s)).toBe(true);
          subs.delete(k);
        }
      }
      expect(trie.size).toBe(subs.size);
      expect(trie.counts().patterns).toBe(new Set([...subs.values()].map(([p]) => p)).size);
      for (let i = 0; i < 2000; i++) {
        const topic = randomTopic(r);
        const want = new Set<number>();
        for (const [p, s] of subs.values()) if (matches(p, topic)) want.add(s);
        expect(new Set(trie.match(topic))).toEqual(want);
      }
    });
  }

  test("queue groups vs brute force: one per matching group, always a matching member", () => {
    const r = prng(7);
    const trie = new SubscriptionTrie<number>();
    const subs: [string, number, string][] = [];
    for (let i = 0; i < 2000; i++) {
      const p = randomPattern(r);
      const s = i;
      const g = `g${Math.floor(r() * 10)}`;
      trie.add(p, s, g);
      subs.push([p, s, g]);
    }
    for (let i = 0; i < 1000; i++) {
      const topic = randomTopic(r);
      const groups = new Map<string, Set<number>>();
      for (const [p, s, g] of subs) {
        if (!matches(p, topic)) continue;
        if (!groups.has(g)) groups.set(g, new Set());
        groups.get(g)!.add(s);
      }
      const got = trie.match(topic);
      expect(got.length).toBe(groups.size);
      for (const s of got) {
        const g = subs[s]![2];
        expect(groups.get(g)?.has(s)).toBe(true);
      }
    }
  });

  test("10,000 subscriptions: a publish does not scan them all", () => {
    const trie = new SubscriptionTrie<number>();
    for (let i = 0; i < 10_000; i++) trie.add(`svc${i}.events.*`, i);
    trie.add("svc5.>", -1);
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) trie.match("svc5.events.x");
    const ms = performance.now() - started;
    expect(sorted(trie.match("svc5.events.x").map(String))).toEqual(["-1", "5"]);
    // A full scan would be 2·10^8 pattern checks; the trie visits a handful of nodes.
    expect(ms).toBeLessThan(2000);
  });
});
