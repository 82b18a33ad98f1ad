/**
 * `macula bench pubsub` and `macula bench rpc`: load a mesh the user runs, like `nats bench`.
 * Publishers, subscribers (a queue group, if asked), an echo server and callers are clients of
 * this one process, each on its own connection, so every latency is read on one clock.
 *
 * The method is bench/messaging's, from bench/lib/load.ts (payloads, their check, readiness
 * probes, the publish and call loops) and bench/lib/stats.ts (the HDR histogram), so the
 * figures compare with `npm run bench -- messaging`. docs/load-testing.md is the guide.
 */
import {
  Command,
  InvalidArgumentError,
  Option,
  type OptionValues,
} from "@commander-js/extra-typings";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import process from "node:process";
import type { Client, Subscription } from "../../lib/client/mod.ts";
import { fileProblem } from "../../lib/identity/mod.ts";
import { MAX_PAYLOAD_LIMIT, RpcError } from "../../lib/messaging/mod.ts";
import {
  Arrivals,
  callLoop,
  makePayload,
  nowMs,
  payloads,
  publishLoop,
  sameBytes,
  stamp,
  STAMPED_MIN_SIZE,
  stampOf,
  untilCallable,
} from "../../bench/lib/load.ts";
import { LatencyRecorder, type LatencySummary, round } from "../../bench/lib/stats.ts";
import { textTable } from "../../bench/lib/table.ts";
import {
  CliFailure,
  connectTo,
  guarded,
  intArg,
  out,
  procedureArg,
  queueArg,
  rateArg,
  serverArg,
  signalExitCode,
  type SignalWait,
  type StopSignal,
  target,
  TARGET_HELP,
  type TargetOptions,
  topicArg,
  untilSignal,
  usage,
  withTarget,
} from "./shared.ts";

/** Exit code of a run that lost, duplicated or mangled messages, or whose calls failed. */
export const BENCH_LOSS = 3;
/** How long the subscribers' probes (and the procedure) may take to answer before a run starts. */
export const READY_MS = 15_000;
/** Publishers yield to the event loop every this many messages (bench/messaging's batch). */
const BATCH = 256;
/** The most sequence numbers all trackers of a run may hold, one bit each (1 GiB). */
const MAX_TRACKED = 2 ** 33;
const MiB = 1024 * 1024;

// ---- arguments -----------------------------------------------------------------------------

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: MiB,
  mb: MiB,
  mib: MiB,
};

/** `--size`: bytes, with an optional binary unit: 16, 1k, 64KiB, 1MiB (k = KiB = 1024). */
export function sizeArg(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  const n = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!Number.isInteger(n) || n < STAMPED_MIN_SIZE || n > MAX_PAYLOAD_LIMIT) {
    throw new InvalidArgumentError(
      `${v} is not a size from ${STAMPED_MIN_SIZE} B to 16 MiB (e.g. 16, 1k, 64KiB)`,
    );
  }
  return n;
}

/** A short random id: the default topic and procedure, and the probes, are this run's own. */
const runId = (): string => randomBytes(4).toString("hex");

// ---- output helpers ------------------------------------------------------------------------

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const fmt = (v: number): string => String(round(v));
/** Seconds to the millisecond. */
const secs = (s: number): number => Math.round(s * 1000) / 1000;

/** A latency summary for JSON, in microseconds, rounded; null when nothing was measured. */
function latencyJson(r: LatencyRecorder): Record<string, number> | null {
  if (r.count === 0) return null;
  const s = r.summary();
  return {
    count: s.count,
    min: round(s.min),
    p50: round(s.p50),
    p90: round(s.p90),
    p99: round(s.p99),
    p999: round(s.p999),
    max: round(s.max),
    mean: round(s.mean),
  };
}

const NO_LATENCY = ["—", "—", "—", "—", "—"];

/** The latency columns of a table row (µs), or dashes. */
function latencyCells(r: LatencyRecorder): string[] {
  if (r.count === 0) return NO_LATENCY;
  const s: LatencySummary = r.summary();
  return [s.p50, s.p90, s.p99, s.p999, s.max].map(fmt);
}

const LATENCY_HEADERS = ["p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs"];

