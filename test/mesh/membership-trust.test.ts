/**
 * What a member can and cannot make others believe (docs/membership.md): the core on the
 * simulator (claims only at a signed incarnation, refutation always possible and rate-limited,
 * bounded new members, ping-req only toward live members, acks only from whom was asked), and the
 * edge (lib/node/membership.ts) fed hostile messages on fake sessions: forged and unsigned
 * records, ids that are not node ids, a 20,000-member message, a ping-req toward nobody, a
 * throwing event handler, a forger's session closed.
 */
import { describe, expect, test } from "bun:test";
import { nodeIdFromSpki, nodeIdText } from "../../lib/identity/mod.ts";
import { exportSpki, generateKeyPair, pkcs8Pem } from "../../lib/identity/keys.ts";
import {
  DEFAULT_CONFIG,
  Directory,
  MAX_INCARNATION,
  type MemberEvent,
  type MemberMeta,
  Membership,
  membershipCodec,
  type MembershipConfig,
  type Msg,
  recordBytes,
  U_ALIVE,
  U_DEAD,
  U_LEFT,
  U_SUSPECT,
  type Update,
} from "../../lib/mesh/mod.ts";
import {
  FORGED_LIMIT,
  MEMBERSHIP_CERTS,
  MEMBERSHIP_MSG,
  MembershipGlue,
  membershipSigner,
} from "../../lib/node/membership.ts";
import type { PeerSession } from "../../lib/peer/mod.ts";
import type { PeerIdentity } from "../../lib/identity/mod.ts";
import { Simulator } from "../../lib/sim/sim.ts";
import { lineLog } from "../../lib/util/mod.ts";
import { WireError } from "../../lib/wire/mod.ts";
import { until } from "../helpers/quic.ts";

// ------------------------------------------------------------------ the core, on the simulator

const META: MemberMeta = { realm: "r", tags: [], version: "t" };

function cluster(n: number, config: Partial<MembershipConfig> = {}, seed = 1) {
  const sim = new Simulator<Msg, MemberEvent>({ seed, latency: { baseMs: 1, jitterMs: 2 } });
  const dir = new Directory();
  const cores: Membership[] = [];
  for (let i = 0; i < n; i++) {
    cores.push(
      sim.add(`n${i}`, (a, rng) =>
        new Membership({
          id: `id-${i}`,
          addr: a,
          meta: META,
          rng,
          directory: dir,
          config,
          now: sim.now,
        })) as Membership,
    );
  }
  const all = cores.map((c) => c.self);
  for (const c of cores) sim.call(c.addr, (core) => (core as Membership).bootstrap(all, sim.now));
  /** `from` tells `to` the updates, in a gossip. */
  const tell = (from: Membership, to: Membership, piggy: Update[]) =>
    sim.call(
      to.addr,
      (c, now) => c.receive(now, from.addr, { t: "gossip", realm: "r", from: from.self, piggy }),
    );
  return { sim, dir, cores, tell };
}

