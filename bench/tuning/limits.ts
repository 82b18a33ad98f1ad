/**
 * bench/tuning, real node: the two `limits` that decide throughput rather than only bound a
 * client (lib/node/config.ts):
 *
 * - `limits.max_payload` (default 1 MiB) caps the message size. Pub/sub 1→1 through one node
 *   (the node its own process, `bench/tuning/node.ts`; publisher and subscriber clients in the
 *   bench process), the same volume as messages of 64 KiB and 1 MiB under the default limit and
 *   of 4 and 16 MiB under a raised one, plus 64 KiB under the raised one (does the limit itself
 *   cost anything?). The publisher keeps at most max(8 MiB, 2 messages) unread by the
 *   subscriber, so neither the node's per-link backlog (64 MiB) nor the subscription buffer
 *   drops anything: this measures the cost per message size, not a queue. Baseline: 1 MiB
 *   messages at the default, the largest it allows.
 * - `limits.max_unread_bytes` (default 1 MiB): a caller with more replies queued unread at the
 *   node gets its new calls failed. One caller with 8 calls in flight, 256 KiB replies, at the
 *   default and at 16 MiB. Every reply is checked (length, sequence number).
 *
 * The other limits bound counts (subscriptions, procedures, calls in flight, deadlines) or
 * memory under abuse (max_queued_bytes); a workload within them does not meet them.
 */
import { join } from "node:path";
import type * as Macula from "../../mod.ts";
import { progress } from "../lib/report.ts";
import { startServer } from "../lib/spawn.ts";
import { size } from "./buffers.ts";

const MiB = 1024 * 1024;

/** The client API, loaded when this part runs (so other benches do not load it). */
let api: typeof Macula | undefined;
const connect = async (o: { url: string; creds: string }): Promise<Macula.Client> =>
  (api ??= await import("../../mod.ts")).connect(o);

interface NodeSpec {
  name: string;
  limits: { maxPayload?: number; maxUnreadBytes?: number };
}

const NODES: Record<string, NodeSpec> = {
  default: { name: "defaults", limits: {} },
  payload4: { name: "max_payload 4 MiB", limits: { maxPayload: 4 * MiB } },
  payload16: { name: "max_payload 16 MiB", limits: { maxPayload: 16 * MiB } },
  unread16: { name: "max_unread_bytes 16 MiB", limits: { maxUnreadBytes: 16 * MiB } },
};

export interface PubSubRow {
  node: string;
  limit: string;
  payload: number;
  isBaseline: boolean;
  runs: { mibps: number; messages: number; received: number; bad: number }[];
  errors: string[];
}

export interface RpcRow {
  node: string;
  limit: string;
  isBaseline: boolean;
  runs: {
    callsPerSec: number;
    mibps: number;
    ok: number;
    failed: number;
    codes: Record<string, number>;
    /** The first error message of each code. */
    messages: Record<string, string>;
  }[];
  errors: string[];
}

export interface LimitsResults {
  volumeMib: number;
  calls: number;
  concurrency: number;
  replyBytes: number;
  reps: number;
  /** A publish of max_payload + 1 at the default node was refused with payload_too_large. */
  refusedOverLimit: boolean | null;
  pubsub: PubSubRow[];
  rpc: RpcRow[];
  problems: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function template(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let j = 0; j < n; j++) out[j] = (j * 131 + 17) & 0xff;
  return out;
}

const seqOf = (b: Uint8Array) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
function putSeq(b: Uint8Array, i: number): void {
  b[0] = (i >>> 24) & 0xff;
  b[1] = (i >>> 16) & 0xff;
  b[2] = (i >>> 8) & 0xff;
  b[3] = i & 0xff;
}
const sameTail = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset + 4, a.length - 4)
    .equals(Buffer.from(b.buffer, b.byteOffset + 4, b.length - 4));

/** One pub/sub transfer of about `volume` bytes as messages of `payload` bytes. */
async function pubsub(
  url: string,
  creds: string,
  payload: number,
  volume: number,
  idleMs: number,
): Promise<PubSubRow["runs"][number]> {
  const pub = await connect({ url, creds });
  const subc = await connect({ url, creds });
  try {
    const count = Math.max(4, Math.ceil(volume / payload));
    const window = Math.max(8 * MiB, 2 * payload);
    const pattern = template(payload);
    const sub = subc.subscribe("tune.bulk");
    await subc.flush();
    const seen = new Uint8Array(count);
    let received = 0, bad = 0, last = performance.now();
    const waiter: { wake: (() => void) | null } = { wake: null };
    const consumer = (async () => {
      for await (const m of sub) {
        const i = seqOf(m.payload);
        if (i >= count || seen[i] || !sameTail(m.payload, pattern)) bad++;
        else {
          seen[i] = 1;
          received++;
        }
        last = performance.now();
        const w = waiter.wake;
        waiter.wake = null;
        w?.();
        if (received === count) break;
      }
    })();
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      while ((i - received) * payload >= window) {
        if (performance.now() - last > idleMs) break;
        await Promise.race([new Promise<void>((r) => (waiter.wake = r)), sleep(100)]);
      }
      const msg = pattern.slice();
      putSeq(msg, i);
      pub.publish("tune.bulk", msg);
    }
    while (received < count && performance.now() - last < idleMs) await sleep(20);
    const elapsed = (last - t0) / 1000;
    sub.unsubscribe();
    await Promise.race([consumer, sleep(1000)]);
    return { mibps: (received * payload) / MiB / elapsed, messages: count, received, bad };
  } finally {
    await Promise.allSettled([pub.close(), subc.close()]);
  }
}

