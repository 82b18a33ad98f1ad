/**
 * Shortcuts (docs/routing.md, "Shortcuts"): a node whose clients keep sending to a far node asks
 * for a direct link to it, uses it once nothing sent the old way can be overtaken, and lets it go
 * when idle, when a route to that node comes up, or when a busier pair needs the room. Real
 * routers on the deterministic simulator (lib/sim/routing.ts).
 */
import { describe, expect, test } from "bun:test";
import { ProtocolError, Router, type RouterOptions } from "../../lib/messaging/mod.ts";
import { RoutedMesh, type SimClient } from "../../lib/sim/routing.ts";

const b = (s: string) => new TextEncoder().encode(s);
const text = (u: unknown) => new TextDecoder().decode(u as Uint8Array);
const msgs = (c: SimClient, sid = 1) =>
  c.got("MSG").filter((f) => f.fields.sid === sid).map((f) => text(f.fields.payload));

function mesh(
  n: number,
  edges: [number, number][],
  router: Partial<RouterOptions> = {},
  latencyMs = { min: 0.5, max: 5 },
): RoutedMesh {
  const m = new RoutedMesh({ seed: 3, router, latencyMs });
  for (let i = 0; i < n; i++) m.add();
  for (const [a, c] of edges) m.link(a, c);
  expect(m.settle()).toBe(true);
  return m;
}
const line = (n: number) => Array.from({ length: n - 1 }, (_, i) => [i, i + 1] as [number, number]);

/** `count` publishes from `c` on `topic`, `gapMs` apart, from now. */
function stream(m: RoutedMesh, c: SimClient, topic: string, count: number, gapMs: number) {
  for (let i = 0; i < count; i++) {
    m.sim.after(i * gapMs, () => m.send(c, "PUB", { topic, payload: b(`${i}`) }));
  }
}
/** A client of node `i` subscribed to `pattern`, once the mesh has taken the subscription. */
function subscriber(m: RoutedMesh, i: number, pattern: string): SimClient {
  const c = m.client(i);
  m.send(c, "SUB", { sid: 1, pattern });
  expect(m.settle()).toBe(true);
  return c;
}
const upTo = (n: number) => Array.from({ length: n }, (_, i) => `${i}`);

