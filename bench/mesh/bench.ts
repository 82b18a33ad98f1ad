/**
 * `npm run bench -- mesh`: mesh-wide routing, simulated and on real nodes (docs/routing.md).
 *
 * - Simulated (lib/sim/routing.ts, the real router on the deterministic simulator): 1,000 and
 *   10,000 nodes (--quick: 1,000), 10% of the nodes crashed at once.
 * - Real: N nodes on 127.0.0.1 (N = 50, 100, 200; --quick: 30), split over two processes (the
 *   machine's two cores), joined through one seed, default overlay (k = 8). Time to start them
 *   all and for every node to see every member alive, idle CPU and RSS per node, publish-to-
 *   delivery latency between random pairs by their hop count, delivery completeness and
 *   duplicates with a subscriber on every node, and RPC latency to a far provider. The baseline
 *   is measured in the same run by the same method: pairs one hop apart (the path
 *   bench/messaging measures: client → node → node → client) and on the same node.
 *
 * Asserts correctness (every member alive, every delivery made once, every call answered);
 * never speed.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, connect, type Subscription } from "../../lib/client/client.ts";
import { type RoutingReport, runRoutingSim } from "../../lib/sim/routing.ts";
import { withTimeout } from "../../lib/util/mod.ts";
import { machineInfo, machineMarkdown } from "../lib/machine.ts";
import { progress } from "../lib/report.ts";
import { round, summarizeNs } from "../lib/stats.ts";
import type { Bench, BenchOptions, BenchOutcome } from "../lib/types.ts";

const HOST = join(import.meta.dirname, "host.ts");
const PROCS = 2;
const K = 8;

/** A host process and the JSON lines it printed, waited on one by one. */
class Host {
  readonly child: ChildProcess;
  readonly #lines: unknown[] = [];
  #wake: (() => void) | undefined;
  #exited = false;

  constructor(args: unknown, timeoutS: number) {
    // BENCH_MESH_PROFILE=dir: each host process writes a CPU profile there (bun --cpu-prof).
    const prof = process.env.BENCH_MESH_PROFILE;
    const flags = prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [];
    this.child = spawn(process.execPath, [...flags, HOST, JSON.stringify(args)], {
      stdio: ["pipe", "pipe", "inherit"],
      timeout: timeoutS * 1000,
      killSignal: "SIGKILL",
    });
    let buf = "";
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (d: string) => {
      buf += d;
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        this.#lines.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
      }
      this.#wake?.();
    });
    this.child.on("exit", () => {
      this.#exited = true;
      this.#wake?.();
    });
  }

  /** The next line that has `key`, within `ms`. */
  async next<T>(key: string, ms: number): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.#lines.findIndex((l) => typeof l === "object" && l !== null && key in l);
      if (i >= 0) return this.#lines.splice(i, 1)[0] as T;
      if (this.#exited) throw new Error(`bench/mesh: a host exited before it said ${key}`);
      if (Date.now() > end) throw new Error(`bench/mesh: no ${key} from a host within ${ms} ms`);
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, Math.max(0, end - Date.now()));
      });
      this.#wake = undefined;
    }
  }

  /** CPU seconds (user + system) and RSS bytes, from /proc. */
  usage(): { cpuS: number; rss: number } {
    const stat = readFileSync(`/proc/${this.child.pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpuS = (Number(f[11]) + Number(f[12])) / 100; // utime, stime (USER_HZ 100)
    const rssKb = Number(
      /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${this.child.pid}/status`, "utf8"))?.[1],
    );
    return { cpuS, rss: rssKb * 1024 };
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(t);
  }
}

interface NodeRef {
  id: string;
  url: string;
}

/** Latencies (ns) by the path's hop count. */
type ByHops = Map<number, number[]>;

function add(m: ByHops, hops: number, ns: number): void {
  let xs = m.get(hops);
  if (!xs) m.set(hops, xs = []);
  xs.push(ns);
}

