/**
 * `npm run bench -- nat` (root, ip, iptables, conntrack): the NAT lab of test/nat with Macula
 * nodes behind a full-cone, two port-restricted and two symmetric NATs and a rendezvous/relay on
 * the lab's internet; for every ordered pair, the time from cold to its first route and the path
 * (direct, punched, relayed), then the RTT on that path. The baseline in the same run: two public
 * hosts. Asserts correctness (every pair reached, by the expected path), never speed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { startLabNodes } from "../../test/helpers/labnodes.ts";
import { createLab, type Lab } from "../../test/helpers/natlab.ts";
import { Proc } from "../../test/helpers/proc.ts";
import { machineInfo, machineMarkdown } from "../lib/machine.ts";
import type { Bench, BenchOptions, BenchOutcome } from "../lib/types.ts";

const KINDS = ["eim-fc", "eim-pr", "eim-pr", "sym", "sym"] as const;

const expected = (a: string, b: string): string => {
  if (a === "public" && b === "public") return "direct";
  if (a === "public" || b === "public") return "direct|punched"; // NATed side dials out
  if (a === "eim-fc" || b === "eim-fc") return "punched";
  if (a === "sym" || b === "sym") return "relayed";
  return "punched";
};

/** When a node's log says its route to `peer` came up first, and on which path. */
function firstRoute(log: string, peer: string): { at: number; path: string } | null {
  const m = new RegExp(
    `^(\\S+) route up: node ${peer.slice(0, 12)}… \\(\\w+, (\\w+)`,
    "m",
  ).exec(log);
  return m ? { at: Date.parse(m[1]!), path: m[2]! } : null;
}

/** When the node joined: its first route up (to the rendezvous). */
function joined(log: string): number {
  const m = /^(\S+) route up: /m.exec(log);
  return m ? Date.parse(m[1]!) : NaN;
}

export const natBench: Bench = {
  summary: "NAT lab: path and time to first byte for every pair of NAT kinds (needs root)",
  async run(o: BenchOptions): Promise<BenchOutcome> {
    const machine = machineMarkdown(await machineInfo(o.repoRoot));
    const dir = mkdtempSync(join(tmpdir(), "macula-bench-nat-"));
    let lab: Lab | undefined;
    const procs: Proc[] = [];
    try {
      lab = await createLab({
        nats: KINDS.map((kind) => ({ kind, firewall: true })),
        publicHosts: 2,
      });
      const ln = await startLabNodes(lab, dir);
      procs.push(...ln.procs);
      const nodes = ln.nodes.map((n) => ({
        name: n.host.name,
        kind: n.host.kind,
        ns: n.host.ns,
        id: n.id,
      }));
      const rows: string[] = [];
      const problems: string[] = [];
      // 1. Cold: the overlay of every node wants a route to every other (k = 8 > 6 peers), so each
      // pair connects on its own, the best way it can. Wait (bounded) for every route, then read
      // from the logs when each came up and on which path.
      const procOf = new Map(ln.nodes.map((n) => [n.id, n.proc]));
      for (const a of nodes) {
        for (const b of nodes) {
          if (a === b) continue;
          await procOf.get(a.id)!.waitFor(
            "err",
            new RegExp(`route up: node ${b.id.slice(0, 12)}…`),
            120_000,
          ).catch((e) =>
            problems.push(`${a.kind}→${b.kind}: no route (${(e as Error).message.split("\n")[0]})`)
          );
        }
      }
      // 2. Warm: one ping per ordered pair over the session the mesh made.
      for (const a of nodes) {
        for (const b of nodes) {
          if (a === b) continue;
          const res = await ln.cli(a.ns, ["ping", b.id, "--count", "1", "--json"]);
          const j = JSON.parse(res.stdout.trim().split("\n")[0] ?? "{}");
          const want = expected(a.kind, b.kind);
          const aLog = procOf.get(a.id)!.err;
          const bLog = procOf.get(b.id)!.err;
          const route = firstRoute(aLog, b.id);
          const start = Math.max(joined(aLog), joined(bLog));
          const line = {
            bench: "nat",
            from: a.kind,
            to: b.kind,
            path: j.path ?? "unreachable",
            ...(j.error ? { error: j.error } : {}),
            first_route_ms: route ? route.at - start : null,
            first_route_path: route?.path ?? null,
            rtt_ms: j.rttMs ?? null,
          };
          console.log(JSON.stringify(line));
          if (!want.split("|").includes(line.path)) {
            problems.push(`${a.kind}→${b.kind}: ${line.path}, expected ${want}`);
          }
          rows.push(
            `| ${a.kind} (${a.name}) | ${b.kind} (${b.name}) | ${
              line.first_route_ms === null
                ? "—"
                : `${line.first_route_ms} (${line.first_route_path})`
            } | ${line.path} | ${line.rtt_ms === null ? "—" : line.rtt_ms.toFixed(2)} |`,
          );
        }
      }
      for (const p of problems) process.stderr.write(`[bench] nat: FAILED ${p}\n`);
      const body =
        `Generated by \`npm run bench -- nat\` (bench/nat; root, ip, iptables, conntrack): the
NAT lab of test/nat (docs/nat-traversal.md, recipes/nat-lab), a rendezvous and relay node on the
lab's internet, one node behind each NAT (routers drop unsolicited inbound packets) and two public
hosts (p1, p2) as the baseline. Latency inside the lab is well under a millisecond.

- **First route**: every node's overlay wants a route to every other, so each pair connects on
  its own from cold; the column is the time from the later of the two nodes joining to the route
  coming up at the first (from the nodes' logs), and the path it came up on. It includes the
  steps that failed first: the direct dial to the advertised (LAN) address runs alone for 250 ms,
  then punching through the rendezvous runs alongside it (3 attempts of 1.5 s), then the
  dial-back (up to 3 × 1.5 s), then the relay. Both nodes try at once; the earlier wins.
- **Path now / RTT**: one \`macula ping <id> --count 1\` per ordered pair afterwards, over the
  session the mesh made (relayed RTT includes the relay's forwarding).

${machine}

| from | to | first route (ms, path) | path now | RTT (ms) |
|---|---|---:|---|---:|
${rows.join("\n")}
${problems.length ? `\nProblems: ${problems.join("; ")}\n` : ""}`;
      return { ok: problems.length === 0, doc: { heading: "NAT traversal (bench/nat)", body } };
    } finally {
      for (const p of procs) p.p.kill("SIGKILL");
      await lab?.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
