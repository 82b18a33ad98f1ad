/** The membership core on the simulator: realms, leave, Lifeguard, digests, odd messages. */
import { describe, expect, test } from "bun:test";
import { Directory, type MemberMeta } from "../../lib/mesh/membership/directory.ts";
import { type Msg, U_DEAD, U_LEFT } from "../../lib/mesh/membership/messages.ts";
import { type MemberEvent, Membership } from "../../lib/mesh/membership/swim.ts";
import { Simulator } from "../../lib/sim/sim.ts";

const meta = (realm: string): MemberMeta => ({ realm, tags: [], version: "t" });

/** `n` nodes `prefix0…`, each joining through the first (warm: formed at once). */
function cluster(
  sim: Simulator<Msg, MemberEvent>,
  dir: Directory,
  prefix: string,
  n: number,
  o: { realm?: string; seeds?: string[]; warm?: boolean } = {},
): Membership[] {
  const cores: Membership[] = [];
  for (let i = 0; i < n; i++) {
    const addr = `${prefix}${i}`;
    const seeds = o.seeds ?? (i === 0 || o.warm ? [] : [`${prefix}0`]);
    cores.push(
      sim.add(addr, (a, rng) =>
        new Membership({
          id: `${prefix}-id-${i}`,
          addr: a,
          meta: meta(o.realm ?? "r"),
          rng,
          directory: dir,
          seeds,
          now: sim.now,
        })) as Membership,
    );
  }
  if (o.warm) {
    const all = cores.map((c) => c.self);
    for (const c of cores) sim.call(c.addr, (core) => (core as Membership).bootstrap(all, sim.now));
  }
  return cores;
}

function setup(seed = 1, loss = 0) {
  const sim = new Simulator<Msg, MemberEvent>({ seed, loss, latency: { baseMs: 1, jitterMs: 2 } });
  return { sim, dir: new Directory() };
}

describe("membership core", () => {
  test("realms stay apart even when a seed points across: no member of one in the other", () => {
    const { sim, dir } = setup(2);
    const a = cluster(sim, dir, "a", 20, { realm: "acme" });
    // Realm "beta" nodes misconfigured to join through an acme node.
    const b = cluster(sim, dir, "b", 20, { realm: "beta", seeds: ["a0"] });
    sim.runFor(20_000);
    const realmOf = (c: Membership) => c.members().map((m) => m.meta.realm);
    for (const c of a) expect(new Set(realmOf(c))).toEqual(new Set(["acme"]));
    for (const c of b) expect(realmOf(c)).toEqual(["beta"]); // only itself: its seed never answered
    expect(a[0]!.stats.droppedOtherRealm).toBeGreaterThan(0);
    expect(a[5]!.liveCount).toBe(20);
  });

  test("a node that leaves is 'left' everywhere, never 'dead'", () => {
    const { sim, dir } = setup(3);
    const cores = cluster(sim, dir, "n", 30, { warm: true });
    const kinds: string[] = [];
    sim.onEvent((_a, e) => {
      if (e.member === cores[7]!.self) kinds.push(e.kind);
    });
    sim.runFor(2000);
    sim.call("n7", (c, now) => (c as Membership).leave(now));
    sim.runFor(5000);
    for (const c of cores) if (c !== cores[7]) expect(c.stateOf(cores[7]!.self)).toBe("left");
    expect(kinds).not.toContain("dead");
    expect(kinds.filter((k) => k === "left").length).toBe(29);
  });

  test("a goodbye that arrives after the member was declared dead turns it 'left'; a death after a goodbye does not", () => {
    const { sim, dir } = setup(6);
    const cores = cluster(sim, dir, "n", 3, { warm: true });
    sim.runFor(1000);
    const [observer, gone, teller] = cores as [Membership, Membership, Membership];
    const say = (kind: number) =>
      sim.call(observer.addr, (c, now) =>
        (c as Membership).receive(now, teller.addr, {
          t: "gossip",
          realm: "r",
          from: teller.self,
          piggy: [{ kind, member: gone.self, inc: 0, from: teller.self }],
        }));
    // The observer concluded "dead" (a busy node's suspicion ran out first)…
    say(U_DEAD);
    expect(observer.stateOf(gone.self)).toBe("dead");
    // …then the member's own goodbye arrives, at the same incarnation: it left.
    say(U_LEFT);
    expect(observer.stateOf(gone.self)).toBe("left");
    // A "dead" after the goodbye changes nothing.
    say(U_DEAD);
    expect(observer.stateOf(gone.self)).toBe("left");
  });

  test("Lifeguard: a node whose messages never arrive raises its awareness and slows down", () => {
    const { sim, dir } = setup(4);
    const cores = cluster(sim, dir, "n", 10, { warm: true });
    for (let i = 1; i < 10; i++) sim.block("n0", `n${i}`); // n0 hears others, is never heard
    sim.runFor(5000);
    expect(cores[0]!.awareness).toBeGreaterThan(0);
    expect(cores[3]!.awareness).toBe(0); // the healthy ones are not affected
    // …and the others, rightly, declare the unreachable node dead.
    sim.runFor(60_000);
    expect(cores[3]!.stateOf(cores[0]!.self)).toBe("dead");
  });

  test("converged views have equal digests; a difference shows in the digest", () => {
    const { sim, dir } = setup(5, 0.01);
    const cores = cluster(sim, dir, "n", 40);
    sim.runFor(30_000);
    const digests = new Set(cores.map((c) => `${c.table.d1}:${c.table.d2}`));
    expect(digests.size).toBe(1);
    sim.crash("n9");
    sim.runFor(1000); // not yet detected everywhere
    sim.runFor(30_000);
    const after = new Set(
      cores.filter((c) => c.addr !== "n9").map((c) => `${c.table.d1}:${c.table.d2}`),
    );
    expect(after.size).toBe(1);
    expect([...after][0]).not.toBe([...digests][0]);
  });

  test("a ping meant for another member (a reused address) is not answered", () => {
    const { sim, dir } = setup(6);
    const cores = cluster(sim, dir, "n", 3, { warm: true });
    const acks: string[] = [];
    sim.onMessage((from, _to, msg, outcome) => {
      if (msg.t === "ack" && outcome === "delivered" && msg.seq === 999_999) acks.push(from);
    });
    sim.call("n1", (c, now) =>
      c.receive(now, "n2", {
        t: "ping",
        realm: "r",
        from: cores[2]!.self,
        seq: 999_999,
        target: cores[0]!.self, // not n1
        piggy: [],
      }));
    sim.runFor(100);
    expect(acks).toEqual([]);
  });

  test("a joiner that gets no answer from its seed keeps trying, bounded by its retry interval", () => {
    const { sim, dir } = setup(7);
    const sent: number[] = [];
    sim.onMessage((from, _to, msg, outcome, now) => {
      if (from === "x0" && msg.t === "sync" && outcome === "sent") sent.push(now);
    });
    const [x] = cluster(sim, dir, "x", 1, { seeds: ["nowhere"] });
    sim.runFor(5500);
    expect(x!.joined).toBe(false);
    expect(sent.length).toBe(6); // at 0, 1, 2, 3, 4, 5 s (joinRetryMs 1000)
  });
});
