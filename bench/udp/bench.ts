/**
 * `udp` bench (issue 17): what one 1,350-byte datagram costs to send and to receive on Bun,
 * through each way the runtime can reach the kernel — `Bun.udpSocket`'s `sendMany` (lib/quic's
 * path), `node:dgram`, and `bun:ffi` to libc (`sendmmsg`, UDP GSO, `recvmmsg`, UDP GRO). Sender
 * and receiver are separate processes on 127.0.0.1 (sender.ts, receiver.ts); probe.ts answers
 * whether a socket made through `bun:ffi` can be driven by Bun's event loop and what a Worker
 * round trip costs. Parts (`--systems`): `send` (full speed to a `Bun.udpSocket` receiver),
 * `sink` (full speed to a socket nobody reads), `recv` (paced, each receiver), `probe`; a sender,
 * receiver or `sender/receiver` name picks those runs. Asserts correctness (every datagram
 * counted was checked, something arrived), never speed. Standalone:
 * `bun run bench/udp/bench.ts [--count N] [--warmup N] [--systems a,b] [--quick]`.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { envInt } from "../lib/flags.ts";
import { machineInfo, machineMarkdown } from "../lib/machine.ts";
import { emitMetric, progress, type Unit } from "../lib/report.ts";
import { runProcess } from "../lib/spawn.ts";
import { round } from "../lib/stats.ts";
import { markdownTable, type Row, textTable } from "../lib/table.ts";
import { type Bench, type BenchOptions, type BenchOutcome, UsageError } from "../lib/types.ts";
import type { ProbeResult, Rtt } from "./probe.ts";
import {
  BATCH,
  type Receiver,
  RECEIVERS,
  type RecvResult,
  type Sender,
  SENDERS,
  type SendResult,
} from "./protocol.ts";

const BENCH = "udp";
export const HEADING = "UDP send and receive paths (bench/udp)";
const SIZE = 1350;

const PARTS = ["send", "sink", "recv", "probe"] as const;
type Part = (typeof PARTS)[number];

interface Pair {
  part: Exclude<Part, "probe">;
  sender: Sender;
  receiver: Receiver;
}

const ALL_SENDERS = Object.keys(SENDERS) as Sender[];
const PAIRS: readonly Pair[] = [
  ...ALL_SENDERS.map((sender): Pair => ({ part: "send", sender, receiver: "bun" })),
  ...ALL_SENDERS.map((sender): Pair => ({ part: "sink", sender, receiver: "sink" })),
  { part: "recv", sender: "ffi-sendmmsg", receiver: "bun" },
  { part: "recv", sender: "ffi-sendmmsg", receiver: "ffi" },
  { part: "recv", sender: "ffi-gso", receiver: "bun" },
  { part: "recv", sender: "ffi-gso", receiver: "ffi-gro" },
  { part: "recv", sender: "ffi-gso", receiver: "sigio-gro" },
];

const pairId = (p: Pair): string => `${p.sender}/${p.receiver}`;
const runId = (p: Pair): string => `${p.part}:${pairId(p)}`;

interface Params {
  count: number;
  warmup: number;
  rounds: number;
  rate: number;
  pacedCount: number;
  timeoutMs: number;
}

function params(o: BenchOptions): Params {
  const count = o.count ?? envInt("BENCH_UDP_COUNT") ?? (o.quick ? 20_000 : 200_000);
  if (count < BATCH) throw new UsageError(`udp: --count must be at least ${BATCH}`);
  return {
    count,
    warmup: o.warmup ?? envInt("BENCH_UDP_WARMUP") ?? Math.min(10_000, Math.floor(count / 10)),
    rounds: Math.max(1, envInt("BENCH_UDP_ROUNDS") ?? (o.quick ? 1 : 3)),
    rate: Math.max(1000, envInt("BENCH_UDP_RATE") ?? 50_000),
    pacedCount: Math.max(BATCH, envInt("BENCH_UDP_PACED_COUNT") ?? (o.quick ? 10_000 : 50_000)),
    timeoutMs: o.timeoutS * 1000,
  };
}

/** The runs and parts `--systems` asks for: part names, sender or receiver names, or pairs. */
function select(systems: readonly string[] | undefined): { pairs: Pair[]; probe: boolean } {
  if (systems === undefined || systems.length === 0) return { pairs: [...PAIRS], probe: true };
  const known = new Set<string>([
    ...PARTS,
    ...ALL_SENDERS,
    ...Object.keys(RECEIVERS),
    ...PAIRS.map(pairId),
  ]);
  for (const s of systems) {
    if (!known.has(s)) {
      throw new UsageError(
        `udp: unknown system ${s} (parts ${PARTS.join(", ")}; senders ${
          ALL_SENDERS.join(", ")
        }; receivers ${Object.keys(RECEIVERS).join(", ")}; or sender/receiver)`,
      );
    }
  }
  const want = new Set(systems);
  return {
    pairs: PAIRS.filter((p) =>
      want.has(p.part) || want.has(p.sender) || want.has(p.receiver) || want.has(pairId(p))
    ),
    probe: want.has("probe"),
  };
}

