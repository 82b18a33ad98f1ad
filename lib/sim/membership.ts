/**
 * The membership scenario behind `macula sim membership`: N nodes of one realm (a formed cluster,
 * or grown by joining through a seed), then a join, a crash, optional pauses, partitions and
 * restarts, all on the deterministic simulator; the report says how fast news reached everyone,
 * how many false accusations there were, and what it cost per node.
 *
 * Signatures: a simulated message never leaves memory, so nothing is signed or checked here (a
 * stand-in signer would only burn CPU). What signing costs a node is counted instead: each record
 * carries the bytes of an Ed25519 signature and key in the traffic figures (`signed: false`
 * gives the unsigned baseline), and `recordsPerNodePerSec` counts the records a node takes, which
 * is the number of signatures a real node checks (the edge checks a record once, and only when
 * it changes the view). bench/membership times the check itself.
 */
import {
  type Addr,
  Directory,
  type MemberEvent,
  type MemberMeta,
  Membership,
  type MembershipConfig,
  type Msg,
  seededRng,
} from "../mesh/mod.ts";
import { OverlayMesh, randomId } from "./overlay.ts";
import { type Latency, Simulator } from "./sim.ts";

/** What to simulate. */
export interface MembershipSimOptions {
  nodes: number;
  seed: number;
  /** Message loss, 0–1. */
  loss?: number;
  latency?: Latency;
  /** Start from a formed cluster (default) or let every node join through node 0. */
  warm?: boolean;
  config?: Partial<MembershipConfig>;
  /** When the measured join happens (ms of simulated time). Default 5 s. */
  joinAtMs?: number;
  /** When the measured crash happens. Default 10 s. */
  crashAtMs?: number;
  /** Restart the crashed node this long after the crash (0: never). */
  restartAfterMs?: number;
  /** Pause one node for `forMs` every `everyMs` (Lifeguard's test of a slow process). */
  pause?: { everyMs: number; forMs: number };
  /** Cut the cluster in two halves from `atMs` for `forMs`. */
  partition?: { atMs: number; forMs: number };
  /** Total simulated time. Default: the crash + 30 s. */
  durationMs?: number;
  /** Build the k-regular overlay over the final membership and measure it (default true). */
  overlay?: boolean;
  /** Count the bytes of signed records (default true); false: the unsigned baseline. */
  signed?: boolean;
}

/** The overlay built over the final membership (docs/overlay.md). */
export interface OverlayReport {
  k: number;
  components: number;
  largest: number;
  /** Exact up to 2,000 nodes; above, from sampled sources (a lower bound). */
  diameter: number;
  diameterExact: boolean;
  meanDistance: number;
  degree: { min: number; mean: number; max: number };
  rounds: number;
}

/** What happened. Times are simulated milliseconds; null when it did not happen in the run. */
export interface MembershipReport {
  nodes: number;
  seed: number;
  loss: number;
  simulatedMs: number;
  wallMs: number;
  events: number;
  /** From the join until every other live node holds the joiner alive. */
  joinKnownMs: number | null;
  /** From the crash until the first node declares it dead, and until every live node does. */
  crashDetectedMs: number | null;
  crashKnownMs: number | null;
  /** After a restart: until every live node holds the restarted node alive again. */
  restartKnownMs: number | null;
  /** Live nodes declared dead by someone (node, member pairs), outside a partition. */
  falsePositives: number;
  /** Deaths declared across a partition, from its start until every view is whole again. */
  partitionDeaths: number;
  /** Suspicions of live members (node, member pairs), refuted or not. */
  falseSuspicions: number;
  /** After a partition heals: until every node holds every other node alive again. */
  healedMs: number | null;
  messagesPerNodePerSec: number;
  bytesPerNodePerSec: number;
  /** Records of other members taken per node and second: the signatures a node checks. */
  recordsPerNodePerSec: number;
  /** Members each live node holds alive at the end (min/max), to see that views agree. */
  viewAlive: { min: number; max: number };
  overlay: OverlayReport | null;
}

const META: MemberMeta = { realm: "sim", tags: [], version: "sim" };
const addrOf = (i: number): Addr => `n${i}`;

