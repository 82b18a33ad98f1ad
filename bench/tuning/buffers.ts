/**
 * bench/tuning, real sockets: one QUIC stream of bulk (bench/quic's `macula` loop: lib/quic on
 * Bun, sender and receiver in separate processes on 127.0.0.1) under different UDP socket
 * buffer sizes, the kernel's default first (the baseline, in the same run).
 *
 * Neither of lib/quic's socket adapters sets a buffer size (Bun's UDP API has no such option),
 * so a socket gets `net.core.rmem_default` / `wmem_default`. The bench sets those (root only),
 * starts the pair, and puts the old values back when the pair is done (in a `finally`, and on
 * SIGINT/SIGTERM). Every other socket created on the machine meanwhile gets them too: run it
 * on a quiet machine.
 */
import { join } from "node:path";
import { makeCertDir } from "../lib/certs.ts";
import { progress } from "../lib/report.ts";
import { runProcess, startServer } from "../lib/spawn.ts";
import {
  type BufferSettings,
  canSetBufferSysctls,
  readBufferSysctls,
  restoreBufferSysctls,
  withBufferDefaults,
} from "./kernel.ts";

export interface BufferCase {
  label: string;
  rmem: number;
  wmem: number;
  /** The kernel's values as found: the baseline. */
  isDefault: boolean;
}

/** What one transfer measured (bulk-client.ts's line, plus the receiver's counters). */
export interface BulkRun {
  bytes: number;
  seconds: number;
  mibps: number;
  client: {
    packetsSent: number;
    packetsLost: number;
    packetsRetransmitted: number;
    bytesLost: number;
    rttMs: number;
    cwnd: number;
    socketSendDropped: number;
  };
  kernel: {
    socketDrops: { client: number | null; server: number | null };
    buffers: {
      client: { rb: number; tb: number } | null;
      server: { rb: number; tb: number } | null;
    };
    snmp: Record<string, number>;
  };
  server: { packetsReceived: number } | null;
}

export interface BufferRow extends BufferCase {
  runs: BulkRun[];
  errors: string[];
}

export interface BufferResults {
  /** The sysctls as found (and as left). */
  saved: BufferSettings | null;
  /** Whether other sizes could be set; why not. */
  settable: { ok: boolean; why: string };
  mib: number;
  reps: number;
  rows: BufferRow[];
  problems: string[];
}

/** Sizes tried besides the kernel's default: a quarter of it, then up to 16 MiB. */
export const DEFAULT_SIZES = [64 * 1024, 1024 * 1024, 4 * 1024 * 1024, 16 * 1024 * 1024];

export function bufferCases(saved: BufferSettings | null, settable: boolean, sizes: number[]) {
  const out: BufferCase[] = [{
    label: "kernel default",
    rmem: saved?.rmem_default ?? 0,
    wmem: saved?.wmem_default ?? 0,
    isDefault: true,
  }];
  if (!settable || !saved) return out;
  for (const s of sizes) {
    if (s === saved.rmem_default && s === saved.wmem_default) continue;
    out.push({ label: size(s), rmem: s, wmem: s, isDefault: false });
  }
  return out;
}

export function size(b: number): string {
  if (b % (1024 * 1024) === 0) return `${b / 1024 / 1024} MiB`;
  if (b % 1024 === 0) return `${b / 1024} KiB`;
  return `${b} B`;
}

async function bulkPair(
  repoRoot: string,
  certDir: string,
  bytes: number,
  timeoutMs: number,
): Promise<BulkRun> {
  const script = (f: string) => join(repoRoot, "bench", "tuning", f);
  const server = await startServer(
    [process.execPath, "run", script("bulk-server.ts"), "--cert-dir", certDir],
    Math.min(timeoutMs, 30_000),
    { cwd: repoRoot },
  );
  let client;
  try {
    client = await runProcess(
      [
        process.execPath,
        "run",
        script("bulk-client.ts"),
        ...["--port", String(server.port), "--cert-dir", certDir, "--bytes", String(bytes)],
      ],
      timeoutMs,
      { cwd: repoRoot },
    );
  } catch (e) {
    await server.stop();
    throw e;
  }
  const stopped = await server.stop();
  if (client.timedOut || client.code !== 0) {
    throw new Error(
      `bulk client ${client.timedOut ? "timed out" : `exited ${client.code}`}: ${
        client.stderr.trim().split("\n").slice(-8).join(" | ")
      }`,
    );
  }
  const line = client.stdout.trim().split("\n").pop() ?? "";
  const r = JSON.parse(line) as Omit<BulkRun, "seconds" | "mibps" | "server"> & {
    acked: number;
    elapsed_ns: number;
  };
  if (r.acked !== bytes) throw new Error(`server acked ${r.acked} of ${bytes} bytes`);
  let server_: BulkRun["server"] = null;
  for (const l of stopped.stdout.trim().split("\n").slice(1)) {
    try {
      const v = JSON.parse(l) as { server?: { packetsReceived: number } | null };
      if (v.server) server_ = { packetsReceived: v.server.packetsReceived };
    } catch {
      // not the stats line
    }
  }
  const seconds = r.elapsed_ns / 1e9;
  return {
    bytes,
    seconds,
    mibps: bytes / 2 ** 20 / seconds,
    client: r.client,
    kernel: r.kernel,
    server: server_,
  };
}

