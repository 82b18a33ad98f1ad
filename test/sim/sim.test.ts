import { describe, expect, test } from "bun:test";
import { type Latency, Simulator } from "../../lib/sim/mod.ts";
import { deriveRng } from "../../lib/sim/rng.ts";
import { ACTION, type Ev, EventQueue, TIMER } from "../../lib/sim/queue.ts";
import { Stuck, Toy, type ToyEvent, type ToyMsg, type ToyOptions } from "./toy.ts";

type Sim = Simulator<ToyMsg, ToyEvent>;

function newSim(o: { seed?: number; latency?: Latency; loss?: number; inboxLimit?: number } = {}) {
  return new Simulator<ToyMsg, ToyEvent>({ seed: 7, latency: { baseMs: 1, jitterMs: 0 }, ...o });
}

function addToy(sim: Sim, addr: string, o: ToyOptions = {}): Toy {
  return sim.add(addr, (a, rng) => new Toy(a, rng, o)) as Toy;
}

function toy(sim: Sim, addr: string): Toy {
  return sim.core(addr) as Toy;
}

/** `addr` sends `msg` now (through the toy's send). */
function send(sim: Sim, from: string, to: string, n = 0): void {
  sim.call(from, (c, now) => (c as Toy).send(to, { kind: "data", n, sentAt: now }));
}

/** A gossip-ish run: `n` chattering nodes with loss, jitter, a crash and a pause. */
function chatterRun(seed: number) {
  const sim = new Simulator<ToyMsg, ToyEvent>({
    seed,
    latency: { baseMs: 1, jitterMs: 4 },
    loss: 0.05,
  });
  const addrs = Array.from({ length: 30 }, (_, i) => `n${i}`);
  const trace: string[] = [];
  sim.onEvent((addr, ev, now) => trace.push(`${now} ${addr} ${JSON.stringify(ev)}`));
  for (const a of addrs) addToy(sim, a, { peers: addrs, periodMs: 10, firstAt: 1 });
  sim.at(200, () => sim.crash("n3"));
  sim.at(250, () => sim.pause("n4", 100));
  sim.at(300, () => sim.restart("n3", (a, rng) => new Toy(a, rng, { peers: addrs, periodMs: 10 })));
  sim.runUntil(1000);
  return { trace, stats: sim.stats() };
}

describe("determinism", () => {
  test("the same seed gives the same event trace and stats; another seed does not", () => {
    const a = chatterRun(42), b = chatterRun(42), c = chatterRun(43);
    expect(a.trace.length).toBeGreaterThan(2000);
    expect(b.trace).toEqual(a.trace);
    expect(b.stats).toEqual(a.stats);
    expect(c.trace).not.toEqual(a.trace);
    expect(c.stats).not.toEqual(a.stats);
  });

  test("node rngs derive from the seed, the addr and the incarnation", () => {
    const draws = (seed: number, addr: string) => {
      const sim = newSim({ seed });
      const first = addToy(sim, addr).rng();
      sim.restart(addr, (a, rng) => new Toy(a, rng));
      return [first, toy(sim, addr).rng()];
    };
    const [a0, a1] = draws(1, "n1");
    expect(draws(1, "n1")).toEqual([a0!, a1!]);
    expect(a1).not.toBe(a0);
    expect(draws(1, "n2")[0]).not.toBe(a0);
    expect(draws(2, "n1")[0]).not.toBe(a0);
    expect(deriveRng(1, "node", "n1", 0)()).toBe(a0!);
  });
});

