/**
 * `messaging` bench: pub/sub and RPC through `nats` (a real nats-server, the official JS client)
 * and `macula` (Macula nodes and clients), side by side in one run. Every server/node and every
 * client is its own process on 127.0.0.1. Process protocol: bench/messaging/README.md.
 * The workloads, their runners and the table are exported for bench/messaging/routed.test.ts.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { machineInfo, machineMarkdown } from "../lib/machine.ts";
import { emitMetric, progress, type Unit } from "../lib/report.ts";
import { type ProcResult, runProcess, type Server, startServer } from "../lib/spawn.ts";
import { round, summarizeNs } from "../lib/stats.ts";
import { markdownTable, type Row, textTable } from "../lib/table.ts";
import { type Bench, type BenchOptions, type BenchOutcome, UsageError } from "../lib/types.ts";
import { loadClientModule, loadNodeModule, NODE_MODULE } from "./macula-api.ts";
import {
  type CallResult,
  type ClientResult,
  NODE_STATS_PREFIX,
  type NodeStats,
  type PubResult,
  type SubResult,
  SYSTEM_NAMES,
  type SystemName,
} from "./protocol.ts";
import { envInt } from "../lib/flags.ts";

const BENCH = "messaging";
const REFERENCE: SystemName = "macula";
const BASELINE: SystemName = "nats";
const RPC_SIZE = 128;
const CLIENT = "bench/messaging/client.ts";
const INSTALL_NATS = "install it: apt-get install nats-server";

export interface Params {
  count: number;
  warmup: number;
  rpcCount: number;
  rpcCalls: number;
  concurrency: number;
  idleMs: number;
  batch: number;
  timeoutMs: number;
}

/**
 * Where the nodes are: one node; two (B joins A: NATS, two servers joined by a route); or three
 * in a line, A ← B ← C, with no route between A and C, so that everything from A to C is
 * forwarded by B (the routed path: Macula only, see `ROUTED_NOTE`). Clients: on A and on the
 * last node.
 */
export type Topology = 1 | 2 | 3;

export interface PubsubWorkload {
  key: string;
  label: string;
  size: number;
  subs: number;
  nodes: Topology;
  /** The baseline's metric key prefix for this row when the baseline has no such path. */
  baselineKey?: string;
}

/** Marks the routed rows; their footnote is `ROUTED_NOTE`. */
const ROUTED_MARK = " †";

export const PUBSUB: readonly PubsubWorkload[] = [
  { key: "pubsub_1to1_16B", label: "pub/sub 1→1, 16 B, one node", size: 16, subs: 1, nodes: 1 },
  { key: "pubsub_1to1_128B", label: "pub/sub 1→1, 128 B, one node", size: 128, subs: 1, nodes: 1 },
  {
    key: "pubsub_1to1_128B_2nodes",
    label: "pub/sub 1→1, 128 B, across two nodes",
    size: 128,
    subs: 1,
    nodes: 2,
  },
  {
    key: "pubsub_1to1_128B_3nodes_routed",
    label: "pub/sub 1→1, 128 B, across three nodes (routed)",
    size: 128,
    subs: 1,
    nodes: 3,
    baselineKey: "pubsub_1to1_128B_2nodes",
  },
  {
    key: "fanout_1to4_128B",
    label: "fan-out 1→4, 128 B, one node (total)",
    size: 128,
    subs: 4,
    nodes: 1,
  },
];

export interface RpcWorkload {
  /** Metric key prefix: `<key>_p50`, `_p99`, `_p999`, `_mean`. */
  key: string;
  /** Row label before ", p50" etc. */
  label: string;
  nodes: Topology;
  /** Also the concurrent burst (`rpc_128B_c<C>_throughput`): one node only. */
  concurrent: boolean;
  baselineKey?: string;
}

export const RPC: readonly RpcWorkload[] = [
  { key: "rpc_128B", label: `RPC ${RPC_SIZE} B sequential`, nodes: 1, concurrent: true },
  {
    key: "rpc_128B_2nodes",
    label: `RPC ${RPC_SIZE} B sequential, across two nodes`,
    nodes: 2,
    concurrent: false,
  },
  {
    key: "rpc_128B_3nodes_routed",
    label: `RPC ${RPC_SIZE} B sequential, across three nodes (routed)`,
    nodes: 3,
    concurrent: false,
    baselineKey: "rpc_128B_2nodes",
  },
];

