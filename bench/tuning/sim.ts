/**
 * The simulated half of bench/tuning: membership timing and the overlay's `k` on the
 * deterministic simulator (lib/sim), each setting against the default in the same run. The
 * scenarios are those of `macula sim membership` and `macula sim routing` (cli/commands/sim.ts);
 * the knobs go in through options the scenarios already take (`config` of `runMembershipSim`,
 * `k` of `runRoutingSim`). Same seed, same figures, whatever the machine's load.
 */
import { DEFAULT_CONFIG, seededRng } from "../../lib/mesh/mod.ts";
import { type MembershipReport, runMembershipSim } from "../../lib/sim/membership.ts";
import { OverlayMesh, randomId } from "../../lib/sim/overlay.ts";
import { type RoutingReport, runRoutingSim } from "../../lib/sim/routing.ts";
import type { Latency } from "../../lib/sim/sim.ts";
import { progress } from "../lib/report.ts";

export const SEED = 1;

/** A network the membership runs use: one-way latency per message. */
export interface NetProfile {
  name: string;
  latency: { baseMs: number; jitterMs: number };
}

/** The simulator's default network (that of `macula sim membership`): 1–5 ms one way. */
export const LAN: NetProfile = { name: "1–5 ms", latency: { baseMs: 1, jitterMs: 4 } };
/** A wide-area network: 20–100 ms one way (round trips 40–200 ms). */
export const WAN: NetProfile = { name: "20–100 ms", latency: { baseMs: 20, jitterMs: 80 } };

export interface MembershipCase {
  /** Which knob this row varies (`probe_interval_ms` or `probe_timeout_ms`). */
  knob: "probe_interval_ms" | "probe_timeout_ms";
  intervalMs: number;
  timeoutMs: number;
  loss: number;
  net: NetProfile;
  /** Both timings at their defaults: the baseline of its (knob, loss, net) group. */
  isDefault: boolean;
  /** Cluster size (the wide-area rows run smaller: their suspicion storms are slow to simulate). */
  nodes: number;
}

export interface MembershipRow extends MembershipCase {
  report: MembershipReport;
  /** SWIM's shortest suspicion timeout at this size and interval (Lifeguard starts above it). */
  minSuspicionMs: number;
}

export interface RoutingRow {
  k: number;
  isDefault: boolean;
  report: RoutingReport;
  /** Routes per node (degree of the overlay the routers run over, before the crash). */
  routes: { min: number; mean: number; max: number };
  /** Hops between two nodes over that overlay, all ordered pairs (BFS). */
  hops: { p50: number; p99: number; mean: number; max: number };
}

export interface SimResults {
  nodes: number;
  routingNodes: number;
  /** Cluster size of the wide-area rows. */
  wanNodes: number;
  durationMs: number;
  membership: MembershipRow[];
  routing: RoutingRow[];
  problems: string[];
}

const D_INTERVAL = DEFAULT_CONFIG.probeIntervalMs;
const D_TIMEOUT = DEFAULT_CONFIG.probeTimeoutMs;

/** The membership grid: each knob swept with the other at its default, at 1% and 5% loss. */
export function membershipCases(nodes: number, wanNodes: number): MembershipCase[] {
  const out: MembershipCase[] = [];
  for (const loss of [0.01, 0.05]) {
    for (const iv of [250, D_INTERVAL, 1000, 2000]) {
      out.push({
        knob: "probe_interval_ms",
        intervalMs: iv,
        timeoutMs: D_TIMEOUT,
        loss,
        net: LAN,
        isDefault: iv === D_INTERVAL,
        nodes,
      });
    }
    for (const to of [50, 100, D_TIMEOUT, 400]) {
      out.push({
        knob: "probe_timeout_ms",
        intervalMs: D_INTERVAL,
        timeoutMs: to,
        loss,
        net: LAN,
        isDefault: to === D_TIMEOUT,
        nodes,
      });
    }
  }
  // Round trips of 40–200 ms: a timeout below the slowest round trip, and one that leaves less
  // of the interval than an indirect probe's two round trips. At 1,000 nodes a storm of
  // suspicions takes 13 minutes of wall time to simulate (100 ms: 2.4 M suspicions): 200 nodes by
  // default (BENCH_TUNING_WAN_NODES).
  for (const to of [100, D_TIMEOUT, 400]) {
    out.push({
      knob: "probe_timeout_ms",
      intervalMs: D_INTERVAL,
      timeoutMs: to,
      loss: 0.01,
      net: WAN,
      isDefault: to === D_TIMEOUT,
      nodes: wanNodes,
    });
  }
  return out;
}

