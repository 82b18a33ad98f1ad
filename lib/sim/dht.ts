/**
 * The DHT on the simulator (docs/dht.md, "What was simulated"): one real `Dht` core per node on
 * the deterministic network (1–5 ms a message). Nodes join one after another through a few
 * earlier ones; a share of them run in client mode (as nodes reachable only through a relay do).
 * Then: node lookups and record puts and gets from random nodes, and the same right after a share
 * of the nodes crash at once. `macula sim dht` runs `runDhtSim`.
 *
 * Signatures here are a keyed hash, not Ed25519 (what a real signature costs is measured in
 * bench/membership: one check per record stored or read); a tampered record still fails it.
 */
import {
  Dht,
  type DhtEvent,
  type DhtMsg,
  type DhtRecord,
  idHex,
  type LookupResult,
  seededRng,
} from "../mesh/mod.ts";
import { randomId } from "./overlay.ts";
import type { Spread } from "./routing.ts";
import { SimError } from "./errors.ts";
import { Simulator } from "./sim.ts";

export interface DhtSimOptions {
  nodes: number;
  seed: number;
  /** Fraction crashed at once after the steady phase. Default 0.1. */
  churn?: number;
  /** Fraction of nodes in client mode. Default 0.1. */
  clients?: number;
  /** Node lookups measured in each phase. Default 200. */
  lookups?: number;
  /** Records put (and got back) in each phase. Default 100. */
  records?: number;
}

interface PhaseReport {
  lookups: number;
  /** Lookups whose k closest included the target node. */
  found: number;
  success: number;
  rounds: Spread;
  messagesPerLookup: { p50: number; mean: number };
  gets: number;
  got: number;
  getSuccess: number;
}

export interface DhtReport {
  nodes: number;
  seed: number;
  k: number;
  alpha: number;
  clientNodes: number;
  /** Client-mode nodes found in server nodes' tables (must be 0). */
  clientsInTables: number;
  joinMs: number;
  steady: PhaseReport;
  churn?: PhaseReport & { crashed: number };
  perNode: {
    tableSize: Spread;
    messagesSent: Spread;
    bytesSent: Spread;
    recordsStored: Spread;
  };
  simulatedMs: number;
  wallMs: number;
}

function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? 0 };
}

/** The simulation's stand-in for a signature: a keyed 64-bit FNV-1a over the bytes. */
function fakeSig(publisher: Uint8Array, bytes: Uint8Array): Uint8Array {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  const feed = (b: number) => {
    h1 = Math.imul(h1 ^ b, 16777619);
    h2 = Math.imul(h2 ^ b, 2246822519);
  };
  for (const b of publisher) feed(b);
  for (const b of bytes) feed(b);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setUint32(0, h1 >>> 0);
  new DataView(out.buffer).setUint32(4, h2 >>> 0);
  return out;
}

const eq = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