/** The footnote of the routed rows (table and docs). */
const ROUTED_NOTE = "† Routed: three Macula nodes in a line, A ← B ← C (B joins A, C joins B), " +
  "publisher or requester on A, subscriber or responder on C, and no route between A and C: C " +
  "lets go the direct route the overlay makes to A before the run (both overlays then avoid " +
  "each other until their next 30 s sweep), " +
  "and shortcuts are off (`overlay.shortcuts: 0`), so every message and call takes two " +
  "node-to-node hops, forwarded by B. Each run checks it (no direct route came up at C during " +
  "the run, no shortcut was opened, and B, which has no clients, forwarded every message or " +
  "call) and fails otherwise. NATS has no routed path (a cluster is a full mesh of routes: a " +
  "route does not relay, and servers connect to every server they learn of), so the `nats` " +
  "cells of these rows are its two-server route figures (the rows across two nodes, not " +
  "measured again) and `macula gain` compares Macula's routed figure with them (issue 17's " +
  "target: ≥ 0.8×).";

/** How to run one system's server/node processes and point clients at them. */
export interface SystemDef {
  name: SystemName;
  what: string;
  /** Problem that stops the system before it runs: fail (missing nats-server) or skip. */
  preflight(repoRoot: string): Promise<{ fail?: string; skip?: string; note?: string }>;
  /** Why the system does not run the three-node (routed) workloads, or undefined: it does. */
  noRouted?: string;
  /** argv of node `index` (0 = first) of `count`; `started` are the nodes before it, running. */
  nodeArgv(repoRoot: string, index: number, count: Topology, started: readonly Server[]): string[];
  clientArgs(node: Server): string[];
}

function readyStr(s: Server, key: string): string {
  const v = s.ready[key];
  if (typeof v !== "string") throw new Error(`node ready line has no string "${key}"`);
  return v;
}

function natsServerBin(): string | undefined {
  const env = process.env.BENCH_MSG_NATS_SERVER;
  if (env) return existsSync(env) ? env : undefined;
  return Bun.which("nats-server") ??
    ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"].find((p) =>
      existsSync(p)
    );
}

function packageVersion(repoRoot: string, name: string): string {
  try {
    const pkg = JSON.parse(
      readFileSync(join(repoRoot, "node_modules", name, "package.json"), "utf8"),
    ) as { version?: string };
    return pkg.version ?? "?";
  } catch {
    return "not installed";
  }
}

const NATS: SystemDef = {
  name: "nats",
  what: "", // filled by preflight with the versions found
  async preflight(repoRoot) {
    const bin = natsServerBin();
    if (bin === undefined) {
      return {
        fail:
          `nats-server not found (PATH, /usr/sbin; or set BENCH_MSG_NATS_SERVER): ${INSTALL_NATS}`,
      };
    }
    const v = await runProcess([bin, "--version"], 10_000);
    const client = packageVersion(repoRoot, "@nats-io/transport-node");
    if (client === "not installed") {
      return { fail: "@nats-io/transport-node is not installed: run npm install" };
    }
    return {
      note:
        `\`${
          v.stdout.trim() || "nats-server"
        }\` (${bin}), default settings, routes between two servers ` +
        `for the two-node case; client \`@nats-io/transport-node\` ${client} (Node TCP transport on Bun), ` +
        "default options, async-iterator subscriptions",
    };
  },
  noRouted: "a NATS route does not relay (the rows marked † use its two-server figures)",
  nodeArgv(repoRoot, index, _count, started) {
    const argv = [
      process.execPath,
      "run",
      join(repoRoot, "bench/messaging/nats-node.ts"),
      "--bin",
      natsServerBin() ?? "nats-server",
      "--name",
      index === 0 ? "a" : "b",
    ];
    const first = started[0];
    if (index === 1 && first !== undefined) {
      const rp = first.ready.routePort;
      if (typeof rp !== "number") throw new Error("first nats-server has no route port");
      argv.push("--route", `127.0.0.1:${rp}`);
    } else if (index === 0) argv.push("--cluster");
    return argv;
  },
  clientArgs: (node) => ["--url", readyStr(node, "url")],
};

