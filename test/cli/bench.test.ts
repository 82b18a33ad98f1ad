/**
 * `macula bench`, run from source against two real nodes on 127.0.0.1 (in this process, joined):
 * each workload delivers what it says, its JSON has its shape, percentiles are ordered, a queue
 * group shares the messages exactly once, the HDR outputs read back, and a run that loses or
 * duplicates messages (or gets wrong replies) says so and exits 3. Correctness only, never
 * speed (speed belongs to bench/). Bad arguments get their one-line errors.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as hdr from "hdr-histogram-js";
import type { Client } from "../../lib/client/client.ts";
import { Progress, sizeArg } from "../../cli/commands/bench.ts";
import { Arrivals, checkPayload, makePayload, stamp, stampOf } from "../../bench/lib/load.ts";
import { LatencyRecorder } from "../../bench/lib/stats.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";
import { spawnMacula } from "../helpers/proc.ts";
import { run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

let m: Mesh;
let env: Record<string, string>;

beforeAll(async () => {
  m = await mesh(2);
  env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: m.dir, MACULA_CONFIG_DIR: m.dir };
}, 60_000);

afterAll(async () => {
  await m?.close();
});

/** `macula bench <workload> --server <node i> --creds … ...args`, to its end. */
function bench(workload: string, args: string[], node = 0) {
  return run(
    [
      process.execPath,
      MAIN,
      "bench",
      workload,
      "--server",
      m.nodes[node]!.url,
      "--creds",
      m.nodes[0]!.credsDir!,
      ...args,
    ],
    { cwd: m.dir, env, timeoutMs: 90_000 },
  );
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** A run that must succeed with --json: exit 0, nothing on stderr (no progress line on a pipe). */
async function benchOk(workload: string, args: string[], node = 0): Promise<Json> {
  const r = await bench(workload, args, node);
  expect([r.code, r.stderr]).toEqual([0, ""]);
  return JSON.parse(r.stdout);
}

/** Percentiles in order, and the count the run says it measured. */
function expectOrdered(lat: Json, count: number): void {
  expect(lat.count).toBe(count);
  const chain = [lat.min, lat.p50, lat.p90, lat.p99, lat.p999, lat.max];
  for (const v of chain) expect(v).toBeGreaterThan(0);
  for (let i = 1; i < chain.length; i++) expect(chain[i]).toBeGreaterThanOrEqual(chain[i - 1]);
  expect(lat.mean).toBeGreaterThanOrEqual(lat.min);
  expect(lat.mean).toBeLessThanOrEqual(lat.max);
}

/** An HdrHistogram percentile distribution file: its total count and its rows in order. */
function readHgrm(file: string): { total: number; max: number } {
  const text = readFileSync(file, "utf8");
  const rows = text.split("\n").filter((l) => /^\s+\d/.test(l)).map((l) =>
    l.trim().split(/\s+/).map(Number)
  );
  expect(rows.length).toBeGreaterThan(2);
  for (let i = 1; i < rows.length; i++) {
    expect(rows[i]![0]!).toBeGreaterThanOrEqual(rows[i - 1]![0]!); // value
    expect(rows[i]![1]!).toBeGreaterThanOrEqual(rows[i - 1]![1]!); // percentile
  }
  expect(rows.at(-1)![1]).toBe(1);
  const footer = /#\[Max\s+=\s+([\d.]+), Total count\s+=\s+(\d+)\]/.exec(text);
  expect(footer).not.toBeNull();
  return { max: Number(footer![1]), total: Number(footer![2]) };
}

describe("macula bench pubsub", () => {
  test("2 publishers → 2 subscribers: every message once, the JSON, the HDR outputs", async () => {
    const file = join(m.dir, "pubsub.hgrm");
    const j = await benchOk("pubsub", [..."--pub 2 --sub 2 -n 300 --json --hdr".split(" "), file]);
    expect(j).toMatchObject({
      workload: "pubsub",
      size: 128,
      count: 300,
      pubs: 2,
      subs: 2,
      queue: null,
      rate: null,
      server: m.nodes[0]!.url,
      subServer: m.nodes[0]!.url,
      ok: true,
    });
    expect(j.topic).toMatch(/^bench\.data\.[0-9a-f]{8}$/);
    expect(j.publishers.map((p: Json) => [p.id, p.sent])).toEqual([[0, 300], [1, 300]]);
    for (const p of j.publishers) expect(p.msgsPerSec).toBeGreaterThan(0);
    for (const s of j.subscribers) {
      expect(s).toMatchObject({ received: 600, unique: 600, duplicates: 0, bad: 0 });
      expect(s.msgsPerSec).toBeGreaterThan(0);
      expectOrdered(s.latencyUs, 600);
    }
    expect(j.total).toMatchObject({
      sent: 600,
      expected: 1200,
      delivered: 1200,
      lost: 0,
      duplicates: 0,
      bad: 0,
    });
    expectOrdered(j.total.latencyUs, 1200);
    // The histogram, as JSON carries it and as --hdr wrote it.
    const h = hdr.decodeFromCompressedBase64(j.total.histogram, 64, false);
    expect(h.totalCount).toBe(1200);
    h.destroy();
    const file_ = readHgrm(file);
    expect(file_.total).toBe(1200);
    expect(file_.max).toBeCloseTo(j.total.latencyUs.max, -1);
  }, 120_000);

  test(
    "the human report: one row per publisher and subscriber, and what was delivered",
    async () => {
      const r = await bench("pubsub", ["bench.human", "--sub", "2", "-n", "100"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const lines = r.stdout.split("\n");
      expect(lines[0]).toBe(
        "pub/sub on bench.human: 100 messages of 128 B per publisher, unpaced",
      );
      expect(lines[1]).toBe(`  1 publisher on ${m.nodes[0]!.url}`);
      expect(lines[2]).toBe(`  2 subscribers on ${m.nodes[0]!.url}`);
      expect(r.stdout).toMatch(/^ +msgs +seconds +msgs\/s +MiB\/s +p50 µs +p90 µs/m);
      expect(r.stdout).toMatch(/^publisher 0 +100 /m);
      expect(r.stdout).toMatch(/^subscriber 0 +100 /m);
      expect(r.stdout).toMatch(/^subscriber 1 +100 /m);
      expect(r.stdout).toMatch(/^delivered +200 /m);
      expect(lines.at(-2)).toBe(
        "delivered 200 of 200 (every subscriber gets every message); lost 0, duplicates 0, malformed 0",
      );
    },
    120_000,
  );

  test("subscribers on another node: the messages cross the mesh", async () => {
    const j = await benchOk("pubsub", ["-n", "200", "--sub-server", m.nodes[1]!.url, "--json"]);
    expect(j.server).toBe(m.nodes[0]!.url);
    expect(j.subServer).toBe(m.nodes[1]!.url);
    expect(j.total).toMatchObject({ expected: 200, delivered: 200, lost: 0, duplicates: 0 });
  }, 120_000);

  test("a queue group shares the messages: each exactly once between the members", async () => {
    const j = await benchOk("pubsub", "--pub 2 --sub 3 --queue workers -n 300 --json".split(" "));
    expect(j.queue).toBe("workers");
    expect(j.total).toMatchObject({
      sent: 600,
      expected: 600,
      delivered: 600,
      lost: 0,
      duplicates: 0,
    });
    const got = j.subscribers.map((s: Json) => s.unique);
    expect(got.reduce((a: number, b: number) => a + b, 0)).toBe(600);
    for (const s of j.subscribers) {
      expect(s.unique).toBeGreaterThan(0); // shared, not all to one
      expect(s.received).toBe(s.unique); // none twice
    }
  }, 120_000);

  test("--sub 0 only publishes: nothing to check, no latency", async () => {
    const j = await benchOk("pubsub", ["--sub", "0", "-n", "100", "--json"]);
    expect(j.subscribers).toEqual([]);
    expect(j.total).toMatchObject({ sent: 100, expected: 0, delivered: 0, lost: 0 });
    expect(j.total.latencyUs).toBeNull();
    expect(j.total.histogram).toBeNull();
  }, 120_000);

  test("--rate paces the publishers; the run still delivers every message", async () => {
    const j = await benchOk("pubsub", "-n 40 --rate 200 --size 1k --json".split(" "));
    expect(j).toMatchObject({ rate: 200, size: 1024 });
    expect(j.total).toMatchObject({ delivered: 40, lost: 0 });
  }, 120_000);

  test(
    "messages taken by another member of the queue group are lost to the run: exit 3",
    async () => {
      // A thief in the same queue group, subscribed before the run: the node shares the messages
      // between it and the run's one subscriber, so the run misses what the thief got.
      const thief: Client = await m.client(0);
      const sub = thief.subscribe("bench.stolen", { queue: "g" });
      let stolen = 0;
      const reading = (async () => {
        for await (const _ of sub) stolen++;
      })();
      await thief.flush();
      const r = await bench("pubsub", "bench.stolen --queue g -n 100 -t 1000 --json".split(" "));
      const j: Json = JSON.parse(r.stdout);
      expect(r.code).toBe(3);
      expect(j.ok).toBe(false);
      const lost = j.total.lost;
      expect(lost).toBeGreaterThan(0);
      expect(j.total.delivered + lost).toBe(100);
      expect(r.stderr).toBe(
        `macula bench pubsub: ${lost} of 100 messages lost, 0 duplicates, 0 malformed\n`,
      );
      // Every message the run lost, the thief got (bounded wait: they are on their way).
      for (let i = 0; i < 100 && stolen < lost; i++) await Bun.sleep(20);
      expect(stolen).toBe(lost);
      sub.unsubscribe();
      await reading;
    },
    120_000,
  );

  test("a message that comes twice is a duplicate: exit 3", async () => {
    // A client that hears the run's first message publishes it again.
    const echo: Client = await m.client(0);
    const sub = echo.subscribe("bench.twice");
    const again = (async () => {
      for await (const msg of sub) {
        echo.publish("bench.twice", msg.payload);
        break;
      }
    })();
    await echo.flush();
    const r = await bench("pubsub", "bench.twice -n 50 --rate 50 --json".split(" "));
    await again;
    const j: Json = JSON.parse(r.stdout);
    expect(j.total).toMatchObject({ delivered: 50, lost: 0, duplicates: 1 });
    expect(j.subscribers[0].duplicates).toBe(1);
    expect(r.stderr).toBe(
      "macula bench pubsub: 0 of 50 messages lost, 1 duplicates, 0 malformed\n",
    );
    expect(r.code).toBe(3);
  }, 120_000);
});

describe("stopping", () => {
  test("Ctrl-C ends a run with the report of what was done, exit 130", async () => {
    // The event that the run is publishing: a message of it reaches this watcher.
    const watcher: Client = await m.client(0);
    const sub = watcher.subscribe("bench.stop");
    const first = (async () => {
      for await (const _ of sub) break;
    })();
    await watcher.flush();
    const p = spawnMacula(
      [
        "bench",
        "pubsub",
        "bench.stop",
        "--rate",
        "100",
        "-n",
        "100000",
        "--server",
        m.nodes[0]!.url,
        "--creds",
        m.nodes[0]!.credsDir!,
      ],
      { cwd: m.dir, env },
    );
    await first;
    p.p.kill("SIGINT");
    expect(await p.code()).toBe(130);
    const n = Number(/^delivered (\d+) of \1 \(/m.exec(p.out)?.[1]);
    expect(n).toBeGreaterThan(0);
    const messages = n === 1 ? "message" : "messages";
    expect(p.err).toBe(`macula bench pubsub: stopped by SIGINT after ${n} ${messages} of 100000\n`);
  }, 60_000);
});

describe("macula bench rpc", () => {
  test("an echo server and 4 callers in flight: every call answered, the JSON, --hdr", async () => {
    const file = join(m.dir, "rpc.hgrm");
    const j = await benchOk("rpc", [
      ..."-n 200 --warmup 10 --concurrency 4 --json --hdr".split(" "),
      file,
    ]);
    expect(j).toMatchObject({
      workload: "rpc",
      size: 128,
      count: 200,
      warmup: 10,
      concurrency: 4,
      rate: null,
      server: m.nodes[0]!.url,
      serveServer: m.nodes[0]!.url,
      calls: { made: 200, ok: 200, failed: 0, errors: {} },
      ok: true,
    });
    expect(j.procedure).toMatch(/^bench\.rpc\.[0-9a-f]{8}$/);
    // Every warm-up and measured call reached the echo server (plus the readiness probe).
    expect(j.served).toBeGreaterThanOrEqual(210);
    expect(j.callsPerSec).toBeGreaterThan(0);
    expectOrdered(j.latencyUs, 200);
    const h = hdr.decodeFromCompressedBase64(j.histogram, 64, false);
    expect(h.totalCount).toBe(200);
    h.destroy();
    expect(readHgrm(file).total).toBe(200);
  }, 120_000);

  test("--no-serve calls an echo served on another node, across the mesh", async () => {
    const provider: Client = await m.client(1);
    const reg = provider.serve("bench.elsewhere", (p) => p);
    await reg.ready;
    const j = await benchOk("rpc", "bench.elsewhere --no-serve -n 50 --warmup 0 --json".split(" "));
    reg.stop();
    expect(j).toMatchObject({ procedure: "bench.elsewhere", serveServer: null, served: null });
    expect(j.calls).toMatchObject({ made: 50, ok: 50, failed: 0 });
  }, 120_000);

  test("replies that are not the request are failed calls: exit 3", async () => {
    const liar: Client = await m.client(0);
    const reg = liar.serve("bench.liar", (p) => (p.length === 4 ? p : new Uint8Array(p.length)));
    await reg.ready;
    const r = await bench("rpc", "bench.liar --no-serve -n 20 --warmup 0".split(" "));
    reg.stop();
    expect(r.code).toBe(3);
    expect(r.stdout).toContain("answered 0 of 20; failed 20 (20 different)\n");
    expect(r.stderr).toBe("macula bench rpc: 20 of 20 calls failed (20 different)\n");
  }, 120_000);
});

describe("bad arguments: one line, exit 2", () => {
  const cases: [string, string[], string][] = [
    ["pubsub", ["--size", "4"], "--size: 4 is not a size from 12 B to 16 MiB (e.g. 16, 1k, 64KiB)"],
    [
      "pubsub",
      ["--size", "lots"],
      "--size: lots is not a size from 12 B to 16 MiB (e.g. 16, 1k, 64KiB)",
    ],
    ["pubsub", ["--pub", "1001"], "--pub '1001': give a whole number from 1 to 1000"],
    ["pubsub", ["-n", "x"], "--count 'x': give a whole number from 1 to 1000000000"],
    [
      "pubsub",
      ["--rate", "fast"],
      "--rate 'fast': give messages per second, a number above 0 up to 1000000",
    ],
    ["pubsub", ["a.*"], `invalid topic "a.*": …`],
    ["rpc", ["--concurrency", "2000"], "--concurrency '2000': give a whole number from 1 to 1024"],
  ];
  for (const [w, args, message] of cases) {
    test(`macula bench ${w} ${args.join(" ")}`, async () => {
      const r = await run([process.execPath, MAIN, "bench", w, ...args], { env });
      expect(r.code).toBe(2);
      const [first, second, rest] = r.stderr.split("\n");
      if (message.endsWith("…")) {
        expect(first).toStartWith(`macula bench ${w}: ${message.slice(0, -1)}`);
      } else expect(first).toBe(`macula bench ${w}: ${message}`);
      expect(second).toBe(`(run 'macula bench ${w} --help' for usage)`);
      expect(rest).toBe("");
      expect(r.stdout).toBe("");
    });
  }

  test("what only the run can check: exactly one line", async () => {
    const noName = await run([process.execPath, MAIN, "bench", "rpc", "--no-serve"], { env });
    expect(noName).toEqual({
      code: 2,
      stdout: "",
      stderr: "macula bench rpc: --no-serve calls a procedure served elsewhere: name it\n",
    });
    const tooMany = await run(
      [process.execPath, MAIN, "bench", "pubsub", "--pub", "5", "-n", "1000000000"],
      { env },
    );
    expect(tooMany).toEqual({
      code: 2,
      stdout: "",
      stderr:
        "macula bench pubsub: --pub × --count is 5000000000 messages, over 4294967296: lower one of them\n",
    });
    const big = await bench("pubsub", ["--size", "16MiB"]);
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(
      /^macula bench pubsub: --size 16777216 is over the node's payload limit of \d+ bytes\n$/,
    );
  }, 60_000);
});

describe("the parts", () => {
  test("--size takes bytes with a binary unit", () => {
    expect([sizeArg("16"), sizeArg("1k"), sizeArg("64KiB"), sizeArg("1.5k"), sizeArg("1MiB")])
      .toEqual([16, 1024, 65536, 1536, 1048576]);
    for (const bad of ["11", "17MiB", "1kk", "", "-16", "0.5"]) {
      expect(() => sizeArg(bad)).toThrow();
    }
  });

  test("a stamped payload carries its send time; the check skips it and counts the rest", () => {
    const p = makePayload(7, 32);
    stamp(p, 1234.5);
    expect(stampOf(p)).toBe(1234.5);
    expect(checkPayload(p, 32, true)).toBe(7);
    expect(checkPayload(p, 32)).toMatch(/^message 7: byte 4 is wrong$/);
    const a = new Arrivals(10, 32, true);
    expect(a.record(p, 1)).toBe("new");
    expect(a.record(p, 2)).toBe("duplicate");
    expect(a.record(makePayload(3, 32), 3)).toBe("new");
    expect(a.record(makePayload(12, 32), 4)).toBe("bad"); // out of range
    expect(a.record(new Uint8Array(5), 5)).toBe("bad");
    expect(a).toMatchObject({ received: 5, unique: 2, duplicates: 1, bad: 2, reordered: 1 });
    expect(a.firstBad).toBe("sequence number 12 ≥ 10");
    expect(a.complete).toBe(false);
  });

  test("latency percentiles stay within the exact min and max", () => {
    const r = new LatencyRecorder();
    for (let i = 1; i <= 1000; i++) r.record(i * 1000);
    const s = r.summary();
    expect(s).toMatchObject({ count: 1000, min: 1, max: 1000 });
    expect(s.p999).toBeLessThanOrEqual(s.max);
    expect(s.p50).toBeCloseTo(500, -1);
    r.destroy();
  });

  test("the progress line: drawn and cleared on a terminal, nothing elsewhere", () => {
    const said: string[] = [];
    const tty = { isTTY: true, write: (s: string) => said.push(s) };
    const p = new Progress(tty, () => ({ done: 50, total: 100, label: "delivered" }), true, 60_000);
    p.draw(2);
    expect(said).toEqual([
      "\r\x1b[K[############............] 50% 50/100 delivered, 25 /s, 2.0 s",
    ]);
    p.stop();
    expect(said.at(-1)).toBe("\r\x1b[K");
    const piped: string[] = [];
    const pipe = new Progress(
      { write: (s: string) => piped.push(s) },
      () => ({ done: 1, total: 1, label: "" }),
      true,
    );
    pipe.stop();
    const off: string[] = [];
    new Progress(
      { isTTY: true, write: (s: string) => off.push(s) },
      () => ({ done: 1, total: 1, label: "" }),
      false,
    )
      .stop();
    expect([piped, off]).toEqual([[], []]);
  });
});