describe("membership core: claims and refutation", () => {
  test("a dead claim at 0xffffffff does not stick; the victim refutes a claim at its own incarnation", () => {
    const { sim, cores, tell } = cluster(3);
    const [observer, victim, liar] = cores as [Membership, Membership, Membership];
    sim.runFor(1000);
    const dead = (inc: number): Update => ({
      kind: U_DEAD,
      member: victim.self,
      inc,
      from: liar.self,
    });
    tell(liar, observer, [dead(MAX_INCARNATION)]);
    expect(observer.stateOf(victim.self)).toBe("alive");
    expect(observer.stats.claimsAhead).toBe(1);
    // Told to the victim itself, it does not use up its incarnations either.
    tell(liar, victim, [dead(MAX_INCARNATION)]);
    expect(victim.incarnation).toBe(0);
    expect(victim.stats.claimsAhead).toBe(1);
    // A claim at the incarnation the victim signed is SWIM: believed, and refuted with the next.
    tell(liar, observer, [dead(0)]);
    expect(observer.stateOf(victim.self)).toBe("dead");
    // The victim hears it (piggybacked on an ack, or from a sync with a member held dead).
    sim.runFor(30_000);
    expect(victim.incarnation).toBe(1);
    expect(observer.stateOf(victim.self)).toBe("alive");
    expect(observer.table.incOf(victim.self)).toBe(1);
    // A suspicion above what the victim signed is refused too; below, it is late news.
    tell(liar, observer, [{ kind: U_SUSPECT, member: victim.self, inc: 5, from: liar.self }]);
    tell(liar, observer, [{ kind: U_SUSPECT, member: victim.self, inc: 0, from: liar.self }]);
    expect(observer.stateOf(victim.self)).toBe("alive");
    expect(observer.stats.claimsAhead).toBe(2);
    expect(observer.stats.staleClaims).toBeGreaterThanOrEqual(1);
  });

  test("a flood of claims uses at most one incarnation per refuteIntervalMs", () => {
    const { sim, cores, tell } = cluster(3);
    const [, victim, liar] = cores as [Membership, Membership, Membership];
    sim.runFor(1000);
    // 10 s of claims, one a millisecond, each at the victim's current incarnation.
    for (let t = 0; t < 10_000; t++) {
      tell(liar, victim, [{
        kind: U_SUSPECT,
        member: victim.self,
        inc: victim.incarnation,
        from: liar.self,
      }]);
      sim.runFor(1);
    }
    expect(victim.incarnation).toBeGreaterThan(50); // each claim was refuted, in time
    expect(victim.incarnation).toBeLessThanOrEqual(10_000 / DEFAULT_CONFIG.refuteIntervalMs + 1);
    expect(victim.stats.refutationsDeferred).toBeGreaterThan(9000);
  });

  test("a member's record in a full view tells a node that did not know it, and a restarted member its incarnation", () => {
    const { sim, dir, cores } = cluster(3);
    const [a, b] = cores as [Membership, Membership];
    sim.runFor(1000);
    // A newcomer learns a dead member from the full view (it did not before: its digest then
    // differed from everyone's for good).
    const x = dir.intern("id-x", "nx", META);
    const full: Update[] = [
      { kind: U_DEAD, member: x, inc: 4, from: a.self, addr: "nx", meta: META },
      { kind: U_ALIVE, member: a.self, inc: 0, from: a.self, addr: a.addr, meta: META },
    ];
    sim.call(b.addr, (c, now) =>
      c.receive(now, a.addr, {
        t: "sync",
        realm: "r",
        from: a.self,
        join: false,
        digest: [0, 0],
        members: full,
        reply: false,
      }));
    expect(b.stateOf(x)).toBe("dead");
    expect(b.table.incOf(x)).toBe(4);
    // The member itself, restarted at 0, takes up 4 from its own record and refutes with 5.
    const fresh = new Membership({
      id: "id-x",
      addr: "nx",
      meta: META,
      rng: () => 0.5,
      directory: dir,
    });
    fresh.receive(0, a.addr, {
      t: "sync-reply",
      realm: "r",
      from: a.self,
      digest: [0, 0],
      members: full,
    });
    expect(fresh.incarnation).toBe(5);
  });
});

