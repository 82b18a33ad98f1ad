/**
 * Mesh-wide routing: real routers joined by routes on the deterministic simulator
 * (lib/sim/routing.ts), each route with its own latency. Every case runs until the mesh is
 * quiet, then checks what each client got.
 */
import { describe, expect, test } from "bun:test";
import { RPC_ERROR_NUMBERS } from "../../lib/messaging/mod.ts";
import { RoutedMesh, runRoutingSim, type SimClient } from "../../lib/sim/routing.ts";

const b = (s: string) => new TextEncoder().encode(s);
const text = (u: unknown) => new TextDecoder().decode(u as Uint8Array);
/** The payloads of MSGs a client got for `sid`. */
const msgs = (c: SimClient, sid = 1) =>
  c.got("MSG").filter((f) => f.fields.sid === sid).map((f) => text(f.fields.payload));

function mesh(n: number, edges: [number, number][], seed = 1): RoutedMesh {
  const m = new RoutedMesh({ seed });
  for (let i = 0; i < n; i++) m.add();
  for (const [a, c] of edges) m.link(a, c);
  expect(m.settle()).toBe(true);
  return m;
}
const line = (n: number) => Array.from({ length: n - 1 }, (_, i) => [i, i + 1] as [number, number]);
/** A ring with chords: every pair is a few hops apart, and there are many loops. */
const ringWithChords = (n: number) => [
  ...Array.from({ length: n }, (_, i) => [i, (i + 1) % n] as [number, number]),
  ...Array.from({ length: n / 2 }, (_, i) => [i, (i + n / 2) % n] as [number, number]),
];