/** Runs the socket-buffer sweep: `reps` rounds, each case once per round (interleaved). */
export async function runBufferPart(o: {
  repoRoot: string;
  mib: number;
  reps: number;
  timeoutMs: number;
  sizes: number[];
}): Promise<BufferResults> {
  const saved = readBufferSysctls();
  const settable = saved ? canSetBufferSysctls() : { ok: false, why: "not Linux" };
  const cases = bufferCases(saved, settable.ok, o.sizes);
  const rows: BufferRow[] = cases.map((c) => ({ ...c, runs: [], errors: [] }));
  const problems: string[] = [];
  if (!settable.ok) {
    progress(`tuning: cannot set net.core buffer sysctls (${settable.why}): default only`);
  }
  const bytes = o.mib * 1024 * 1024;
  const certs = await makeCertDir("macula-bench-tuning-");
  const restoreAndExit = (sig: NodeJS.Signals) => {
    if (saved && settable.ok) restoreBufferSysctls(saved);
    process.stderr.write(`[bench] tuning: ${sig}: net.core buffer sysctls restored\n`);
    process.exit(130);
  };
  process.once("SIGINT", restoreAndExit);
  process.once("SIGTERM", restoreAndExit);
  try {
    for (let rep = 0; rep < o.reps; rep++) {
      for (const row of rows) {
        progress(
          `tuning: bulk ${o.mib} MiB, rmem_default ${row.rmem} wmem_default ${row.wmem} ` +
            `(${row.label}), round ${rep + 1} of ${o.reps}`,
        );
        try {
          const run = row.isDefault || !saved
            ? await bulkPair(o.repoRoot, certs.dir, bytes, o.timeoutMs)
            : await withBufferDefaults(
              saved,
              row.rmem,
              row.wmem,
              () => bulkPair(o.repoRoot, certs.dir, bytes, o.timeoutMs),
            );
          console.log(JSON.stringify({ bench: "tuning", part: "buffers", case: row.label, run }));
          const rb = run.kernel.buffers.server?.rb;
          if (rb !== undefined && row.rmem > 0 && rb !== row.rmem) {
            row.errors.push(`the receiver's socket got rb ${rb}, not ${row.rmem}`);
          }
          row.runs.push(run);
        } catch (e) {
          const msg = `${row.label}: ${(e as Error).message}`;
          row.errors.push(msg);
          problems.push(`buffers ${msg}`);
        }
      }
    }
  } finally {
    process.off("SIGINT", restoreAndExit);
    process.off("SIGTERM", restoreAndExit);
    if (saved && settable.ok) restoreBufferSysctls(saved);
    await certs.remove();
  }
  const now = readBufferSysctls();
  if (saved && now && JSON.stringify(now) !== JSON.stringify(saved)) {
    problems.push(`net.core buffer sysctls not restored: ${JSON.stringify(now)}`);
  }
  return { saved, settable, mib: o.mib, reps: o.reps, rows, problems };
}

// ------------------------------------------------------------------ Markdown

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const med = (runs: BulkRun[], f: (r: BulkRun) => number | null | undefined) => {
  const xs = runs.map(f).filter((x): x is number => typeof x === "number");
  return xs.length === 0 ? "—" : String(Math.round(median(xs)));
};

export function bufferTable(b: BufferResults): string {
  const base = b.rows.find((r) => r.isDefault);
  const baseMibps = base ? median(base.runs.map((r) => r.mibps)) : NaN;
  const head =
    "| rmem_default / wmem_default | receiver's socket rb / tb (ss) | bulk MiB/s, median (min–max) | ÷ default | packets sent | lost (QUIC) | retransmitted | receiver socket drops | sender's adapter dropped (send buffer full) | kernel-wide RcvbufErrors / SndbufErrors | status |\n" +
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|";
  const rows = b.rows.map((r) => {
    const mibps = r.runs.map((x) => x.mibps);
    const m = median(mibps);
    const bufs = r.runs[0]?.kernel.buffers.server;
    const label = r.rmem === r.wmem ? size(r.rmem) : `${size(r.rmem)} / ${size(r.wmem)}`;
    return `| ${label}${r.isDefault ? " (kernel default)" : ""} | ${
      bufs ? `${bufs.rb} / ${bufs.tb}` : "—"
    } | ${
      mibps.length === 0
        ? "—"
        : `${m.toFixed(1)} (${Math.min(...mibps).toFixed(1)}–${Math.max(...mibps).toFixed(1)})`
    } | ${
      r.isDefault || !Number.isFinite(baseMibps) || mibps.length === 0
        ? "1.00×"
        : `${(m / baseMibps).toFixed(2)}×`
    } | ${med(r.runs, (x) => x.client.packetsSent)} | ${
      med(r.runs, (x) => x.client.packetsLost)
    } | ${med(r.runs, (x) => x.client.packetsRetransmitted)} | ${
      med(r.runs, (x) => x.kernel.socketDrops.server)
    } | ${med(r.runs, (x) => x.client.socketSendDropped)} | ${
      med(r.runs, (x) => x.kernel.snmp.RcvbufErrors)
    } / ${med(r.runs, (x) => x.kernel.snmp.SndbufErrors)} | ${
      r.errors.length === 0 ? "ok" : r.errors.join("; ")
    } |`;
  });
  return `${head}\n${rows.join("\n")}`;
}
