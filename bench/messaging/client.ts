/**
 * One messaging client process: `bun run bench/messaging/client.ts --system nats|macula
 * --url URL [--creds DIR] --role sub|pub|serve|call [role flags]`. The same loops drive both
 * systems through `adapter.ts`. Prints one JSON result line with a `"role"` key on stdout
 * (`serve` prints the ready line instead and runs until stdin closes). Protocol:
 * bench/messaging/README.md.
 */
import { announceAndServe } from "../lib/serve.ts";
import { type MsgClient, openClient } from "./adapter.ts";
import {
  type CallResult,
  checkPayload,
  DATA_TOPIC,
  describeError,
  flagMap,
  intFlag,
  makePayload,
  nowMs,
  probeProc,
  type PubResult,
  RPC_PROC,
  strFlag,
  type SubResult,
  SYSTEM_NAMES,
  type SystemName,
} from "./protocol.ts";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const macrotask = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Calls `proc` until it answers (the server side is in place), or throws after `limitMs`. */
async function untilCallable(c: MsgClient, proc: string, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs;
  const ping = new Uint8Array([1, 2, 3, 4]);
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      await c.call(proc, ping, 500);
      return;
    } catch (e) {
      last = e;
      await sleep(50);
    }
  }
  throw new Error(`${proc} did not answer within ${limitMs} ms: ${describeError(last)}`);
}

async function runSub(c: MsgClient, m: Map<string, string>): Promise<SubResult> {
  const id = intFlag(m, "id", 0);
  const count = intFlag(m, "count");
  const size = intFlag(m, "size");
  const idleMs = intFlag(m, "idle-ms", 2000);
  const startMs = intFlag(m, "start-ms", 60_000);
  const seen = new Uint8Array(count);
  const r: SubResult = {
    role: "sub",
    id,
    size,
    count,
    received: 0,
    unique: 0,
    duplicates: 0,
    bad: 0,
    reordered: 0,
    first_ms: 0,
    last_ms: 0,
  };
  let maxSeq = -1;
  let finish: () => void = () => {};
  const finished = new Promise<void>((res) => (finish = res));
  const consumer = await c.consume(DATA_TOPIC, (p) => {
    const t = nowMs();
    if (r.received === 0) r.first_ms = t;
    r.last_ms = t;
    r.received++;
    const seq = checkPayload(p, size);
    if (typeof seq === "string" || seq >= count) {
      r.bad++;
      r.firstBad ??= typeof seq === "string" ? seq : `sequence number ${seq} ≥ ${count}`;
      return;
    }
    if (seen[seq] === 1) {
      r.duplicates++;
      return;
    }
    seen[seq] = 1;
    if (seq < maxSeq) r.reordered++;
    else maxSeq = seq;
    if (++r.unique === count) finish();
  });
  // Only now may the publisher start: it waits for this probe to answer.
  const probe = await c.serve(probeProc(id), (p) => p);
  const started = nowMs();
  const timer = setInterval(() => {
    const t = nowMs();
    if (r.received === 0 ? t - started > startMs : t - r.last_ms > idleMs) finish();
  }, 50);
  await Promise.race([finished, consumer.done]);
  clearInterval(timer);
  const dropped = consumer.dropped();
  if (dropped !== undefined) r.client_dropped = dropped;
  consumer.stop();
  probe.stop();
  await Promise.race([consumer.done, sleep(2000)]);
  return r;
}

async function runPub(c: MsgClient, m: Map<string, string>): Promise<PubResult> {
  const count = intFlag(m, "count");
  const size = intFlag(m, "size");
  const subs = intFlag(m, "subs", 1);
  const batch = Math.max(1, intFlag(m, "batch", 256));
  const readyMs = intFlag(m, "ready-ms", 60_000);
  const payloads: Uint8Array[] = [];
  for (let i = 0; i < count; i++) payloads.push(makePayload(i, size));
  for (let i = 0; i < subs; i++) await untilCallable(c, probeProc(i), readyMs);
  const start_ms = nowMs();
  for (let i = 0; i < count; i++) {
    c.publish(DATA_TOPIC, payloads[i] as Uint8Array);
    if ((i + 1) % batch === 0) await macrotask(); // let the library's I/O run
  }
  await c.flush();
  return { role: "pub", size, count, start_ms, end_ms: nowMs() };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function runCall(c: MsgClient, m: Map<string, string>): Promise<CallResult> {
  const mode = strFlag(m, "mode");
  const size = intFlag(m, "size");
  const timeoutMs = intFlag(m, "call-timeout-ms", 5000);
  await untilCallable(c, RPC_PROC, intFlag(m, "ready-ms", 60_000));
  const callChecked = async (i: number): Promise<void> => {
    const req = makePayload(i, size);
    const reply = await c.call(RPC_PROC, req, timeoutMs);
    if (!sameBytes(req, reply)) {
      throw new Error(`call ${i}: reply of ${reply.length} bytes differs from the request`);
    }
  };
  if (mode === "seq") {
    const warmup = intFlag(m, "warmup");
    const count = intFlag(m, "count");
    const rtt_ns: number[] = [];
    for (let i = 0; i < warmup + count; i++) {
      const t0 = process.hrtime.bigint();
      await callChecked(i);
      const t1 = process.hrtime.bigint();
      if (i >= warmup) rtt_ns.push(Number(t1 - t0));
    }
    return { role: "call", mode, size, warmup, count, rtt_ns };
  }
  if (mode !== "par") throw new Error(`--mode must be seq or par, got ${mode}`);
  const calls = intFlag(m, "count");
  const concurrency = Math.max(1, intFlag(m, "concurrency", 8));
  // A short warm-up at the same concurrency, not timed.
  const warm = intFlag(m, "warmup", 0);
  let next = 0;
  const worker = async (limit: number): Promise<void> => {
    while (next < limit) await callChecked(next++);
  };
  const burst = async (limit: number): Promise<void> => {
    await Promise.all(Array.from({ length: concurrency }, () => worker(limit)));
  };
  await burst(warm);
  next = 0;
  const t0 = process.hrtime.bigint();
  await burst(calls);
  const elapsed_ns = Number(process.hrtime.bigint() - t0);
  return { role: "call", mode, size, concurrency, calls, elapsed_ns };
}

async function main(): Promise<void> {
  const m = flagMap(process.argv.slice(2));
  const system = strFlag(m, "system") as SystemName;
  if (!SYSTEM_NAMES.includes(system)) throw new Error(`unknown --system ${system}`);
  const url = strFlag(m, "url");
  const role = strFlag(m, "role");
  const c = await openClient(system, url, m.get("creds"));
  const closeSoon = (): Promise<unknown> => Promise.race([c.close(), sleep(5000)]);

  if (role === "serve") {
    const reg = await c.serve(RPC_PROC, (p) => p);
    const port = Number(/:(\d+)\/?$/.exec(url)?.[1] ?? 0);
    announceAndServe(port, async () => {
      reg.stop();
      await closeSoon();
    });
    return;
  }
  let result;
  if (role === "sub") result = await runSub(c, m);
  else if (role === "pub") result = await runPub(c, m);
  else if (role === "call") result = await runCall(c, m);
  else throw new Error(`unknown --role ${role}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await closeSoon();
  process.exit(0);
}

try {
  await main();
} catch (e) {
  process.stderr.write(`messaging client: ${describeError(e)}\n`);
  process.exit(1);
}