describe("membership core: bounds and probes", () => {
  test("a 20,000-member message is bounded per message, per source and per view", () => {
    const { sim, dir, cores, tell } = cluster(3, { maxMembers: 300 });
    const [observer, , liar] = cores as [Membership, Membership, Membership];
    sim.runFor(1000);
    const fake = (i: number): Update => {
      const m = dir.intern(`fake-${i}`);
      return { kind: U_ALIVE, member: m, inc: 0, from: m, addr: `f${i}`, meta: META };
    };
    tell(liar, observer, Array.from({ length: 20_000 }, (_, i) => fake(i)));
    expect(observer.liveCount).toBe(3 + DEFAULT_CONFIG.maxNewPerMessage);
    expect(observer.stats.refusedByBound).toBe(20_000 - DEFAULT_CONFIG.maxNewPerMessage);
    // More messages from the same source: its bucket (256) runs dry.
    for (let k = 1; k < 10; k++) {
      tell(liar, observer, Array.from({ length: 64 }, (_, i) => fake(20_000 + k * 64 + i)));
    }
    expect(observer.liveCount).toBe(3 + DEFAULT_CONFIG.newMembersPerSource);
    // Probes keep going to the honest members all along, and to the fakes only at their own
    // addresses (the ones their records name).
    const pinged = new Set<string>();
    sim.onMessage((from, to, msg) => {
      if (from === observer.addr && msg.t === "ping") pinged.add(to);
    });
    sim.runFor(20_000);
    for (const to of pinged) expect(to === "n1" || to === "n2" || /^f\d+$/.test(to)).toBe(true);
  });

  test("a full view does not grow past maxMembers: dead members are forgotten first, live ones never", () => {
    const sim = new Simulator<Msg, MemberEvent>({ seed: 1 });
    const dir = new Directory({ recycle: true });
    const core = sim.add("n0", (a, rng) =>
      new Membership({
        id: "id-0",
        addr: a,
        meta: META,
        rng,
        directory: dir,
        config: { maxMembers: 50, maxNewPerMessage: 1000, newMembersPerSource: 1000 },
      })) as Membership;
    const src = dir.intern("src");
    const rec = (id: string, kind = U_ALIVE): Update => {
      const m = dir.intern(id);
      return { kind, member: m, inc: 0, from: kind === U_ALIVE ? m : src, addr: id, meta: META };
    };
    const gossip = (piggy: Update[]) =>
      sim.call(
        "n0",
        (c, now) => c.receive(now, "src", { t: "gossip", realm: "r", from: src, piggy }),
      );
    gossip(Array.from({ length: 30 }, (_, i) => rec(`dead-${i}`, U_DEAD)));
    expect(core.table.known).toBe(31);
    gossip(Array.from({ length: 100 }, (_, i) => rec(`live-${i}`)));
    expect(core.liveCount).toBe(50);
    expect(core.table.known).toBe(50);
    expect(core.stats.forgotten).toBe(30);
    expect(core.stats.refusedByBound).toBe(100 - 49);
    // Memory follows: the forgotten and the refused are out of the directory.
    expect(dir.count).toBeLessThanOrEqual(51);
  });

  test("a ping-req toward a member this node does not hold live is refused with a nack; no ping goes out", () => {
    const { sim, dir, cores } = cluster(3);
    const [helper, victim, liar] = cores as [Membership, Membership, Membership];
    sim.runFor(1000);
    const sent: Msg[] = [];
    sim.onMessage((from, _to, msg, outcome) => {
      if (from === helper.addr && outcome === "sent") sent.push(msg);
    });
    const ask = (target: number, seq: number) =>
      sim.call(
        helper.addr,
        (c, now) =>
          c.receive(now, liar.addr, {
            t: "ping-req",
            realm: "r",
            from: liar.self,
            seq,
            target,
            piggy: [],
          }),
      );
    ask(-1, 77); // an id it does not know
    ask(dir.intern("stranger"), 78);
    sim.runFor(5);
    expect(helper.stats.refusedPingReqs).toBe(2);
    expect(sent.filter((m) => m.t === "ping" && m.seq > 1000).length).toBe(0);
    expect(sent.filter((m) => m.t === "nack").map((m) => (m as { seq: number }).seq)).toEqual([
      77,
      78,
    ]);
    // Toward a live member it pings that member, at the address its record names.
    const to: string[] = [];
    sim.onMessage((from, dest, msg, outcome) => {
      if (
        from === helper.addr && outcome === "sent" && msg.t === "ping" && msg.target === victim.self
      ) {
        to.push(dest);
      }
    });
    ask(victim.self, 79);
    sim.runFor(5);
    expect(to).toEqual([victim.addr]);
  });

  test("an ack from anyone but the probed member (or a helper asked) does not save it", () => {
    const { sim, cores } = cluster(3, { indirectChecks: 0 });
    const [prober, target, liar] = cores as [Membership, Membership, Membership];
    sim.runFor(500);
    sim.crash(target.addr);
    // Whenever the prober pings the crashed target, the liar acks that seq at once.
    sim.onMessage((from, to, msg, outcome) => {
      if (from === prober.addr && to === target.addr && msg.t === "ping" && outcome === "sent") {
        const seq = msg.seq;
        sim.at(
          sim.now + 1,
          () =>
            sim.call(
              prober.addr,
              (c, now) =>
                c.receive(now, liar.addr, {
                  t: "ack",
                  realm: "r",
                  from: liar.self,
                  seq,
                  piggy: [],
                }),
            ),
        );
      }
    });
    sim.runFor(30_000);
    expect(prober.stats.refusedAcks).toBeGreaterThan(0);
    expect(prober.stateOf(target.self)).toBe("dead");
  });
});

