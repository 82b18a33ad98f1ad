/**
 * `quic` bench: the same two workloads against each QUIC system, client and server in separate
 * processes on 127.0.0.1. Process protocol: bench/quic/README.md.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { makeCertDir } from "../lib/certs.ts";
import { denoPath, machineInfo, machineMarkdown } from "../lib/machine.ts";
import { emitMetric, progress, type Unit } from "../lib/report.ts";
import { type ProcResult, runProcess, startServer } from "../lib/spawn.ts";
import { type LatencySummary, round, summarizeNs } from "../lib/stats.ts";
import { markdownTable, type Row, textTable } from "../lib/table.ts";
import { type Bench, type BenchOptions, type BenchOutcome, UsageError } from "../lib/types.ts";
import {
  type BulkResult,
  type ClientResult,
  MAX_UDP_PAYLOAD,
  type Mode,
  type PingpongResult,
} from "./protocol.ts";
import { envInt } from "../lib/flags.ts";

const BENCH = "quic";
const REFERENCE = "macula";
const PING_SIZE = 64;

interface System {
  name: string;
  /** One line for the docs. */
  what: string;
  runtime: "bun" | "deno";
  server: string;
  client: string;
  /** How the 1,350-byte UDP payload limit applies. */
  udpPayload: string;
  /** False for the raw-UDP floor, which has no reliable bulk mode. */
  bulk: boolean;
}

const SYSTEMS: readonly System[] = [
  {
    name: REFERENCE,
    what:
      "Macula's own driver (`lib/quic`) over the quiche bindings, Bun; mutual TLS (the client presents a certificate too), BBR",
    runtime: "bun",
    server: "bench/quic/macula-server.ts",
    client: "bench/quic/macula-client.ts",
    udpPayload: `${MAX_UDP_PAYLOAD} (quiche setMaxSendUdpPayloadSize / setMaxRecvUdpPayloadSize)`,
    bulk: true,
  },
  {
    name: "matrixai-highlevel",
    what: "`@matrixai/quic` 2.0.9 high-level `QUICServer`/`QUICClient` (web streams), Bun",
    runtime: "bun",
    server: "bench/quic/matrixai-server.ts",
    client: "bench/quic/matrixai-client.ts",
    udpPayload: `${MAX_UDP_PAYLOAD} (config maxSendUdpPayloadSize / maxRecvUdpPayloadSize)`,
    bulk: true,
  },
  {
    name: "deno-quic",
    what:
      "Deno's built-in QUIC (`Deno.QuicEndpoint` / `Deno.connectQuic`, quinn), `--unstable-net`",
    runtime: "deno",
    server: "bench/quic/deno-server.ts",
    client: "bench/quic/deno-client.ts",
    udpPayload:
      "not configurable (no MTU/payload option in the API); on the wire quinn sends 1452 B packets, batched by UDP GSO up to 10 per send",
    bulk: true,
  },
  {
    name: "udp-raw",
    what: "reference floor: bare `Bun.udpSocket` echo, no QUIC or TLS; ping-pong only",
    runtime: "bun",
    server: "bench/quic/udp-server.ts",
    client: "bench/quic/udp-client.ts",
    udpPayload: "64 B datagrams",
    bulk: false,
  },
];

interface Params {
  warmup: number;
  count: number;
  mib: number;
  timeoutMs: number;
}

interface Outcome {
  system: System;
  status: "ok" | "failed";
  errors: string[];
  rtt?: LatencySummary;
  bulk?: { mibps: number; bytes: number; seconds: number };
}

function params(o: BenchOptions): Params {
  return {
    warmup: o.warmup ?? envInt("BENCH_QUIC_WARMUP") ?? (o.quick ? 100 : 500),
    count: o.count ?? envInt("BENCH_QUIC_COUNT") ?? (o.quick ? 1000 : 10_000),
    mib: o.mib ?? envInt("BENCH_QUIC_MIB") ?? (o.quick ? 8 : 64),
    timeoutMs: o.timeoutS * 1000,
  };
}

