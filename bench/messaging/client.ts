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
  Arrivals,
  type CallFn,
  callLoop,
  payloads,
  publishLoop,
  sameBytes,
  untilCallable,
} from "../lib/load.ts";
import {
  type CallResult,
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
const callOf = (c: MsgClient): CallFn => (proc, payload, ms) => c.call(proc, payload, ms);

async function runSub(c: MsgClient, m: Map<string, string>): Promise<SubResult> {
  const id = intFlag(m, "id", 0);
  const count = intFlag(m, "count");
  const size = intFlag(m, "size");
  const idleMs = intFlag(m, "idle-ms", 2000);
  const startMs = intFlag(m, "start-ms", 60_000);
  const got = new Arrivals(count, size);
  let finish: () => void = () => {};
  const finished = new Promise<void>((res) => (finish = res));
  got.onComplete(() => finish());
  const consumer = await c.consume(DATA_TOPIC, (p) => void got.record(p, nowMs()));
  // Only now may the publisher start: it waits for this probe to answer.
  const probe = await c.serve(probeProc(id), (p) => p);
  const started = nowMs();
  const timer = setInterval(() => {
    const t = nowMs();
    if (got.received === 0 ? t - started > startMs : t - got.lastMs > idleMs) finish();
  }, 50);
  await Promise.race([finished, consumer.done]);
  clearInterval(timer);
  const r: SubResult = {
    role: "sub",
    id,
    size,
    count,
    received: got.received,
    unique: got.unique,
    duplicates: got.duplicates,
    bad: got.bad,
    reordered: got.reordered,
    first_ms: got.firstMs,
    last_ms: got.lastMs,
  };
  if (got.firstBad !== undefined) r.firstBad = got.firstBad;
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
  const readyMs = intFlag(m, "ready-ms", 60_000);
  const payload = payloads(0, count, size);
  for (let i = 0; i < subs; i++) await untilCallable(callOf(c), probeProc(i), readyMs);
  const { startMs } = await publishLoop({
    count,
    batch: intFlag(m, "batch", 256),
    send: (i) => c.publish(DATA_TOPIC, payload(i)),
    ...(c.writable ? { writable: () => c.writable!() } : {}),
  });
  await c.flush();
  return { role: "pub", size, count, start_ms: startMs, end_ms: nowMs() };
}

async function runCall(c: MsgClient, m: Map<string, string>): Promise<CallResult> {
  const mode = strFlag(m, "mode");
  const size = intFlag(m, "size");
  const timeoutMs = intFlag(m, "call-timeout-ms", 5000);
  await untilCallable(callOf(c), RPC_PROC, intFlag(m, "ready-ms", 60_000));
  const callChecked = async (i: number): Promise<void> => {
    const req = makePayload(i, size);
    const reply = await c.call(RPC_PROC, req, timeoutMs);
    if (!sameBytes(req, reply)) {
      throw new Error(`call ${i}: reply of ${reply.length} bytes differs from the request`);
    }
  };
  const warmup = intFlag(m, "warmup", 0);
  const count = intFlag(m, "count");
  if (mode === "seq") {
    const rtt_ns: number[] = [];
    await callLoop({
      warmup,
      count,
      concurrency: 1,
      call: callChecked,
      onRtt: (ns) => rtt_ns.push(ns),
    });
    return { role: "call", mode, size, warmup, count, rtt_ns };
  }
  if (mode !== "par") throw new Error(`--mode must be seq or par, got ${mode}`);
  const concurrency = Math.max(1, intFlag(m, "concurrency", 8));
  const { elapsedNs } = await callLoop({ warmup, count, concurrency, call: callChecked });
  return { role: "call", mode, size, concurrency, calls: count, elapsed_ns: elapsedNs };
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
