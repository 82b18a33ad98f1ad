/** The membership core on the simulator: realms, leave, Lifeguard, digests, odd messages. */
import { describe, expect, test } from "bun:test";
import { Directory, type MemberMeta } from "../../lib/mesh/membership/directory.ts";
import { type Msg, U_ALIVE, U_DEAD, U_LEFT } from "../../lib/mesh/membership/messages.ts";
import {
  type MemberEvent,
  Membership,
  type MembershipConfig,
} from "../../lib/mesh/membership/swim.ts";
import { Simulator } from "../../lib/sim/sim.ts";

const meta = (realm: string): MemberMeta => ({ realm, tags: [], version: "t" });

/** `n` nodes `prefix0…`, each joining through the first (warm: formed at once). */
function cluster(
  sim: Simulator<Msg, MemberEvent>,
  dir: Directory,
  prefix: string,
  n: number,
  o: {
    realm?: string;
    seeds?: string[];
    warm?: boolean;
    config?: Partial<MembershipConfig>;
  } = {},
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
          config: o.config,
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

/**
 * `n` nodes joining the seed `j0` one after another, `spacingMs` apart, with the periodic sync
 * 10 minutes away (docs/membership.md, "Settling"): what brings every node every member is the
 * settling sync, the pull from an unknown sender, and gossip.
 */
function joinInSequence(
  seed: number,
  n: number,
  o: { loss?: number; spacingMs?: number; config?: Partial<MembershipConfig> } = {},
) {
  const sim = new Simulator<Msg, MemberEvent>({
    seed,
    loss: o.loss ?? 0,
    latency: { baseMs: 1, jitterMs: 2 },
  });
  const dir = new Directory();
  const cores: Membership[] = [];
  const spacing = o.spacingMs ?? 70;
  for (let i = 0; i < n; i++) {
    sim.at(i * spacing, () => {
      cores.push(
        sim.add(`j${i}`, (a, rng) =>
          new Membership({
            id: `j-id-${i}`,
            addr: a,
            meta: meta("r"),
            rng,
            directory: dir,
            seeds: i === 0 ? [] : ["j0"],
            now: sim.now,
            config: { syncIntervalMs: 600_000, ...o.config },
          })) as Membership,
      );
    });
  }
  const lastStart = (n - 1) * spacing;
  sim.runUntil(lastStart);
  const converged = () => cores.length === n && cores.every((c) => c.liveCount === n);
  return { sim, cores, lastStart, converged };
}

describe("membership core: a join reaches every member before any periodic sync", () => {
  test("8 nodes join one seed in sequence: all hold all 8 live within 10 s of the last start, 20 seeds at 5% loss", () => {
    const late: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const { sim, converged } = joinInSequence(seed, 8, { loss: 0.05 });
      // Virtual time: the protocol's behaviour, not a machine's speed. The first periodic sync
      // is at least 5 minutes away.
      if (!sim.runUntilCondition(converged, 10_000)) late.push(seed);
    }
    expect(late).toEqual([]);
  });

  test("with gossip starved (one transmission per update), the repair alone converges 8 nodes, 10 seeds", () => {
    const late: number[] = [];
    let settles = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const { sim, cores, converged } = joinInSequence(seed, 8, { config: { retransmitMult: 1 } });
      if (!sim.runUntilCondition(converged, 10_000)) late.push(seed);
      for (const c of cores) settles += c.stats.settleSyncs;
    }
    expect(late).toEqual([]);
    expect(settles).toBeGreaterThan(0);
  });

  test("200 nodes join one seed: all hold all 200 live within 10 s of the last start, 5% loss", () => {
    // Seed 10: one node missed one join's gossip (it waited a minute without the repair).
    for (const seed of [3, 10]) {
      const { sim, converged } = joinInSequence(seed, 200, { loss: 0.05, spacingMs: 20 });
      expect(sim.runUntilCondition(converged, 10_000, { checkEveryMs: 100 })).toBe(true);
    }
  });

  test("a joiner's first gossip carries its own alive, ahead of the 60-member view it just learned", () => {
    const { sim, dir } = setup(8);
    cluster(sim, dir, "n", 60, { warm: true });
    const [j] = cluster(sim, dir, "x", 1, { seeds: ["n0"] });
    const first: Msg[] = [];
    sim.onMessage((from, _to, msg, outcome) => {
      if (from === "x0" && outcome === "sent" && msg.t === "gossip" && first.length === 0) {
        first.push(msg);
      }
    });
    sim.runFor(2000);
    expect(j!.joined).toBe(true);
    const piggy = (first[0] as Extract<Msg, { t: "gossip" }>).piggy;
    // News about the recipient may go first; the joiner's own alive right after.
    const at = piggy.findIndex((u) => u.member === j!.self && u.kind === U_ALIVE);
    expect(at).toBeGreaterThanOrEqual(0);
    expect(at).toBeLessThanOrEqual(1);
  });

  test("a member that speaks to a node that does not know it is asked for its view, and learned", () => {
    const { sim, dir } = setup(9);
    const cores = cluster(sim, dir, "n", 3, {
      seeds: [],
      config: { syncIntervalMs: 600_000, reconnectIntervalMs: 0 },
    });
    const [blind, other, stranger] = cores as [Membership, Membership, Membership];
    // `blind` knows `other` only; the two others know everyone, and there is no news to gossip.
    sim.call("n0", (c, now) => (c as Membership).bootstrap([blind.self, other.self], now));
    for (const a of ["n1", "n2"]) {
      sim.call(a, (c, now) => (c as Membership).bootstrap(cores.map((x) => x.self), now));
    }
    expect(blind.stateOf(stranger.self)).toBe("unknown");
    // The stranger probes `blind` every pass (two members: about a second).
    expect(sim.runUntilCondition(() => blind.stateOf(stranger.self) === "alive", 10_000)).toBe(
      true,
    );
    expect(blind.stats.pulls).toBe(1);
    expect(blind.stats.settleSyncs).toBe(0); // nothing else repaired it
  });

  test("an unknown sender that never names itself is asked at most once per 10 s, any two asks at least 1 s apart", () => {
    const { sim, dir } = setup(10);
    const [n] = cluster(sim, dir, "n", 2, {
      warm: true,
      config: { syncIntervalMs: 600_000, reconnectIntervalMs: 0 },
    });
    const ghosts = Array.from({ length: 20 }, (_, i) => dir.intern(`ghost-${i}`));
    const asked: string[] = [];
    sim.onMessage((from, to, msg, outcome) => {
      if (from === "n0" && outcome === "sent" && msg.t === "sync") asked.push(to);
    });
    // Every ghost sends a gossip every 100 ms for 30 s, with nothing about itself.
    for (let t = 0; t < 30_000; t += 100) {
      sim.runFor(100);
      for (let g = 0; g < ghosts.length; g++) {
        sim.call(
          "n0",
          (c, now) =>
            c.receive(now, `ghost${g}`, { t: "gossip", realm: "r", from: ghosts[g]!, piggy: [] }),
        );
      }
    }
    expect(n!.stats.pulls).toBe(asked.filter((a) => a.startsWith("ghost")).length);
    // One a second in all (30 s), each ghost at most once per 10 s (3 times in 30 s).
    expect(n!.stats.pulls).toBeLessThanOrEqual(31);
    expect(n!.stats.pulls).toBeGreaterThan(0);
    for (let g = 0; g < ghosts.length; g++) {
      expect(asked.filter((a) => a === `ghost${g}`).length).toBeLessThanOrEqual(3);
    }
    expect(n!.stats.pullsHeldBack).toBeGreaterThan(0);
  });

  test("settling syncs stay bounded while a member introduces a new member every 50 ms", () => {
    for (const syncIntervalMs of [600_000, 0]) {
      const { sim, dir } = setup(11);
      const [n, teller] = cluster(sim, dir, "n", 2, {
        warm: true,
        config: { syncIntervalMs, reconnectIntervalMs: 0 },
      });
      let syncs = 0;
      sim.onMessage((from, _to, msg, outcome) => {
        if (from === "n0" && outcome === "sent" && msg.t === "sync") syncs++;
      });
      for (let i = 0; i < 200; i++) {
        sim.runFor(50);
        const m = dir.intern(`new-${i}`, `new${i}`, meta("r"));
        sim.call("n0", (c, now) =>
          c.receive(now, "n1", {
            t: "gossip",
            realm: "r",
            from: teller!.self,
            piggy: [{ kind: U_ALIVE, member: m, inc: 0, from: m }],
          }));
      }
      sim.runFor(5000);
      expect(n!.liveCount).toBeGreaterThan(100); // they were taken in
      expect(syncs).toBe(n!.stats.settleSyncs);
      if (syncIntervalMs === 0) expect(syncs).toBe(0); // anti-entropy off: no settling either
      else {
        // At most one per settle delay (600 ms to 1 s here) over the 15 s; at least one every
        // few delays while the burst lasts.
        expect(syncs).toBeLessThanOrEqual(26);
        expect(syncs).toBeGreaterThanOrEqual(3);
      }
    }
  });
});