/** All-pairs hop counts and the degrees of `k`'s overlay, built as `runRoutingSim` builds it. */
export function overlayShape(
  nodes: number,
  k: number,
  seed: number,
): Pick<RoutingRow, "routes" | "hops"> {
  // The same ids, seed and options as lib/sim/routing.ts: the same overlay, link for link.
  const ids = Array.from({ length: nodes }, (_, i) => randomId(seededRng(seed, "id", i)));
  const overlay = new OverlayMesh(ids, seed, true, { k });
  overlay.settle();
  const adj = overlay.adj.map((s) => [...s]);
  const hist: number[] = [];
  const dist = new Int32Array(nodes);
  const queue = new Int32Array(nodes);
  let pairs = 0, sum = 0;
  for (let s = 0; s < nodes; s++) {
    dist.fill(-1);
    dist[s] = 0;
    let head = 0, tail = 0;
    queue[tail++] = s;
    while (head < tail) {
      const u = queue[head++]!;
      const du = dist[u]!;
      if (u !== s) {
        hist[du] = (hist[du] ?? 0) + 1;
        pairs++;
        sum += du;
      }
      for (const v of adj[u]!) {
        if (dist[v] === -1) {
          dist[v] = du + 1;
          queue[tail++] = v;
        }
      }
    }
  }
  const at = (q: number) => {
    const want = Math.ceil(q * pairs);
    let seen = 0;
    for (let h = 0; h < hist.length; h++) {
      seen += hist[h] ?? 0;
      if (seen >= want) return h;
    }
    return hist.length - 1;
  };
  const deg = adj.map((a) => a.length);
  return {
    routes: {
      min: Math.min(...deg),
      mean: deg.reduce((a, b) => a + b, 0) / nodes,
      max: Math.max(...deg),
    },
    hops: {
      p50: at(0.5),
      p99: at(0.99),
      mean: pairs === 0 ? 0 : sum / pairs,
      max: hist.length - 1,
    },
  };
}

/** Runs the whole simulated half. `quick`: 200 nodes instead of 1,000. */
export function runSimPart(quick: boolean, wanNodes = 200): SimResults {
  const nodes = quick ? 200 : 1000;
  // Long enough for the slowest setting (2 s probes: a suspicion lasts 24 s or more at 1,000
  // nodes) to spread the crash; the same for every row, so traffic per second compares.
  const durationMs = 100_000;
  const problems: string[] = [];
  const membership: MembershipRow[] = [];
  const wan = quick ? Math.min(200, wanNodes) : wanNodes;
  for (const c of membershipCases(nodes, wan)) {
    progress(
      `tuning: membership ${c.nodes} nodes, interval ${c.intervalMs} ms, timeout ${c.timeoutMs} ms, ` +
        `loss ${c.loss * 100}%, latency ${c.net.name}`,
    );
    const report = runMembershipSim({
      nodes: c.nodes,
      seed: SEED,
      loss: c.loss,
      latency: c.net.latency as Latency,
      durationMs,
      overlay: false,
      config: { probeIntervalMs: c.intervalMs, probeTimeoutMs: c.timeoutMs },
    });
    console.log(JSON.stringify({ bench: "tuning", part: "membership", case: c, report }));
    const label =
      `membership ${c.nodes} nodes interval ${c.intervalMs} timeout ${c.timeoutMs} loss ${c.loss} ` +
      `latency ${c.net.name}`;
    // Any setting must still spread a join and a crash; the defaults must also accuse no one.
    if (report.joinKnownMs === null) problems.push(`${label}: the join did not reach everyone`);
    if (report.crashKnownMs === null) problems.push(`${label}: the crash did not reach everyone`);
    if (c.isDefault && report.falsePositives > 0) {
      problems.push(`${label} (defaults): ${report.falsePositives} false deaths`);
    }
    const members = c.nodes + 1; // the cluster and the joiner
    membership.push({
      ...c,
      report,
      minSuspicionMs: DEFAULT_CONFIG.suspicionMult * Math.max(1, Math.log10(members)) *
        c.intervalMs,
    });
  }

  const routingNodes = quick ? 200 : 1000;
  const routing: RoutingRow[] = [];
  for (const k of [4, 8, 16]) {
    progress(`tuning: routing ${routingNodes} nodes, k = ${k}`);
    const report = runRoutingSim({ nodes: routingNodes, seed: SEED, k, churn: 0.1 });
    const shape = overlayShape(routingNodes, k, SEED);
    console.log(JSON.stringify({ bench: "tuning", part: "routing", k, shape, report }));
    const d = report.delivery;
    if (d.completeness !== 1) problems.push(`routing k=${k}: delivery ${d.completeness}`);
    if (d.duplicates > 0) problems.push(`routing k=${k}: ${d.duplicates} duplicates`);
    if (report.queue.duplicates > 0) {
      problems.push(`routing k=${k}: ${report.queue.duplicates} queue-group duplicates`);
    }
    if (report.rpc.failed > 0) problems.push(`routing k=${k}: ${report.rpc.failed} calls failed`);
    if (report.protocolErrors > 0) {
      problems.push(`routing k=${k}: ${report.protocolErrors} protocol errors`);
    }
    routing.push({ k, isDefault: k === 8, report, ...shape });
  }
  return { nodes, routingNodes, wanNodes: wan, durationMs, membership, routing, problems };
}