export const MACULA: SystemDef = {
  name: "macula",
  what: "",
  async preflight() {
    if (!existsSync(NODE_MODULE)) {
      return { skip: "lib/node/node.ts does not exist yet (the Macula node is not implemented)" };
    }
    try {
      await loadNodeModule();
      await loadClientModule();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (/does not export/.test(msg)) return { skip: `${msg} yet` };
      return { fail: `cannot load the Macula node/client: ${msg}` };
    }
    return {
      note:
        "Macula nodes (`lib/node/node.ts`) and clients (`connect` from mod.ts) over QUIC with mutual TLS " +
        "(dev CA per run, shared by both nodes), default subscription buffer and overflow policy",
    };
  },
  nodeArgv(repoRoot, index, count, started) {
    const argv = [process.execPath, "run", join(repoRoot, "bench/messaging/macula-node.ts")];
    const first = started[0];
    const prev = started[index - 1];
    if (prev !== undefined && first !== undefined) {
      argv.push("--join", `127.0.0.1:${prev.port}`, "--ca-dir", readyStr(first, "caDir"));
    }
    if (count === 3) {
      // The routed line: no shortcut makes A → C direct, and C keeps a route to B only.
      argv.push("--shortcuts", "0");
      if (index === 2 && prev !== undefined) {
        argv.push("--line-peer", readyStr(prev, "nodeId"), "--members", "3");
      }
    }
    return argv;
  },
  clientArgs: (node) => ["--url", readyStr(node, "url"), "--creds", readyStr(node, "credsDir")],
};

const SYSTEMS: readonly SystemDef[] = [NATS, MACULA];

export interface Value {
  value: number;
  unit: Unit;
}

export interface Outcome {
  name: SystemName;
  status: "ok" | "failed" | "skipped";
  note?: string;
  errors: string[];
  /** metric key → value, as emitted. */
  values: Map<string, Value>;
}

function params(o: BenchOptions): Params {
  const q = o.quick;
  return {
    count: o.count ?? envInt("BENCH_MSG_COUNT") ?? (q ? 20_000 : 200_000),
    warmup: o.warmup ?? envInt("BENCH_MSG_WARMUP") ?? (q ? 100 : 500),
    rpcCount: envInt("BENCH_MSG_RPC_COUNT") ?? (q ? 1000 : 10_000),
    rpcCalls: envInt("BENCH_MSG_RPC_CALLS") ?? (q ? 4000 : 40_000),
    concurrency: envInt("BENCH_MSG_CONCURRENCY") ?? 8,
    idleMs: envInt("BENCH_MSG_IDLE_MS") ?? (q ? 1000 : 2000),
    batch: envInt("BENCH_MSG_BATCH") ?? 256,
    timeoutMs: o.timeoutS * 1000,
  };
}

function lastLines(s: string, n = 30): string {
  return s.trimEnd().split("\n").slice(-n).join("\n");
}

function describeProc(what: string, r: ProcResult): string {
  const how = r.timedOut
    ? `timed out after ${Math.round(r.ms)} ms`
    : `exited with code ${r.code}, signal ${r.signal}`;
  return `${what} ${how}\n--- ${what} stderr ---\n${lastLines(r.stderr)}`;
}

/** The one stdout line carrying `"role"`. */
function parseResult<T extends ClientResult>(what: string, r: ProcResult, role: T["role"]): T {
  if (r.timedOut || r.code !== 0) throw new Error(describeProc(what, r));
  const found: ClientResult[] = [];
  for (const line of r.stdout.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    try {
      const v = JSON.parse(t) as { role?: unknown };
      if (typeof v.role === "string") found.push(v as ClientResult);
    } catch {
      // not a result line
    }
  }
  if (found.length !== 1 || found[0]?.role !== role) {
    throw new Error(`${what}: expected exactly one "${role}" result line, got ${found.length}`);
  }
  return found[0] as T;
}

/** The stats line a Macula node process wrote to stderr as it stopped (macula-node.ts). */
function nodeStatsOf(stderr: string): NodeStats | undefined {
  const at = stderr.lastIndexOf(NODE_STATS_PREFIX);
  if (at < 0) return undefined;
  const line = stderr.slice(at + NODE_STATS_PREFIX.length).split("\n")[0] ?? "";
  try {
    return JSON.parse(line) as NodeStats;
  } catch {
    return undefined;
  }
}