// ------------------------------------------------------------------ the edge, on fake sessions

interface Key {
  id: string;
  spki: Uint8Array;
  priv: CryptoKey;
  pem: string;
}

/**
 * Members with a certificate of the realm: the edge's stand-in verifier accepts a "chain" that
 * is a certified id's text (the real check, the realm CA's, is test/net/membership-hostile's).
 */
const certified = new Set<string>();

async function key(o: { certified?: boolean } = {}): Promise<Key> {
  const kp = await generateKeyPair("ed25519");
  const spki = await exportSpki(kp.publicKey);
  const id = nodeIdText(nodeIdFromSpki(spki));
  if (o.certified !== false) certified.add(id);
  return { id, spki, priv: kp.privateKey, pem: await pkcs8Pem(kp.privateKey) };
}

const text = new TextEncoder();
const untext = new TextDecoder();
const certs = {
  own: [] as Uint8Array[],
  verify: (chain: Uint8Array[]) => {
    const id = untext.decode(chain[0]);
    if (!certified.has(id)) return Promise.reject(new Error("not of this realm"));
    return Promise.resolve({ nodeId: id, role: "node", realm: REALM } as PeerIdentity);
  },
};

const REALM = "dev";
const meta = { realm: REALM, tags: [], version: "t" };

/** A record as it travels: `of`'s alive (or left) at `inc`, signed by `by` (default: itself). */
async function record(
  of: Key,
  inc: number,
  addr: string,
  o: { by?: Key; kind?: number; claimedKey?: Uint8Array } = {},
): Promise<Record<string, unknown>> {
  const kind = o.kind ?? U_ALIVE;
  const by = o.by ?? of;
  const bytes = recordBytes(kind, of.id, inc, addr, meta);
  const sig = new Uint8Array(
    await crypto.subtle.sign({ name: "Ed25519" }, by.priv, bytes as Uint8Array<ArrayBuffer>),
  );
  return {
    kind,
    id: of.id,
    inc,
    from: null,
    addr,
    realm: REALM,
    tags: [],
    version: "t",
    key: o.claimedKey ?? by.spki,
    sig,
  };
}

const gossip = (from: Key, updates: Record<string, unknown>[], addr = "quic://127.0.0.1:9") =>
  membershipCodec.encodeBody("gossip", { realm: REALM, from: from.id, addr, updates });

/** A session of `peer` as the glue sees it; what the glue sends on it lands in `sent`. */
function session(peer: Key) {
  const sent: Uint8Array[] = [];
  /** What the glue sent as `membership.msg` requests (full syncs). */
  const requested: Uint8Array[] = [];
  /** Member ids whose certificates the glue asked this peer for. */
  const asked: string[] = [];
  let closedWith: string | null = null;
  const s = {
    peer: { nodeId: peer.id, role: "node" },
    request: (method: string, body: Uint8Array) => {
      if (method === MEMBERSHIP_CERTS.method) {
        // This peer holds the chain of every certified member (as an honest node would).
        const { ids } = JSON.parse(untext.decode(body)) as { ids: string[] };
        const answer = ids.map((id) => (certified.has(id) ? btoa(id) : ""));
        asked.push(...ids);
        return Promise.resolve(text.encode(JSON.stringify({ certs: answer })));
      }
      expect(method).toBe(MEMBERSHIP_MSG.method);
      requested.push(body.slice());
      return Promise.resolve(new Uint8Array(0));
    },
    closing: false,
    closed: new Promise(() => {}),
    close: (why: string) => {
      closedWith = why;
      return Promise.resolve();
    },
    conn: {
      isOpen: true,
      closeInfo: null,
      maxDatagramSize: 1350,
      peerCertificates: [],
      sendDatagram: (b: Uint8Array) => {
        sent.push(b.slice());
        return true;
      },
    },
  };
  return { s: s as unknown as PeerSession, sent, requested, asked, closed: () => closedWith };
}

