/**
 * `npm run bench -- abuse`: what one attacker with a valid certificate of the realm costs the
 * well-behaved clients of the same node. For each attack (bench/abuse/attack.ts, its own
 * process) and once with none (the baseline, same run), a fresh node (`macula node up`, its own
 * process) serves a publisher and a subscriber (publish → receive, sequential) and a caller and a
 * provider (small calls, sequential); the bench records their latency p50/p99 while the attack
 * runs. Target (issue 13): p99 under each attack within 2× the baseline. Asserts that every
 * message and reply arrived, never speed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, connect } from "../../lib/client/mod.ts";
import { issueCert, loadCa, writeCredsDir } from "../../lib/identity/mod.ts";
import { machineInfo, machineMarkdown } from "../lib/machine.ts";
import { progress } from "../lib/report.ts";
import { startServer } from "../lib/spawn.ts";
import { round, summarizeNs } from "../lib/stats.ts";
import type { Bench, BenchOptions, BenchOutcome } from "../lib/types.ts";
import { ATTACKS } from "./attacks.ts";

interface Row {
  attack: string;
  pubP50: number;
  pubP99: number;
  rpcP50: number;
  rpcP99: number;
  attacker: string;
  node: string;
  /** Well-behaved calls that failed (timed out) during the attack. */
  failed: number;
  ok: boolean;
}

const ns = (t0: bigint) => Number(process.hrtime.bigint() - t0);

async function measure(pub: Client, sub: Client, caller: Client, n: number, warm: number) {
  const it = sub.subscribe("victim.latency")[Symbol.asyncIterator]();
  await sub.flush();
  const pubNs: number[] = [];
  const rpcNs: number[] = [];
  let ok = true;
  const payload = new Uint8Array(128);
  for (let i = 0; i < warm + n; i++) {
    const t0 = process.hrtime.bigint();
    pub.publish("victim.latency", payload);
    const m = await it.next();
    if (m.done || m.value.payload.length !== 128) ok = false;
    if (i >= warm) pubNs.push(ns(t0));
  }
  let failed = 0;
  for (let i = 0; i < warm + n; i++) {
    const t0 = process.hrtime.bigint();
    try {
      const r = await caller.call("abuse.echo", payload, { timeoutMs: 10_000 });
      if (r.length !== 128) ok = false;
    } catch (e) {
      if (failed === 0) progress(`abuse: a well-behaved call failed: ${(e as Error).message}`);
      failed++; // counted and reported: a well-behaved call the attack made fail
      ok = false;
    }
    if (i >= warm) rpcNs.push(ns(t0));
  }
  await it.return?.();
  return { pub: summarizeNs(pubNs), rpc: summarizeNs(rpcNs), ok, failed };
}

async function one(
  o: BenchOptions,
  dir: string,
  attack: string | null,
  n: number,
  warm: number,
): Promise<Row> {
  const main = join(o.repoRoot, "cli", "main.ts");
  const data = join(dir, attack ?? "none");
  const node = await startServer(
    [
      process.execPath,
      main,
      "node",
      "up",
      "--ready-json",
      "--data-dir",
      data,
      "--listen",
      "127.0.0.1:0",
    ],
    30_000,
  );
  const clients: Client[] = [];
  let attacker: Awaited<ReturnType<typeof startServer>> | null = null;
  let bigProvider: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    const r = node.ready as { url: string; credsDir: string; caDir: string; nodeId: string };
    const c = async () => {
      const x = await connect({ url: r.url, creds: r.credsDir, onError: () => {} });
      clients.push(x);
      return x;
    };
    const [pub, sub, caller, provider] = [await c(), await c(), await c(), await c()];
    await provider.serve("abuse.echo", (p) => p).ready;
    // The procedure the deaf caller abuses has a provider of its own, in its own process: what
    // the attack costs that provider is not the well-behaved clients' process's.
    bigProvider = await startServer(
      [process.execPath, join(o.repoRoot, "bench", "abuse", "provider.ts"), r.url, r.credsDir],
      30_000,
    );
    let attackerLine = "—";
    if (attack) {
      // The attacker's own certificates: a client's, and a node's for the attacks that need one
      // (punch, gossip). Its own, so that a hold-down of it leaves the well-behaved clients be.
      const ca = await loadCa(r.caDir);
      const issue = async (role: "client" | "node") => {
        const d = join(dir, `${attack}-${role}-creds`);
        const cert = await issueCert({ ca, name: `attacker-${role}`, role, durationMs: 3_600_000 });
        await writeCredsDir(d, { ca: ca.pem, cert: cert.pem, key: cert.keyPem! });
        return d;
      };
      const clientCreds = await issue("client");
      const nodeCreds = await issue("node");
      attacker = await startServer(
        [
          process.execPath,
          join(o.repoRoot, "bench", "abuse", "attack.ts"),
          attack,
          String(node.port),
          clientCreds,
          nodeCreds,
          r.nodeId,
        ],
        30_000,
      );
    }
    const m = await measure(pub, sub, caller, n, warm);
    if (attacker) {
      const res = await attacker.stop(5000);
      const last = res.stderr.trim().split("\n").findLast((l) => l.startsWith("{")) ?? "{}";
      const a = JSON.parse(last) as { actions: number; refused: number; sessions: number };
      attackerLine = `${a.actions} actions, ${a.refused} refused, ${a.sessions} sessions`;
    }
    const snap = await caller.inspect("node") as {
      dropped: Record<string, number>;
      refused: Record<string, unknown>;
      router: { limited: number; denied: number };
      traversal: { refused: number };
    };
    const nodeLine = [
      `dropped ${JSON.stringify(snap.dropped)}`,
      `limited ${snap.router.limited}`,
      `frames ${JSON.stringify(snap.refused.frames)}`,
      `traversal refused ${snap.traversal.refused}`,
    ].join("; ");
    return {
      attack: attack ?? "none (baseline)",
      pubP50: round(m.pub.p50),
      pubP99: round(m.pub.p99),
      rpcP50: round(m.rpc.p50),
      rpcP99: round(m.rpc.p99),
      attacker: attackerLine,
      node: nodeLine,
      failed: m.failed,
      ok: m.ok && !node.exitedEarly(),
    };
  } finally {
    await attacker?.stop(2000).catch(() => {});
    await bigProvider?.stop(2000).catch(() => {});
    await Promise.allSettled(clients.map((x) => x.close()));
    await node.stop(5000);
  }
}