/**
 * Starts `count` nodes (each joins the one before: `Topology`), runs `body`, stops them (last
 * first), and returns what `body` returned with each node's stats line (Macula; else undefined).
 */
async function withNodes<T>(
  sys: SystemDef,
  count: Topology,
  p: Params,
  repoRoot: string,
  body: (nodes: Server[]) => Promise<T>,
): Promise<{ out: T; stats: (NodeStats | undefined)[] }> {
  const nodes: Server[] = [];
  const stopped: ProcResult[] = [];
  // The end of a line waits for the members and for its direct route to come and go.
  const readyMs = Math.min(p.timeoutMs, count === 3 ? 60_000 : 30_000);
  let out: T;
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startServer(sys.nodeArgv(repoRoot, i, count, nodes), readyMs, { cwd: repoRoot }),
      );
    }
    out = await body(nodes);
    nodes.forEach((n, i) => {
      if (n.exitedEarly()) {
        throw new Error(`node ${i} exited during the run\n${lastLines(n.stderr())}`);
      }
    });
  } finally {
    for (let i = nodes.length - 1; i >= 0; i--) stopped[i] = await (nodes[i] as Server).stop();
  }
  return { out, stats: stopped.map((r) => nodeStatsOf(r.stderr)) };
}

/**
 * Checks that a routed run (three nodes, `Topology` 3) took two hops throughout, from the
 * nodes' stats lines: no route but B's came up at C after its ready line (C let go the direct
 * one to A before it) and C had none but B's at the end, no shortcut was opened, and B (which
 * has no clients) forwarded at least `expected` messages (FWDs) or calls. Returns what B
 * relayed.
 */
export function checkRouted(
  stats: readonly (NodeStats | undefined)[],
  what: "messages" | "calls",
  expected: number,
): number {
  const [a, b, c] = stats;
  if (a === undefined || b === undefined || c === undefined) {
    const missing = ["A", "B", "C"].filter((_, i) => stats[i] === undefined).join(", ");
    throw new Error(`routed: node(s) ${missing} wrote no stats line as they stopped`);
  }
  if (c.lineRetiredAfterReady > 0) {
    throw new Error(
      `routed: a direct route between A and C came up during the run (${c.lineRetiredAfterReady} ` +
        "times; the overlay avoids a lost neighbour for up to 30 s): not a two-hop figure; " +
        "fewer messages or calls (--count, BENCH_MSG_RPC_COUNT) fit in that time",
    );
  }
  const strays = c.routes.filter((r) => r !== b.nodeId);
  if (strays.length > 0) throw new Error(`routed: C had routes to ${strays.join(", ")} besides B`);
  const shortcuts = [a, b, c].reduce(
    (n, s) => n + s.router.shortcutsOpened + s.router.viaShortcut,
    0,
  );
  if (shortcuts > 0) throw new Error("routed: a shortcut was opened or used");
  const relayed = what === "messages" ? b.router.forwarded : b.router.calls;
  if (relayed < expected) {
    throw new Error(`routed: B forwarded ${relayed} ${what}, fewer than the ${expected} sent`);
  }
  return relayed;
}

function clientArgv(sys: SystemDef, repoRoot: string, node: Server, role: string): string[] {
  return [
    process.execPath,
    "run",
    join(repoRoot, CLIENT),
    "--system",
    sys.name,
    ...sys.clientArgs(node),
    "--role",
    role,
  ];
}

function metric(out: Outcome, key: string, value: number, unit: Unit): void {
  out.values.set(key, { value, unit });
  emitMetric({ bench: BENCH, system: out.name, metric: key, value: round(value), unit });
}