describe("network", () => {
  test("latency stays within base + [0, jitter), and per-link overrides apply one way", () => {
    const sim = newSim({ latency: { baseMs: 5, jitterMs: 10 } });
    const a = addToy(sim, "a"), b = addToy(sim, "b");
    const events: number[] = [];
    sim.onEvent((_, ev) => {
      if (ev.kind === "recv") events.push(ev.at - ev.msg.sentAt);
    });
    for (let i = 0; i < 500; i++) {
      send(sim, "a", "b", i);
      sim.runFor(0.5);
    }
    sim.runFor(100);
    expect(a.recvCount).toBe(0);
    expect(b.recvCount).toBe(500);
    expect(events.length).toBe(500);
    expect(Math.min(...events)).toBeGreaterThanOrEqual(5);
    expect(Math.max(...events)).toBeLessThan(15);
    expect(Math.max(...events) - Math.min(...events)).toBeGreaterThan(9); // jitter is used

    sim.setLinkLatency("a", "b", { baseMs: 50 });
    events.length = 0;
    send(sim, "a", "b");
    send(sim, "b", "a");
    sim.runFor(100);
    expect(events.sort((x, y) => x - y)).toHaveLength(2);
    expect(events[1]).toBe(50); // a → b
    expect(events[0]).toBeLessThan(15); // b → a keeps the default
    sim.setLinkLatency("a", "b", undefined);
    events.length = 0;
    send(sim, "a", "b");
    sim.runFor(100);
    expect(events[0]).toBeLessThan(15);

    sim.setLatency((rng) => 100 + rng());
    events.length = 0;
    send(sim, "a", "b");
    sim.runFor(200);
    expect(events[0]).toBeGreaterThanOrEqual(100);
    expect(events[0]).toBeLessThan(101);
  });

  test("loss drops the configured fraction (exact count for this seed, and a 4σ range)", () => {
    const sim = newSim({ seed: 1234, loss: 0.1 });
    addToy(sim, "a");
    const b = addToy(sim, "b", { events: false });
    const N = 20_000;
    sim.call("a", (c, now) => {
      for (let i = 0; i < N; i++) (c as Toy).send("b", { kind: "data", n: i, sentAt: now });
    });
    sim.runFor(10);
    const s = sim.stats();
    expect(s.dropped.loss + b.recvCount).toBe(N);
    expect(s.dropped.loss).toBe(1976);
    const sigma = Math.sqrt(N * 0.1 * 0.9);
    expect(Math.abs(s.dropped.loss - N * 0.1)).toBeLessThan(4 * sigma);
    expect(s.nodes["a"]!.dropped.loss).toBe(s.dropped.loss);
    expect(s.received).toBe(b.recvCount);

    sim.setLoss(0);
    send(sim, "a", "b");
    sim.runFor(10);
    expect(sim.stats().dropped.loss).toBe(1976);
    expect(() => sim.setLoss(1.5)).toThrow(RangeError);
  });

  test("a partition drops cross-group messages at send time; heal restores them", () => {
    const sim = newSim();
    const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((x) => addToy(sim, x));
    sim.partition([["a", "b"], ["c", "d"]]);
    send(sim, "a", "b");
    send(sim, "a", "c");
    send(sim, "c", "d");
    send(sim, "d", "b");
    send(sim, "e", "a"); // e is in no group: the implicit rest group
    send(sim, "a", "a"); // to itself: never cut off
    sim.runFor(10);
    expect([a!.recvCount, b!.recvCount, c!.recvCount, d!.recvCount, e!.recvCount]).toEqual([
      1,
      1,
      0,
      1,
      0,
    ]);
    expect(sim.stats().dropped.partition).toBe(3);

    // Checked at send time: a message in flight when the partition starts still arrives.
    sim.heal();
    send(sim, "a", "c");
    sim.partition([["a"], ["c"]]);
    sim.runFor(10);
    expect(c!.recvCount).toBe(1);

    sim.heal();
    send(sim, "a", "c");
    send(sim, "d", "b");
    send(sim, "e", "a");
    sim.runFor(10);
    expect([a!.recvCount, b!.recvCount, c!.recvCount]).toEqual([2, 2, 2]);
    expect(sim.stats().dropped.partition).toBe(3);
    expect(() => sim.partition([["a"], ["a"]])).toThrow(/two partition groups/);
  });

  test("block is one way, and unblock restores the link", () => {
    const sim = newSim();
    const a = addToy(sim, "a"), b = addToy(sim, "b");
    sim.block("a", "b");
    send(sim, "a", "b");
    send(sim, "b", "a");
    sim.runFor(10);
    expect([a.recvCount, b.recvCount]).toEqual([1, 0]);
    expect(sim.stats().dropped.blocked).toBe(1);
    expect(sim.nodeStats("a").dropped.blocked).toBe(1);
    sim.unblock("a", "b");
    send(sim, "a", "b");
    sim.runFor(10);
    expect(b.recvCount).toBe(1);
  });

  test("messages to an unknown addr are dropped as unknown", () => {
    const sim = newSim();
    addToy(sim, "a");
    send(sim, "a", "nowhere");
    sim.runFor(10);
    expect(sim.stats().dropped.unknown).toBe(1);
    expect(sim.stats().sent).toBe(1);
  });

  test("onMessage sees every outcome; stats count messages and bytes", () => {
    const sim = newSim();
    addToy(sim, "a", { size: 40 });
    addToy(sim, "b", { size: 40 });
    const seen: string[] = [];
    const off = sim.onMessage((from, to, _m, outcome, now) =>
      seen.push(`${now} ${from}>${to} ${outcome}`)
    );
    sim.block("a", "b");
    send(sim, "a", "b");
    sim.unblock("a", "b");
    send(sim, "a", "b");
    sim.runFor(5);
    off();
    send(sim, "a", "b");
    sim.runFor(5);
    expect(seen).toEqual(["0 a>b sent", "0 a>b blocked", "0 a>b sent", "1 a>b delivered"]);
    const s = sim.stats();
    expect([s.sent, s.bytesSent, s.received, s.bytesReceived]).toEqual([3, 120, 2, 80]);
    expect(s.nodes["b"]).toMatchObject({ received: 2, bytesReceived: 80, sent: 0 });
  });

  test("sizeOf overrides Outgoing.size", () => {
    const sim = new Simulator<ToyMsg, ToyEvent>({ seed: 1, sizeOf: (m) => 1000 + m.n });
    addToy(sim, "a");
    addToy(sim, "b");
    send(sim, "a", "b", 5);
    sim.runFor(5);
    expect(sim.stats().bytesReceived).toBe(1005);
  });
});

