/** Kademlia, sans-IO (lib/mesh/dht): the table, the record store, and cores on the simulator. */
import { describe, expect, test } from "bun:test";
import {
  commonPrefix,
  Dht,
  type DhtEvent,
  type DhtMsg,
  type DhtRecord,
  type LookupResult,
  randomIdInBucket,
  RECORD_LIMITS,
  recordBytes,
  RecordStore,
  RoutingTable,
} from "../../lib/mesh/dht/mod.ts";
import { seededRng } from "../../lib/mesh/mod.ts";
import { compareXor, idHex } from "../../lib/mesh/overlay/members.ts";
import { randomId } from "../../lib/sim/overlay.ts";
import { runDhtSim } from "../../lib/sim/dht.ts";
import { Simulator } from "../../lib/sim/sim.ts";

const rng = seededRng(7, "dht-test");
const id = () => randomId(rng);
const eq = (a: Uint8Array, b: Uint8Array) => idHex(a) === idHex(b);
const enc = (s: string) => new TextEncoder().encode(s);

/** A stand-in signature for tests: the publisher's id, then the bytes' length and first bytes. */
const sigOf = (publisher: Uint8Array, bytes: Uint8Array) =>
  new Uint8Array([...publisher.slice(0, 8), bytes.length & 255, ...bytes.slice(-8)]);
const verify = (publisher: Uint8Array, pub: Uint8Array, bytes: Uint8Array, sig: Uint8Array) =>
  eq(publisher, pub) && idHex(sig) === idHex(sigOf(publisher, bytes));

function record(publisher: Uint8Array, key: Uint8Array, value: string, seq = 1): DhtRecord {
  const base = { key, value: enc(value), publisher, seq, ttlMs: 60_000 };
  return { ...base, pub: publisher, sig: sigOf(publisher, recordBytes("dev", base)) };
}

describe("RoutingTable", () => {
  test("bucket by shared prefix; a full bucket keeps its old contacts, the newcomer waits", () => {
    const self = new Uint8Array(32);
    const t = new RoutingTable(self, 2);
    const inBucket0 = () => randomIdInBucket(self, 0, rng);
    const [a, b, c] = [inBucket0(), inBucket0(), inBucket0()];
    expect(commonPrefix(self, a)).toBe(0);
    expect(t.seen(a, "a", 1).kind).toBe("added");
    expect(t.seen(b, "b", 2).kind).toBe("added");
    const full = t.seen(c, "c", 3);
    expect(full.kind).toBe("full");
    expect(full.kind === "full" && eq(full.oldest.id, a)).toBe(true);
    expect(t.size).toBe(2);
    // a answered: seen again, it moves to the end; b is now the oldest.
    expect(t.seen(a, "a", 4).kind).toBe("updated");
    const again = t.seen(c, "c", 5);
    expect(again.kind === "full" && eq(again.oldest.id, b)).toBe(true);
    // b did not answer: dropped, and c (the newest replacement) takes its place.
    expect(t.remove(idHex(b))).toBe(true);
    expect(t.get(idHex(c))?.addr).toBe("c");
    expect(t.size).toBe(2);
  });

  test("closest matches brute force; randomIdInBucket lands in its bucket", () => {
    const self = id();
    const t = new RoutingTable(self, 20);
    const all = Array.from({ length: 300 }, id);
    all.forEach((x, i) => t.seen(x, `n${i}`, i));
    const target = id();
    const inTable = all.filter((x) => t.get(idHex(x)));
    const brute = inTable.sort((p, q) => compareXor(p, q, target)).slice(0, 20).map(idHex);
    expect(t.closest(target, 20).map((c) => c.key)).toEqual(brute);
    for (const b of [0, 1, 7, 8, 100, 255]) {
      expect(commonPrefix(self, randomIdInBucket(self, b, rng))).toBe(b);
    }
  });
});