export async function runPubsub(
  sys: SystemDef,
  w: PubsubWorkload,
  p: Params,
  repoRoot: string,
  out: Outcome,
): Promise<void> {
  const startMs = Math.min(p.timeoutMs, 60_000);
  const { out: { pub, subs }, stats } = await withNodes(
    sys,
    w.nodes,
    p,
    repoRoot,
    async (nodes) => {
      const pubNode = nodes[0] as Server;
      const subNode = nodes[nodes.length - 1] as Server;
      const common = ["--count", String(p.count), "--size", String(w.size)];
      const subProcs = Array.from({ length: w.subs }, (_, i) =>
        runProcess(
          [
            ...clientArgv(sys, repoRoot, subNode, "sub"),
            ...common,
            ...["--id", String(i), "--idle-ms", String(p.idleMs), "--start-ms", String(startMs)],
          ],
          p.timeoutMs,
          { cwd: repoRoot },
        ));
      const pubProc = runProcess(
        [
          ...clientArgv(sys, repoRoot, pubNode, "pub"),
          ...common,
          ...["--subs", String(w.subs), "--batch", String(p.batch), "--ready-ms", String(startMs)],
        ],
        p.timeoutMs,
        { cwd: repoRoot },
      );
      const [pubR, ...subRs] = await Promise.all([pubProc, ...subProcs]);
      return { pub: pubR as ProcResult, subs: subRs };
    },
  );
  const pr = parseResult<PubResult>("publisher", pub, "pub");
  if (pr.count !== p.count || pr.size !== w.size) throw new Error("publisher: wrong count/size");
  const srs = subs.map((s, i) => parseResult<SubResult>(`subscriber ${i}`, s, "sub"));
  let delivered = 0;
  let last = 0;
  let reordered = 0;
  let clientDropped = 0;
  for (const s of srs) {
    if (s.count !== p.count || s.size !== w.size) throw new Error("subscriber: wrong count/size");
    if (s.bad > 0) {
      throw new Error(`subscriber ${s.id}: ${s.bad} malformed messages (${s.firstBad})`);
    }
    if (s.duplicates > 0) throw new Error(`subscriber ${s.id}: ${s.duplicates} duplicates`);
    if (s.received !== s.unique) throw new Error(`subscriber ${s.id}: received ≠ unique`);
    if (s.unique === 0) throw new Error(`subscriber ${s.id}: no message arrived`);
    delivered += s.unique;
    reordered += s.reordered;
    clientDropped += s.client_dropped ?? 0;
    last = Math.max(last, s.last_ms);
  }
  const expected = p.count * w.subs;
  const lost = expected - delivered;
  const seconds = (last - pr.start_ms) / 1000;
  if (!(seconds > 0)) throw new Error(`bad timing: last arrival before the first publish`);
  const relayed = w.nodes === 3 ? checkRouted(stats, "messages", delivered) : undefined;
  metric(out, `${w.key}_delivered`, delivered / seconds, "msg/s");
  metric(out, `${w.key}_lost`, lost, "msgs");
  if (reordered > 0) metric(out, `${w.key}_reordered`, reordered, "msgs");
  if (clientDropped > 0) metric(out, `${w.key}_client_dropped`, clientDropped, "msgs");
  if (relayed !== undefined) metric(out, `${w.key}_forwarded_by_b`, relayed, "msgs");
  progress(
    `${sys.name}: ${w.label}: ${delivered}/${expected} delivered in ${seconds.toFixed(3)} s` +
      (lost > 0 ? `, ${lost} LOST` : "") + (reordered > 0 ? `, ${reordered} out of order` : "") +
      (relayed !== undefined ? `; node B forwarded ${relayed}, two hops throughout` : ""),
  );
}