/** Rate of `n` messages of `size` bytes in `seconds`: msgs/s and MiB/s (0 when no time passed). */
function rates(
  n: number,
  size: number,
  seconds: number,
): { msgsPerSec: number; mibPerSec: number } {
  if (!(seconds > 0)) return { msgsPerSec: 0, mibPerSec: 0 };
  const mib = (n * size) / MiB / seconds;
  return {
    msgsPerSec: round(n / seconds),
    mibPerSec: mib < 10 ? Math.round(mib * 100) / 100 : round(mib),
  };
}

/** Writes the histogram to `--hdr`, as HdrHistogram's percentile distribution text. */
function writeHdr(file: string | undefined, r: LatencyRecorder): void {
  if (file === undefined) return;
  try {
    writeFileSync(file, r.percentileText());
  } catch (e) {
    throw new CliFailure(`--hdr ${file}: cannot write it: ${fileProblem(e)}`);
  }
}

/**
 * The progress line on stderr, redrawn in place while a run lasts; only on a terminal (nothing
 * at all on a pipe or a file) and not with --no-progress.
 */
export class Progress {
  #timer: ReturnType<typeof setInterval> | undefined;
  #drawn = false;
  constructor(
    private readonly stream: { isTTY?: boolean; write(s: string): unknown },
    private readonly what: () => { done: number; total: number; label: string },
    enabled: boolean,
    everyMs = 250,
  ) {
    if (!enabled || stream.isTTY !== true) return;
    const t0 = performance.now();
    this.#timer = setInterval(() => this.draw((performance.now() - t0) / 1000), everyMs);
    this.#timer.unref?.();
  }

  /** One redraw, `seconds` into the run. */
  draw(seconds: number): void {
    const { done, total, label } = this.what();
    const share = total > 0 ? Math.min(1, done / total) : 0;
    const width = 24;
    const full = Math.round(share * width);
    const bar = `${"#".repeat(full)}${".".repeat(width - full)}`;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    this.stream.write(
      `\r\x1b[K[${bar}] ${Math.floor(share * 100)}% ${done}/${total} ${label}, ` +
        `${rate} /s, ${seconds.toFixed(1)} s`,
    );
    this.#drawn = true;
  }

  /** Stops redrawing and clears the line. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#drawn) this.stream.write("\r\x1b[K");
    this.#drawn = false;
  }
}

/** Adds the options both workloads report with: --json, --hdr and --no-progress. */
// deno-lint-ignore no-explicit-any
function withResults<A extends any[], O extends OptionValues>(c: Command<A, O>) {
  return c
    .option("--json", "print the results as one JSON object")
    .option("--hdr <file>", "write the latency histogram (HdrHistogram percentile text, µs)")
    .option("--no-progress", "no progress line (it is shown only on a terminal anyway)");
}

/** What a run needs of the process: its signals, refusals from the node, and an abort. */
class Run {
  readonly stop = new AbortController();
  refused: Error | undefined;
  readonly signal: SignalWait;
  readonly clients: Client[] = [];
  constructor(readonly prefix: string) {
    this.signal = untilSignal({ prefix, exitCode: signalExitCode });
    void this.signal.done.then(() => this.stop.abort());
  }

  /** Connects one client to `server` (else the target of the options). */
  async connect(o: TargetOptions, server?: string): Promise<Client> {
    const t = target(server === undefined ? o : { ...o, server });
    const c = await connectTo(this.prefix, t, o, (e) => {
      this.refused ??= e;
      this.stop.abort();
    });
    this.clients.push(c);
    return c;
  }

  /** The address a client of `server` (else of the options) goes to. */
  url(o: TargetOptions, server?: string): string {
    return target(server === undefined ? o : { ...o, server }).url;
  }

  /** Closes every client and drops the signal handlers. */
  async end(): Promise<void> {
    this.signal.cancel();
    await Promise.allSettled(this.clients.map((c) => c.close()));
  }