interface RealResult {
  nodes: number;
  startS: number;
  convergeS: number | null;
  alive: [number, number];
  idleCpuPct: number;
  rssMiB: number;
  pub: ByHops;
  rpc: ByHops;
  delivery: {
    expected: number;
    delivered: number;
    duplicates: number;
    drops: Record<string, number>;
  };
  rpcFailed: number;
}

/** The origins `c`'s node knows, with their paths (inspect interest). */
async function interestOf(c: Client): Promise<
  { node: string; subs: { pattern: string }[]; procs: string[]; path?: { hops: number } }[]
> {
  return ((await c.inspect("interest")) as { origins: never[] }).origins;
}

/** Waits until `cond` holds on `c`'s view of the mesh's interest (polled: no event says so). */
async function untilInterest(
  c: Client,
  cond: (o: Awaited<ReturnType<typeof interestOf>>) => boolean,
  what: string,
  ms = 20_000,
): Promise<Awaited<ReturnType<typeof interestOf>>> {
  const end = Date.now() + ms;
  for (;;) {
    const o = await interestOf(c);
    if (cond(o)) return o;
    if (Date.now() > end) throw new Error(`bench/mesh: ${what} not seen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The next message of `sub`, within `ms`. */
async function nextOf(sub: Subscription, ms: number): Promise<void> {
  const r = await withTimeout(
    sub[Symbol.asyncIterator]().next(),
    ms,
    () => new Error("bench/mesh: a message did not arrive"),
  );
  if (r.done) throw new Error("bench/mesh: a subscription ended");
}

async function runReal(n: number, o: BenchOptions, rng: () => number): Promise<RealResult> {
  const dir = mkdtempSync(join(tmpdir(), "macula-bench-mesh-"));
  const hosts: Host[] = [];
  const clients: Client[] = [];
  let startedIn = "";
  try {
    const per = [
      Math.ceil(n / PROCS),
      ...Array.from({ length: PROCS - 1 }, () => Math.floor(n / PROCS)),
    ];
    const t0 = Date.now();
    hosts.push(new Host({ dir: join(dir, "p0"), count: per[0], total: n, k: K }, o.timeoutS));
    const seed = (await hosts[0]!.next<{ seed: { caDir: string; creds: string; port: number } }>(
      "seed",
      60_000,
    )).seed;
    for (let p = 1; p < PROCS; p++) {
      hosts.push(
        new Host({
          dir: join(dir, `p${p}`),
          count: per[p],
          total: n,
          k: K,
          caDir: seed.caDir,
          seedPort: seed.port,
        }, o.timeoutS),
      );
    }
    const started = await Promise.all(
      hosts.map((h) => h.next<{ started: number; nodes: NodeRef[] }>("started", o.timeoutS * 1000)),
    );
    const lastStart = Math.max(...started.map((s) => s.started));
    const refs = started.flatMap((s) => s.nodes);
    const conv = await Promise.all(
      hosts.map((h) =>
        h.next<{ converged: number | null; alive: [number, number] }>("converged", 180_000)
      ),
    );
    const convergeS = conv.some((c) => c.converged === null)
      ? null
      : (Math.max(...conv.map((c) => c.converged!)) - lastStart) / 1000;
    const alive: [number, number] = [
      Math.min(...conv.map((c) => c.alive[0])),
      Math.max(...conv.map((c) => c.alive[1])),
    ];
    progress(`mesh: ${n} real nodes started in ${((lastStart - t0) / 1000).toFixed(1)} s`);
    startedIn = `${n} nodes started in ${((lastStart - t0) / 1000).toFixed(1)} s (converged: ${
      convergeS === null
        ? `never, alive ${alive[0]}–${alive[1]}`
        : `${convergeS.toFixed(1)} s later`
    }), then `;

    // Idle: 5 s to settle, then 10 s measured.
    await new Promise((r) => setTimeout(r, 5000));
    const u0 = hosts.map((h) => h.usage());
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, 10_000));
    const u1 = hosts.map((h) => h.usage());
    const wallS = (performance.now() - w0) / 1000;
    const cpuS = u1.reduce((a, u, i) => a + u.cpuS - u0[i]!.cpuS, 0);
    const rss = u1.reduce((a, u) => a + u.rss, 0);

    // A client on every node.
    for (const r of refs) clients.push(await connect({ url: r.url, creds: seed.creds }));
    const index = new Map(refs.map((r, i) => [r.id, i]));
    const pick = () => Math.floor(rng() * n);

    // Publish to delivery, pair by pair: random pairs, neighbours, and the same node.
    const pub: ByHops = new Map();
    const pairs: [number, number][] = [];
    for (let i = 0; i < 16; i++) {
      const a = pick();
      let b = pick();
      if (b === a) b = (a + 1) % n;
      pairs.push([a, b]);
    }
    for (let i = 0; i < 4; i++) {
      const a = pick();
      const routes =
        ((await clients[a]!.inspect("node")) as { routes: { nodeId: string }[] }).routes;
      const b = index.get(routes[0]!.nodeId);
      if (b !== undefined) pairs.push([a, b]);
    }
    pairs.push([pick(), -1]);
    const msgs = o.quick ? 50 : 200;
    for (const [j, [a, b0]] of pairs.entries()) {
      const b = b0 < 0 ? a : b0;
      const topic = `lat.${j}`;
      const sub = clients[b]!.subscribe(topic);
      const view = await untilInterest(
        clients[a]!,
        (os) => os.some((x) => x.node === refs[b]!.id && x.subs.some((s) => s.pattern === topic)),
        `node ${b}'s subscription at node ${a}`,
      );
      const hops = b === a ? 0 : view.find((x) => x.node === refs[b]!.id)!.path!.hops;
      for (let i = 0; i < msgs + 10; i++) {
        const t = Bun.nanoseconds();
        clients[a]!.publish(topic, "x");
        await nextOf(sub, 5000);
        if (i >= 10) add(pub, hops, Bun.nanoseconds() - t); // 10 to warm up
      }
      sub.unsubscribe();
    }

    // Completeness: a subscriber on every node, 3 publishers, 20 messages each.
    const subs = clients.map((c) => c.subscribe("all.>"));
    const publishers = [pick()];
    while (publishers.length < 3) {
      const p = pick();
      if (!publishers.includes(p)) publishers.push(p);
    }
    for (const p of publishers) {
      await untilInterest(
        clients[p]!,
        (os) => os.filter((x) => x.subs.some((s) => s.pattern === "all.>")).length === n,
        `every subscription at node ${p}`,
      );
    }
    const each = 20;
    for (const p of publishers) {
      for (let i = 0; i < each; i++) clients[p]!.publish(`all.${p}`, `${p}-${i}`);
    }
    for (const p of publishers) clients[p]!.publish("all.end", `end-${p}`);
    const expected = n * publishers.length * each;
    const got = subs.map(() => [] as string[]);
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      subs.forEach((s, i) => {
        for (let m = s.buffer.shift(); m; m = s.buffer.shift()) got[i]!.push(m.text());
      });
      if (got.every((g) => g.filter((x) => x.startsWith("end-")).length === publishers.length)) {
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    let delivered = 0;
    let duplicates = 0;
    for (const g of got) {
      const data = g.filter((x) => !x.startsWith("end-"));
      const distinct = new Set(data);
      delivered += distinct.size;
      duplicates += data.length - distinct.size;
    }
    for (const s of subs) s.unsubscribe();
    // Where what was not delivered went: every node's drop counters, summed.
    const drops: Record<string, number> = {};
    if (delivered < expected) {
      for (const c of clients) {
        const snap = (await c.inspect("node")) as {
          dropped: Record<string, number>;
          router: Record<string, number>;
        };
        for (const [k, v] of Object.entries(snap.dropped)) drops[k] = (drops[k] ?? 0) + v;
        for (
          const k of [
            "noRoute",
            "hopLimit",
            "unrouted",
            "limited",
            "protocolErrors",
            "refusedRecords",
            "forgedRecords",
          ]
        ) {
          drops[k] = (drops[k] ?? 0) + (snap.router[k] ?? 0);
        }
      }
      for (const s of subs) {
        const st = s.stats();
        drops["client.dropped"] = (drops["client.dropped"] ?? 0) + st.dropped;
        drops["client.droppedAtNode"] = (drops["client.droppedAtNode"] ?? 0) + st.droppedAtNode;
      }
      const missing = got.map((g, i) => {
        const from = publishers.map((p) => g.filter((x) => x.startsWith(`${p}-`)).length);
        return { sub: i, node: refs[i]!.id.slice(0, 8), from };
      }).filter((m) => m.from.some((x) => x < each));
      progress(
        `mesh: ${n} nodes: publishers ${JSON.stringify(publishers)}; short subscribers ${
          JSON.stringify(missing.slice(0, 10))
        }; drops ${JSON.stringify(drops)}`,
      );
    }

    // RPC to a far provider: 12 random callers, one neighbour, the provider's own node.
    const rpc: ByHops = new Map();
    let rpcFailed = 0;
    const prov = pick();
    const reg = clients[prov]!.serve("far.echo", (x) => x);
    const provRoutes = ((await clients[prov]!.inspect("node")) as { routes: { nodeId: string }[] })
      .routes;
    const callers = [
      ...Array.from({ length: 12 }, pick),
      index.get(provRoutes[0]!.nodeId) ?? pick(),
      prov,
    ];
    const calls = o.quick ? 30 : 100;
    for (const c of callers) {
      const view = await untilInterest(
        clients[c]!,
        (os) => os.some((x) => x.procs.includes("far.echo")),
        `the provider at node ${c}`,
      );
      const hops = c === prov ? 0 : view.find((x) => x.procs.includes("far.echo"))!.path!.hops;
      for (let i = 0; i < calls + 5; i++) {
        const t = Bun.nanoseconds();
        try {
          await clients[c]!.request("far.echo", "x", { timeoutMs: 5000 });
          if (i >= 5) add(rpc, hops, Bun.nanoseconds() - t);
        } catch (e) {
          if (rpcFailed++ < 5) {
            progress(`mesh: ${n} nodes: call from node ${c} failed: ${(e as Error).message}`);
          }
        }
      }
    }
    reg.stop();

    return {
      nodes: n,
      startS: (lastStart - t0) / 1000,
      convergeS,
      alive,
      idleCpuPct: (cpuS / wallS / n) * 100,
      rssMiB: rss / n / 2 ** 20,
      pub,
      rpc,
      delivery: { expected, delivered, duplicates, drops },
      rpcFailed,
    };
  } catch (e) {
    throw new Error(`${startedIn}${(e as Error).message}`);
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.allSettled(hosts.map((h) => h.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

const ms = (us: number) => (us / 1000).toFixed(2);

/** `p50 / p99 (count)` per hop count, in ms. */
function byHops(m: ByHops): string {
  return [...m.keys()].sort((a, b) => a - b).map((h) => {
    const s = summarizeNs(m.get(h)!);
    return `${h}: ${ms(s.p50)} / ${ms(s.p99)} (${s.count})`;
  }).join("; ");
}

/** The p50 of hop count `h` over the p50 of one hop. */
function ratio(m: ByHops, h: number): string {
  const one = m.get(1), at = m.get(h);
  if (!one || !at) return "—";
  return (summarizeNs(at).p50 / summarizeNs(one).p50).toFixed(2);
}

function simRow({ r, shortcutsOff }: { r: RoutingReport; shortcutsOff: boolean }): string {
  const st = r.streams;
  const streams = st.expected === 0
    ? "—"
    : `${st.transmissionsPerDelivery.toFixed(2)} / ${
      st.steadyTransmissionsPerDelivery.toFixed(2)
    } (${st.outOfOrder} out of order, ${st.duplicates} dup)`;
  const label = shortcutsOff ? `${r.nodes}, shortcuts off` : `${r.nodes}`;
  return `| ${label} | ${r.meanPathHops.toFixed(2)} | ${r.convergeMs.toFixed(1)} | ${
    r.visibilityMs.p50.toFixed(1)
  } / ${r.visibilityMs.p99.toFixed(1)} | ` +
    `${(r.delivery.completeness * 100).toFixed(2)}% | ${r.delivery.duplicates} | ${
      r.delivery.transmissionsPerDelivery.toFixed(2)
    } | ${streams} | ` +
    `${r.queue.delivered}/${r.queue.publishes} | ${r.rpc.ok}/${r.rpc.calls} | ` +
    `${
      r.churn
        ? `${(r.churn.completeAfterDetect * 100).toFixed(0)}% / ${
          r.churn.recoveredMs ?? "never"
        } ms`
        : "—"
    } | ` +
    `${r.perNode.origins.p50} | ${r.perNode.interestSent.p50} / ${r.perNode.interestSent.max} | ${
      round(r.perNode.bytesSent.p50 / 1024)
    } | ${(r.wallMs / 1000).toFixed(1)} |`;
}

export const meshBench: Bench = {
  summary: "mesh-wide routing: simulated 1k/10k nodes, real 50/100/200 nodes",
  async run(o: BenchOptions): Promise<BenchOutcome> {
    const machine = machineMarkdown(await machineInfo(o.repoRoot));
    const problems: string[] = [];

    const sims: { r: RoutingReport; shortcutsOff: boolean }[] = [];
    // Each size with shortcuts (the default), then 1,000 nodes without: the baseline of the
    // streams column, in the same run.
    const simRuns = process.env.BENCH_MESH_NODES
      ? []
      : o.quick
      ? [{ nodes: 1000 }, { nodes: 1000, shortcuts: 0 }]
      : [{ nodes: 1000 }, { nodes: 1000, shortcuts: 0 }, { nodes: 10_000 }];
    for (const { nodes, shortcuts } of simRuns) {
      progress(`mesh: simulating ${nodes} nodes${shortcuts === 0 ? ", shortcuts off" : ""}`);
      const r = runRoutingSim({ nodes, seed: 1, churn: 0.1, shortcuts });
      console.log(JSON.stringify({ bench: "mesh", run: `sim ${nodes}`, report: r }));
      sims.push({ r, shortcutsOff: shortcuts === 0 });
      if (r.delivery.completeness < 1) {
        problems.push(`sim ${nodes}: delivery ${r.delivery.completeness}`);
      }
      if (r.delivery.duplicates > 0) {
        problems.push(`sim ${nodes}: ${r.delivery.duplicates} duplicates`);
      }
      if (r.rpc.failed > 0) problems.push(`sim ${nodes}: ${r.rpc.failed} calls failed`);
      if (r.streams.outOfOrder > 0 || r.streams.duplicates > 0) {
        problems.push(
          `sim ${nodes}: streams ${r.streams.outOfOrder} out of order, ${r.streams.duplicates} duplicates`,
        );
      }
    }

    const reals: RealResult[] = [];
    let seed = 1;
    const rng = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    // BENCH_MESH_NODES=100,150 runs only those sizes of the real part (and no simulation).
    const only = process.env.BENCH_MESH_NODES?.split(",").map(Number);
    for (const n of only ?? (o.quick ? [30] : [50, 100, 200])) {
      progress(`mesh: ${n} real nodes`);
      try {
        const r = await runReal(n, o, rng);
        reals.push(r);
        console.log(JSON.stringify({
          bench: "mesh",
          run: `real ${n}`,
          startS: r.startS,
          convergeS: r.convergeS,
          alive: r.alive,
          idleCpuPct: r.idleCpuPct,
          rssMiB: r.rssMiB,
          delivery: r.delivery,
          rpcFailed: r.rpcFailed,
          pub: byHops(r.pub),
          rpc: byHops(r.rpc),
        }));
        if (r.convergeS === null) problems.push(`real ${n}: not every member alive at every node`);
        if (r.delivery.delivered < r.delivery.expected) {
          problems.push(`real ${n}: ${r.delivery.delivered} of ${r.delivery.expected} delivered`);
        }
        if (r.delivery.duplicates > 0) {
          problems.push(`real ${n}: ${r.delivery.duplicates} duplicates`);
        }
        if (r.rpcFailed > 0) problems.push(`real ${n}: ${r.rpcFailed} calls failed`);
      } catch (e) {
        problems.push(`real ${n}: ${(e as Error).message}`);
      }
    }
    for (const p of problems) progress(`mesh: FAILED ${p}`);

    const realRows = reals.map((r) =>
      `| ${r.nodes} | ${r.startS.toFixed(1)} | ${
        r.convergeS === null ? `never (alive ${r.alive[0]}–${r.alive[1]})` : r.convergeS.toFixed(1)
      } | ` +
      `${r.idleCpuPct.toFixed(2)} | ${r.rssMiB.toFixed(1)} | ` +
      `${
        ((r.delivery.delivered / r.delivery.expected) * 100).toFixed(2)
      }% (${r.delivery.delivered}) | ${r.delivery.duplicates} | ` +
      `${byHops(r.pub)} | ${ratio(r.pub, 2)} | ${byHops(r.rpc)} | ${r.rpcFailed} |`
    );
    const body =
      `Generated by \`npm run bench -- mesh\` (bench/mesh). docs/routing.md has the design.

${machine}

**Simulated** (lib/sim/routing.ts: the real router of every node on the deterministic simulator,
over the overlay the real overlay core builds, k = 8, each route 0.5–5 ms one way; 100 subscribing
nodes, seed 1, 10% of the nodes crashed at once; rerun a row with \`macula sim routing --nodes N
--seed 1\`). Visibility: a new subscription reaching the other nodes. Transmissions: FWD frames
per delivery to a subscription on another node (GossipSub sends 2–6 per delivery): one-off
publishes from random nodes, and streams (10 publishers × 20 messages 10 ms apart, all of it /
the second half, once shortcuts are up; docs/routing.md "Shortcuts"). After the
crash: the share of probe publishes complete once the crash was detected, and when delivery was
whole again (detection, 1.5 s in the model, included).

| nodes | mean path (hops) | interest converged (ms) | visibility p50 / p99 (ms) | delivery | duplicates | transmissions / delivery | streams: transmissions / delivery, all / warm | queue group | calls | after the crash: complete / whole again | origins held / node | INTEREST sent / node p50 / max | KiB sent / node p50 | wall (s) |
|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|
${sims.map(simRow).join("\n")}

**Real nodes** on 127.0.0.1, split over ${PROCS} processes, joined through one seed, k = ${K}.
Start: from the first spawn to the last node listening. Converge: from then until every node
sees every member alive. Idle: CPU and RSS of the processes over 10 s with nothing to do, per
node. Latency: publish to delivery (one at a time) and call to reply, p50 / p99 in ms, by the
path's hop count (0: the same node; 1: neighbours, the one-hop path bench/messaging measures:
the baseline, in the same run).

| nodes | start (s) | converge (s) | idle CPU (% of a core / node) | RSS (MiB / node) | delivery | duplicates | publish → delivery by hops: p50 / p99 ms (samples) | 2 hops ÷ 1 hop (p50) | call → reply by hops: p50 / p99 ms (samples) | failed calls |
|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|
${realRows.join("\n")}
${problems.length > 0 ? `\nProblems: ${problems.join("; ")}\n` : ""}`;
    return { ok: problems.length === 0, doc: { heading: "Mesh-wide routing (bench/mesh)", body } };
  },
};