export const abuseBench: Bench = {
  summary: "well-behaved clients' publish and RPC latency under each attack, and with none",
  async run(o: BenchOptions): Promise<BenchOutcome> {
    const machine = machineMarkdown(await machineInfo(o.repoRoot));
    const n = o.count ?? (o.quick ? 300 : 3000);
    const warm = o.warmup ?? (o.quick ? 50 : 300);
    const dir = mkdtempSync(join(tmpdir(), "macula-abuse-"));
    const rows: Row[] = [];
    try {
      const kinds = [
        null,
        ...Object.keys(ATTACKS).filter((k) => !o.systems || o.systems.includes(k)),
      ];
      for (const k of kinds) {
        progress(`abuse: ${k ?? "baseline"}, ${n} publishes and ${n} calls`);
        const row = await one(o, dir, k, n, warm);
        console.log(JSON.stringify({ bench: "abuse", ...row }));
        rows.push(row);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const base = rows[0]!;
    const x = (v: number, b: number) => `${(v / b).toFixed(2)}×`;
    const table = rows.map((r) =>
      `| ${r.attack} | ${r.pubP50} | ${r.pubP99} (${
        x(r.pubP99, base.pubP99)
      }) | ${r.rpcP50} | ${r.rpcP99} (${x(r.rpcP99, base.rpcP99)}) | ${r.failed} | ${r.attacker} |`
    ).join("\n");
    const counters = rows.slice(1).map((r) => `- ${r.attack}: ${r.node}`).join("\n");
    const within = rows.slice(1).filter((r) =>
      r.pubP99 <= 2 * base.pubP99 && r.rpcP99 <= 2 * base.rpcP99
    ).map((r) => r.attack);
    const ok = rows.every((r) => r.ok);
    const body =
      `Generated by \`npm run bench -- abuse\` (bench/abuse): for each attack, a fresh node
(\`macula node up\`, its own process) on 127.0.0.1 with four well-behaved clients in the bench
process — a publisher and a subscriber (publish 128 B, wait for it to arrive: ${n} sequential, after
${warm} warm-up), a caller and a provider (${n} sequential 128 B calls, each allowed 10 s), and
the provider of the 32 KiB procedure the deaf caller abuses (its own process) — while one attacker (its own
process, bench/abuse/attack.ts) holding a valid certificate of the realm runs the attack. The first
row, with no attacker, is the baseline of the same run. Latencies in µs; in brackets the p99 over
the baseline's. The machine has few cores: node, attacker and clients share them, so an attack
that burns CPU shows even when the node refuses everything it asks.

${machine}

| attack | publish p50 | publish p99 | call p50 | call p99 | calls failed | the attacker did |
|---|---:|---:|---:|---:|---:|---|
${table}

What each attack is: ${Object.entries(ATTACKS).map(([k, v]) => `**${k}** ${v}`).join("; ")}.

Within 2× of the baseline's p99 (the target): ${within.length} of ${rows.length - 1} (${
        within.join(", ") || "none"
      }).

The node's counters after each attack (\`macula inspect node --json\`):
${counters}${
        ok
          ? ""
          : "\n\n**Problem: a well-behaved message or call was lost (calls failed above), or the node died.**"
      }
`;
    return { ok, doc: { heading: "Under attack (bench/abuse)", body } };
  },
};