/** Lines of a child's stdout, one at a time, each within a time limit. */
class LineReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #dec = new TextDecoder();
  #buf = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }
  async next(timeoutMs: number, what: string): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        return line;
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${what}: no line within ${timeoutMs} ms`);
      let timer: Timer | undefined;
      const r = await Promise.race([
        this.#reader.read(),
        new Promise<"timeout">((res) => (timer = setTimeout(() => res("timeout"), left))),
      ]);
      clearTimeout(timer);
      if (r === "timeout") throw new Error(`${what}: no line within ${timeoutMs} ms`);
      if (r.done) throw new Error(`${what}: exited before printing its line`);
      this.#buf += this.#dec.decode(r.value, { stream: true });
    }
  }
}

interface RunResult {
  send: SendResult;
  recv: RecvResult;
}

const sendArgs = (p: Pair, port: number, n: Params, tag: number, paced: boolean): string[] => [
  "--sender",
  p.sender,
  "--port",
  String(port),
  "--count",
  String(paced ? n.pacedCount : n.count),
  "--warmup",
  String(n.warmup),
  "--size",
  String(SIZE),
  "--tag",
  String(tag),
  "--rate",
  String(paced ? n.rate : 0),
];

/** One sender/receiver run: receiver up, sender to completion, receiver's stdin closed, result. */
async function runPair(repoRoot: string, p: Pair, n: Params): Promise<RunResult> {
  const tag = (Math.random() * 2 ** 32) >>> 0;
  const paced = p.part === "recv";
  const expect = n.warmup + (paced ? n.pacedCount : n.count);
  const rx = Bun.spawn({
    cmd: [
      process.execPath,
      "run",
      join(repoRoot, "bench/udp/receiver.ts"),
      "--receiver",
      p.receiver,
      "--expect",
      String(expect),
      "--size",
      String(SIZE),
      "--tag",
      String(tag),
      "--deadline-ms",
      String(n.timeoutMs),
    ],
    cwd: repoRoot,
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  const rxErr = new Response(rx.stderr).text();
  const lines = new LineReader(rx.stdout);
  try {
    const ready = JSON.parse(await lines.next(30_000, "receiver ready")) as { port?: unknown };
    if (typeof ready.port !== "number") throw new Error("receiver's ready line has no port");
    const s = await runProcess(
      [
        process.execPath,
        "run",
        join(repoRoot, "bench/udp/sender.ts"),
        ...sendArgs(p, ready.port, n, tag, paced),
      ],
      n.timeoutMs,
      { cwd: repoRoot },
    );
    if (s.code !== 0 || s.timedOut) {
      throw new Error(`sender exited ${s.code}${s.timedOut ? " (timed out)" : ""}: ${s.stderr}`);
    }
    void rx.stdin.end();
    const recv = JSON.parse(await lines.next(n.timeoutMs, "receiver result")) as RecvResult;
    const send = JSON.parse(s.stdout.trim().split("\n").at(-1) ?? "") as SendResult;
    return { send, recv };
  } catch (e) {
    rx.kill();
    await rx.exited;
    throw new Error(`${e instanceof Error ? e.message : String(e)}\n${(await rxErr).trim()}`);
  } finally {
    if (rx.exitCode === null) rx.kill();
    await rx.exited;
  }
}

/** What is wrong with a run, if anything: a datagram failed its check, or nothing arrived. */
function problemsOf(p: Pair, r: RunResult, n: Params): string[] {
  const out: string[] = [];
  const id = runId(p);
  if (r.recv.bad > 0) out.push(`${id}: ${r.recv.bad} bad datagrams (${r.recv.firstBad})`);
  if (r.recv.received === 0) out.push(`${id}: nothing arrived`);
  if (r.recv.distinct !== r.recv.received - r.recv.bad) {
    out.push(`${id}: ${r.recv.received - r.recv.bad - r.recv.distinct} duplicates`);
  }
  const want = p.part === "recv" ? n.pacedCount : n.count;
  if (r.send.datagrams !== want) out.push(`${id}: sender sent ${r.send.datagrams} of ${want}`);
  if (r.recv.end === "deadline") out.push(`${id}: receiver hit its deadline`);
  return out;
}

interface Figures {
  cpu: number;
  sys: number;
  user: number;
  mibps: number;
  callsPerDgram: number;
  received: number;
  /** Distinct datagrams received, and expected (warm-up included). */
  got: number;
  expect: number;
  rxCpu: number;
  rxWakeups: number;
  drops: number;
}

function figures(r: RunResult): Figures {
  const d = r.send.datagrams;
  const got = r.recv.distinct;
  return {
    cpu: (r.send.userUs + r.send.sysUs) / d,
    sys: r.send.sysUs / d,
    user: r.send.userUs / d,
    mibps: r.send.bytes / 2 ** 20 / (r.send.wallMs / 1000),
    callsPerDgram: r.send.calls / d,
    received: got / r.recv.expect,
    got,
    expect: r.recv.expect,
    rxCpu: got > 0 ? (r.recv.userUs + r.recv.sysUs) / got : NaN,
    rxWakeups: got > 0 ? r.recv.wakeups / got : NaN,
    drops: r.recv.drops,
  };
}

function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function medianFigures(all: readonly Figures[]): Figures {
  const k = (f: keyof Figures): number => median(all.map((x) => x[f]));
  return {
    cpu: k("cpu"),
    sys: k("sys"),
    user: k("user"),
    mibps: k("mibps"),
    callsPerDgram: k("callsPerDgram"),
    received: k("received"),
    got: k("got"),
    expect: k("expect"),
    rxCpu: k("rxCpu"),
    rxWakeups: k("rxWakeups"),
    drops: k("drops"),
  };
}

const metric = (system: string, name: string, value: number, unit: Unit): void => {
  if (Number.isFinite(value)) emitMetric({ bench: BENCH, system, metric: name, value, unit });
};

const f2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : "—");
const pct = (v: number): string => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : "—");

function table(results: ReadonlyMap<Pair, Figures>): { headers: Row; rows: Row[] } {
  const headers: Row = [
    "part",
    "sender / receiver",
    "send µs/dgram",
    "sys µs",
    "user µs",
    "send MiB/s",
    "calls/dgram",
    "received",
    "recv µs/dgram",
    "recv wake-ups/dgram",
  ];
  const rows: Row[] = [];
  for (const [p, f] of results) {
    rows.push([
      p.part,
      pairId(p),
      f2(f.cpu),
      f2(f.sys),
      f2(f.user),
      Number.isFinite(f.mibps) ? String(Math.round(f.mibps)) : "—",
      f.callsPerDgram.toFixed(3),
      pct(f.received),
      p.receiver === "sink" ? "n/a" : f2(f.rxCpu),
      p.receiver === "sink" ? "n/a" : f.rxWakeups.toFixed(3),
    ]);
  }
  return { headers, rows };
}

async function runProbe(repoRoot: string, timeoutMs: number, quick: boolean): Promise<ProbeResult> {
  const r = await runProcess(
    [
      process.execPath,
      "run",
      join(repoRoot, "bench/udp/probe.ts"),
      "--rtts",
      quick ? "2000" : "20000",
    ],
    timeoutMs,
    { cwd: repoRoot },
  );
  if (r.code !== 0) throw new Error(`probe exited ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "") as ProbeResult;
}