export function runDhtSim(o: DhtSimOptions): DhtReport {
  const t0 = performance.now();
  const n = o.nodes;
  if (!Number.isInteger(n) || n < 2) throw new SimError(`--nodes must be an integer ≥ 2, got ${n}`);
  const churn = o.churn ?? 0.1;
  if (!(churn >= 0 && churn < 1)) throw new SimError(`--churn must be in [0, 1), got ${churn}`);
  const clientShare = o.clients ?? 0.1;
  const lookups = o.lookups ?? 200;
  const records = o.records ?? 100;
  const rng = seededRng(o.seed, "dht-scenario");
  const pick = (m: number) => Math.floor(rng() * m);
  const sim = new Simulator<DhtMsg, DhtEvent>({
    seed: o.seed,
    latency: { baseMs: 1, jitterMs: 4 },
  });
  const ids = Array.from({ length: n }, (_, i) => randomId(seededRng(o.seed, "id", i)));
  const client = ids.map((_, i) => i > 0 && rng() < clientShare);
  const addrOf = (i: number) => `n${i}`;
  const core = (i: number) => sim.core(addrOf(i)) as Dht | undefined;

  const results = new Map<string, LookupResult>();
  const errors: string[] = [];
  sim.onEvent((addr, e) => {
    if (e.kind === "lookup") results.set(`${addr}/${e.result.id}`, e.result);
    else errors.push(`${addr}: ${e.message}`);
  });

  // Join: one node every 2 ms, each through up to 3 earlier server nodes.
  const servers: number[] = [];
  const spacing = 2;
  for (let i = 0; i < n; i++) {
    sim.at(i * spacing, () => {
      const id = ids[i]!;
      sim.add(addrOf(i), (addr, r) =>
        new Dht({
          id,
          addr,
          realm: "sim",
          rng: r,
          now: sim.now,
          mode: client[i] ? "client" : "server",
          signer: { key: id, sign: (bytes) => fakeSig(id, bytes) },
          verify: (publisher, pub, bytes, sig) =>
            eq(publisher, pub) && eq(sig, fakeSig(publisher, bytes)),
        }));
      const seeds: { id: Uint8Array; addr: string }[] = [];
      for (let s = 0; s < 3 && servers.length > 0; s++) {
        const j = servers[pick(servers.length)]!;
        seeds.push({ id: ids[j]!, addr: addrOf(j) });
      }
      sim.call(addrOf(i), (c, now) => (c as Dht).bootstrap(seeds, now));
      if (!client[i]) servers.push(i);
    });
  }
  sim.runUntil(n * spacing);
  // Joins (and their bucket refreshes) settle.
  const settled = () => {
    for (let i = 0; i < n; i++) if ((core(i)?.running ?? 0) > 0) return false;
    return true;
  };
  sim.runUntilCondition(settled, 60_000, { checkEveryMs: 500 });
  const joinMs = sim.now;

  const live = () => Array.from({ length: n }, (_, i) => i).filter((i) => core(i) !== undefined);

  /** Runs `count` lookups and `records` put/get pairs from random live nodes; bounded in sim time. */
  const phase = (): PhaseReport => {
    const up = live();
    const upServers = up.filter((i) => !client[i]);
    const asked: { at: number; rid: number; target: number }[] = [];
    for (let q = 0; q < lookups; q++) {
      const from = up[pick(up.length)]!;
      const target = upServers[pick(upServers.length)]!;
      const rid = sim.call(addrOf(from), (c, now) => (c as Dht).findNode(ids[target]!, now));
      asked.push({ at: from, rid, target });
    }
    const key = (at: number, rid: number) => `${addrOf(at)}/${rid}`;
    sim.runUntilCondition(() => asked.every((a) => results.has(key(a.at, a.rid))), 30_000, {
      checkEveryMs: 50,
    });
    const done = asked.map((a) => results.get(key(a.at, a.rid))).filter((r) => r !== undefined);
    const found =
      asked.filter((a) =>
        results.get(key(a.at, a.rid))?.closest.some((c) => eq(c.id, ids[a.target]!))
      ).length;
    // Records: put from one node, get from another.
    const puts: { at: number; rid: number; key: Uint8Array; value: string }[] = [];
    for (let q = 0; q < records; q++) {
      const from = up[pick(up.length)]!;
      const k = randomId(rng);
      const value = `v${q}-${from}`;
      const rid = sim.call(
        addrOf(from),
        (c, now) => (c as Dht).put(k, new TextEncoder().encode(value), now),
      );
      puts.push({ at: from, rid, key: k, value });
    }
    sim.runUntilCondition(() => puts.every((p) => results.has(key(p.at, p.rid))), 30_000, {
      checkEveryMs: 50,
    });
    const gets = puts.map((p) => {
      const from = up[pick(up.length)]!;
      return {
        ...p,
        from,
        grid: sim.call(addrOf(from), (c, now) => (c as Dht).findValue(p.key, now)),
      };
    });
    sim.runUntilCondition(() => gets.every((g) => results.has(key(g.from, g.grid))), 30_000, {
      checkEveryMs: 50,
    });
    const got =
      gets.filter((g) =>
        results.get(key(g.from, g.grid))?.records.some((r: DhtRecord) =>
          new TextDecoder().decode(r.value) === g.value
        )
      ).length;
    const rounds = done.map((r) => r.rounds);
    const msgs = done.map((r) => r.messages);
    return {
      lookups,
      found,
      success: found / lookups,
      rounds: spread(rounds),
      messagesPerLookup: {
        p50: spread(msgs).p50,
        mean: msgs.reduce((a, b) => a + b, 0) / Math.max(1, msgs.length),
      },
      gets: records,
      got,
      getSuccess: got / Math.max(1, records),
    };
  };

  const steady = phase();
  let churnReport: DhtReport["churn"];
  if (churn > 0) {
    const up = live();
    const crashed = Math.floor(churn * n);
    const victims = new Set<number>();
    while (victims.size < crashed) {
      const v = up[pick(up.length)]!;
      if (v !== 0) victims.add(v);
    }
    for (const v of victims) sim.crash(addrOf(v));
    churnReport = { crashed, ...phase() };
  }

  const clientKeys = new Set(ids.filter((_, i) => client[i]).map(idHex));
  let clientsInTables = 0;
  const tables: number[] = [], stored: number[] = [];
  for (const i of live()) {
    const c = core(i)!;
    tables.push(c.table.size);
    stored.push(c.store.size);
    if (!c.mode || c.mode === "server") {
      for (const b of c.table.buckets()) {
        for (const x of b.contacts) if (clientKeys.has(x.key)) clientsInTables++;
      }
    }
  }
  const st = sim.stats();
  const sent = live().map((i) => st.nodes[addrOf(i)]?.sent ?? 0);
  const bytes = live().map((i) => st.nodes[addrOf(i)]?.bytesSent ?? 0);
  if (errors.length > 0) {
    throw new SimError(`dht sim: ${errors.length} errors, first: ${errors[0]}`);
  }
  return {
    nodes: n,
    seed: o.seed,
    k: 20,
    alpha: 3,
    clientNodes: client.filter(Boolean).length,
    clientsInTables,
    joinMs: Math.round(joinMs),
    steady,
    churn: churnReport,
    perNode: {
      tableSize: spread(tables),
      messagesSent: spread(sent),
      bytesSent: spread(bytes),
      recordsStored: spread(stored),
    },
    simulatedMs: Math.round(sim.now),
    wallMs: Math.round(performance.now() - t0),
  };
}