async function edge(o: { onEvent?: (e: MemberEvent) => void } = {}) {
  const me = await key();
  const dialed: string[] = [];
  const logs: string[] = [];
  const glue = new MembershipGlue({
    id: me.id,
    addr: "quic://127.0.0.1:1",
    meta,
    seeds: [],
    signer: membershipSigner(me.pem),
    certs,
    dial: (addr) => {
      dialed.push(addr);
      return Promise.reject(new Error("no dialing in this test"));
    },
    isPinned: () => true,
    onEvent: o.onEvent,
    log: lineLog((l) => logs.push(l)),
  });
  const view = (k: Key) => glue.members().find((m) => m.id === k.id);
  const feed = async (s: PeerSession, bytes: Uint8Array) => {
    glue.onStream(s, bytes);
    await glue.settled();
  };
  return { glue, me, dialed, logs, view, feed };
}

describe("membership edge: what a member cannot make others believe", () => {
  test("a forged alive (another member's id, a wrong key, a reworded record) is refused and counted", async () => {
    const { glue, view, feed } = await edge();
    const [b, e] = [await key(), await key()];
    const bs = session(b), es = session(e);
    await feed(bs.s, gossip(b, [await record(b, 0, "quic://10.0.0.2:1")]));
    expect(view(b)).toMatchObject({ state: "alive", inc: 0, addr: "quic://10.0.0.2:1" });
    // E signs "B is alive at 1, at E's address" with its own key: E's key is not B's id.
    await feed(es.s, gossip(e, [await record(b, 1, "quic://6.6.6.6:1", { by: e })]));
    // …or shows B's key with E's signature.
    await feed(
      es.s,
      gossip(e, [await record(b, 1, "quic://6.6.6.6:1", { by: e, claimedKey: b.spki })]),
    );
    // …or takes B's genuine record at 0 and changes its incarnation.
    const genuine = await record(b, 0, "quic://10.0.0.2:1");
    await feed(es.s, gossip(e, [{ ...genuine, inc: 1 }]));
    expect(glue.stats.forgedRecords).toBe(3);
    expect(glue.stats.forged).toBe(3);
    expect(view(b)).toMatchObject({ state: "alive", inc: 0, addr: "quic://10.0.0.2:1" });
    // A replay of the genuine record is true, and changes nothing: not even a check.
    const checked = glue.counters().signaturesChecked;
    await feed(es.s, gossip(e, [genuine]));
    expect(glue.counters().signaturesChecked).toBe(checked);
    await glue.leave();
  });

  test("an alive moving a member to another address without its signature is refused", async () => {
    const { glue, view, feed } = await edge();
    const [b, e] = [await key(), await key()];
    await feed(session(b).s, gossip(b, [await record(b, 0, "quic://10.0.0.2:1")]));
    const es = session(e);
    // Unsigned: not even a record (decoding refuses it).
    const unsigned = {
      kind: U_ALIVE,
      id: b.id,
      inc: 9,
      from: b.id,
      addr: "quic://6.6.6.6:1",
      realm: REALM,
      tags: [],
      version: "t",
    };
    await feed(
      es.s,
      membershipCodec.encodeRaw([7, REALM, e.id, "x", [Object.values(unsigned)]]).subarray(4),
    );
    expect(glue.stats.malformed).toBe(1);
    // Signed by B for its old address, sent with a new one.
    const moved = { ...(await record(b, 3, "quic://10.0.0.2:1")), addr: "quic://6.6.6.6:1" };
    await feed(es.s, gossip(e, [moved]));
    expect(glue.stats.forgedRecords).toBe(1);
    expect(view(b)).toMatchObject({ inc: 0, addr: "quic://10.0.0.2:1" });
    // B's own signed move is believed, from anyone who passes it on.
    await feed(es.s, gossip(e, [await record(b, 3, "quic://10.0.0.3:1")]));
    expect(view(b)).toMatchObject({ inc: 3, addr: "quic://10.0.0.3:1" });
    await glue.leave();
  });

  test("an id that is not a node id is refused at decode, counted, and nothing stops", async () => {
    const events: string[] = [];
    const { glue, view, feed } = await edge({ onEvent: (e) => events.push(e.kind) });
    const e = await key();
    const es = session(e);
    const bad = (arr: unknown[]) => membershipCodec.encodeRaw(arr).subarray(4);
    expect(() => decodeFirst(bad([7, REALM, e.id, "x", [[U_DEAD, "not-a-node-id", 0, e.id]]])))
      .toThrow("gossip.updates: [0].id: must be a node id");
    await feed(es.s, bad([7, REALM, e.id, "x", [[U_DEAD, "not-a-node-id", 0, e.id]]]));
    await feed(es.s, bad([7, REALM, e.id, "x", [[U_SUSPECT, e.id, 0, "Z".repeat(52)]]]));
    await feed(es.s, bad([1, REALM, e.id, "x", 1, "../etc", []]));
    await feed(es.s, bad([7, REALM, "node-1", "x", []]));
    expect(glue.stats.malformed).toBe(4);
    expect(glue.stats.handlerFailures).toBe(0);
    // The next message is taken as ever.
    await feed(es.s, gossip(e, [await record(e, 0, "quic://10.0.0.9:1")]));
    expect(view(e)?.state).toBe("alive");
    expect(events).toContain("alive");
    await glue.leave();
  });

  test(
    "a 20,000-member message costs at most maxNewPerMessage checks and directory entries",
    async () => {
      const { glue, feed } = await edge();
      const e = await key();
      const fakes: Record<string, unknown>[] = [];
      for (let i = 0; i < 20_000; i++) {
        fakes.push(
          await record(await key(), 0, `quic://192.0.2.1:${1 + (i % 60000)}`),
        );
      }
      const bytes = membershipCodec.encodeBody("sync", {
        realm: REALM,
        from: e.id,
        addr: "quic://127.0.0.1:9",
        flags: 0,
        digest1: 0,
        digest2: 0,
        updates: fakes,
      });
      expect(bytes.length).toBeGreaterThan(3_000_000);
      await feed(session(e).s, bytes);
      const c = glue.counters();
      const bound = DEFAULT_CONFIG.maxNewPerMessage;
      expect(c.signaturesChecked).toBe(bound);
      expect(c.refusedByBound).toBe(20_000 - bound);
      expect(glue.core.liveCount).toBe(1 + bound);
      expect(glue.dir.count).toBeLessThanOrEqual(2 + bound); // itself, the sender, the admitted
      await glue.leave();
    },
    120_000,
  );

  test("a ping-req toward an unknown member is refused: nothing is dialed, the requester gets a nack", async () => {
    const { glue, dialed, feed } = await edge();
    const [b, e] = [await key(), await key()];
    await feed(session(b).s, gossip(b, [await record(b, 0, "quic://10.0.0.2:1")]));
    const es = session(e);
    const stranger = await key();
    await feed(
      es.s,
      membershipCodec.encodeBody("ping-req", {
        realm: REALM,
        from: e.id,
        addr: "quic://203.0.113.7:443", // where the liar would have it dial
        seq: 41,
        target: stranger.id,
        updates: [],
      }),
    );
    expect(glue.core.stats.refusedPingReqs).toBe(1);
    expect(dialed).toEqual([]);
    const nack = membershipCodec.decodeBody(es.sent.at(-1)!);
    expect(nack).toMatchObject({ name: "nack", fields: { seq: 41 } });
    // Toward B it pings B, on the session B spoke on (its own address is where its record says).
    await feed(
      es.s,
      membershipCodec.encodeBody("ping-req", {
        realm: REALM,
        from: e.id,
        addr: "quic://203.0.113.7:443",
        seq: 42,
        target: b.id,
        updates: [],
      }),
    );
    expect(dialed.filter((a) => a !== "quic://10.0.0.2:1")).toEqual([]);
    await glue.leave();
  });

  test("answers go back on the session: the address a message names is never dialed, nor pooled", async () => {
    const { glue, dialed, feed } = await edge();
    const [b, e] = [await key(), await key()];
    const bs = session(b), es = session(e);
    // B speaks from the address its own record names: its session is pooled under it.
    await feed(bs.s, gossip(b, [await record(b, 0, "quic://10.0.0.2:1")], "quic://10.0.0.2:1"));
    // E pings, saying it answers at B's address: the ack goes back on E's session.
    await feed(
      es.s,
      membershipCodec.encodeBody("ping", {
        realm: REALM,
        from: e.id,
        addr: "quic://10.0.0.2:1",
        seq: 5,
        target: glue.dir.entries[glue.core.self]!.id,
        updates: [],
      }),
    );
    expect(membershipCodec.decodeBody(es.sent.at(-1)!)).toMatchObject({
      name: "ack",
      fields: { seq: 5 },
    });
    const fromE = es.sent.length;
    // Traffic for B still goes to B's session, not to E's (E's claim did not take B's address).
    await feed(
      es.s,
      membershipCodec.encodeBody("ping-req", {
        realm: REALM,
        from: e.id,
        addr: "quic://10.0.0.2:1",
        seq: 6,
        target: b.id,
        updates: [],
      }),
    );
    const pings = bs.sent.map((x) => membershipCodec.decodeBody(x)).filter((f) =>
      "name" in f && f.name === "ping"
    );
    expect(pings.length).toBe(1);
    expect(es.sent.length).toBe(fromE);
    expect(dialed).toEqual([]);
    await glue.leave();
  });

  test("an event handler that throws is counted and logged, and every later message is taken", async () => {
    const { glue, view, feed, logs } = await edge({
      onEvent: () => {
        throw new Error("handler broke");
      },
    });
    const [b, c] = [await key(), await key()];
    await feed(session(b).s, gossip(b, [await record(b, 0, "quic://10.0.0.2:1")]));
    await feed(session(c).s, gossip(c, [await record(c, 0, "quic://10.0.0.3:1")]));
    expect(view(b)?.state).toBe("alive");
    expect(view(c)?.state).toBe("alive");
    expect(glue.stats.handlerFailures).toBe(2);
    expect(logs.some((l) => l.includes("handler broke"))).toBe(true);
    await glue.leave();
  });

  test(`a session that sends ${FORGED_LIMIT} forged messages is closed`, async () => {
    const { glue, feed } = await edge();
    const [b, e] = [await key(), await key()];
    const es = session(e);
    for (let i = 0; i < FORGED_LIMIT; i++) {
      await feed(es.s, gossip(e, [await record(b, i, "quic://6.6.6.6:1", { by: e })]));
    }
    expect(es.closed()).toBe("membership: forged records");
    expect(glue.stats.sessionsClosedForged).toBe(1);
    await glue.leave();
  });

  test("this node's own records go out signed, and a left at its current incarnation is refuted", async () => {
    const { glue, me, feed } = await edge();
    const e = await key();
    const es = session(e);
    // A claim at our incarnation: we refute with the next, signed, on the session it came on.
    await feed(es.s, gossip(e, [{ kind: U_SUSPECT, id: me.id, inc: 0, from: e.id }]));
    expect(glue.core.incarnation).toBe(1);
    const out = membershipCodec.decodeBody(es.sent.at(-1)!) as unknown as {
      fields: { updates: Record<string, unknown>[] };
    };
    const rec = out.fields.updates[0]!;
    expect(rec).toMatchObject({ kind: U_ALIVE, id: me.id, inc: 1 });
    const ok = await crypto.subtle.verify(
      { name: "Ed25519" },
      await crypto.subtle.importKey(
        "spki",
        rec.key as Uint8Array<ArrayBuffer>,
        { name: "Ed25519" },
        false,
        ["verify"],
      ),
      rec.sig as Uint8Array<ArrayBuffer>,
      recordBytes(U_ALIVE, me.id, 1, rec.addr as string, meta) as Uint8Array<ArrayBuffer>,
    );
    expect(ok).toBe(true);
    // A "left" about us signed by someone else is forged; a claim far ahead is refused.
    await feed(
      es.s,
      gossip(e, [await record(me, 1, "quic://x:1", { by: e, kind: U_LEFT, claimedKey: me.spki })]),
    );
    await feed(es.s, gossip(e, [{ kind: U_DEAD, id: me.id, inc: MAX_INCARNATION, from: e.id }]));
    expect(glue.core.incarnation).toBe(1);
    expect(glue.stats.forgedRecords).toBe(1);
    expect(glue.core.stats.claimsAhead).toBe(1);
    await glue.leave();
  });
});