const rttLine = (how: string, r: Rtt): string =>
  `- Worker \`postMessage\` round trip (main → worker → main), ${how}, ${r.count}: min ${
    round(r.min)
  } µs, p50 ${round(r.p50)} µs, p90 ${round(r.p90)} µs, p99 ${round(r.p99)} µs, mean ${
    round(r.mean)
  } µs`;

function probeMarkdown(p: ProbeResult): string {
  const yn = (b: boolean): string => (b ? "yes" : "**no**");
  return [
    `- \`Bun.udpSocket({ fd })\` adopts a socket made through \`bun:ffi\` (option not in the types): ${
      yn(p.adoptFd.works)
    } (${p.adoptFd.detail})`,
    `- \`setsockopt(SOL_UDP, UDP_SEGMENT, 1350)\` on \`Bun.udpSocket\`'s \`fd\`, then one \`send\`: segmented by the kernel: ${
      yn(p.gsoOnBunSocket.works)
    } (${p.gsoOnBunSocket.detail})`,
    `- \`Bun.file(fd).stream()\` keeps datagram boundaries: ${
      yn(p.fileStream.works)
    } (${p.fileStream.detail})`,
    `- \`new net.Socket({ fd })\` reads the socket: ${
      yn(p.netSocket.works)
    } (${p.netSocket.detail})`,
    `- \`O_ASYNC\` + \`process.on("SIGIO")\` + \`recvmmsg\` through \`bun:ffi\`: ${
      yn(p.sigio.works)
    } (${p.sigio.detail})`,
    rttLine("back to back", p.workerRtt),
    rttLine("1 ms apart (both threads idle in between)", p.workerRttIdle),
  ].join("\n");
}