export async function runRpc(
  sys: SystemDef,
  w: RpcWorkload,
  p: Params,
  repoRoot: string,
  out: Outcome,
): Promise<void> {
  const { out: [seq, par], stats } = await withNodes(sys, w.nodes, p, repoRoot, async (nodes) => {
    const callerNode = nodes[0] as Server;
    const serverNode = nodes[nodes.length - 1] as Server;
    const responder = await startServer(
      clientArgv(sys, repoRoot, serverNode, "serve"),
      Math.min(p.timeoutMs, 30_000),
      { cwd: repoRoot },
    );
    try {
      const call = (extra: string[]) =>
        runProcess(
          [...clientArgv(sys, repoRoot, callerNode, "call"), "--size", String(RPC_SIZE), ...extra],
          p.timeoutMs,
          { cwd: repoRoot },
        );
      const seqR = await call([
        ...["--mode", "seq", "--warmup", String(p.warmup), "--count", String(p.rpcCount)],
      ]);
      const parR = w.concurrent
        ? await call([
          ...["--mode", "par", "--warmup", String(p.warmup), "--count", String(p.rpcCalls)],
          ...["--concurrency", String(p.concurrency)],
        ])
        : undefined;
      if (responder.exitedEarly()) throw new Error("responder exited during the run");
      return [seqR, parR] as const;
    } finally {
      await responder.stop();
    }
  });
  const s = parseResult<CallResult>("requester (sequential)", seq, "call");
  if (s.mode !== "seq" || s.rtt_ns.length !== p.rpcCount || s.size !== RPC_SIZE) {
    throw new Error("requester (sequential): wrong mode, size or sample count");
  }
  for (const v of s.rtt_ns) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`bad rtt sample ${v}`);
  }
  const relayed = w.nodes === 3 ? checkRouted(stats, "calls", p.warmup + p.rpcCount) : undefined;
  const lat = summarizeNs(s.rtt_ns);
  metric(out, `${w.key}_p50`, lat.p50, "us");
  metric(out, `${w.key}_p99`, lat.p99, "us");
  metric(out, `${w.key}_p999`, lat.p999, "us");
  metric(out, `${w.key}_mean`, lat.mean, "us");
  if (relayed !== undefined) metric(out, `${w.key}_calls_forwarded_by_b`, relayed, "msgs");
  progress(
    `${sys.name}: ${w.label}: p50 ${round(lat.p50)} µs, p99 ${round(lat.p99)} µs` +
      (relayed !== undefined ? `; node B forwarded ${relayed} calls, two hops throughout` : ""),
  );
  if (par === undefined) return;
  const c = parseResult<CallResult>("requester (concurrent)", par, "call");
  if (c.mode !== "par" || c.calls !== p.rpcCalls || c.concurrency !== p.concurrency) {
    throw new Error("requester (concurrent): wrong mode, call count or concurrency");
  }
  metric(out, `${w.key}_c${p.concurrency}_throughput`, c.calls / (c.elapsed_ns / 1e9), "calls/s");
}