  /** After the report: a refusal (exit 1), then a signal (128 + its number). */
  verdict(done: string): void {
    if (this.refused) throw new CliFailure(`the node refused: ${this.refused.message}`);
    const sig: StopSignal | null = this.signal.received;
    if (sig) throw new CliFailure(`stopped by ${sig} ${done}`, signalExitCode(sig));
  }
}

/** Throws a usage error when `size` is over what the node `c` accepts. */
function checkSize(c: Client, size: number): void {
  if (size > c.maxPayload) {
    throw usage(`--size ${size} is over the node's payload limit of ${c.maxPayload} bytes`);
  }
}

// ---- pub/sub -------------------------------------------------------------------------------

interface PubsubOptions extends TargetOptions {
  pub: number;
  sub: number;
  queue?: string;
  size: number;
  count: number;
  rate?: number;
  timeout: number;
  subServer?: string;
  json?: true;
  hdr?: string;
  progress: boolean;
}

/** One subscriber of a run: its subscription, what it got, and its latencies. */
interface Member {
  id: number;
  sub: Subscription;
  /** Its own tracker, or the queue group's (shared by every member). */
  got: Arrivals;
  received: number;
  unique: number;
  duplicates: number;
  bad: number;
  lastMs: number;
  latency: LatencyRecorder;
  done: Promise<void>;
}

const PUBSUB_HELP = `
Publishers (--pub) and subscribers (--sub) are clients of this process, each on its own
connection: publishers to --server, subscribers to --sub-server (default: the same node; give
another node of the mesh to measure a path across it). Every subscriber gets every message;
with --queue they form one queue group and share them, each message going to exactly one.

The method is bench/messaging's: each subscriber subscribes, flushes, and answers a probe; the
publishers start once every probe answers. Message i of publisher p carries the sequence
number p×count+i and, in bytes 4-11, the time it was published; the rest is a pattern
checked byte by byte on arrival. Publishers go as fast as the client takes messages (yielding
to the event loop every 256) unless --rate paces each one, then flush. Subscribers stop once
every message came, or --timeout after the publishers finished with nothing more arriving.

What the numbers mean:
  msgs/s, MiB/s  publisher: its messages ÷ (its first publish → its flush returned);
                 subscriber: messages it got ÷ (first publish of the run → its last arrival);
                 "delivered": all subscribers together over the same span, like
                 bench/messaging's "delivered msg/s".
  p50 … max      latency of each message, publish call → arrival at the subscriber, µs (HDR
                 histogram, 3 significant digits). Unpaced, it is mostly queueing in a
                 saturated path; pace with --rate to see the latency at a given load.
  lost           messages sent that a subscriber (or the queue group) never got.
  duplicates     messages a subscriber (or the group) got more than once.
A run with anything lost, duplicated or malformed says so on stderr and exits 3.

Compare with 'npm run bench -- messaging' (same payloads, probes, loops and histogram):
  pub/sub 1→1, 128 B       macula bench pubsub --size 128 -n 200000
  across two nodes         ... --sub-server quic://<second node>
  fan-out 1→4              ... --sub 4
bench/messaging runs each client in its own process; here they share one: with several
clients, this process can be the bottleneck (watch its CPU).
${TARGET_HELP}

Examples:
  $ macula bench pubsub                                 1 → 1, 100000 messages of 128 B
  $ macula bench pubsub sensors.load --pub 4 --sub 4 --size 1k -n 50000
  $ macula bench pubsub --sub 3 --queue workers         a queue group shares the messages
  $ macula bench pubsub --rate 1000 -n 10000 --hdr lat.hgrm    latency at 1000 msgs/s
  $ macula bench pubsub --sub-server quic://10.0.0.8:4433 --json | jq .total

Exit codes: 0 every message arrived once, 1 failed (cannot connect, refused by the node),
2 usage error, 3 messages lost, duplicated or malformed, 130 stopped by Ctrl-C (143 SIGTERM).
Guide: macula docs load-testing`;

function pubsubCommand() {
  return withResults(withTarget(
    new Command("pubsub")
      .description("publishers and subscribers (or a queue group) on one topic")
      .argument("[topic]", "topic to load (default: bench.data.<random>, this run's own)", topicArg)
      .addOption(
        new Option("--pub <n>", "publishers, each on its own connection").argParser(
          intArg(1, 1000),
        ).default(1),
      )
      .addOption(
        new Option("--sub <n>", "subscribers, each on its own connection (0: publish only)")
          .argParser(intArg(0, 1000)).default(1),
      )
      .option(
        "-q, --queue <group>",
        "subscribers join this queue group: they share messages",
        queueArg,
      )
      .addOption(
        new Option("--size <bytes>", "payload size: 16, 1k, 64KiB (at least 12)").argParser(
          sizeArg,
        ).default(128),
      )
      .option("-n, --count <n>", "messages per publisher", intArg(1, 1_000_000_000), 100_000)
      .option(
        "-r, --rate <per-second>",
        "pace each publisher at this many messages per second",
        rateArg,
      )
      .option(
        "-t, --timeout <ms>",
        "after the publishers finish, wait this long for a message before counting the rest lost",
        intArg(1, 3_600_000),
        5000,
      )
      .option(
        "--sub-server <url>",
        "node the subscribers attach to (default: --server's)",
        serverArg,
      ),
  ))
    .addHelpText("after", PUBSUB_HELP)
    .action(guarded("macula bench pubsub", (topic, o) => runPubsub(topic, o)));
}

async function runPubsub(topicGiven: string | undefined, o: PubsubOptions): Promise<void> {
  const id = runId();
  const topic = topicGiven ?? `bench.data.${id}`;
  const total = o.pub * o.count;
  if (total > 2 ** 32) {
    throw usage(`--pub × --count is ${total} messages, over 4294967296: lower one of them`);
  }
  const trackers = o.queue === undefined ? o.sub : Math.min(1, o.sub);
  if (trackers * total > MAX_TRACKED) {
    throw usage(
      `${total} messages × ${plural(o.sub, "subscriber")} is too many to track ` +
        `(over ${MAX_TRACKED}): lower --count, --pub or --sub`,
    );
  }
  const run = new Run("macula bench pubsub");
  const members: Member[] = [];
  const sent: { sent: number; startMs: number; endMs: number }[] = [];
  const allLatency = new LatencyRecorder();
  let progress: Progress | undefined;
  try {
    const subClients = await Promise.all(
      Array.from({ length: o.sub }, () => run.connect(o, o.subServer)),
    );
    const pubClients = await Promise.all(Array.from({ length: o.pub }, () => run.connect(o)));
    for (const c of pubClients) checkSize(c, o.size);
    const group = o.queue === undefined ? undefined : new Arrivals(total, o.size, true);
    const probes: string[] = [];
    for (const [i, c] of subClients.entries()) {
      const got = group ?? new Arrivals(total, o.size, true);
      const sub = c.subscribe(topic, o.queue === undefined ? {} : { queue: o.queue });
      const m: Member = {
        id: i,
        sub,
        got,
        received: 0,
        unique: 0,
        duplicates: 0,
        bad: 0,
        lastMs: 0,
        latency: new LatencyRecorder(),
        done: Promise.resolve(),
      };
      m.done = (async () => {
        for await (const msg of sub) {
          const t = nowMs();
          m.received++;
          m.lastMs = t;
          const kind = got.record(msg.payload, t);
          if (kind === "bad") m.bad++;
          else if (kind === "duplicate") m.duplicates++;
          else {
            m.unique++;
            m.latency.record((t - stampOf(msg.payload)) * 1e6);
          }
        }
      })();
      members.push(m);
      await c.flush(); // the node, and its peers, know the subscription
      const probe = `bench.probe.${id}.${i}`;
      await c.serve(probe, (p) => p).ready;
      probes.push(probe);
    }
    // Publishers start together, once every subscriber's probe answers from their node.
    await Promise.all(
      pubClients.map(async (c) => {
        for (const [i, p] of probes.entries()) {
          try {
            await untilCallable(
              (proc, payload, ms) => c.call(proc, payload, { timeoutMs: ms }),
              p,
              READY_MS,
              run.stop.signal,
            );
          } catch (e) {
            throw new CliFailure(
              `the publishers cannot reach subscriber ${i} through the mesh: ${
                (e as Error).message
              }`,
            );
          }
        }
      }),
    );
    const trackerList = group ? [group] : members.map((m) => m.got);
    const expected = trackerList.length * total;
    const delivered = () => trackerList.reduce((n, g) => n + g.unique, 0);
    progress = new Progress(
      process.stderr,
      () =>
        o.sub === 0
          ? { done: sent.reduce((n, s) => n + s.sent, 0), total, label: "published" }
          : { done: delivered(), total: expected, label: "delivered" },
      o.progress,
    );
    const sending = pubClients.map(async (c, p) => {
      const payload = payloads(p * o.count, o.count, o.size);
      const at = { sent: 0, startMs: 0, endMs: 0 };
      sent.push(at);
      const r = await publishLoop({
        count: o.count,
        batch: BATCH,
        ...(o.rate !== undefined ? { rate: o.rate } : {}),
        signal: run.stop.signal,
        send: (i) => {
          const b = payload(i);
          stamp(b, nowMs());
          c.publish(topic, b);
          at.sent++;
        },
        writable: () => c.writable(),
      });
      at.startMs = r.startMs;
      await c.flush();
      at.endMs = nowMs();
    });
    await Promise.all(sending);
    await untilDelivered(trackerList, members, o.timeout, run.stop.signal);
    progress.stop();
    for (const m of members) m.sub.unsubscribe();
    await Promise.allSettled(members.map((m) => m.done));
    // The report.
    const startMs = Math.min(...sent.map((s) => s.startMs));
    const lastMs = Math.max(0, ...members.map((m) => m.lastMs));
    const sentAll = sent.reduce((n, s) => n + s.sent, 0);
    const expectedSent = trackerList.length * sentAll;
    const got = delivered();
    const lost = expectedSent - got;
    const duplicates = trackerList.reduce((n, g) => n + g.duplicates, 0);
    const bad = trackerList.reduce((n, g) => n + g.bad, 0);
    for (const m of members) allLatency.add(m.latency);
    const pubRows = sent.map((s, i) => ({
      id: i,
      sent: s.sent,
      seconds: secs((s.endMs - s.startMs) / 1000),
      ...rates(s.sent, o.size, (s.endMs - s.startMs) / 1000),
    }));
    const subRows = members.map((m) => {
      const st = m.sub.stats();
      const seconds = m.lastMs > 0 ? (m.lastMs - startMs) / 1000 : 0;
      return {
        id: m.id,
        received: m.received,
        unique: m.unique,
        duplicates: m.duplicates,
        bad: m.bad,
        droppedInClient: st.dropped,
        droppedAtNode: st.droppedAtNode,
        seconds: secs(seconds),
        ...rates(m.unique, o.size, seconds),
        latencyUs: latencyJson(m.latency),
      };
    });
    const span = lastMs > 0 ? (lastMs - startMs) / 1000 : 0;
    const pubSpan = (Math.max(...sent.map((s) => s.endMs)) - startMs) / 1000;
    const totals = {
      sent: sentAll,
      expected: expectedSent,
      delivered: got,
      lost,
      duplicates,
      bad,
      reordered: trackerList.reduce((n, g) => n + g.reordered, 0),
      droppedInClient: subRows.reduce((n, s) => n + s.droppedInClient, 0),
      droppedAtNode: subRows.reduce((n, s) => n + s.droppedAtNode, 0),
      seconds: secs(span),
      ...rates(got, o.size, span),
      publishMsgsPerSec: rates(sentAll, o.size, pubSpan).msgsPerSec,
      latencyUs: latencyJson(allLatency),
    };
    const ok = lost === 0 && duplicates === 0 && bad === 0 && !run.refused;
    writeHdr(o.hdr, allLatency);
    if (o.json) {
      await out(
        `${
          JSON.stringify({
            workload: "pubsub",
            topic,
            queue: o.queue ?? null,
            size: o.size,
            count: o.count,
            pubs: o.pub,
            subs: o.sub,
            rate: o.rate ?? null,
            server: run.url(o),
            subServer: run.url(o, o.subServer),
            publishers: pubRows,
            subscribers: subRows,
            total: { ...totals, histogram: allLatency.count > 0 ? allLatency.base64() : null },
            ok,
          })
        }\n`,
      );
    } else {
      const head = `pub/sub on ${topic}: ${plural(o.count, "message")} of ${o.size} B per ` +
        `publisher, ${o.rate === undefined ? "unpaced" : `${o.rate} msgs/s each`}\n` +
        `  ${plural(o.pub, "publisher")} on ${run.url(o)}\n` +
        `  ${plural(o.sub, "subscriber")}${o.queue ? ` in queue group ${o.queue}` : ""} on ` +
        run.url(o, o.subServer);
      const rows: string[][] = [
        ...pubRows.map((p) => [
          `publisher ${p.id}`,
          String(p.sent),
          p.seconds.toFixed(3),
          fmt(p.msgsPerSec),
          fmt(p.mibPerSec),
          ...NO_LATENCY,
        ]),
        ...members.map((m, i) => {
          const s = subRows[i]!;
          return [
            `subscriber ${m.id}`,
            String(s.unique),
            s.seconds.toFixed(3),
            fmt(s.msgsPerSec),
            fmt(s.mibPerSec),
            ...latencyCells(m.latency),
          ];
        }),
      ];
      if (o.sub > 0) {
        rows.push([
          "delivered",
          String(got),
          totals.seconds.toFixed(3),
          fmt(totals.msgsPerSec),
          fmt(totals.mibPerSec),
          ...latencyCells(allLatency),
        ]);
      }
      const table = textTable(
        ["", "msgs", "seconds", "msgs/s", "MiB/s", ...LATENCY_HEADERS],
        rows,
      );
      const summary = o.sub === 0
        ? `published ${sentAll} (no subscribers: nothing checked)`
        : `delivered ${got} of ${expectedSent}` +
          `${o.queue ? " (the group shares them)" : " (every subscriber gets every message)"}; ` +
          `lost ${lost}, duplicates ${duplicates}, malformed ${bad}` +
          (totals.droppedInClient + totals.droppedAtNode > 0
            ? `; dropped ${totals.droppedInClient} in the subscribers' buffers, ` +
              `${totals.droppedAtNode} at the node`
            : "");
      await out(`${head}\n\n${table}\n\n${summary}\n`);
    }
    run.verdict(`after ${plural(sentAll, "message")} of ${total}`);
    if (!ok) {
      throw new CliFailure(
        `${lost} of ${expectedSent} messages lost, ${duplicates} duplicates, ${bad} malformed` +
          (members[0]?.got.firstBad ? ` (first: ${members[0].got.firstBad})` : ""),
        BENCH_LOSS,
      );
    }
  } finally {
    progress?.stop();
    allLatency.destroy();
    for (const m of members) m.latency.destroy();
    await run.end();
  }
}

/**
 * Resolves once every tracker has all its messages, or once nothing arrived for `idleMs` (the
 * publishers have finished), or on abort. Polls every 50 ms: silence has no event.
 */
async function untilDelivered(
  trackers: readonly Arrivals[],
  members: readonly Member[],
  idleMs: number,
  signal: AbortSignal,
): Promise<void> {
  if (trackers.length === 0 || signal.aborted) return;
  const from = nowMs();
  await new Promise<void>((resolve) => {
    let left = trackers.length;
    const finish = () => {
      clearInterval(timer);
      signal.removeEventListener("abort", finish);
      resolve();
    };
    const timer = setInterval(() => {
      const last = Math.max(from, ...members.map((m) => m.lastMs));
      if (nowMs() - last > idleMs) finish();
    }, 50);
    signal.addEventListener("abort", finish, { once: true });
    for (const t of trackers) t.onComplete(() => --left === 0 && finish());
  });
}

// ---- request/reply -------------------------------------------------------------------------

interface RpcOptions extends TargetOptions {
  concurrency: number;
  size: number;
  count: number;
  warmup: number;
  rate?: number;
  timeout: number;
  serve: boolean;
  serveServer?: string;
  json?: true;
  hdr?: string;
  progress: boolean;
}

const RPC_HELP = `
An echo server (a client of --serve-server, default the same node) serves the procedure, and
a caller (a client of --server) calls it: --warmup calls first, not measured, then --count
calls from --concurrency loops sharing the caller's connection. Each reply must be the request,
byte for byte. With --no-serve nothing is served here: point it at a procedure served elsewhere
that echoes, e.g. 'macula serve <procedure> --echo' on another node.

What the numbers mean:
  calls/s, MiB/s  replies that came and matched ÷ (first measured call → last reply); MiB/s
                  counts the payload one way.
  p50 … max       round trip of each call (the caller's clock: call → reply), µs, from an HDR
                  histogram (3 significant digits).
  failed          calls that timed out (--timeout), were refused, or came back different; a
                  run with any failed call says so on stderr and exits 3.

Compare with 'npm run bench -- messaging' (same loops, same histogram):
  RPC 128 B sequential         macula bench rpc --size 128 -n 10000 --warmup 500
  RPC 128 B, 8 concurrent      macula bench rpc --size 128 -n 40000 --concurrency 8
${TARGET_HELP}

Examples:
  $ macula bench rpc                                    10000 sequential calls of 128 B
  $ macula bench rpc --concurrency 8 -n 40000 --json | jq .latencyUs
  $ macula bench rpc --serve-server quic://10.0.0.8:4433      echo served on another node
  $ macula bench rpc bench.echo --no-serve --rate 500 --hdr rtt.hgrm

Exit codes: 0 every call answered correctly, 1 failed (cannot connect, refused by the node,
the procedure never answered), 2 usage error, 3 calls failed, 130 stopped by Ctrl-C (143
SIGTERM).
Guide: macula docs load-testing`;

function rpcCommand() {
  return withResults(withTarget(
    new Command("rpc")
      .description("an echo server and concurrent callers: round-trip latency and calls/s")
      .argument("[procedure]", "procedure to call (default: bench.rpc.<random>)", procedureArg)
      .option(
        "--concurrency <n>",
        "calls in flight at once (loops on one connection)",
        intArg(1, 1024),
        1,
      )
      .addOption(
        new Option("--size <bytes>", "request payload size: 16, 1k, 64KiB (at least 12)")
          .argParser(sizeArg).default(128),
      )
      .option("-n, --count <n>", "measured calls", intArg(1, 1_000_000_000), 10_000)
      .option("--warmup <n>", "calls made first, not measured", intArg(0, 1_000_000), 500)
      .option("-r, --rate <per-second>", "pace the calls at this many per second in all", rateArg)
      .option("-t, --timeout <ms>", "deadline for each reply", intArg(1, 3_600_000), 5000)
      .option("--no-serve", "serve nothing here: call a procedure an echo server serves elsewhere")
      .option(
        "--serve-server <url>",
        "node the echo server attaches to (default: --server's)",
        serverArg,
      ),
  ))
    .addHelpText("after", RPC_HELP)
    .action(guarded("macula bench rpc", (procedure, o) => runRpc(procedure, o)));
}

async function runRpc(procGiven: string | undefined, o: RpcOptions): Promise<void> {
  if (!o.serve && procGiven === undefined) {
    throw usage("--no-serve calls a procedure served elsewhere: name it");
  }
  if (!o.serve && o.serveServer !== undefined) {
    throw usage("--serve-server and --no-serve cannot be used together");
  }
  const procedure = procGiven ?? `bench.rpc.${runId()}`;
  const run = new Run("macula bench rpc");
  const latency = new LatencyRecorder();
  const errors = new Map<string, number>();
  let served = 0;
  let progress: Progress | undefined;
  try {
    if (o.serve) {
      const server = await run.connect(o, o.serveServer);
      await server.serve(procedure, (p) => {
        served++;
        return p;
      }).ready;
    }
    const caller = await run.connect(o);
    checkSize(caller, o.size);
    const call = (proc: string, payload: Uint8Array, ms: number) =>
      caller.call(proc, payload, { timeoutMs: ms });
    try {
      await untilCallable(call, procedure, READY_MS, run.stop.signal);
    } catch (e) {
      throw new CliFailure((e as Error).message);
    }
    let made = 0;
    const failedCalls = () => [...errors.values()].reduce((a, b) => a + b, 0);
    let measuring = false;
    progress = new Progress(
      process.stderr,
      () => ({ done: measuring ? made : 0, total: o.count, label: "calls" }),
      o.progress,
    );
    const checked = async (i: number): Promise<void> => {
      const req = makePayload(i, o.size);
      const reply = await call(procedure, req, o.timeout);
      if (!sameBytes(req, reply)) {
        throw new Error(`different: a reply of ${reply.length} bytes is not the request`);
      }
    };
    try {
      await callLoop({
        warmup: o.warmup,
        count: 0,
        concurrency: o.concurrency,
        signal: run.stop.signal,
        call: checked,
      });
    } catch (e) {
      throw new CliFailure(`a warm-up call failed: ${(e as Error).message}`);
    }
    measuring = true;
    const { elapsedNs } = await callLoop({
      warmup: 0,
      count: o.count,
      concurrency: o.concurrency,
      ...(o.rate !== undefined ? { rate: o.rate } : {}),
      signal: run.stop.signal,
      call: checked,
      onRtt: (ns) => {
        made++;
        latency.record(ns);
      },
      onError: (e) => {
        made++;
        const why = e instanceof RpcError ? e.code : (e as Error).message.split(":")[0]!;
        errors.set(why, (errors.get(why) ?? 0) + 1);
      },
    });
    progress.stop();
    const failed = failedCalls();
    const okCalls = made - failed;
    const seconds = elapsedNs / 1e9;
    const r = rates(okCalls, o.size, seconds);
    writeHdr(o.hdr, latency);
    if (o.json) {
      await out(
        `${
          JSON.stringify({
            workload: "rpc",
            procedure,
            size: o.size,
            count: o.count,
            warmup: o.warmup,
            concurrency: o.concurrency,
            rate: o.rate ?? null,
            server: run.url(o),
            serveServer: o.serve ? run.url(o, o.serveServer) : null,
            calls: { made, ok: okCalls, failed, errors: Object.fromEntries(errors) },
            served: o.serve ? served : null,
            seconds: secs(seconds),
            callsPerSec: r.msgsPerSec,
            mibPerSec: r.mibPerSec,
            latencyUs: latencyJson(latency),
            histogram: latency.count > 0 ? latency.base64() : null,
            ok: failed === 0 && made === o.count,
          })
        }\n`,
      );
    } else {
      const where = o.serve
        ? `echo server on ${run.url(o, o.serveServer)}`
        : "served elsewhere (--no-serve)";
      const head = `request/reply on ${procedure}: ${plural(o.count, "call")} of ${o.size} B, ` +
        `${o.concurrency} in flight, after ${plural(o.warmup, "warm-up call")}` +
        `${o.rate === undefined ? "" : `, ${o.rate} calls/s`}\n` +
        `  caller on ${run.url(o)}\n  ${where}`;
      const table = textTable(
        ["", "calls", "seconds", "calls/s", "MiB/s", ...LATENCY_HEADERS],
        [[
          "answered",
          String(okCalls),
          seconds.toFixed(3),
          fmt(r.msgsPerSec),
          fmt(r.mibPerSec),
          ...latencyCells(latency),
        ]],
      );
      const why = [...errors].map(([k, n]) => `${n} ${k}`).join(", ");
      await out(
        `${head}\n\n${table}\n\nanswered ${okCalls} of ${made}; failed ${failed}` +
          `${why ? ` (${why})` : ""}\n`,
      );
    }
    run.verdict(`after ${plural(made, "call")} of ${o.count}`);
    if (failed > 0) {
      throw new CliFailure(
        `${failed} of ${made} calls failed (${
          [...errors].map(([k, n]) => `${n} ${k}`).join(", ")
        })`,
        BENCH_LOSS,
      );
    }
  } finally {
    progress?.stop();
    latency.destroy();
    await run.end();
  }
}

// ---- the group -----------------------------------------------------------------------------

/** Builds the `bench` command: `pubsub` and `rpc`. */
export function benchCommand() {
  return new Command("bench")
    .description("load your mesh: pub/sub, queue groups, request/reply; latency and msgs/s")
    .addHelpText(
      "after",
      `
Every run checks what it measures: each payload byte by byte, each reply against its request;
loss and duplicates are counted, and a run with any exits 3.

Examples:
  $ macula bench pubsub --pub 2 --sub 2 --size 1k
  $ macula bench rpc --concurrency 8 --json

Exit codes: 0 ok, 1 failed, 2 usage error, 3 messages lost or calls failed, 130 Ctrl-C.
Guide: macula docs load-testing`,
    )
    .addCommand(pubsubCommand())
    .addCommand(rpcCommand());
}