/** Runs the scenario; deterministic for a given options object. */
export function runMembershipSim(o: MembershipSimOptions): MembershipReport {
  const started = performance.now();
  const n = o.nodes;
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`nodes must be an integer ≥ 2, got ${n}`);
  const warm = o.warm ?? true;
  const joinAt = o.joinAtMs ?? 5_000;
  const crashAt = o.crashAtMs ?? 10_000;
  const duration = o.durationMs ?? crashAt + 30_000;
  const sim = new Simulator<Msg, MemberEvent>({
    seed: o.seed,
    loss: o.loss ?? 0,
    latency: o.latency ?? { baseMs: 1, jitterMs: 4 },
  });
  const dir = new Directory();
  const total = n + 1; // the cluster and the joiner
  const up = new Uint8Array(total); // 1 while a node's process is up (paused counts as up)
  const factory = (i: number, seeds: Addr[]) => (addr: Addr, rng: () => number) =>
    new Membership({
      id: `node-${i}`,
      addr,
      meta: META,
      rng,
      directory: dir,
      config: o.config,
      seeds,
      now: sim.now,
      proofBytes: o.signed === false ? 0 : undefined,
    });
  for (let i = 0; i < n; i++) {
    sim.add(addrOf(i), factory(i, warm || i === 0 ? [] : [addrOf(0)]));
    up[i] = 1;
  }
  if (warm) {
    const all = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < n; i++) sim.call(addrOf(i), (c) => (c as Membership).bootstrap(all, 0));
  }
  const member = (i: number) => dir.indexOf(`node-${i}`);
  const nodeOf = (addr: Addr) => Number(addr.slice(1));

  // Who knows what, by event.
  const joiner = n;
  const victim = 1 + Math.floor(sim.rng() * (n - 1));
  const paused = o.pause ? (victim % (n - 1)) + 1 : -1;
  const knowsJoiner = new Uint8Array(total);
  const knowsDead = new Uint8Array(total);
  const knowsBack = new Uint8Array(total);
  let joinedAt = -1, crashedAt = -1, restartedAt = -1;
  let joinKnown: number | null = null, crashDetected: number | null = null;
  let crashKnown: number | null = null, restartKnown: number | null = null;
  let falsePositives = 0, falseSuspicions = 0, partitionDeaths = 0;
  let partitioned = false;
  const countUp = (except: number, flags: Uint8Array) => {
    let k = 0, need = 0;
    for (let i = 0; i < total; i++) {
      if (!up[i] || i === except) continue;
      need++;
      if (flags[i]) k++;
    }
    return k === need;
  };
  sim.onEvent((addr, e, now) => {
    const at = nodeOf(addr);
    const m = e.member;
    const who = m === member(joiner) ? joiner : Number(dir.entries[m]!.id.slice(5));
    if (e.kind === "dead" || e.kind === "left") {
      if (who === victim && crashedAt >= 0 && !up[victim]) {
        if (crashDetected === null) crashDetected = now - crashedAt;
        knowsDead[at] = 1;
        if (crashKnown === null && countUp(victim, knowsDead)) crashKnown = now - crashedAt;
      } else if (up[who]) {
        if (partitioned) partitionDeaths++;
        else falsePositives++;
      }
    } else if (e.kind === "suspect") {
      if (up[who] && !(who === victim && !up[victim])) falseSuspicions++;
    } else if (e.kind === "alive") {
      if (who === joiner && joinedAt >= 0 && !knowsJoiner[at]) {
        knowsJoiner[at] = 1;
        if (joinKnown === null && countUp(joiner, knowsJoiner)) joinKnown = now - joinedAt;
      }
      if (who === victim && restartedAt >= 0 && !knowsBack[at]) {
        knowsBack[at] = 1;
        if (restartKnown === null && countUp(victim, knowsBack)) restartKnown = now - restartedAt;
      }
    }
  });

  sim.at(joinAt, () => {
    joinedAt = sim.now;
    up[joiner] = 1;
    sim.add(addrOf(joiner), factory(joiner, [addrOf(0)]));
  });
  sim.at(crashAt, () => {
    crashedAt = sim.now;
    up[victim] = 0;
    sim.crash(addrOf(victim));
  });
  if (o.restartAfterMs && o.restartAfterMs > 0) {
    sim.at(crashAt + o.restartAfterMs, () => {
      restartedAt = sim.now;
      up[victim] = 1;
      knowsBack.fill(0);
      sim.restart(addrOf(victim), factory(victim, [addrOf(0)]));
    });
  }
  if (o.pause) {
    const { everyMs, forMs } = o.pause;
    for (let t = everyMs; t < duration; t += everyMs) {
      sim.at(t, () => {
        if (up[paused]) sim.pause(addrOf(paused), forMs);
      });
    }
  }
  let healed: number | null = null;
  if (o.partition) {
    const { atMs, forMs } = o.partition;
    const half = Math.floor(n / 2);
    sim.at(atMs, () => {
      const a: Addr[] = [], b: Addr[] = [];
      for (let i = 0; i < total; i++) (i < half ? a : b).push(addrOf(i));
      sim.partition([a, b]);
      partitioned = true;
    });
    sim.at(atMs + forMs, () => sim.heal());
    const healAt = atMs + forMs;
    sim.runUntil(Math.min(duration, healAt));
    // After the heal: wait (bounded by the duration) until every live node's view is whole.
    const whole = () => {
      const want = countLive();
      for (let i = 0; i < total; i++) {
        if (!up[i]) continue;
        const c = sim.core(addrOf(i)) as Membership | undefined;
        if (!c || c.liveCount !== want) return false;
      }
      return true;
    };
    const countLive = () => {
      let k = 0;
      for (let i = 0; i < total; i++) if (up[i] && sim.core(addrOf(i))) k++;
      return k;
    };
    if (sim.runUntilCondition(whole, Math.max(0, duration - sim.now), { checkEveryMs: 100 })) {
      healed = sim.now - healAt;
    }
    partitioned = false;
  }
  sim.runUntil(duration);

  const st = sim.stats();
  let min = Infinity, max = 0, records = 0;
  for (let i = 0; i < total; i++) {
    const c = up[i] ? (sim.core(addrOf(i)) as Membership | undefined) : undefined;
    if (!c) continue;
    records += c.stats.records;
    const alive = c.liveCount;
    if (alive < min) min = alive;
    if (alive > max) max = alive;
  }
  let overlay: OverlayReport | null = null;
  if (o.overlay ?? true) {
    // Every live node's overlay, fed the members of the final view, settled into links.
    const live: number[] = [];
    for (let i = 0; i < total; i++) if (up[i] && sim.core(addrOf(i))) live.push(i);
    const ids = live.map((i) => randomId(seededRng(o.seed, "node-id", i)));
    const mesh = new OverlayMesh(ids, o.seed);
    mesh.settle();
    const g = mesh.graph();
    const c = g.components();
    const d = g.n > 2000
      ? g.diameter({ samples: 32, rng: seededRng(o.seed, "diameter") })
      : g.diameter();
    const deg = g.degreeStats();
    overlay = {
      k: mesh.nodes[0]?.k ?? 0,
      components: c.count,
      largest: c.largest,
      diameter: d.diameter,
      diameterExact: d.exact,
      meanDistance: Math.round(d.meanDistance * 100) / 100,
      degree: { min: deg.min, mean: round1(deg.mean), max: deg.max },
      rounds: mesh.rounds,
    };
  }
  const nodeSeconds = (n * duration + (duration - joinAt) - (duration - crashAt)) / 1000;
  return {
    nodes: n,
    seed: o.seed,
    loss: o.loss ?? 0,
    simulatedMs: sim.now,
    wallMs: Math.round(performance.now() - started),
    events: st.events,
    joinKnownMs: joinKnown,
    crashDetectedMs: crashDetected,
    crashKnownMs: crashKnown,
    restartKnownMs: restartKnown,
    falsePositives,
    partitionDeaths,
    falseSuspicions,
    healedMs: healed,
    messagesPerNodePerSec: round1(st.sent / nodeSeconds),
    bytesPerNodePerSec: Math.round(st.bytesSent / nodeSeconds),
    recordsPerNodePerSec: Math.round((records / nodeSeconds) * 100) / 100,
    viewAlive: { min: min === Infinity ? 0 : min, max },
    overlay,
  };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