describe("RecordStore", () => {
  test("checks every record; bounds per publisher; newer seq replaces; expiry", () => {
    const s = new RecordStore("dev", verify, { ...RECORD_LIMITS, perPublisher: 2 });
    const p = id(), k = id();
    expect(s.put(record(p, k, "one"), 0)).toBeNull();
    expect(s.get(k, 1).map((r) => new TextDecoder().decode(r.value))).toEqual(["one"]);
    expect(s.put(record(p, k, "two", 2), 0)).toBeNull();
    expect(s.put(record(p, k, "old", 1), 0)).toBe("stale");
    expect(s.get(k, 1).map((r) => r.seq)).toEqual([2]);
    const forged = { ...record(p, id(), "x"), value: enc("tampered") };
    expect(s.put(forged, 0)).toBe("bad_signature");
    expect(s.put(record(p, id(), "second key"), 0)).toBeNull();
    expect(s.put(record(p, id(), "third key"), 0)).toBe("per_publisher");
    expect(s.put(record(id(), id(), "x".repeat(RECORD_LIMITS.maxValueBytes + 1)), 0)).toBe(
      "too_large",
    );
    expect(s.put({ ...record(p, k, "x"), key: new Uint8Array(3) } as DhtRecord, 0)).toBe(
      "malformed",
    );
    expect(s.refused).toMatchObject({
      stale: 1,
      bad_signature: 1,
      per_publisher: 1,
      too_large: 1,
      malformed: 1,
    });
    expect(s.size).toBe(2);
    expect(s.get(k, 60_001)).toEqual([]); // past its ttl
    expect(s.expire(60_001)).toBe(2);
    expect(s.size).toBe(0);
  });
});

/** Cores on the simulator: `n` nodes, each joined through node 0 (and the ones before). */
function network(n: number, o: { clients?: number[]; realmOf?: (i: number) => string } = {}) {
  const sim = new Simulator<DhtMsg, DhtEvent>({ seed: 3, latency: { baseMs: 1, jitterMs: 4 } });
  const ids = Array.from({ length: n }, id);
  const results = new Map<string, LookupResult>();
  const errors: string[] = [];
  sim.onEvent((addr, e) => {
    if (e.kind === "lookup") results.set(`${addr}/${e.result.id}`, e.result);
    else errors.push(e.message);
  });
  const core = (i: number) => sim.core(`n${i}`) as Dht;
  for (let i = 0; i < n; i++) {
    const me = ids[i]!;
    sim.add(`n${i}`, (addr, r) =>
      new Dht({
        id: me,
        addr,
        realm: o.realmOf?.(i) ?? "dev",
        rng: r,
        now: sim.now,
        mode: o.clients?.includes(i) ? "client" : "server",
        signer: { key: me, sign: (bytes) => sigOf(me, bytes) },
        verify,
      }));
    const seeds = i === 0 ? [] : [{ id: ids[0]!, addr: "n0" }];
    sim.call(`n${i}`, (c, now) => (c as Dht).bootstrap(seeds, now));
    sim.runFor(20);
  }
  const settle = () =>
    sim.runUntilCondition(
      () => ids.every((_, i) => !sim.isUp(`n${i}`) || core(i).running === 0),
      60_000,
      {
        checkEveryMs: 10,
      },
    );
  expect(settle()).toBe(true);
  /** Runs `start` on node `i` and returns its lookup's result once it is done (bounded). */
  const run = (i: number, start: (d: Dht, now: number) => number): LookupResult => {
    const rid = sim.call(`n${i}`, (c, now) => start(c as Dht, now));
    expect(sim.runUntilCondition(() => results.has(`n${i}/${rid}`), 30_000)).toBe(true);
    return results.get(`n${i}/${rid}`)!;
  };
  return { sim, ids, core, run, errors };
}