describe("membership edge: only members with a certificate of the realm", () => {
  test("a made-up member (its own key, a true signature, no certificate) is refused and counted", async () => {
    const { glue, view, feed } = await edge();
    const [e, real] = [await key(), await key()];
    const fake = await key({ certified: false });
    const es = session(e);
    await feed(
      es.s,
      gossip(e, [
        await record(fake, 0, "quic://10.0.0.66:1"),
        await record(real, 0, "quic://10.0.0.5:1"),
      ]),
    );
    // Both certificates were asked of the one who told us; only the real member's verified.
    expect(es.asked.sort()).toEqual([fake.id, real.id].sort());
    expect(view(fake)).toBeUndefined();
    expect(view(real)?.state).toBe("alive");
    expect(glue.stats.uncertified).toBe(1);
    expect(glue.stats.certificatesChecked).toBe(1);
    // A member known (certified) once is not asked about again.
    await feed(es.s, gossip(e, [await record(real, 1, "quic://10.0.0.5:1")]));
    expect(es.asked.length).toBe(2);
    expect(view(real)?.inc).toBe(1);
    await glue.leave();
  });
});

describe("membership edge: a member introduced before gossip came", () => {
  test("is learned from the introducer: a sync on its session, its answer checked like any", async () => {
    const { glue, feed } = await edge();
    const [r, x] = [await key(), await key()];
    const rs = session(r);
    await feed(rs.s, gossip(r, [await record(r, 0, "quic://10.0.0.2:1")]));
    expect(glue.knows(x.id)).toBe(false);
    const learned = glue.learn(x.id, rs.s, 10_000);
    // The introducer is asked for its view, on the session the introduction came on.
    await until(() => rs.requested.length === 1, "the sync to the introducer");
    const asked = membershipCodec.decodeBody(rs.requested[0]!) as unknown as {
      name: string;
      fields: { flags: number };
    };
    expect(asked.name).toBe("sync");
    expect(asked.fields.flags & 2).toBe(2); // "reply with your view"
    // Its answer names x, signed by x: x is known, and `learn` says so at once.
    const reply = membershipCodec.encodeBody("sync-reply", {
      realm: REALM,
      from: r.id,
      addr: "quic://10.0.0.2:1",
      digest1: 0,
      digest2: 0,
      updates: [await record(x, 0, "quic://10.0.0.7:1")],
    });
    glue.onStream(rs.s, reply);
    expect(await learned).toBe(true);
    expect(glue.knows(x.id)).toBe(true);
    await glue.leave();
  });

  test("one nobody vouches for (or a forged record of it) is not known once the wait is over", async () => {
    const { glue, feed } = await edge();
    const [r, x, e] = [await key(), await key(), await key()];
    const rs = session(r);
    await feed(rs.s, gossip(r, [await record(r, 0, "quic://10.0.0.2:1")]));
    const learned = glue.learn(x.id, rs.s, 300);
    await until(() => rs.requested.length === 1, "the sync to the introducer");
    // An answer with x's id signed by another key is forged: x stays unknown.
    glue.onStream(
      rs.s,
      membershipCodec.encodeBody("sync-reply", {
        realm: REALM,
        from: r.id,
        addr: "quic://10.0.0.2:1",
        digest1: 0,
        digest2: 0,
        updates: [await record(x, 0, "quic://6.6.6.6:1", { by: e })],
      }),
    );
    expect(await learned).toBe(false);
    expect(glue.stats.forgedRecords).toBe(1);
    await glue.leave();
  });
});

function decodeFirst(bytes: Uint8Array): void {
  try {
    membershipCodec.decodeBody(bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(WireError);
    throw e;
  }
}