function runtimeArgv(sys: System, repoRoot: string, script: string): string[] {
  const path = join(repoRoot, script);
  if (sys.runtime === "bun") return [process.execPath, "run", path];
  // --no-config: the scripts import only relative files, whatever deno.json says.
  return [denoPath(repoRoot), "run", "--no-config", "--unstable-net", "-A", path];
}

function lastLines(s: string, n = 40): string {
  const lines = s.trimEnd().split("\n");
  return lines.slice(-n).join("\n");
}

function describeProc(what: string, r: ProcResult): string {
  const how = r.timedOut
    ? `timed out after ${Math.round(r.ms)} ms`
    : `exited with code ${r.code}, signal ${r.signal}`;
  return `${what} ${how}\n--- ${what} stderr ---\n${lastLines(r.stderr)}`;
}

/** The one stdout line carrying `"mode"`; anything else on stdout is ignored. */
function parseResult(stdout: string): ClientResult {
  const found: ClientResult[] = [];
  for (const line of stdout.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    try {
      const v = JSON.parse(t) as { mode?: unknown };
      if (v.mode === "pingpong" || v.mode === "bulk") found.push(v as ClientResult);
    } catch {
      // not a result line
    }
  }
  if (found.length !== 1) {
    throw new Error(`expected exactly one result line with "mode" on stdout, got ${found.length}`);
  }
  return found[0] as ClientResult;
}

function checkPingpong(r: ClientResult, p: Params): PingpongResult {
  if (r.mode !== "pingpong") throw new Error(`result mode ${r.mode}, expected pingpong`);
  if (r.size !== PING_SIZE) throw new Error(`result size ${r.size}, expected ${PING_SIZE}`);
  if (r.count !== p.count || r.warmup !== p.warmup) {
    throw new Error(`result count/warmup ${r.count}/${r.warmup}`);
  }
  if (!Array.isArray(r.rtt_ns) || r.rtt_ns.length !== p.count) {
    throw new Error(`rtt_ns has ${r.rtt_ns?.length} samples`);
  }
  for (const v of r.rtt_ns) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`bad rtt sample ${JSON.stringify(v)}`);
  }
  return r;
}

function checkBulk(r: ClientResult, bytes: number): BulkResult {
  if (r.mode !== "bulk") throw new Error(`result mode ${r.mode}, expected bulk`);
  if (r.bytes !== bytes) throw new Error(`client reports ${r.bytes} bytes sent, expected ${bytes}`);
  if (r.acked !== bytes) throw new Error(`server acked ${r.acked} bytes, expected ${bytes}`);
  if (!Number.isSafeInteger(r.elapsed_ns) || r.elapsed_ns <= 0) {
    throw new Error(`bad elapsed_ns ${r.elapsed_ns}`);
  }
  return r;
}

/** One server + one client for one mode. Returns the client's verified result. */
async function runPair(
  sys: System,
  mode: Mode,
  p: Params,
  certDir: string,
  repoRoot: string,
): Promise<ClientResult> {
  const server = await startServer(
    [
      ...runtimeArgv(sys, repoRoot, sys.server),
      "--mode",
      mode,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--cert-dir",
      certDir,
    ],
    Math.min(p.timeoutMs, 30_000),
    { cwd: repoRoot },
  );
  const modeArgs = mode === "pingpong"
    ? ["--warmup", String(p.warmup), "--count", String(p.count), "--size", String(PING_SIZE)]
    : ["--bytes", String(p.mib * 1024 * 1024)];
  let client: ProcResult;
  try {
    client = await runProcess(
      [
        ...runtimeArgv(sys, repoRoot, sys.client),
        ...["--mode", mode, "--host", "127.0.0.1", "--port", String(server.port)],
        ...["--server-name", "localhost", "--cert-dir", certDir, ...modeArgs],
      ],
      p.timeoutMs,
      { cwd: repoRoot },
    );
  } catch (e) {
    await server.stop();
    throw e;
  }
  const early = server.exitedEarly();
  const stopped = await server.stop();
  if (early) throw new Error(describeProc("server (exited during the run)", stopped));
  if (client.timedOut || client.code !== 0) {
    throw new Error(
      `${describeProc("client", client)}\n--- server stderr ---\n${lastLines(server.stderr())}`,
    );
  }
  return parseResult(client.stdout);
}

