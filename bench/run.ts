/**
 * Benchmark runner: `bun run bench/run.ts [bench...] [flags]` (`npm run bench -- quic`).
 * No bench names = all. Exit 0 all ran, 1 something failed, 2 bad usage.
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { writeDocSection } from "./lib/report.ts";
import { type Bench, type BenchOptions, UsageError } from "./lib/types.ts";
import { abuseBench } from "./abuse/bench.ts";
import { membershipBench } from "./membership/bench.ts";
import { meshBench } from "./mesh/bench.ts";
import { natBench } from "./nat/bench.ts";
import { messagingBench } from "./messaging/bench.ts";
import { quicBench } from "./quic/bench.ts";
import { relayBench } from "./relay/bench.ts";
import { tuningBench } from "./tuning/bench.ts";
import { udpBench } from "./udp/bench.ts";

/** Add new benches here (`messaging`, `nat`, …). */
const BENCHES: Readonly<Record<string, Bench>> = {
  quic: quicBench,
  udp: udpBench,
  messaging: messagingBench,
  membership: membershipBench,
  nat: natBench,
  relay: relayBench,
  abuse: abuseBench,
  mesh: meshBench,
  tuning: tuningBench,
};

const REPO_ROOT = resolve(import.meta.dirname, "..");
const DOCS = join(REPO_ROOT, "docs", "benchmarks.md");

const USAGE = `usage: npm run bench -- [bench...] [flags]

benches:
${
  Object.entries(BENCHES)
    .map(([n, b]) => `  ${n.padEnd(12)}${b.summary}`)
    .join("\n")
}

flags (env in brackets; flags win; the env names are the quic bench's):
  --count N      measured iterations, e.g. round trips   [BENCH_QUIC_COUNT]  default 10000
  --warmup N     warm-up iterations                      [BENCH_QUIC_WARMUP] default 500
  --mib N        bulk transfer size in MiB               [BENCH_QUIC_MIB]    default 64
  --systems a,b  only these systems                      [BENCH_QUIC_SYSTEMS]
  --timeout S    limit per spawned process, seconds      [BENCH_TIMEOUT_S]   default 300
  --quick        small counts for a smoke run (1000 round trips, 8 MiB)
  --no-docs      do not rewrite docs/benchmarks.md       [BENCH_NO_DOCS=1]

messaging (--count = messages per publisher [BENCH_MSG_COUNT] default 200000,
  --warmup = RPC warm-up calls [BENCH_MSG_WARMUP] default 500, --systems [BENCH_MSG_SYSTEMS];
  --quick: 20000 messages, 100 + 1000 RPC calls; more in bench/messaging/README.md):
  BENCH_MSG_RPC_COUNT (10000)  BENCH_MSG_RPC_CALLS (40000)  BENCH_MSG_CONCURRENCY (8)
  BENCH_MSG_IDLE_MS (2000)  BENCH_MSG_BATCH (256)  BENCH_MSG_NATS_SERVER (path)

udp (--count = datagrams per run, default 200000; --quick 20000; more in bench/udp/README.md):
  BENCH_UDP_ROUNDS (3)  BENCH_UDP_RATE (50000)  BENCH_UDP_PACED_COUNT (50000)
`;

function usageError(msg: string): never {
  process.stderr.write(`bench: ${msg}\n\n${USAGE}`);
  process.exit(2);
}

function intFlag(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    usageError(`--${name} must be a non-negative integer, got ${v}`);
  }
  return n;
}

const envOn = (name: string): boolean =>
  ["1", "true", "yes"].includes((process.env[name] ?? "").toLowerCase());

async function main(): Promise<number> {
  if (typeof Bun === "undefined") {
    usageError("run with Bun: bun run bench/run.ts (or npm run bench)");
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      strict: true,
      options: {
        count: { type: "string" },
        warmup: { type: "string" },
        mib: { type: "string" },
        systems: { type: "string" },
        timeout: { type: "string" },
        quick: { type: "boolean", default: false },
        "no-docs": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    usageError(e instanceof Error ? e.message : String(e));
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const unknown = positionals.filter((n) => !(n in BENCHES));
  if (unknown.length > 0) {
    usageError(`unknown bench ${unknown.map((n) => JSON.stringify(n)).join(", ")}`);
  }
  const names = positionals.length > 0 ? [...new Set(positionals)] : Object.keys(BENCHES);

  const opts: BenchOptions = {
    repoRoot: REPO_ROOT,
    count: intFlag("count", v.count),
    warmup: intFlag("warmup", v.warmup),
    mib: intFlag("mib", v.mib),
    systems: v.systems?.split(",").filter((s) => s !== ""),
    timeoutS: intFlag("timeout", v.timeout ?? process.env.BENCH_TIMEOUT_S) ?? 300,
    quick: v.quick,
  };
  const writeDocs = !(v["no-docs"] || envOn("BENCH_NO_DOCS"));

  let ok = true;
  for (const name of names) {
    const bench = BENCHES[name];
    if (bench === undefined) continue;
    try {
      const out = await bench.run(opts);
      ok &&= out.ok;
      if (out.doc && writeDocs) {
        await writeDocSection(DOCS, out.doc.heading, out.doc.body);
        process.stderr.write(`[bench] ${name}: wrote "${out.doc.heading}" in docs/benchmarks.md\n`);
      }
      if (!out.ok) process.stderr.write(`[bench] ${name}: FAILED (see above)\n`);
    } catch (e) {
      if (e instanceof UsageError) usageError(e.message);
      ok = false;
      process.stderr.write(
        `[bench] ${name}: FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
      );
    }
  }
  return ok ? 0 : 1;
}

process.exit(await main());