describe("shortcuts", () => {
  test("a stream to a far node takes a shortcut from its third message: every message once, in order, the forwarders left out", () => {
    const m = mesh(5, line(5));
    const sub = subscriber(m, 4, "s");
    const pub = m.client(0);
    stream(m, pub, "s", 30, 10);
    m.sim.runFor(30 * 10 + 100);
    expect(msgs(sub)).toEqual(upTo(30));
    const r0 = m.nodes[0]!.router;
    expect(r0.snapshot().shortcuts).toBe(1);
    expect(m.nodes[4]!.router.snapshot().shortcuts).toBe(1);
    expect(r0.stats.shortcutsOpened).toBe(1);
    // Messages 1–3 earn it (the third asks); the dial takes a round trip: a few more go the
    // long way, the rest straight to node 4.
    expect(r0.stats.viaShortcut).toBeGreaterThanOrEqual(25);
    expect(r0.stats.forwarded).toBe(30);
    // The middle of the line forwarded only what went before the shortcut.
    expect(m.nodes[2]!.router.stats.forwarded).toBe(30 - r0.stats.viaShortcut);
    expect(m.shortcutDials).toEqual({ made: 1, failed: 0 });
  });

  test("messages taking a new shortcut wait until none sent the long way can be overtaken", () => {
    // Every link 5 ms one way: the path is 20 ms, the shortcut 5 ms, and messages go 1 ms apart.
    // Without the hold, messages over the shortcut would arrive before the ones on the path.
    const m = mesh(5, line(5), {}, { min: 5, max: 5 });
    const sub = subscriber(m, 4, "s");
    stream(m, m.client(0), "s", 200, 1);
    expect(m.settle()).toBe(true);
    expect(msgs(sub)).toEqual(upTo(200));
    expect(m.nodes[0]!.router.stats.viaShortcut).toBeGreaterThan(150);
  });

  test("one-off messages never cost a shortcut", () => {
    const m = mesh(4, line(4));
    const sub = subscriber(m, 3, "s");
    const pub = m.client(0);
    // Two messages in each 10 s window: under the three that earn a shortcut.
    for (let w = 0; w < 3; w++) {
      m.send(pub, "PUB", { topic: "s", payload: b(`${2 * w}`) });
      m.send(pub, "PUB", { topic: "s", payload: b(`${2 * w + 1}`) });
      m.sim.runFor(10_001);
    }
    expect(m.settle()).toBe(true);
    expect(msgs(sub)).toEqual(upTo(6));
    expect(m.nodes[0]!.router.stats.shortcutsOpened).toBe(0);
    expect(m.shortcutDials.made).toBe(0);
  });

  test("an idle shortcut is let go at both ends; the next stream earns a new one", () => {
    const m = mesh(4, line(4), { shortcuts: { idleMs: 2000 } });
    const sub = subscriber(m, 3, "s");
    const pub = m.client(0);
    stream(m, pub, "s", 10, 10);
    m.sim.runFor(200);
    expect(m.nodes[0]!.router.snapshot().shortcuts).toBe(1);
    expect(m.settle()).toBe(true); // quiet: the idle shortcut is gone, nothing left to wake for
    for (const i of [0, 3]) {
      expect(m.nodes[i]!.router.snapshot().shortcuts).toBe(0);
      expect(m.nodes[i]!.shortcutPeers()).toEqual([]);
    }
    expect(m.nodes[0]!.router.stats.shortcutsClosed).toBe(1);
    stream(m, pub, "s", 10, 10);
    m.sim.runFor(200);
    expect(m.nodes[0]!.router.stats.shortcutsOpened).toBe(2);
    expect(msgs(sub)).toEqual([...upTo(10), ...upTo(10)]);
    // The far end was let go of an idle shortcut: no refusal, so it may ask for its own at once.
    expect(m.settle()).toBe(true);
    const back = subscriber(m, 0, "back");
    const opened = m.nodes[3]!.router.stats.shortcutsOpened;
    stream(m, m.client(3), "back", 10, 10);
    m.sim.runFor(200);
    expect(m.nodes[3]!.router.stats.shortcutsOpened).toBe(opened + 1);
    expect(msgs(back)).toEqual(upTo(10));
  });

  test("a shortcut goes once a route to its node comes up", () => {
    const m = mesh(4, line(4));
    const sub = subscriber(m, 3, "s");
    const pub = m.client(0);
    stream(m, pub, "s", 10, 10);
    m.sim.runFor(200);
    expect(m.nodes[0]!.router.snapshot().shortcuts).toBe(1);
    m.link(0, 3);
    stream(m, pub, "s", 10, 10);
    expect(m.settle()).toBe(true);
    expect(m.nodes[0]!.router.snapshot().shortcuts).toBe(0);
    expect(m.nodes[3]!.router.snapshot().shortcuts).toBe(0);
    expect(msgs(sub)).toEqual([...upTo(10), ...upTo(10)]);
  });

  test("at most `max` in use: the least recently used gives way once idle for a second", () => {
    // A star of lines: node 0 in the middle, far nodes 2 and 4 two hops out.
    const m = mesh(5, [[0, 1], [1, 2], [0, 3], [3, 4]], { shortcuts: { max: 1 } });
    const a = m.client(2);
    const c = m.client(4);
    m.send(a, "SUB", { sid: 1, pattern: "a" });
    m.send(c, "SUB", { sid: 1, pattern: "c" });
    m.settle();
    const pub = m.client(0);
    stream(m, pub, "a", 10, 10);
    m.sim.runFor(200);
    const r0 = m.nodes[0]!.router;
    expect(r0.snapshot().shortcuts).toBe(1);
    // A stream to node 4 while the shortcut to node 2 was used just now: no room, the long way.
    stream(m, pub, "c", 10, 10);
    m.sim.runFor(200);
    expect(r0.stats.shortcutsOpened).toBe(1);
    // Once node 2's has been idle a second, node 4's stream takes the room.
    m.sim.runFor(1000);
    stream(m, pub, "c", 10, 10);
    m.sim.runFor(300);
    expect(r0.stats.shortcutsClosed).toBe(1);
    expect(r0.stats.shortcutsOpened).toBe(2);
    expect(m.nodes[4]!.router.snapshot().shortcuts).toBe(1);
    expect(m.settle()).toBe(true);
    expect(msgs(a)).toEqual(upTo(10));
    expect(msgs(c)).toEqual([...upTo(10), ...upTo(10)]);
  });

  test("calls to a far provider take a shortcut too; replies come back on it", () => {
    const m = mesh(4, line(4));
    const provider = m.client(3);
    m.send(provider, "REG", { proc: "p" });
    provider.onFrame = (f) => {
      if (f.name === "CALL") {
        m.sim.after(0.1, () => m.send(provider, "REPLY", { id: f.fields.id, payload: b("ok") }));
      }
    };
    m.settle();
    const caller = m.client(0);
    for (let i = 0; i < 10; i++) {
      m.sim.after(
        i * 20,
        () => m.send(caller, "CALL", { id: i + 1, proc: "p", payload: b(""), timeout_ms: 5000 }),
      );
    }
    expect(m.settle()).toBe(true);
    expect(caller.got("REPLY").length).toBe(10);
    expect(m.nodes[0]!.router.stats.shortcutsOpened).toBe(1);
    // The middle node carried only the calls before the shortcut (3 to earn it, the dial's round trip).
    expect(m.nodes[1]!.router.stats.calls).toBeLessThanOrEqual(5);
  });

  test("a call in flight keeps its shortcut past the idle bound: answered after 40 s over it", () => {
    const m = mesh(4, line(4));
    const provider = m.client(3);
    m.send(provider, "REG", { proc: "p" });
    let slow = false;
    provider.onFrame = (f) => {
      if (f.name !== "CALL") return;
      const wait = slow ? 40_000 : 0.1;
      m.sim.after(wait, () => m.send(provider, "REPLY", { id: f.fields.id, payload: b("ok") }));
    };
    m.settle();
    const caller = m.client(0);
    for (let i = 0; i < 5; i++) {
      m.sim.after(
        i * 20,
        () => m.send(caller, "CALL", { id: i + 1, proc: "p", payload: b(""), timeout_ms: 5000 }),
      );
    }
    m.sim.runFor(200);
    expect(m.nodes[0]!.router.snapshot().shortcuts).toBe(1);
    slow = true;
    m.send(caller, "CALL", { id: 99, proc: "p", payload: b(""), timeout_ms: 60_000 });
    expect(m.settle()).toBe(true);
    expect(caller.got("FAIL")).toEqual([]);
    expect(caller.got("REPLY").map((f) => f.fields.id)).toContain(99);
    expect(m.nodes[0]!.router.stats.shortcutsOpened).toBe(1);
  });

  test("a shortcut that goes down while it holds messages sends them the long way, in order", () => {
    const m = mesh(5, line(5), {}, { min: 5, max: 5 });
    const sub = subscriber(m, 4, "s");
    stream(m, m.client(0), "s", 40, 1);
    // The shortcut comes up 10 ms after the third message asked, then holds for the path's 40 ms
    // RTT sum: cut it at 25 ms, while it holds.
    m.sim.after(25, () => {
      m.sim.call("n0", (c, now) => (c as typeof m.nodes[0]).shortcutDown(now, "n4"));
    });
    expect(m.settle()).toBe(true);
    expect(msgs(sub)).toEqual(upTo(40));
    // Every one opened is counted closed by the end, the one cut (no one let it go) too.
    const { shortcutsOpened, shortcutsClosed } = m.nodes[0]!.router.stats;
    expect(shortcutsOpened).toBeGreaterThanOrEqual(1);
    expect(shortcutsClosed).toBe(shortcutsOpened);
  });

  test("a shortcut slower than the path is let go, and messages after it wait out what it carries", () => {
    // 1 ms links: the path is 4 ms one way; the shortcut 30 ms. Sweeps every 100 ms (idleMs / 4).
    const m = mesh(5, line(5), { shortcuts: { idleMs: 400 } }, { min: 1, max: 1 });
    m.setLatency(0, 4, 30);
    const sub = subscriber(m, 4, "s");
    stream(m, m.client(0), "s", 600, 1);
    expect(m.settle()).toBe(true);
    // Without the wait at the let-go, messages sent the long way overtake the shortcut's by 26 ms.
    expect(msgs(sub)).toEqual(upTo(600));
    const r0 = m.nodes[0]!.router;
    // Up after its 60 ms handshake, let go at the next sweep (100 ms): most went the long way.
    expect(r0.stats.viaShortcut).toBeGreaterThan(0);
    expect(r0.stats.viaShortcut).toBeLessThan(300);
    expect(r0.stats.shortcutsClosed).toBe(1);
    expect(r0.stats.shortcutsOpened).toBe(1); // not asked for again within retryMs
    expect(r0.stats.shortcutHeld).toBeGreaterThan(0);
  });

  test("held messages are bounded in bytes: past the bound they go at once, none lost, counted", () => {
    const m = mesh(5, line(5), { shortcuts: { maxHeldBytes: 2000 } }, { min: 5, max: 5 });
    const sub = subscriber(m, 4, "s");
    const pub = m.client(0);
    for (let i = 0; i < 100; i++) {
      m.sim.after(i, () => m.send(pub, "PUB", { topic: "s", payload: b(`${i}`.padEnd(500)) }));
    }
    expect(m.settle()).toBe(true);
    const got = msgs(sub).map((s) => s.trim());
    expect(got.length).toBe(100);
    expect(new Set(got)).toEqual(new Set(upTo(100)));
    const r0 = m.nodes[0]!.router;
    expect(r0.stats.shortcutHoldOverflow).toBeGreaterThan(0);
    // 2,000 bytes hold three of these at a time (500 B payloads and their topic and framing).
    expect(r0.stats.shortcutHeld).toBeLessThan(100);
  });

  test("a flush waits for held messages: its PONG means they went", () => {
    // The shortcut is up 10 ms after the third message asks, and holds for the path's 40 ms RTT
    // sum and the margin: a PING at 30 ms finds messages held.
    const m = mesh(5, line(5), {}, { min: 5, max: 5 });
    const sub = subscriber(m, 4, "s");
    const pub = m.client(0);
    stream(m, pub, "s", 30, 1);
    let seenAtPong = -1;
    pub.onFrame = (f) => {
      if (f.name === "PONG") seenAtPong = msgs(sub).length;
    };
    m.sim.after(30, () => m.send(pub, "PING", { id: 7 }));
    expect(m.settle()).toBe(true);
    expect(m.nodes[0]!.router.stats.shortcutHeld).toBeGreaterThan(0);
    // Everything published before the PING went before its PONG: the far node had it.
    expect(seenAtPong).toBe(30);
    expect(msgs(sub)).toEqual(upTo(30));
  });

  test("a switch holds messages at most maxHoldMs, whatever the path's cost says; a flush waits no longer", () => {
    // One hop of the path is 1.5 s one way (as a forwarder claiming a huge cost would make it
    // look): its RTT sum is about 3 s, but held messages go after 1 s.
    const m = new RoutedMesh({ seed: 3, router: {}, latencyMs: { min: 1, max: 1 } });
    for (let i = 0; i < 5; i++) m.add();
    m.setLatency(2, 3, 1500); // before the route: its measured RTT is 3 s
    for (const [a, c] of line(5)) m.link(a, c);
    expect(m.settle()).toBe(true);
    const sub = subscriber(m, 4, "s");
    const pub = m.client(0);
    const other = m.client(0); // never sends to node 4
    const start = m.sim.now;
    stream(m, pub, "s", 20, 10);
    let pongAt = -1;
    other.onFrame = (f) => {
      if (f.name === "PONG") pongAt = m.sim.now - start;
    };
    m.sim.after(100, () => m.send(other, "PING", { id: 1 }));
    expect(m.settle()).toBe(true);
    expect(new Set(msgs(sub))).toEqual(new Set(upTo(20)));
    expect(m.nodes[0]!.router.stats.shortcutHeld).toBeGreaterThan(0);
    const firstOverShortcut = sub.frames.find((f) => f.name === "MSG" && f.at - start < 1500);
    expect(firstOverShortcut).toBeDefined();
    expect(firstOverShortcut!.at - start).toBeLessThan(1100); // held ≤ 1 s after the switch
    expect(pongAt).toBeGreaterThan(0);
    expect(pongAt).toBeLessThan(1200); // parked with them, not for the path's 3 s
  });

  test("peers' shortcuts do not take this node's own room", () => {
    // max 1 everywhere. Node 0 streams to node 4 (a shortcut node 4 did not ask for); meanwhile
    // node 4 streams to node 1, three hops away: it still gets one of its own.
    const m = mesh(5, line(5), { shortcuts: { max: 1 } });
    const at4 = subscriber(m, 4, "to4");
    const at1 = subscriber(m, 1, "to1");
    stream(m, m.client(0), "to4", 100, 5);
    m.sim.after(100, () => stream(m, m.client(4), "to1", 50, 5));
    expect(m.settle()).toBe(true);
    expect(msgs(at4)).toEqual(upTo(100));
    expect(msgs(at1)).toEqual(upTo(50));
    const r4 = m.nodes[4]!.router;
    expect(r4.stats.shortcutsOpened).toBe(2); // node 0's, and its own to node 1
    expect(r4.stats.viaShortcut).toBeGreaterThan(0);
    // Node 0's stream was not cut for it: one shortcut, let go only when idle at the end.
    expect(m.nodes[0]!.router.stats.shortcutsOpened).toBe(1);
  });

  test("a shortcut carries only what is for its far end: FWD or CALL for another node closes it", () => {
    const me = "a".repeat(52);
    const fwd = (dests: string[]) => ({
      type: 0,
      name: "FWD",
      fields: { topic: "t", payload: b("x"), ttl: 8, dests, groups: [] },
    });
    const call = (to: string) => ({
      type: 0,
      name: "CALL",
      fields: { id: 1, proc: "p", payload: b(""), timeout_ms: 1000, to, ttl: 8 },
    });
    for (
      const frame of [
        fwd(["c".repeat(16)]),
        fwd([me.slice(0, 16), "c".repeat(16)]),
        call("c".repeat(16)),
      ]
    ) {
      const r = new Router({ random: () => 0.5, nodeId: me });
      const sc = { id: "sc:1", kind: "node" as const, shortcut: "b".repeat(16) };
      r.attach(sc);
      expect(() => r.receive(0, sc, frame)).toThrow(/on a shortcut, which carries only/);
      expect(r.stats.protocolErrors).toBe(1);
    }
    // One for this node is taken.
    const r = new Router({ random: () => 0.5, nodeId: me });
    const sc = { id: "sc:1", kind: "node" as const, shortcut: "b".repeat(16) };
    r.attach(sc);
    r.receive(0, sc, fwd([me.slice(0, 16)]));
    expect(r.stats.protocolErrors).toBe(0);
  });

  test("interest is refused on a shortcut (only routes carry it)", () => {
    const r = new Router({ random: () => 0.5, nodeId: "a".repeat(52) });
    const sc = { id: "sc:1", kind: "node" as const, shortcut: "b".repeat(16) };
    r.attach(sc);
    expect(r.drain()).toEqual([]); // no records go out on it
    expect(() =>
      r.receive(0, sc, {
        type: 0,
        name: "INTEREST",
        fields: { origin: "b".repeat(52), version: 1, hops: 0, rtt_us: 0, subs: [], procs: [] },
      })
    ).toThrow(ProtocolError);
  });
});