// ------------------------------------------------------------------ Markdown

const sec = (ms: number | null) => (ms === null ? "—" : (ms / 1000).toFixed(2));
const ratio = (x: number | null, base: number | null) =>
  x === null || base === null || base === 0 ? "—" : `${(x / base).toFixed(2)}×`;

function baseline(rows: MembershipRow[], r: MembershipRow): MembershipRow | undefined {
  return rows.find((b) =>
    b.isDefault && b.knob === r.knob && b.loss === r.loss && b.net.name === r.net.name &&
    b.nodes === r.nodes
  );
}

export function membershipTable(s: SimResults): string {
  const head =
    "| knob | nodes | interval (ms) | timeout (ms) | latency one way | loss | join known to all (s) | crash first detected (s) | crash known to all (s) | ÷ default | SWIM's min. suspicion timeout (s) | false suspicions | false deaths | msg/node/s | B/node/s | ÷ default | views at the end (alive) | wall (s) |\n" +
    "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|";
  const rows = s.membership.map((r) => {
    const b = baseline(s.membership, r);
    const p = r.report;
    const mark = r.isDefault ? " (default)" : "";
    return `| \`${r.knob}\`${mark} | ${r.nodes} | ${r.intervalMs} | ${r.timeoutMs} | ${r.net.name} | ` +
      `${(r.loss * 100).toFixed(0)}% | ${sec(p.joinKnownMs)} | ${sec(p.crashDetectedMs)} | ` +
      `${sec(p.crashKnownMs)} | ${ratio(p.crashKnownMs, b?.report.crashKnownMs ?? null)} | ` +
      `${(r.minSuspicionMs / 1000).toFixed(1)} | ${p.falseSuspicions} | ${p.falsePositives} | ` +
      `${p.messagesPerNodePerSec} | ${p.bytesPerNodePerSec} | ` +
      `${ratio(p.bytesPerNodePerSec, b?.report.bytesPerNodePerSec ?? null)} | ` +
      `${p.viewAlive.min}–${p.viewAlive.max} | ${(p.wallMs / 1000).toFixed(1)} |`;
  });
  return `${head}\n${rows.join("\n")}`;
}

export function routingTable(s: SimResults): string {
  const base = s.routing.find((r) => r.isDefault);
  const head =
    "| k | routes / node min / mean / max | hops p50 / p99 / max (all pairs) | mean hops | transmissions / delivery | ÷ k=8 | delivery | duplicates | visibility p50 / p99 (ms) | interest converged (ms) | INTEREST sent / node p50 | messages sent / node p50 | KiB sent / node p50 | ÷ k=8 | after the crash: complete / whole again | wall (s) |\n" +
    "|---:|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---:|";
  const rows = s.routing.map((r) => {
    const p = r.report;
    const d = p.delivery;
    const c = p.churn;
    const kib = p.perNode.bytesSent.p50 / 1024;
    return `| ${r.k}${r.isDefault ? " (default)" : ""} | ${r.routes.min} / ${
      r.routes.mean.toFixed(1)
    } / ${r.routes.max} | ${r.hops.p50} / ${r.hops.p99} / ${r.hops.max} | ${
      r.hops.mean.toFixed(2)
    } | ${d.transmissionsPerDelivery.toFixed(2)} | ${
      ratio(d.transmissionsPerDelivery, base?.report.delivery.transmissionsPerDelivery ?? null)
    } | ${(d.completeness * 100).toFixed(2)}% | ${d.duplicates} | ${
      p.visibilityMs.p50.toFixed(1)
    } / ${p.visibilityMs.p99.toFixed(1)} | ${
      p.convergeMs.toFixed(1)
    } | ${p.perNode.interestSent.p50} | ${p.perNode.messagesSent.p50} | ${kib.toFixed(0)} | ${
      ratio(p.perNode.bytesSent.p50, base?.report.perNode.bytesSent.p50 ?? null)
    } | ${
      c
        ? `${(c.completeAfterDetect * 100).toFixed(0)}% / ${
          c.recoveredMs === null ? "never" : `${c.recoveredMs} ms`
        }`
        : "—"
    } | ${(p.wallMs / 1000).toFixed(1)} |`;
  });
  return `${head}\n${rows.join("\n")}`;
}