/** `calls` calls with `concurrency` in flight from one caller; replies of `replyBytes`. */
async function rpc(
  url: string,
  creds: string,
  calls: number,
  concurrency: number,
  replyBytes: number,
): Promise<RpcRow["runs"][number]> {
  const provider = await connect({ url, creds });
  const caller = await connect({ url, creds });
  try {
    const reply = template(replyBytes);
    const reg = provider.serve("tune.echo", (p) => {
      const r = reply.slice();
      r.set(p.subarray(0, 4));
      return r;
    });
    await reg.ready;
    let next = 0, ok = 0, failed = 0;
    const codes: Record<string, number> = {};
    const messages: Record<string, string> = {};
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < calls) {
        const i = next++;
        const req = new Uint8Array(4);
        putSeq(req, i);
        try {
          const r = await caller.call("tune.echo", req, { timeoutMs: 10_000 });
          if (seqOf(r) !== i || !sameTail(r, reply)) {
            failed++;
            codes.wrong_reply = (codes.wrong_reply ?? 0) + 1;
          } else ok++;
        } catch (e) {
          failed++;
          const code = (e as { code?: string }).code ?? (e as Error).name;
          codes[code] = (codes[code] ?? 0) + 1;
          messages[code] ??= (e as Error).message;
        }
      }
    }));
    const s = (performance.now() - t0) / 1000;
    reg.stop();
    return { callsPerSec: ok / s, mibps: (ok * replyBytes) / MiB / s, ok, failed, codes, messages };
  } finally {
    await Promise.allSettled([provider.close(), caller.close()]);
  }
}

async function withNode<T>(
  repoRoot: string,
  spec: NodeSpec,
  timeoutMs: number,
  fn: (url: string, creds: string) => Promise<T>,
): Promise<T> {
  const node = await startServer(
    [
      process.execPath,
      "run",
      join(repoRoot, "bench", "tuning", "node.ts"),
      "--limits",
      JSON.stringify(spec.limits),
    ],
    Math.min(timeoutMs, 60_000),
    { cwd: repoRoot },
  );
  try {
    return await fn(String(node.ready.url), String(node.ready.credsDir));
  } finally {
    await node.stop();
  }
}

export async function runLimitsPart(o: {
  repoRoot: string;
  volumeMib: number;
  calls: number;
  reps: number;
  timeoutMs: number;
}): Promise<LimitsResults> {
  const concurrency = 8;
  const replyBytes = 256 * 1024;
  const volume = o.volumeMib * MiB;
  const problems: string[] = [];
  const pubsubCases: [keyof typeof NODES, number][] = [
    ["default", 64 * 1024],
    ["default", MiB],
    ["payload4", 4 * MiB],
    ["payload16", 64 * 1024],
    ["payload16", 16 * MiB],
  ];
  const pubsubRows: PubSubRow[] = pubsubCases.map(([n, p]) => ({
    node: n,
    limit: NODES[n]!.name,
    payload: p,
    isBaseline: n === "default" && p === MiB,
    runs: [],
    errors: [],
  }));
  const rpcRows: RpcRow[] = (["default", "unread16"] as const).map((n) => ({
    node: n,
    limit: NODES[n]!.name,
    isBaseline: n === "default",
    runs: [],
    errors: [],
  }));
  let refusedOverLimit: boolean | null = null;
  for (const key of Object.keys(NODES)) {
    const spec = NODES[key]!;
    const ps = pubsubRows.filter((r) => r.node === key);
    const rs = rpcRows.filter((r) => r.node === key);
    try {
      await withNode(o.repoRoot, spec, o.timeoutMs, async (url, creds) => {
        if (key === "default") {
          const c = await connect({ url, creds });
          try {
            c.publish("tune.bulk", new Uint8Array(c.maxPayload + 1));
            refusedOverLimit = false;
          } catch (e) {
            refusedOverLimit = e instanceof api!.ClientError && e.code === "payload_too_large";
          } finally {
            await c.close();
          }
        }
        for (let rep = 0; rep < o.reps; rep++) {
          for (const row of ps) {
            progress(
              `tuning: pub/sub ${o.volumeMib} MiB as ${size(row.payload)} messages, ` +
                `node ${spec.name}, round ${rep + 1} of ${o.reps}`,
            );
            try {
              const r = await pubsub(url, creds, row.payload, volume, 5000);
              console.log(
                JSON.stringify({
                  bench: "tuning",
                  part: "pubsub",
                  row: row.limit,
                  payload: row.payload,
                  r,
                }),
              );
              if (r.received !== r.messages || r.bad > 0) {
                row.errors.push(`${r.received} of ${r.messages} arrived, ${r.bad} bad`);
              }
              row.runs.push(r);
            } catch (e) {
              row.errors.push((e as Error).message);
            }
          }
          for (const row of rs) {
            progress(
              `tuning: ${o.calls} calls, ${concurrency} in flight, ${size(replyBytes)} replies, ` +
                `node ${spec.name}, round ${rep + 1} of ${o.reps}`,
            );
            try {
              const r = await rpc(url, creds, o.calls, concurrency, replyBytes);
              console.log(JSON.stringify({ bench: "tuning", part: "rpc", row: row.limit, r }));
              if (r.codes.wrong_reply) row.errors.push(`${r.codes.wrong_reply} wrong replies`);
              row.runs.push(r);
            } catch (e) {
              row.errors.push((e as Error).message);
            }
          }
        }
      });
    } catch (e) {
      for (const row of [...ps, ...rs]) row.errors.push(`node: ${(e as Error).message}`);
    }
  }
  for (const r of [...pubsubRows, ...rpcRows]) {
    for (const e of r.errors) problems.push(`limits ${r.limit}: ${e}`);
  }
  if (refusedOverLimit !== true) {
    problems.push("limits: a publish over max_payload was not refused with payload_too_large");
  }
  return {
    volumeMib: o.volumeMib,
    calls: o.calls,
    concurrency,
    replyBytes,
    reps: o.reps,
    refusedOverLimit,
    pubsub: pubsubRows,
    rpc: rpcRows,
    problems,
  };
}

