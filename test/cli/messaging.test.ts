/**
 * `macula pub`, `sub`, `call` and `serve` end to end, from source (`bun cli/main.ts …`), as
 * real processes against a node started in this test process on 127.0.0.1. Synchronisation is
 * by the lines the commands print ("subscribed to …", "serving …"), never by sleeping; every
 * wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CALL_EXIT_CODES } from "../../cli/commands/messaging.ts";
import { type Client, connect } from "../../lib/client/client.ts";
import { Node } from "../../lib/node/node.ts";
import type { Subprocess } from "bun";
import { Proc } from "../helpers/proc.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

let root: string;
let node: Node;
let env: Record<string, string>;
const procs: Proc[] = [];

/** Starts `bun cli/main.ts ...args` against the test node (unless `target` is false). */
function macula(
  args: string[],
  o: { stdin?: string; target?: boolean; env?: Record<string, string> } = {},
): Proc {
  // The target options go right after the verb: anything after `serve … --` is the command.
  const full = o.target === false
    ? args
    : [args[0]!, "--server", node.url, "--creds", node.credsDir!, ...args.slice(1)];
  const p = Bun.spawn({
    cmd: [process.execPath, MAIN, ...full],
    cwd: root,
    env: { ...env, ...o.env },
    stdin: o.stdin === undefined ? "ignore" : new TextEncoder().encode(o.stdin),
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
    killSignal: "SIGKILL",
  }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  const proc = new Proc(full, p);
  procs.push(proc);
  return proc;
}

/** Runs a command to its end. */
async function done(args: string[], o: Parameters<typeof macula>[1] = {}) {
  const p = macula(args, o);
  const code = await p.code();
  return { code, stdout: p.out, stderr: p.err };
}

/** Starts `sub` and waits until the node has the subscription. */
async function subscribed(args: string[]): Promise<Proc> {
  const p = macula(["sub", ...args]);
  await p.waitFor("err", `subscribed to ${args[0]}`);
  return p;
}

/** Starts `serve` and waits until the node has the registration. */
async function serving(args: string[]): Promise<Proc> {
  const p = macula(["serve", ...args]);
  await p.waitFor("err", `serving ${args[0]} on `);
  return p;
}

/** A UDP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "macula-msg-cli-"));
  env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: join(root, "home"),
    MACULA_CONFIG_DIR: join(root, "config"),
  };
  node = await Node.start({ dataDir: join(root, "node"), listen: { host: "127.0.0.1", port: 0 } });
});

afterAll(async () => {
  for (const p of procs) p.p.kill("SIGKILL");
  await Promise.allSettled(procs.map((p) => p.exited));
  await node?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe("macula pub / sub", () => {
  test("sub --count prints '[topic] text' per message and exits 0", async () => {
    const sub = await subscribed(["greet.*", "--count", "2"]);
    const pub = await done(["pub", "greet.en", "hello", "--count", "2"]);
    expect(pub).toEqual({ code: 0, stdout: "", stderr: "published 2 messages to greet.en\n" });
    expect(await sub.code()).toBe(0);
    expect(sub.out).toBe("[greet.en] hello\n[greet.en] hello\n");
    expect(sub.err).toContain(`subscribed to greet.* on ${node.url}`);
  });

  test("pub - publishes each stdin line; sub --json prints one object per line", async () => {
    const sub = await subscribed(["lines.>", "--json", "--count", "3"]);
    const pub = await done(["pub", "lines.in", "-"], { stdin: '{"n":1}\nplain text\n[1,2]\n' });
    expect(pub.code).toBe(0);
    expect(pub.stderr).toBe("published 3 messages to lines.in\n");
    expect(await sub.code()).toBe(0);
    expect(sub.lines().map((l) => JSON.parse(l))).toEqual([
      { topic: "lines.in", data: { n: 1 }, bytes: 7 },
      { topic: "lines.in", data: "plain text", bytes: 10 },
      { topic: "lines.in", data: [1, 2], bytes: 5 },
    ]);
  });

  test("pub reads stdin when no data is given and stdin is not a terminal", async () => {
    const sub = await subscribed(["implicit.stdin", "--raw", "--count", "2"]);
    const pub = await done(["pub", "implicit.stdin"], { stdin: "a\nb\n" });
    expect(pub.code).toBe(0);
    expect(await sub.code()).toBe(0);
    expect(sub.out).toBe("a\nb\n");
  });

  test("sub --json gives a payload that is not UTF-8 as base64", async () => {
    const sub = await subscribed(["bin.data", "--json", "--count", "1"]);
    const client: Client = await connect({ url: node.url, creds: node.credsDir! });
    try {
      client.publish("bin.data", new Uint8Array([0xff, 0x00, 0xfe]));
      await client.flush();
    } finally {
      await client.close();
    }
    expect(await sub.code()).toBe(0);
    expect(JSON.parse(sub.out)).toEqual({ topic: "bin.data", base64: "/wD+", bytes: 3 });
  });

  test("a queue group shares the messages between its members", async () => {
    const a = await subscribed(["work.items", "--queue", "workers", "--count", "2"]);
    const b = await subscribed(["work.items", "--queue", "workers", "--count", "2"]);
    const pub = await done(["pub", "work.items", "-"], { stdin: "m1\nm2\nm3\nm4\n" });
    expect(pub.code).toBe(0);
    expect([await a.code(), await b.code()]).toEqual([0, 0]);
    expect(a.lines().length).toBe(2);
    expect(b.lines().length).toBe(2);
    expect([...a.lines(), ...b.lines()].sort()).toEqual(
      ["m1", "m2", "m3", "m4"].map((m) => `[work.items] ${m}`),
    );
    expect(a.err).toContain("subscribed to work.items (queue workers)");
  });

  test("pub --json refuses data that is not JSON, exit 2", async () => {
    const r = await done(["pub", "x.y", "{nope", "--json"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("macula pub: error: data is not JSON");
    const lines = await done(["pub", "x.y", "--json"], { stdin: '{"ok":1}\nbad\n' });
    expect(lines.code).toBe(2);
    expect(lines.stderr).toContain("stdin line 2 is not JSON");
  });

  test("pub --rate paces the messages", async () => {
    const sub = await subscribed(["paced", "--json", "--count", "5"]);
    const t0 = performance.now();
    const r = await done(["pub", "paced", "tick", "--count", "5", "--rate", "10"]);
    // 5 messages at 10/s: the last one is due 400 ms after the first.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(400);
    expect(r).toEqual({ code: 0, stdout: "", stderr: "published 5 messages to paced\n" });
    expect(await sub.code()).toBe(0);
    expect(sub.lines().map((l) => JSON.parse(l).data)).toEqual(Array(5).fill("tick"));
  });

  test("a bad topic, pattern or queue group is a usage error, exit 2", async () => {
    const topic = await done(["pub", "a..b", "x"]);
    expect(topic.code).toBe(2);
    expect(topic.stderr).toContain('invalid topic "a..b"');
    const wild = await done(["pub", "a.*", "x"]);
    expect(wild.code).toBe(2);
    expect(wild.stderr).toContain("wildcards are allowed only in subscription patterns");
    const pattern = await done(["sub", "a.>.b"]);
    expect(pattern.code).toBe(2);
    expect(pattern.stderr).toContain("wildcard '>' must be the last segment");
    const queue = await done(["sub", "a.b", "--queue", "no spaces"]);
    expect(queue.code).toBe(2);
    expect(queue.stderr).toContain("invalid queue group");
  });

  test("pub stops on SIGINT, delivers what it published, and exits 0", async () => {
    const sub = await subscribed(["slow.ticks", "--count", "1"]);
    const pub = macula(["pub", "slow.ticks", "tick", "--count", "1000", "--rate", "2"]);
    await sub.waitFor("out", "[slow.ticks] tick"); // the first one goes at once
    expect(await sub.code()).toBe(0);
    pub.p.kill("SIGINT");
    expect(await pub.code()).toBe(0);
    expect(pub.err).toMatch(/^published \d+ messages? to slow\.ticks\n$/);
  });

  test("sub stops on SIGINT with exit 0", async () => {
    const sub = await subscribed(["stop.me"]);
    sub.p.kill("SIGINT");
    expect(await sub.code()).toBe(0);
  });

  test("MACULA_URL and MACULA_CREDS choose the node when no flag does", async () => {
    const sub = await subscribed(["env.target", "--count", "1"]);
    const r = await done(["pub", "env.target", "via-env"], {
      target: false,
      env: { MACULA_URL: node.url, MACULA_CREDS: node.credsDir! },
    });
    expect(r.code).toBe(0);
    expect(await sub.code()).toBe(0);
    expect(sub.out).toBe("[env.target] via-env\n");
  });
});

describe("macula call / serve", () => {
  test("serve --echo answers; call pretty-prints a JSON reply", async () => {
    await serving(["t.echo", "--echo"]);
    const r = await done(["call", "t.echo", '{"a":[1,2]}']);
    expect(r).toEqual({ code: 0, stdout: '{\n  "a": [\n    1,\n    2\n  ]\n}\n', stderr: "" });
  });

  test("serve -- cat runs the command per call; call --raw sends and prints bytes as is", async () => {
    await serving(["t.cat", "--", "cat"]);
    const raw = await done(["call", "t.cat", "not json", "--raw"]);
    expect(raw).toEqual({ code: 0, stdout: "not json", stderr: "" });
    const fromStdin = await done(["call", "t.cat", "-"], { stdin: '{"from":"stdin"}' });
    expect(fromStdin.code).toBe(0);
    expect(JSON.parse(fromStdin.stdout)).toEqual({ from: "stdin" });
  });

  test("a failing command answers handler_error with its last stderr line: exit 5", async () => {
    const serve = await serving([
      "t.fail",
      "--",
      "sh",
      "-c",
      "echo first >&2; echo broken >&2; exit 3",
    ]);
    const r = await done(["call", "t.fail", "{}"]);
    expect(r.code).toBe(CALL_EXIT_CODES.handler_error);
    expect(r.code).toBe(5);
    expect(r.stderr).toBe("macula call: handler_error: broken (sh: exit code 3)\n");
    await serve.waitFor("err", "t.fail: call 1: broken (sh: exit code 3)");
  });

  test("no provider: exit 3", async () => {
    const r = await done(["call", "t.nobody", "{}"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^macula call: no_provider: /);
  });

  test("timeout: exit 4, and the serving command is killed when the caller gives up", async () => {
    const serve = await serving(["t.slow", "--", "sleep", "30"]);
    const t0 = performance.now();
    const r = await done(["call", "t.slow", "{}", "--timeout", "300"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^macula call: timeout: /);
    expect(performance.now() - t0).toBeLessThan(10_000);
    await serve.waitFor("err", "t.slow: call 1: cancelled by the caller");
  });

  test("SIGINT cancels a call: exit 7", async () => {
    const serve = await serving(["t.hang", "--verbose", "--", "sleep", "30"]);
    const call = macula(["call", "t.hang", "{}", "--timeout", "60000"]);
    await serve.waitFor("err", "t.hang: call 1: 2 bytes"); // the call is in flight
    call.p.kill("SIGINT");
    expect(await call.code()).toBe(7);
    expect(call.err).toMatch(/^macula call: cancelled: /);
    await serve.waitFor("err", "t.hang: call 1: cancelled by the caller");
  });

  test("call checks its payload is JSON unless --raw: exit 2", async () => {
    const r = await done(["call", "t.echo", "{bad"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("the payload is not JSON");
    expect(r.stderr).toContain("--raw");
  });

  test("serve needs --echo or a command, and the command must exist: exit 2", async () => {
    const neither = await done(["serve", "t.x"]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain("--echo, or a command after '--'");
    const missing = await done(["serve", "t.x", "--", "no-such-command-here"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("command not found or not executable: no-such-command-here");
  });

  test("serve stops on SIGINT with exit 0, and its procedure is gone", async () => {
    const serve = await serving(["t.gone", "--echo"]);
    expect((await done(["call", "t.gone", "1"])).code).toBe(0);
    serve.p.kill("SIGINT");
    expect(await serve.code()).toBe(0);
    expect((await done(["call", "t.gone", "1"])).code).toBe(3);
  });
});

describe("connection failures", () => {
  test("an unreachable node: exit 1 within the connect timeout, saying what to do", async () => {
    const port = await closedPort();
    const t0 = performance.now();
    const r = await done(
      [
        "pub",
        "a.b",
        "x",
        "--connect-timeout",
        "1000",
        "--server",
        `quic://127.0.0.1:${port}`,
        "--creds",
        node.credsDir!,
      ],
      { target: false },
    );
    expect(r.code).toBe(1);
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(r.stderr).toContain(`cannot connect to quic://127.0.0.1:${port} (from --server)`);
    expect(r.stderr).toContain("macula node up");
    const sub = await done(
      ["sub", ">", "--connect-timeout", "300", "--server", `quic://127.0.0.1:${port}`],
      { target: false, env: { MACULA_CREDS: node.credsDir! } },
    );
    expect(sub.code).toBe(1);
    expect(sub.stderr).toContain("no answer within 300 ms");
  });

  test("missing credentials: exit 1 naming the file", async () => {
    const r = await done(["call", "t.echo", "{}", "--server", node.url], { target: false });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(join(root, "macula-data", "client", "ca.pem"));
    expect(r.stderr).toContain("credentials from default");
  });

  test("an unknown --context is a usage error", async () => {
    const r = await done(["pub", "a.b", "x", "--context", "nowhere"], { target: false });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("nowhere");
  });
});