function metric(system: string, name: string, value: number, unit: Unit): void {
  emitMetric({ bench: BENCH, system, metric: name, value: round(value), unit });
}

async function runSystem(
  sys: System,
  p: Params,
  certDir: string,
  repoRoot: string,
): Promise<Outcome> {
  const out: Outcome = { system: sys, status: "ok", errors: [] };
  const missing = [sys.server, sys.client].filter((f) => !existsSync(join(repoRoot, f)));
  if (missing.length > 0) {
    out.status = "failed";
    out.errors.push(`missing ${missing.join(", ")}`);
    return out;
  }

  progress(`${sys.name}: ping-pong ${PING_SIZE} B, ${p.warmup} warm-up + ${p.count} measured`);
  try {
    const r = checkPingpong(await runPair(sys, "pingpong", p, certDir, repoRoot), p);
    out.rtt = summarizeNs(r.rtt_ns);
    metric(sys.name, "rtt_p50", out.rtt.p50, "us");
    metric(sys.name, "rtt_p99", out.rtt.p99, "us");
    metric(sys.name, "rtt_p999", out.rtt.p999, "us");
    metric(sys.name, "rtt_mean", out.rtt.mean, "us");
  } catch (e) {
    out.errors.push(`ping-pong: ${e instanceof Error ? e.message : String(e)}`);
  }

  if (!sys.bulk) return finish(out);
  progress(`${sys.name}: bulk ${p.mib} MiB one way`);
  try {
    const bytes = p.mib * 1024 * 1024;
    const r = checkBulk(await runPair(sys, "bulk", p, certDir, repoRoot), bytes);
    const seconds = r.elapsed_ns / 1e9;
    out.bulk = { mibps: bytes / 2 ** 20 / seconds, bytes, seconds };
    metric(sys.name, "bulk_throughput", out.bulk.mibps, "MiB/s");
  } catch (e) {
    out.errors.push(`bulk: ${e instanceof Error ? e.message : String(e)}`);
  }

  return finish(out);
}

function finish(out: Outcome): Outcome {
  if (out.errors.length > 0) out.status = "failed";
  return out;
}

const num = (
  v: number | undefined,
  na = false,
): string => (na ? "n/a" : v === undefined ? "—" : String(round(v)));
const ratio = (
  v: number | undefined,
): string => (v === undefined || !Number.isFinite(v) ? "—" : `${v.toFixed(2)}×`);

function tableRows(results: readonly Outcome[]): { headers: Row; rows: Row[] } {
  const ref = results.find((r) => r.system.name === REFERENCE);
  const withRatios = ref !== undefined && (ref.rtt !== undefined || ref.bulk !== undefined);
  const headers: string[] = ["system", "p50 µs", "p99 µs", "p99.9 µs", "mean µs", "bulk MiB/s"];
  if (withRatios) headers.push("macula gain p50", "macula gain p99", "macula gain bulk");
  headers.push("status");
  const rows = results.map((r): Row => {
    const { rtt, bulk } = r;
    const row = [r.system.name, num(rtt?.p50), num(rtt?.p99), num(rtt?.p999), num(rtt?.mean)];
    row.push(num(bulk?.mibps, !r.system.bulk));
    if (withRatios) {
      // How many times better macula is: latency other ÷ macula, throughput macula ÷ other.
      const div = (
        a?: number,
        b?: number,
      ): number | undefined => (a !== undefined && b !== undefined ? a / b : undefined);
      row.push(
        ratio(div(rtt?.p50, ref.rtt?.p50)),
        ratio(div(rtt?.p99, ref.rtt?.p99)),
        ratio(div(ref.bulk?.mibps, bulk?.mibps)),
      );
    }
    row.push(
      r.status === "ok" ? "ok" : "FAILED",
    );
    return row;
  });
  return { headers, rows };
}