describe("routing across nodes", () => {
  test("a publish reaches every matching subscription on every node once, over many loops", () => {
    const n = 12;
    const m = mesh(n, ringWithChords(n));
    const subs = Array.from({ length: n }, (_, i) => m.client(i));
    subs.forEach((c, i) => {
      m.send(c, "SUB", { sid: 1, pattern: "t.>" });
      m.send(c, "SUB", { sid: 2, pattern: i % 2 ? "t.*" : "t.x.*" }); // two patterns, one node
    });
    expect(m.settle()).toBe(true);
    const pubs = Array.from({ length: n }, (_, i) => m.client(i));
    pubs.forEach((p, i) => m.send(p, "PUB", { topic: "t.x", payload: b(`m${i}`) }));
    expect(m.settle()).toBe(true);
    const all = pubs.map((_, i) => `m${i}`).sort();
    subs.forEach((c, i) => {
      expect(msgs(c, 1).sort()).toEqual(all);
      expect(msgs(c, 2).sort()).toEqual(i % 2 ? all : []);
    });
    const s = m.stats();
    expect([s.noRoute, s.hopLimit, s.protocolErrors]).toEqual([0, 0, 0]);
  });

  test("a node without matching interest gets no data unless it is on the path", () => {
    // A star: 0 in the middle, leaves 1–4; only leaf 1 subscribes.
    const m = mesh(5, [[0, 1], [0, 2], [0, 3], [0, 4]]);
    const sub = m.client(1);
    m.send(sub, "SUB", { sid: 1, pattern: "only.1" });
    m.settle();
    const before = m.nodes.map((x) => x.router.stats.forwarded);
    const pub = m.client(2);
    for (let i = 0; i < 5; i++) m.send(pub, "PUB", { topic: "only.1", payload: b(`${i}`) });
    m.send(pub, "PUB", { topic: "nobody.here", payload: b("x") });
    m.settle();
    expect(msgs(sub)).toEqual(["0", "1", "2", "3", "4"]);
    const fwd = m.nodes.map((x, i) => x.router.stats.forwarded - before[i]!);
    // Leaf 2 sends 5 FWDs to the hub, the hub 5 to leaf 1; leaves 3 and 4 see nothing.
    expect(fwd).toEqual([5, 0, 5, 0, 0]);
    expect(m.nodes[2]!.router.stats.unrouted).toBe(1);
  });

  test("queue groups: one member per message mesh-wide; a member on the publisher's node first, then the nearest", () => {
    const m = mesh(5, line(5));
    const near = m.client(2);
    const far = m.client(4);
    const other = m.client(3);
    m.send(near, "SUB", { sid: 1, pattern: "jobs", queue: "w" });
    m.send(far, "SUB", { sid: 1, pattern: "jobs", queue: "w" });
    m.send(other, "SUB", { sid: 1, pattern: "jobs" }); // plain: every message
    m.settle();
    const p0 = m.client(0);
    for (let i = 0; i < 10; i++) m.send(p0, "PUB", { topic: "jobs", payload: b(`a${i}`) });
    m.settle();
    expect(msgs(near)).toHaveLength(10); // node 2 is nearer node 0 than node 4 is
    expect(msgs(far)).toEqual([]);
    const p4 = m.client(4);
    for (let i = 0; i < 10; i++) m.send(p4, "PUB", { topic: "jobs", payload: b(`b${i}`) });
    m.settle();
    expect(msgs(far)).toHaveLength(10); // its own node's member
    expect(msgs(near)).toHaveLength(10);
    expect(msgs(other)).toHaveLength(20);
  });

  test("RPC: a far provider is found and answers; the reply, a cancellation and a timeout travel the call's path", () => {
    const m = mesh(6, line(6));
    const prov = m.client(5);
    m.send(prov, "REG", { proc: "far.echo" });
    m.settle();
    let answer = true;
    prov.onFrame = (f) => {
      if (f.name === "CALL" && answer) {
        m.sim.after(
          0.1,
          () => m.send(prov, "REPLY", { id: f.fields.id, payload: f.fields.payload }),
        );
      }
    };
    const caller = m.client(0);
    m.send(caller, "CALL", { id: 1, proc: "far.echo", payload: b("hi"), timeout_ms: 1000 });
    m.settle();
    expect(caller.got("REPLY").map((f) => [f.fields.id, text(f.fields.payload)])).toEqual([[
      1,
      "hi",
    ]]);
    // The deadline travels as time remaining: each hop asks for less.
    const at = prov.got("CALL")[0]!;
    expect(at.fields.timeout_ms as number).toBeLessThanOrEqual(1000);
    answer = false;
    m.send(caller, "CALL", { id: 2, proc: "far.echo", payload: b(""), timeout_ms: 5000 });
    m.sim.runFor(50);
    m.send(caller, "CANCEL", { id: 2 });
    m.send(caller, "CALL", { id: 3, proc: "far.echo", payload: b(""), timeout_ms: 200 });
    m.settle();
    expect(prov.got("CANCEL")).toHaveLength(2); // the cancel, and the timeout's cancel
    expect(caller.got("FAIL").map((f) => [f.fields.id, f.fields.code])).toEqual([
      [3, RPC_ERROR_NUMBERS.timeout],
    ]);
    for (const x of m.nodes) expect(x.router.snapshot().pendingCalls).toBe(0);
  });

  test("RPC: a provider that left before its record did makes the caller's node try the next (no_provider across hops)", () => {
    const m = mesh(6, line(6));
    const gone = m.client(5);
    const stays = m.client(3);
    m.send(gone, "REG", { proc: "svc.x" });
    m.send(stays, "REG", { proc: "svc.x" });
    m.settle();
    stays.onFrame = (f) => {
      if (f.name === "CALL") m.send(stays, "REPLY", { id: f.fields.id, payload: b("from 3") });
    };
    const caller = m.client(0);
    // The record saying node 5 stopped serving is still on its way when the call starts.
    m.send(gone, "UNREG", { proc: "svc.x" });
    m.send(caller, "CALL", {
      id: 1,
      proc: "svc.x",
      payload: b(""),
      timeout_ms: 1000,
      strategy: "round-robin",
    });
    m.send(caller, "CALL", {
      id: 2,
      proc: "svc.x",
      payload: b(""),
      timeout_ms: 1000,
      strategy: "round-robin",
    });
    m.settle();
    expect(caller.got("REPLY").map((f) => text(f.fields.payload))).toEqual(["from 3", "from 3"]);
    expect(caller.got("FAIL")).toEqual([]);
    // One of the two calls went to node 5 first (round-robin), and was answered no_provider there.
    expect(m.nodes[5]!.router.stats.calls).toBe(1);
    expect(m.nodes[5]!.router.stats.failures).toBe(1);
  });

  test("records are checked as the unsigned check does: a forged one closes the route it came on", () => {
    const m = mesh(3, line(3));
    const record = (origin: string, key: Uint8Array) => ({
      origin,
      version: 1,
      hops: 0,
      rtt_us: 0,
      subs: [{ pattern: "x" }],
      procs: [],
      key,
      sig: key,
    });
    const frames = (f: Record<string, unknown>) => ({
      names: ["INTEREST"],
      fields: [f],
      shortcut: false,
    });
    // An id that is not ASCII: its key is its UTF-8 bytes, and it is taken.
    const far = "ñode".padEnd(52, "x");
    m.sim.call("n1", (c, now) => c.receive(now, "n0", frames(record(far, b(far)))));
    expect(m.nodes[1]!.router.interest().map((o) => o.node)).toContain(far);
    // A key that spells another node: forged.
    const other = "other".padEnd(52, "y");
    m.sim.call("n1", (c, now) => c.receive(now, "n2", frames(record(other, b(far)))));
    expect(m.nodes[1]!.closed).toEqual([{
      peer: "n2",
      error: `INTEREST: the record of ${other} (version 1) is not signed by that node`,
    }]);
    expect(m.nodes[1]!.router.stats.forgedRecords).toBe(1);
  });

  test("a route that goes down is routed around; a node that dies takes its interest with it", () => {
    // Two ways from 0 to 2: through 1 (fast) and through 3.
    const m = mesh(4, [[0, 1], [1, 2], [0, 3], [3, 2]]);
    const sub = m.client(2);
    m.send(sub, "SUB", { sid: 1, pattern: "x" });
    const sub1 = m.client(1);
    m.send(sub1, "SUB", { sid: 1, pattern: "x" });
    m.settle();
    const pub = m.client(0);
    m.send(pub, "PUB", { topic: "x", payload: b("1") });
    m.settle();
    m.unlink(1, 2);
    m.settle();
    m.send(pub, "PUB", { topic: "x", payload: b("2") });
    m.settle();
    expect(msgs(sub)).toEqual(["1", "2"]);
    // Node 1 dies; membership tells the others, its neighbours' routes to it close.
    m.crash(1);
    for (const i of [0, 2, 3]) {
      m.sim.call(`n${i}`, () => m.nodes[i]!.router.memberDown(m.nodes[1]!.nodeId));
    }
    m.unlink(0, 1);
    m.settle();
    m.send(pub, "PUB", { topic: "x", payload: b("3") });
    m.settle();
    expect(msgs(sub)).toEqual(["1", "2", "3"]);
    expect(m.nodes[0]!.router.interest().map((o) => o.node)).not.toContain(m.nodes[1]!.nodeId);
    expect(m.stats().noRoute).toBe(0);
  });

  test("a route being let go: traffic takes other paths at once, an origin only it reaches keeps it, calls over it hold it", () => {
    // 0–1–2 (2 hops) and 0–3–4–2 (3 hops) to node 2; node 5 hangs off 0 alone.
    const m = mesh(6, [[0, 1], [1, 2], [0, 3], [3, 4], [4, 2], [0, 5]]);
    const sub2 = m.client(2);
    m.send(sub2, "SUB", { sid: 1, pattern: "x" });
    const sub5 = m.client(5);
    m.send(sub5, "SUB", { sid: 1, pattern: "x" });
    const prov = m.client(5);
    m.send(prov, "REG", { proc: "at.five" });
    m.settle();
    const [n0, n1, n3, n5] = [m.nodes[0]!, m.nodes[1]!, m.nodes[3]!, m.nodes[5]!];
    m.sim.call("n0", () => {
      n0.retire(n1.addr);
      n0.retire(n5.addr);
    });
    m.settle();
    const via1 = n1.router.stats.forwarded;
    const via3 = n3.router.stats.forwarded;
    const pub = m.client(0);
    for (let i = 0; i < 5; i++) m.send(pub, "PUB", { topic: "x", payload: b(`${i}`) });
    m.settle();
    expect(msgs(sub2)).toEqual(["0", "1", "2", "3", "4"]);
    expect(n1.router.stats.forwarded - via1).toBe(0); // the longer way, through 3 and 4
    expect(n3.router.stats.forwarded - via3).toBe(5);
    expect(msgs(sub5)).toEqual(["0", "1", "2", "3", "4"]); // only the retiring route reaches 5
    // A call to 5 goes over its retiring route and holds it until answered.
    const caller = m.client(0);
    m.send(caller, "CALL", { id: 1, proc: "at.five", payload: b("q"), timeout_ms: 1000 });
    m.sim.runFor(50); // not settle: that would run to the call's deadline
    expect(n0.busy(n5.addr)).toBe(true);
    expect(n0.busy(n1.addr)).toBe(false);
    const call = prov.got("CALL")[0]!;
    m.send(prov, "REPLY", { id: call.fields.id, payload: b("a") });
    m.settle();
    expect(caller.got("REPLY").map((f) => text(f.fields.payload))).toEqual(["a"]);
    expect(n0.busy(n5.addr)).toBe(false);
    expect(m.stats().noRoute).toBe(0);
  });
});