// ------------------------------------------------------------------ Markdown

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const spread = (xs: number[]) =>
  xs.length === 0
    ? "—"
    : `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;

export function limitsTables(l: LimitsResults): string {
  const pb = l.pubsub.find((r) => r.isBaseline);
  const pbm = pb ? median(pb.runs.map((r) => r.mibps)) : NaN;
  const ps = l.pubsub.map((r) => {
    const xs = r.runs.map((x) => x.mibps);
    const got = r.runs.reduce((a, x) => a + x.received, 0);
    const want = r.runs.reduce((a, x) => a + x.messages, 0);
    return `| ${r.limit}${r.isBaseline ? " (baseline)" : ""} | ${size(r.payload)} | ${
      r.runs[0]?.messages ?? "—"
    } | ${spread(xs)} | ${
      xs.length && Number.isFinite(pbm) ? `${(median(xs) / pbm).toFixed(2)}×` : "—"
    } | ${got} of ${want} | ${r.errors.length === 0 ? "ok" : r.errors.join("; ")} |`;
  });
  const rb = l.rpc.find((r) => r.isBaseline);
  const rbm = rb ? median(rb.runs.map((r) => r.callsPerSec)) : NaN;
  const rs = l.rpc.map((r) => {
    const xs = r.runs.map((x) => x.callsPerSec);
    const ok = r.runs.reduce((a, x) => a + x.ok, 0);
    const failed = r.runs.reduce((a, x) => a + x.failed, 0);
    const codes: Record<string, number> = {};
    for (const x of r.runs) {
      for (const [k, v] of Object.entries(x.codes)) codes[k] = (codes[k] ?? 0) + v;
    }
    return `| ${r.limit}${r.isBaseline ? " (baseline)" : ""} | ${spread(xs)} | ${
      xs.length && Number.isFinite(rbm) ? `${(median(xs) / rbm).toFixed(2)}×` : "—"
    } | ${spread(r.runs.map((x) => x.mibps))} | ${ok} | ${failed}${
      Object.keys(codes).length
        ? ` (${Object.entries(codes).map(([k, v]) => `${k} ${v}`).join(", ")})`
        : ""
    } | ${r.errors.length === 0 ? "ok" : r.errors.join("; ")} |`;
  });
  return [
    "| node limits | message | messages | delivered MiB/s, median (min–max) | ÷ baseline | arrived (all rounds) | status |",
    "|---|---:|---:|---:|---:|---|---|",
    ...ps,
    "",
    `RPC: ${l.calls} calls per round from one caller, ${l.concurrency} in flight, 4 B requests, ${
      size(l.replyBytes)
    } replies:`,
    "",
    "| node limits | calls/s, median (min–max) | ÷ baseline | reply MiB/s | answered (all rounds) | failed (by code) | status |",
    "|---|---:|---:|---:|---:|---|---|",
    ...rs,
    ...failures(l),
  ].join("\n");
}

/** The first message of each failure code, per row: what the node said. */
function failures(l: LimitsResults): string[] {
  const out: string[] = [];
  for (const r of l.rpc) {
    const seen: Record<string, string> = {};
    for (const x of r.runs) for (const [k, v] of Object.entries(x.messages)) seen[k] ??= v;
    for (const [k, v] of Object.entries(seen)) out.push(`- ${r.limit}, \`${k}\`: ${v}`);
  }
  return out.length === 0 ? [] : ["", "Failed calls, the first message of each kind:", "", ...out];
}