async function runSystem(sys: SystemDef, p: Params, repoRoot: string): Promise<Outcome> {
  const out: Outcome = { name: sys.name, status: "ok", errors: [], values: new Map() };
  const pre = await sys.preflight(repoRoot);
  if (pre.skip !== undefined) {
    out.status = "skipped";
    out.errors.push(pre.skip);
    progress(`${sys.name}: SKIPPED: ${pre.skip}`);
    return out;
  }
  if (pre.fail !== undefined) {
    out.status = "failed";
    out.errors.push(pre.fail);
    return out;
  }
  out.note = pre.note;
  const runs = (nodes: Topology): boolean => nodes !== 3 || sys.noRouted === undefined;
  for (const w of PUBSUB) {
    if (!runs(w.nodes)) {
      progress(`${sys.name}: ${w.label}: not run: ${sys.noRouted}`);
      continue;
    }
    progress(`${sys.name}: ${w.label}, ${p.count} messages`);
    try {
      await runPubsub(sys, w, p, repoRoot, out);
    } catch (e) {
      out.errors.push(`${w.label}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  for (const w of RPC) {
    if (!runs(w.nodes)) {
      progress(`${sys.name}: ${w.label}: not run: ${sys.noRouted}`);
      continue;
    }
    progress(
      `${sys.name}: ${w.label}: ${p.warmup} warm-up + ${p.rpcCount} sequential` +
        (w.concurrent ? `, then ${p.rpcCalls} with ${p.concurrency} concurrent callers` : ""),
    );
    try {
      await runRpc(sys, w, p, repoRoot, out);
    } catch (e) {
      out.errors.push(`${w.label}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (out.errors.length > 0) out.status = "failed";
  return out;
}

interface RowDef {
  label: string;
  key: string;
  unit: string;
  /** Higher is better (throughput) or lower (latency). */
  higher: boolean;
  lostKey?: string;
  /** The baseline's metric (and lost) key for this row: routed rows use its two-node figures. */
  baselineKey?: string;
  baselineLostKey?: string;
}

function rowDefs(p: Params): RowDef[] {
  const rpcRows = (w: RpcWorkload): RowDef[] =>
    ([["p50", "p50"], ["p99", "p99"], ["p99.9", "p999"], ["mean", "mean"]] as const).map((
      [name, suffix],
    ) => ({
      label: `${w.label}, ${name}${w.baselineKey === undefined ? "" : ROUTED_MARK}`,
      key: `${w.key}_${suffix}`,
      unit: "µs",
      higher: false,
      ...(w.baselineKey === undefined ? {} : { baselineKey: `${w.baselineKey}_${suffix}` }),
    }));
  const [oneNode, ...multiNode] = RPC;
  return [
    ...PUBSUB.map((w) => ({
      label: `${w.label}${w.baselineKey === undefined ? "" : ROUTED_MARK}`,
      key: `${w.key}_delivered`,
      unit: "msg/s",
      higher: true,
      lostKey: `${w.key}_lost`,
      ...(w.baselineKey === undefined ? {} : {
        baselineKey: `${w.baselineKey}_delivered`,
        baselineLostKey: `${w.baselineKey}_lost`,
      }),
    })),
    ...rpcRows(oneNode as RpcWorkload),
    {
      label: `RPC ${RPC_SIZE} B, ${p.concurrency} concurrent callers`,
      key: `rpc_128B_c${p.concurrency}_throughput`,
      unit: "calls/s",
      higher: true,
    },
    ...multiNode.flatMap(rpcRows),
  ];
}

/** The value of row `d` for `r`: the baseline system reads a routed row's two-node figures. */
function cell(r: Outcome, d: RowDef, lost: boolean): number | undefined {
  const routedBase = r.name === BASELINE && d.baselineKey !== undefined;
  const key = lost
    ? (routedBase ? d.baselineLostKey : d.lostKey)
    : (routedBase ? d.baselineKey : d.key);
  return key === undefined ? undefined : r.values.get(key)?.value;
}

export function tableRows(results: readonly Outcome[], p: Params): { headers: Row; rows: Row[] } {
  const ref = results.find((r) => r.name === REFERENCE);
  const base = results.find((r) => r.name === BASELINE);
  const withGain = ref !== undefined && base !== undefined && ref.values.size > 0 &&
    base.values.size > 0;
  const headers: string[] = ["workload", "unit"];
  for (const r of results) headers.push(r.name, `${r.name} lost`);
  if (withGain) headers.push("macula gain");
  const rows = rowDefs(p).map((d): Row => {
    const row = [d.label, d.unit];
    for (const r of results) {
      const v = cell(r, d, false);
      row.push(v === undefined ? "—" : String(round(v)));
      const lost = cell(r, d, true);
      row.push(lost === undefined ? "—" : String(lost));
    }
    if (withGain) {
      const a = cell(ref, d, false);
      const b = cell(base, d, false);
      const g = a === undefined || b === undefined ? undefined : d.higher ? a / b : b / a;
      row.push(g === undefined || !Number.isFinite(g) ? "—" : `${g.toFixed(2)}×`);
    }
    return row;
  });
  return { headers, rows };
}

function statusLines(results: readonly Outcome[]): string[] {
  return results.map((r) => {
    const first = r.errors.map((e) => (e.split("\n")[0] ?? "").trim()).join("; ");
    if (r.status === "ok") return `- \`${r.name}\`: ok`;
    return `- \`${r.name}\`: **${r.status}**: ${first}`;
  });
}

/** What B relayed in each routed run, as measured (the `_forwarded_by_b` metrics). */
function routedChecks(results: readonly Outcome[]): string[] {
  const ref = results.find((r) => r.name === REFERENCE);
  if (ref === undefined) return [];
  const parts: string[] = [];
  for (const w of PUBSUB.filter((x) => x.nodes === 3)) {
    const n = ref.values.get(`${w.key}_forwarded_by_b`)?.value;
    if (n !== undefined) parts.push(`${n} FWDs for "${w.label}"`);
  }
  for (const w of RPC.filter((x) => x.nodes === 3)) {
    const n = ref.values.get(`${w.key}_calls_forwarded_by_b`)?.value;
    if (n !== undefined) parts.push(`${n} calls for "${w.label}"`);
  }
  return parts.length === 0 ? [] : ["", `Node B forwarded, in this run: ${parts.join("; ")}.`];
}

export function docBody(results: readonly Outcome[], p: Params, machine: string): string {
  const { headers, rows } = tableRows(results, p);
  return [
    "Generated by `npm run bench -- messaging` (bench/messaging; protocol in bench/messaging/README.md).",
    "Each server/node and each client is its own process on 127.0.0.1, all in the same invocation:",
    "compare columns with each other, not with other days (this machine kind is noisy, ±20–30%).",
    "",
    "Machine:",
    "",
    machine,
    "",
    `Pub/sub: the publisher sends ${p.count} messages as fast as the client takes them (yielding to the`,
    `event loop every ${p.batch}, and for Macula awaiting its client's \`writable()\`, the client's own`,
    "pacing), then flushes; each subscriber checks every payload (length, sequence",
    "number, every byte) and counts distinct messages until it has all of them or none came for",
    `${p.idleMs} ms. Delivered msg/s = messages that arrived (all subscribers) ÷ (first publish → last`,
    'arrival); "lost" = sent × subscribers − arrived. Two nodes: publisher on the first, subscriber on',
    `the second (NATS: two servers joined by a route). RPC: ${RPC_SIZE} B echo, requester and responder`,
    `in separate processes; ${p.warmup} warm-up + ${p.rpcCount} sequential calls (percentiles`,
    "from an HDR histogram, 3 significant digits; mean exact) on one node, then",
    `${p.rpcCalls} calls from ${p.concurrency} concurrent callers in one process (calls/s); then sequential calls`,
    "across two nodes (requester on the first, responder on the second; NATS: two servers, a route)",
    "and across three (routed, †). Every reply is checked (byte-equal to the request).",
    '"macula gain": how many times better `macula` is (throughput: macula ÷ nats; latency:',
    "nats ÷ macula).",
    "",
    markdownTable(headers, rows),
    "",
    ROUTED_NOTE,
    ...routedChecks(results),
    "",
    "Systems:",
    "",
    ...results.map((r) =>
      `- \`${r.name}\`: ${r.note ?? (r.status === "skipped" ? "not run" : "did not start")}.`
    ),
    "",
    "Status:",
    "",
    ...statusLines(results),
  ].join("\n");
}

async function run(o: BenchOptions): Promise<BenchOutcome> {
  const p = params(o);
  if (p.count < 1 || p.rpcCount < 1 || p.rpcCalls < 1) {
    throw new UsageError("messaging: counts must be at least 1");
  }
  const wanted = o.systems ?? process.env.BENCH_MSG_SYSTEMS?.split(",").filter((s) => s !== "");
  const unknown = (wanted ?? []).filter((w) => !SYSTEM_NAMES.includes(w as SystemName));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown messaging system(s): ${unknown.join(", ")}; known: ${SYSTEM_NAMES.join(", ")}`,
    );
  }
  const systems = wanted ? SYSTEMS.filter((s) => wanted.includes(s.name)) : SYSTEMS;

  const machine = machineMarkdown(await machineInfo(o.repoRoot));
  const results: Outcome[] = [];
  for (const sys of systems) {
    const r = await runSystem(sys, p, o.repoRoot);
    if (r.status === "failed") {
      for (const e of r.errors) process.stderr.write(`\n[bench] ${sys.name} FAILED: ${e}\n`);
    }
    results.push(r);
  }

  const { headers, rows } = tableRows(results, p);
  process.stdout.write(
    `\nMessaging — pub/sub ${p.count} messages per publisher, RPC ${RPC_SIZE} B (${p.rpcCount} sequential, ` +
      `${p.rpcCalls} × ${p.concurrency} concurrent)\n`,
  );
  process.stdout.write(`${textTable(headers, rows)}\n`);
  process.stdout.write(
    `${[ROUTED_NOTE, ...routedChecks(results)].join("\n").replaceAll("`", "")}\n`,
  );
  process.stdout.write(
    `${statusLines(results).join("\n").replaceAll("`", "").replaceAll("**", "")}\n`,
  );

  return {
    ok: results.every((r) => r.status !== "failed"),
    doc: {
      heading: "Messaging: pub/sub and RPC (bench/messaging)",
      body: docBody(results, p, machine),
    },
  };
}

export const messagingBench: Bench = {
  summary:
    "pub/sub (1→1, two nodes, three routed, 1→4 fan-out) and RPC latency/throughput: nats-server vs Macula nodes",
  run,
};