describe("macula sim routing", () => {
  test("300 nodes at k = 4: complete, no duplicates, every call answered, whole again after 10% crash", () => {
    const r = runRoutingSim({
      nodes: 300,
      seed: 7,
      subscribers: 30,
      k: 4,
      publishes: 20,
      calls: 20,
    });
    expect(r.delivery.completeness).toBe(1);
    expect(r.delivery.duplicates).toBe(0);
    expect(r.queue).toEqual({ publishes: 10, delivered: 10, duplicates: 0 });
    expect(r.rpc).toEqual({ calls: 20, ok: 20, failed: 0 });
    expect(r.visibilityMs.max).toBeLessThan(Infinity); // every node took the new record
    expect(r.churn!.completeAfterDetect).toBe(1);
    expect(r.churn!.recoveredMs).not.toBeNull();
    expect(r.protocolErrors).toBe(0);
    expect(r.perNode.origins.max).toBeLessThanOrEqual(32); // 30 subscribers, a provider, the late one
    // Streams: every message once and in order; once warm, each far subscriber's node is reached
    // over its shortcut, one FWD per delivery.
    expect(r.streams).toMatchObject({ expected: 30 * 10 * 20, duplicates: 0, outOfOrder: 0 });
    expect(r.streams.delivered).toBe(r.streams.expected);
    expect(r.streams.steadyTransmissionsPerDelivery).toBe(1);
    expect(r.streams.maxShortcutsPerNode).toBeLessThanOrEqual(2 * 128);
  });

  test("with shortcuts off, streams go the overlay's paths (more than one FWD per delivery)", () => {
    const r = runRoutingSim({ nodes: 300, seed: 7, subscribers: 30, k: 4, shortcuts: 0, churn: 0 });
    expect(r.streams.delivered).toBe(r.streams.expected);
    expect(r.streams.shortcuts).toBe(0);
    expect(r.streams.steadyTransmissionsPerDelivery).toBeGreaterThan(1);
  });

  test("the same seed gives the same run", () => {
    const o = { nodes: 60, seed: 3, subscribers: 10, publishes: 5, calls: 5 };
    const { wallMs: _a, ...one } = runRoutingSim(o);
    const { wallMs: _b, ...two } = runRoutingSim(o);
    expect(two).toEqual(one);
  });
});