describe("Dht on the simulator", () => {
  test("every node finds every other node; records put anywhere are read anywhere", () => {
    const net = network(60);
    for (let i = 0; i < 60; i += 7) {
      for (let t = 1; t < 60; t += 11) {
        if (t === i) continue; // a node is not among its own contacts
        const r = net.run(i, (d, now) => d.findNode(net.ids[t]!, now));
        expect(r.closest.some((c) => eq(c.id, net.ids[t]!))).toBe(true);
        expect(r.timedOut).toBe(false);
        expect(r.rounds).toBeLessThanOrEqual(4);
      }
    }
    const key = id();
    const put = net.run(5, (d, now) => d.put(key, enc("hello"), now));
    expect(put.stored).toBe(20); // the k closest
    const got = net.run(44, (d, now) => d.findValue(key, now));
    expect(got.records.map((r) => new TextDecoder().decode(r.value))).toEqual(["hello"]);
    expect(eq(got.records[0]!.publisher, net.ids[5]!)).toBe(true);
    expect(net.errors).toEqual([]);
  });

  test("a lookup does not wait on dead contacts: slow ones lose their slot, and it ends without them", () => {
    const net = network(40);
    const target = net.ids[30]!;
    // The ten nodes closest to the target (but the target) crash without a word.
    const byDistance = net.ids.map((x, i) => ({ x, i })).filter(({ i }) => i !== 30 && i !== 1)
      .sort((a, b) => compareXor(a.x, b.x, target));
    for (const { i } of byDistance.slice(0, 10)) net.sim.crash(`n${i}`);
    const r = net.run(1, (d, now) => d.findNode(target, now));
    expect(r.closest.some((c) => eq(c.id, target))).toBe(true);
    // Each dead contact costs at most slowMs of waiting, not its 2 s timeout, and not in series.
    expect(r.durationMs).toBeLessThan(net.core(1).cfg.rpcTimeoutMs);
  });

  test("client-mode nodes stay out of every table, and still look up and publish", () => {
    const net = network(30, { clients: [7, 8, 9] });
    const clientKeys = new Set([7, 8, 9].map((i) => idHex(net.ids[i]!)));
    for (let i = 0; i < 30; i++) {
      for (const b of net.core(i).table.buckets()) {
        for (const c of b.contacts) expect(clientKeys.has(c.key)).toBe(false);
      }
    }
    const found = net.run(8, (d, now) => d.findNode(net.ids[20]!, now));
    expect(found.closest.some((c) => eq(c.id, net.ids[20]!))).toBe(true);
    const key = id();
    expect(net.run(9, (d, now) => d.put(key, enc("from a client"), now)).stored).toBeGreaterThan(0);
    expect(net.run(3, (d, now) => d.findValue(key, now)).records.length).toBe(1);
  });

  test("a server that turns client leaves the tables of the nodes it speaks to next", () => {
    const net = network(30);
    const inTables = (k: string) =>
      Array.from({ length: 30 }, (_, i) => net.core(i)).filter((d) =>
        d.table.buckets().some((b) => b.contacts.some((c) => c.key === k))
      );
    const me = idHex(net.ids[12]!);
    const before = inTables(me);
    expect(before.length).toBeGreaterThan(0);
    net.sim.call("n12", (c) => (c as Dht).setMode("client"));
    expect(net.core(12).mode).toBe("client");
    // It speaks to many nodes: a lookup of its own id (each node asked takes it out).
    net.run(12, (d, now) => d.findNode(net.ids[12]!, now));
    const after = inTables(me);
    expect(after.length).toBeLessThan(before.length);
    const left = before.reduce((n, d) => n + d.stats.leftAsClients, 0);
    expect(left).toBe(before.length - after.length);
    // A message the driver cannot vouch for (`listed: false`, no alive member's address) takes
    // nobody out, whatever its mode says.
    const holder = after[0]!;
    const other = net.ids.findIndex((x) =>
      holder.table.buckets().some((b) => b.contacts.some((c) => c.key === idHex(x))) &&
      idHex(x) !== me
    );
    const n = holder.table.size;
    holder.receive(net.sim.now, "x", {
      t: "ping",
      realm: "dev",
      from: net.ids[other]!,
      mode: "client",
      rid: 9,
    } as DhtMsg, false);
    expect(holder.table.size).toBe(n);
    // And back: a server again enters the tables of those it speaks to.
    net.sim.call("n12", (c) => (c as Dht).setMode("server"));
    net.run(12, (d, now) => d.findNode(net.ids[12]!, now));
    expect(inTables(me).length).toBeGreaterThan(after.length);
  });

  test("one table per realm: nothing of another realm's DHT gets in", () => {
    // Nodes 0–9 in dev, 10–19 in acme, all bootstrapped through node 0.
    const net = network(20, { realmOf: (i) => (i < 10 ? "dev" : "acme") });
    const acme = new Set(net.ids.slice(10).map(idHex));
    for (let i = 0; i < 10; i++) {
      for (const b of net.core(i).table.buckets()) {
        for (const c of b.contacts) expect(acme.has(c.key)).toBe(false);
      }
    }
    expect(net.core(0).stats.otherRealm).toBeGreaterThan(0);
    expect(net.core(12).table.size).toBe(0);
  });

  test("a forged record in an answer is dropped on read and counted; malformed messages are counted", () => {
    const net = network(10);
    const key = id();
    net.run(2, (d, now) => d.put(key, enc("real"), now));
    // Every node answers with a tampered copy from now on.
    const off = net.sim.onMessage((_f, _t, m) => {
      if (m.t === "value") {
        for (const [i, r] of m.records.entries()) m.records[i] = { ...r, value: enc("forged") };
      }
    });
    const got = net.run(7, (d, now) => d.findValue(key, now));
    off();
    expect(got.records).toEqual([]);
    expect(net.core(7).stats.badRecordsRead).toBeGreaterThan(0);
    const before = net.core(3).stats.malformed;
    net.sim.call("n3", (c, now) => {
      c.receive(now, "n9", { realm: "dev", from: new Uint8Array(2) } as unknown as DhtMsg);
      c.receive(now, "n9", null as unknown as DhtMsg);
      c.receive(now, "n9", {
        realm: "dev",
        from: net.ids[9]!,
        mode: "server",
        rid: 1,
        t: "find_node",
        target: new Uint8Array(1),
      } as DhtMsg);
    });
    expect(net.core(3).stats.malformed).toBe(before + 3);
  });

  test("requests past a sender's rate are refused and counted", () => {
    const net = network(3);
    const d = net.core(1);
    const flood = d.cfg.requestBurst + 50;
    const stranger = id(); // a sender that has asked nothing yet: a full bucket of tokens
    net.sim.call("n1", (c, now) => {
      for (let i = 0; i < flood; i++) {
        c.receive(now, "n9", {
          realm: "dev",
          from: stranger,
          mode: "server",
          rid: i,
          t: "ping",
        });
      }
    });
    expect(d.stats.limited).toBe(50);
  });

  test("records are republished by their publisher, and expire where nobody does", () => {
    const net = network(12);
    const key = id();
    net.run(4, (d, now) => d.put(key, enc("kept"), now));
    const holders = () =>
      Array.from({ length: 12 }, (_, i) => i).filter((i) =>
        net.sim.isUp(`n${i}`) && net.core(i).store.size > 0
      ).length;
    expect(holders()).toBe(11); // every node but the publisher (k = 20 > 11)
    const ttl = net.core(4).cfg.recordTtlMs;
    net.sim.runFor(ttl + net.core(4).cfg.sweepMs);
    expect(net.core(4).stats.republishes).toBeGreaterThan(20);
    expect(holders()).toBe(11);
    expect(net.core(0).stats.refreshes).toBeGreaterThan(0);
    net.sim.crash("n4");
    net.sim.runFor(ttl + 2 * net.core(0).cfg.sweepMs);
    expect(holders()).toBe(0);
  });
});

test("runDhtSim: a small run finds every target and every record, steady and after churn", () => {
  const r = runDhtSim({ nodes: 300, seed: 2, lookups: 50, records: 20 });
  expect(r.steady.success).toBe(1);
  expect(r.steady.getSuccess).toBe(1);
  expect(r.churn!.success).toBeGreaterThanOrEqual(0.98);
  expect(r.churn!.getSuccess).toBe(1);
  expect(r.clientsInTables).toBe(0);
  expect(runDhtSim({ nodes: 300, seed: 2, lookups: 50, records: 20 }).steady).toEqual(r.steady);
});