function docBody(results: readonly Outcome[], p: Params, machine: string): string {
  const { headers, rows } = tableRows(results);
  const systems = results.map((r) =>
    `- \`${r.system.name}\`: ${r.system.what}. Max UDP payload: ${r.system.udpPayload}.`
  );
  return [
    "Generated by `npm run bench -- quic` (bench/quic; protocol in bench/quic/README.md). Client and",
    "server of each system run as separate processes on 127.0.0.1; TLS 1.3 with a throw-away ECDSA P-256",
    "CA made at run time, the client verifying the server against it. All systems run in the same",
    "invocation: compare rows with each other, not with other days (this machine kind is noisy, ±20–30%).",
    "",
    "Machine:",
    "",
    machine,
    "",
    `Workloads: ping-pong of ${PING_SIZE} B on one bidirectional stream, the client waiting for the whole echo`,
    `before the next send (${p.warmup} warm-up, ${p.count} measured; percentiles from an HDR histogram,`,
    `3 significant digits; mean exact). Bulk: ${p.mib} MiB one way on one stream (baselines: 64 KiB writes), then FIN;`,
    "throughput = bytes ÷ (first write → server's 8-byte ack of the byte count). Every echo and the ack are",
    'checked. "macula gain" columns: how many times better `macula` is (latency: other ÷ macula; throughput:',
    "macula ÷ other). `udp-raw` is the floor: a bare 64-byte datagram round trip between two processes.",
    "Both ends in one process (as in ARCHITECTURE.md §3) is much faster on this VM: each cross-process",
    "hop pays a wake-up of the other process.",
    "",
    markdownTable(headers, rows),
    "",
    "Systems:",
    "",
    ...systems,
    ...results
      .filter((r) => r.status === "failed")
      .map((r) =>
        `\n**${r.system.name} failed:** ${
          r.errors.map((e) => (e.split("\n")[0] ?? "").trim()).join("; ")
        }`
      ),
  ].join("\n");
}

async function run(o: BenchOptions): Promise<BenchOutcome> {
  const p = params(o);
  if (p.count < 1) throw new UsageError("quic: --count must be at least 1");
  const wanted = o.systems ?? process.env.BENCH_QUIC_SYSTEMS?.split(",").filter((s) => s !== "");
  const unknown = (wanted ?? []).filter((w) => !SYSTEMS.some((s) => s.name === w));
  if (unknown.length > 0) {
    throw new UsageError(
      `unknown quic system(s): ${unknown.join(", ")}; known: ${
        SYSTEMS.map((s) => s.name).join(", ")
      }`,
    );
  }
  const systems = wanted ? SYSTEMS.filter((s) => wanted.includes(s.name)) : SYSTEMS;

  const machine = machineMarkdown(await machineInfo(o.repoRoot)); // load average before we add ours
  const certs = await makeCertDir();
  const results: Outcome[] = [];
  try {
    for (const sys of systems) {
      const r = await runSystem(sys, p, certs.dir, o.repoRoot);
      for (const e of r.errors) process.stderr.write(`\n[bench] ${sys.name} FAILED: ${e}\n`);
      results.push(r);
    }
  } finally {
    await certs.remove();
  }

  const { headers, rows } = tableRows(results);
  process.stdout.write(
    `\nQUIC transport — ${PING_SIZE} B ping-pong (${p.count} measured) and ${p.mib} MiB bulk\n`,
  );
  process.stdout.write(`${textTable(headers, rows)}\n`);

  return {
    ok: results.every((r) => r.status !== "failed"),
    doc: { heading: "QUIC transport (bench/quic)", body: docBody(results, p, machine) },
  };
}

export const quicBench: Bench = {
  summary:
    "QUIC transports: 64 B ping-pong latency and one-way bulk throughput, client/server in separate processes",
  run,
};