describe("processes", () => {
  test("crash stops timers and drops messages to it; core() is undefined", () => {
    const sim = newSim();
    const a = addToy(sim, "a", { periodMs: 10 });
    addToy(sim, "b");
    sim.runUntil(55);
    expect(a.ticks).toBe(5);
    send(sim, "b", "a"); // in flight when a crashes: dropped at delivery
    sim.crash("a");
    expect(sim.core("a")).toBeUndefined();
    expect(sim.isUp("a")).toBe(false);
    sim.runUntil(200);
    send(sim, "b", "a");
    sim.runUntil(210);
    expect(a.ticks).toBe(5);
    expect(a.recvCount).toBe(0);
    const s = sim.stats();
    expect(s.dropped.down).toBe(2);
    expect(s.nodes["b"]!.dropped.down).toBe(2);
    expect(s.nodes["a"]!.up).toBe(false);
    expect(() => sim.call("a", () => {})).toThrow(/down/);
    sim.crash("a"); // idempotent
  });

  test("restart gives a fresh core at the same addr, with its own timers", () => {
    const sim = newSim();
    const a0 = addToy(sim, "a", { periodMs: 10 });
    addToy(sim, "b");
    sim.runUntil(35);
    const a1 = sim.restart("a", (addr, rng) => new Toy(addr, rng, { periodMs: 10, firstAt: 40 }));
    expect(a1).not.toBe(a0);
    expect(sim.core("a")).toBe(a1);
    send(sim, "b", "a");
    sim.runUntil(65);
    expect(a0.ticks).toBe(3);
    expect(a0.recvCount).toBe(0);
    expect((a1 as Toy).ticks).toBe(3); // 40, 50, 60
    expect((a1 as Toy).recvCount).toBe(1);
    expect(sim.nodeStats("a")).toMatchObject({ up: true, incarnation: 1, ticks: 6, received: 1 });
    expect(() => sim.add("a", (addr, rng) => new Toy(addr, rng))).toThrow(/already added/);
    expect(() => sim.restart("zz", (addr, rng) => new Toy(addr, rng))).toThrow(/unknown/);
  });

  test("pause: no timers, messages queue and arrive in order at resume, then due timers run", () => {
    const sim = newSim({ latency: { baseMs: 1, jitterMs: 0 } });
    const a = addToy(sim, "a", { periodMs: 10 });
    addToy(sim, "b");
    const trace: string[] = [];
    sim.onEvent((addr, ev, now) => {
      if (addr === "a") trace.push(`${now} ${ev.kind} ${ev.kind === "recv" ? ev.msg.n : ev.n}`);
    });
    sim.runUntil(25); // ticks at 10, 20
    sim.pause("a", 50); // until 75
    expect(sim.isPaused("a")).toBe(true);
    sim.at(30, () => send(sim, "b", "a", 1));
    sim.at(40, () => {
      send(sim, "b", "a", 2);
      send(sim, "b", "a", 3);
    });
    sim.runUntil(74);
    expect(a.ticks).toBe(2);
    expect(a.recvCount).toBe(0);
    sim.runUntil(100);
    expect(trace).toEqual([
      "10 tick 1",
      "20 tick 2",
      "75 recv 1",
      "75 recv 2",
      "75 recv 3",
      "75 tick 3", // one tick() call runs every due period (30..70)
      "75 tick 4",
      "75 tick 5",
      "75 tick 6",
      "75 tick 7",
      "80 tick 8",
      "90 tick 9",
      "100 tick 10",
    ]);
    expect(sim.isPaused("a")).toBe(false);
  });

  test("pausing a paused node extends the pause; a crash loses the inbox", () => {
    const sim = newSim();
    const a = addToy(sim, "a");
    addToy(sim, "b");
    sim.pause("a", 50);
    sim.runUntil(20);
    sim.pause("a", 100); // until 120
    sim.pause("a", 10); // shorter: no effect
    send(sim, "b", "a");
    sim.runUntil(119);
    expect(a.recvCount).toBe(0);
    sim.runUntil(121);
    expect(a.recvCount).toBe(1);

    sim.pause("a", 50);
    send(sim, "b", "a");
    sim.runFor(10);
    sim.crash("a");
    sim.runFor(100);
    expect(a.recvCount).toBe(1);
    expect(sim.stats().dropped.down).toBe(1);
  });

  test("a full inbox drops arrivals and counts them", () => {
    const sim = newSim({ inboxLimit: 10 });
    const a = addToy(sim, "a");
    addToy(sim, "b");
    sim.pause("a", 100);
    for (let i = 0; i < 15; i++) send(sim, "b", "a", i);
    sim.runFor(200);
    expect(a.received.map((m) => m.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(sim.stats().dropped["inbox-full"]).toBe(5);
    expect(sim.nodeStats("b").dropped["inbox-full"]).toBe(5);
  });

  test("a factory whose core has another addr is refused", () => {
    const sim = newSim();
    expect(() => sim.add("a", (_a, rng) => new Toy("b", rng))).toThrow(/says its addr is b/);
  });
});

describe("driving", () => {
  test("call runs on the core now, returns its result and delivers its output", () => {
    const sim = newSim();
    addToy(sim, "a");
    const b = addToy(sim, "b", { echo: true });
    sim.runUntil(10);
    const r = sim.call("a", (c, now) => {
      (c as Toy).send("b", { kind: "ping", n: 1, sentAt: now });
      return now;
    });
    expect(r).toBe(10);
    sim.runFor(5);
    expect(b.recvCount).toBe(1);
    expect(toy(sim, "a").received).toEqual([{ kind: "pong", n: 1, sentAt: 11 }]);
  });

  test("at runs scenario actions at their time, in the order scheduled; not in the past", () => {
    const sim = newSim();
    const log: string[] = [];
    sim.at(20, () => log.push(`x ${sim.now}`));
    sim.at(10, () => log.push(`y ${sim.now}`));
    sim.at(20, () => log.push(`z ${sim.now}`));
    sim.runUntil(15);
    sim.after(5, () => log.push(`w ${sim.now}`));
    sim.runUntil(30);
    expect(log).toEqual(["y 10", "x 20", "z 20", "w 20"]);
    expect(sim.now).toBe(30);
    expect(() => sim.at(29, () => {})).toThrow(RangeError);
  });

  test("runUntilCondition stops when the condition holds, and is bounded when it never does", () => {
    const sim = newSim();
    const a = addToy(sim, "a", { periodMs: 10 });
    expect(sim.runUntilCondition(() => a.ticks >= 3, 1000)).toBe(true);
    expect(sim.now).toBe(30);
    expect(sim.runUntilCondition(() => false, 500)).toBe(false);
    expect(sim.now).toBe(530);
    expect(a.ticks).toBe(53);
    expect(sim.runUntilCondition(() => a.ticks >= 60, 1000, { checkEveryMs: 25 })).toBe(true);
    expect(sim.now).toBe(605);
    // An empty queue does not hang either.
    const idle = newSim();
    expect(idle.runUntilCondition(() => false, 1e6)).toBe(false);
    expect(idle.now).toBe(1e6);
    expect(() => idle.runUntilCondition(() => false, Infinity)).toThrow(RangeError);
  });

  test("a core whose timer never advances is reported as a livelock, not a hang", () => {
    const sim = new Simulator<ToyMsg, ToyEvent>({ seed: 1, maxEventsPerInstant: 1000 });
    sim.add("s", (a) => new Stuck(a));
    expect(() => sim.runUntil(10)).toThrow(/livelock/);
  });

  test("stale timers do not fire, and the queue stays bounded under constant rescheduling", () => {
    const sim = newSim();
    const a = addToy(sim, "a", { periodMs: 10 });
    addToy(sim, "b");
    for (let i = 0; i < 100; i++) {
      sim.pause("a", 1);
      sim.runFor(2);
    }
    expect(sim.pending).toBeLessThan(10);
    expect(a.ticks).toBe(20);
    expect(sim.stats().ticks).toBe(20);

    // Timers far in the future pile up as stale entries until the queue compacts them.
    const far = addToy(sim, "far", { periodMs: 1e7 });
    for (let i = 0; i < 70_000; i++) {
      sim.pause("far", 1);
      sim.runFor(1);
    }
    expect(sim.pending).toBeLessThan(40_000);
    sim.runUntil(1e7);
    expect(far.ticks).toBe(1);
  });
});

describe("EventQueue", () => {
  test("events come out by time, then in the order they were queued, through growth and retain", () => {
    const q = new EventQueue();
    const rng = deriveRng(3, "queue");
    const held: Ev[] = [];
    // The earliest held (by time, then sequence) is the one that comes out.
    const take = () => {
      const min = held.reduce((a, b) => (b.t < a.t || (b.t === a.t && b.seq < a.seq) ? b : a));
      expect(q.pop()).toBe(min);
      held.splice(held.indexOf(min), 1);
    };
    // Many at a few distinct times (ties by sequence), more than the keys' first room.
    for (let i = 0; i < 5000; i++) {
      const e = q.alloc(Math.floor(rng() * 50), i % 3 === 0 ? TIMER : ACTION, i, 0);
      q.push(e);
      held.push(e);
      if (i % 7 === 0) take();
    }
    expect(q.size).toBe(held.length);
    // Retain drops every TIMER; the rest still come out in order.
    q.retain((e) => e.kind !== TIMER);
    for (let i = held.length - 1; i >= 0; i--) if (held[i]!.kind === TIMER) held.splice(i, 1);
    expect(q.size).toBe(held.length);
    expect(q.peekTime()).toBe(Math.min(...held.map((e) => e.t)));
    const rest: Ev[] = [];
    while (q.size > 0) rest.push(q.pop()!);
    expect(q.peekTime()).toBe(Infinity);
    const want = [...held].sort((a, b) => a.t - b.t || a.seq - b.seq);
    expect(rest).toEqual(want);
  });
});