export const udpBench: Bench = {
  summary: "UDP on Bun: sendMany vs node:dgram vs bun:ffi sendmmsg, GSO, recvmmsg, GRO",
  async run(o: BenchOptions): Promise<BenchOutcome> {
    if (process.platform !== "linux") throw new UsageError("udp: needs Linux (bun:ffi to libc)");
    const n = params(o);
    const sel = select(o.systems);
    const machine = machineMarkdown(await machineInfo(o.repoRoot));
    const problems: string[] = [];
    const per = new Map<Pair, Figures[]>(sel.pairs.map((p) => [p, []]));
    for (let round_ = 1; round_ <= n.rounds; round_++) {
      for (const p of sel.pairs) {
        progress(`udp: round ${round_}/${n.rounds} ${runId(p)}`);
        try {
          const r = await runPair(o.repoRoot, p, n);
          const bad = problemsOf(p, r, n);
          problems.push(...bad);
          if (bad.length === 0) per.get(p)!.push(figures(r));
        } catch (e) {
          problems.push(`${runId(p)}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
    const results = new Map<Pair, Figures>();
    for (const [p, all] of per) {
      if (all.length === 0) continue;
      const f = medianFigures(all);
      results.set(p, f);
      const sys = runId(p);
      metric(sys, "sender_cpu_per_datagram", round(f.cpu * 100) / 100, "us");
      metric(sys, "sender_sys_per_datagram", round(f.sys * 100) / 100, "us");
      metric(sys, "sender_user_per_datagram", round(f.user * 100) / 100, "us");
      metric(sys, "sender_throughput", round(f.mibps), "MiB/s");
      metric(sys, "sent", f.expect, "msgs");
      metric(sys, "received", f.got, "msgs");
      if (p.receiver !== "sink") {
        metric(sys, "receiver_cpu_per_datagram", round(f.rxCpu * 100) / 100, "us");
      }
    }
    let probe: ProbeResult | undefined;
    if (sel.probe) {
      progress("udp: probe (fd polling, Worker round trip)");
      try {
        probe = await runProbe(o.repoRoot, n.timeoutMs, o.quick);
        metric("probe", "worker_rtt_p50", round(probe.workerRtt.p50), "us");
        metric("probe", "worker_rtt_p99", round(probe.workerRtt.p99), "us");
        metric("probe", "worker_rtt_idle_p50", round(probe.workerRttIdle.p50), "us");
      } catch (e) {
        problems.push(`probe: ${e instanceof Error ? e.message : String(e)}`);
      }
    }

    const t = table(results);
    process.stdout.write(`\n${textTable(t.headers, t.rows)}\n`);
    if (probe) process.stdout.write(`\n${probeMarkdown(probe)}\n`);
    for (const p of problems) process.stderr.write(`[bench] udp: FAILED ${p}\n`);

    const body = [
      `Generated by \`npm run bench -- udp\` (bench/udp, README there). ${SIZE}-byte datagrams on
127.0.0.1, sender and receiver in separate Bun processes; ${n.rounds} round${
        n.rounds === 1 ? "" : "s"
      }, medians. \`send\` and \`sink\`: ${n.count} datagrams after ${n.warmup} of warm-up, as fast as
the sender can, to a \`Bun.udpSocket\` receiver (\`send\`) or to a socket nobody reads (\`sink\`:
the kernel drops at the socket, no receiver wake-ups). \`recv\`: ${n.pacedCount} datagrams paced at
${n.rate}/s so every receiver keeps up. Send µs/dgram: the sender's CPU (\`process.cpuUsage\`,
user + sys) over the measured datagrams; on loopback the sys part includes the receive half of
the kernel's path (softirq in the sender's context). Received: distinct datagrams checked at the
receiver ÷ sent (warm-up included). Recv µs/dgram: the receiver's CPU ÷ datagrams received.`,
      machine,
      `Senders:\n${
        Object.entries(SENDERS).map(([k, v]) => `- \`${k}\`: ${v}`).join("\n")
      }\n\nReceivers:\n${Object.entries(RECEIVERS).map(([k, v]) => `- \`${k}\`: ${v}`).join("\n")}`,
      markdownTable(t.headers, t.rows),
      probe ? `Event-loop probes (bench/udp/probe.ts):\n\n${probeMarkdown(probe)}` : "",
      problems.length > 0 ? `Problems: ${problems.join("; ")}` : "",
    ].filter((s) => s !== "").join("\n\n");
    return { ok: problems.length === 0, doc: { heading: HEADING, body } };
  },
};

if (import.meta.main) {
  const usage =
    "usage: bun run bench/udp/bench.ts [--count N] [--warmup N] [--systems a,b] [--timeout S] [--quick]\n";
  let v;
  try {
    v = parseArgs({
      args: process.argv.slice(2),
      strict: true,
      options: {
        count: { type: "string" },
        warmup: { type: "string" },
        systems: { type: "string" },
        timeout: { type: "string" },
        quick: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n${usage}`);
    process.exit(2);
  }
  if (v.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  const int = (name: string, s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    const x = Number(s);
    if (!Number.isSafeInteger(x) || x < 0) {
      process.stderr.write(`bench: udp: --${name} must be a non-negative integer\n${usage}`);
      process.exit(2);
    }
    return x;
  };
  try {
    const out = await udpBench.run({
      repoRoot: join(import.meta.dirname, "..", ".."),
      count: int("count", v.count),
      warmup: int("warmup", v.warmup),
      systems: v.systems?.split(",").filter((s) => s !== ""),
      timeoutS: int("timeout", v.timeout) ?? 120,
      quick: v.quick,
    });
    process.exit(out.ok ? 0 : 1);
  } catch (e) {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  }
}
