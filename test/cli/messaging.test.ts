/**
 * `macula pub`, `sub`, `call` and `serve` end to end, from source (`bun cli/main.ts …`), as
 * real processes against a node started in this test process on 127.0.0.1. Synchronisation is
 * by the lines the commands print ("subscribed to …", "serving …"), never by sleeping; every
 * wait is bounded. How they stop (signals, closed pipes, handler process groups):
 * messaging-stop.test.ts; JSON output, --count and the payload limit: messaging-output.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSocket } from "node:dgram";
import { join } from "node:path";
import { CALL_EXIT_CODES } from "../../cli/commands/messaging.ts";
import { type Client, connect } from "../../lib/client/client.ts";
import type { Node } from "../../lib/node/node.ts";
import { Harness } from "./messaging-harness.ts";

let h: Harness;
let node: Node;
let root: string;
const done = (...a: Parameters<Harness["done"]>) => h.done(...a);
const subscribed = (args: string[]) => h.subscribed(args);
const serving = (args: string[]) => h.serving(args);

/** A UDP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  h = await Harness.start("macula-msg-cli-");
  node = h.node;
  root = h.root;
});

afterAll(async () => {
  await h?.stop();
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

  test("pub --input json refuses data that is not JSON, exit 2, with the way out", async () => {
    const r = await done(["pub", "x.y", "{nope", "--input", "json"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'macula pub: the data is not JSON: invalid JSON payload (5 bytes, starting "{nope"): ' +
        "JSON Parse error: Expected '}'\n  leave out --input json to send it as text\n",
    );
    const lines = await done(["pub", "x.y", "--input", "json"], { stdin: '{"ok":1}\nbad\n' });
    expect(lines.code).toBe(2);
    expect(lines.stderr).toStartWith("macula pub: stdin line 2 is not JSON: ");
    expect(lines.stderr).not.toContain("published");
    const text = await done(["pub", "x.y", "{nope", "--input", "text"]);
    expect(text).toEqual({ code: 0, stdout: "", stderr: "published 1 message to x.y\n" });
    const bad = await done(["pub", "x.y", "1", "--input", "yaml"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("yaml");
    expect(bad.stderr).toContain("text, json");
    // --json means JSON output everywhere; pub prints none, so it has no --json.
    const old = await done(["pub", "x.y", "1", "--json"]);
    expect(old.code).toBe(2);
    expect(old.stderr).toContain("unknown option '--json'");
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

  test("serve -- cat runs the command per call; call --raw sends the bytes, prints them and a line break", async () => {
    await serving(["t.cat", "--", "cat"]);
    const raw = await done(["call", "t.cat", "not json", "--raw"]);
    expect(raw).toEqual({ code: 0, stdout: "not json\n", stderr: "" });
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
    expect(r).toEqual({
      code: 3,
      stdout: "",
      stderr: 'macula call: no_provider: no provider for "t.nobody"\n',
    });
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

  test("call checks its payload is JSON unless --raw: exit 2", async () => {
    const r = await done(["call", "t.echo", "{bad"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toStartWith("macula call: the payload is not JSON: ");
    expect(r.stderr).toEndWith("\n  use --raw to send it as is\n");
  });

  test("serve needs --echo or a command, and the command must exist: exit 2", async () => {
    const neither = await done(["serve", "t.x"]);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toBe(
      "macula serve: say how to answer: --echo, or a command after '--'\n" +
        "  e.g. macula serve t.x -- cat\n",
    );
    const missing = await done(["serve", "t.x", "--", "no-such-command-here"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      "macula serve: command not found or not executable: no-such-command-here\n",
    );
    const both = await done(["serve", "t.x", "--echo", "--", "cat"]);
    expect(both).toEqual({
      code: 2,
      stdout: "",
      stderr: "macula serve: --echo and a command: pick one\n",
    });
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
    expect(r.stderr).toContain("(from the default directory)");
  });

  test("an unknown --context is a usage error", async () => {
    const r = await done(["pub", "a.b", "x", "--context", "nowhere"], { target: false });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("nowhere");
  });
});
