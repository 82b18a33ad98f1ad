/**
 * What `pub`, `sub`, `call` and `serve` print: `--json` output of call and serve, `--count` on
 * call and serve, `--concurrency`, the node's payload limit (an error alone, the right code).
 * (What docs/cli.md and docs/quickstart.md show is run as written by test/docs.) The node here
 * has a payload limit of 1024 bytes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Harness } from "./messaging-harness.ts";

const LIMIT = 1024;
let h: Harness;

beforeAll(async () => {
  h = await Harness.start("macula-msg-out-", { limits: { maxPayload: LIMIT } });
});
afterAll(async () => {
  await h?.stop();
});

describe("call --json, --count", () => {
  test("--json prints one object per reply: procedure, data (JSON or text) or base64, bytes, ms", async () => {
    await h.serving(["o.echo", "--echo"]);
    const json = await h.done(["call", "o.echo", '{"a":[1,2]}', "--json"]);
    expect(json.code).toBe(0);
    expect(json.stdout.endsWith("}\n") && json.stdout.split("\n").length === 2).toBe(true);
    const o = JSON.parse(json.stdout);
    expect(o).toEqual({ procedure: "o.echo", data: { a: [1, 2] }, bytes: 11, ms: o.ms });
    expect(typeof o.ms).toBe("number");
    const text = await h.done(["call", "o.echo", "plain", "--raw", "--json"]);
    expect(text.code).toBe(2);
    expect(text.stderr).toBe("macula call: --json and --raw: pick one\n");
    await h.serving(["o.bin", "--", "printf", "\\377\\000"]);
    const bin = JSON.parse((await h.done(["call", "o.bin", "--json"])).stdout);
    expect(bin).toEqual({ procedure: "o.bin", base64: "/wA=", bytes: 2, ms: bin.ms });
    const human = await h.done(["call", "o.bin"]);
    expect(human.stdout).toBe("(2 bytes, not UTF-8: use --raw or --json to get them)\n");
  });

  test("--count n calls n times; the first failure ends the run with its code", async () => {
    await h.serving(["o.count", "--echo"]);
    const r = await h.done(["call", "o.count", "7", "--count", "3", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").map((l) => JSON.parse(l).data)).toEqual([7, 7, 7]);
    const none = await h.done(["call", "o.nobody", "1", "-n", "3"]);
    expect(none).toEqual({
      code: 3,
      stdout: "",
      stderr: 'macula call: no_provider: no provider for "o.nobody"\n',
    });
  });
});

describe("serve --json, --count, --concurrency", () => {
  test("--json -v: one JSON object per event on stdout, nothing on stderr", async () => {
    const serve = h.macula([
      "serve",
      "o.log",
      "--json",
      "-v",
      "--",
      "sh",
      "-c",
      'read -r x; [ "$x" = bad ] && { echo broken >&2; exit 3; }; echo "ok $x"',
    ]);
    await serve.waitFor("out", '"event":"serving"');
    expect((await h.done(["call", "o.log", "good", "--raw"])).stdout).toBe("ok good\n\n");
    expect((await h.done(["call", "o.log", "bad", "--raw"])).code).toBe(5);
    await serve.waitFor("out", '"event":"failed"');
    serve.p.kill("SIGINT");
    expect(await serve.code()).toBe(0);
    const events = serve.lines().map((l) => JSON.parse(l));
    const ms = (i: number) => events[i].ms;
    expect(events).toEqual([
      { event: "serving", procedure: "o.log", url: h.node.url },
      { event: "call", procedure: "o.log", call: 1, bytes: 4 },
      { event: "reply", procedure: "o.log", call: 1, bytes: 8, ms: ms(2) },
      { event: "call", procedure: "o.log", call: 2, bytes: 3 },
      {
        event: "failed",
        procedure: "o.log",
        call: 2,
        error: "broken (sh: exit code 3)",
        ms: ms(4),
      },
      { event: "stopping", procedure: "o.log", signal: "SIGINT" },
    ]);
    expect(serve.err).toBe("");
  });

  test("--json without -v: only serving, failures and stopping", async () => {
    const serve = h.macula(["serve", "o.quiet", "--json", "--echo"]);
    await serve.waitFor("out", '"event":"serving"');
    expect((await h.done(["call", "o.quiet", "1"])).code).toBe(0);
    serve.p.kill("SIGTERM");
    expect(await serve.code()).toBe(0);
    expect(serve.lines().map((l) => JSON.parse(l).event)).toEqual(["serving", "stopping"]);
  });

  test("--count n: exits 0 once n calls are answered; the procedure is gone then", async () => {
    const serve = await h.serving(["o.twice", "--echo", "--count", "2"]);
    expect((await h.done(["call", "o.twice", "1"])).code).toBe(0);
    expect((await h.done(["call", "o.twice", "2"])).code).toBe(0);
    expect(await serve.code()).toBe(0);
    expect((await h.done(["call", "o.twice", "3"])).code).toBe(3);
  });

  test("--concurrency (no short flag): calls beyond it wait their turn", async () => {
    const serve = await h.serving([
      "o.one",
      "--concurrency",
      "1",
      "-v",
      "--",
      "sh",
      "-c",
      "cat",
    ]);
    const calls = await Promise.all(["1", "2", "3"].map((n) => h.done(["call", "o.one", n])));
    expect(calls.map((c) => c.code)).toEqual([0, 0, 0]);
    await serve.waitFor("err", "call 3: replied");
    const old = await h.done(["serve", "o.c", "-c", "2", "--echo"]);
    expect(old.code).toBe(2);
    expect(old.stderr).toContain("unknown option '-c'");
  });
});

const big = "x".repeat(LIMIT + 1);

describe("the node's payload limit", () => {
  test("pub: a message over the limit is refused alone (no 'published'), exit 1", async () => {
    const r = await h.done(["pub", "o.big", big]);
    expect(r).toEqual({
      code: 1,
      stdout: "",
      stderr: `macula pub: the message is ${LIMIT + 1} bytes, over the node's payload limit of ` +
        `${LIMIT}\n`,
    });
  });

  test("pub -: the line over the limit ends the run; the lines before it were delivered", async () => {
    const sub = await h.subscribed(["o.lines", "--count", "1"]);
    const r = await h.done(["pub", "o.lines", "-"], { stdin: `first\n${big}\nthird\n` });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `macula pub: stdin line 2 is ${LIMIT + 1} bytes, over the node's payload limit of ` +
        `${LIMIT}\n`,
    );
    expect(await sub.code()).toBe(0);
    expect(sub.out).toBe("[o.lines] first\n");
  });

  test("serve: a reply over the limit reaches the caller as payload_too_large, exit 6", async () => {
    const serve = await h.serving(["o.huge", "--", "head", "-c", "5000", "/dev/zero"]);
    const r = await h.done(["call", "o.huge"]);
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(
      new RegExp(
        `^macula call: payload_too_large: the reply of o\\.huge is \\d+ bytes, over the limit of ${LIMIT}\\n$`,
      ),
    );
    await serve.waitFor(
      "err",
      `o.huge: call 1: head wrote more than ${LIMIT} bytes, the payload limit`,
    );
  });

  test("call: a request over the limit is payload_too_large, exit 6", async () => {
    const r = await h.done(["call", "o.echo", JSON.stringify(big)]);
    expect(r.code).toBe(6);
    expect(r.stderr).toBe(
      `macula call: payload_too_large: payload is ${LIMIT + 3} bytes, the limit is ${LIMIT}\n`,
    );
  });
});

describe("--help", () => {
  test("pub, sub, call and serve: examples, exit codes with 130, the stop rule; no old flags", async () => {
    for (const verb of ["pub", "sub", "call", "serve"]) {
      const r = await h.done([verb, "--help"], { target: false });
      expect({ verb, code: r.code }).toEqual({ verb, code: 0 });
      for (const part of ["Examples:", "Exit codes:", "130", "a second Ctrl-C ends it at once"]) {
        expect({ verb, part, shown: r.stdout.includes(part) }).toEqual({ verb, part, shown: true });
      }
    }
    const serve = (await h.done(["serve", "--help"], { target: false })).stdout;
    expect(serve).toContain("--concurrency <n>");
    expect(serve).not.toContain("-c, --concurrency");
    const pub = (await h.done(["pub", "--help"], { target: false })).stdout;
    expect(pub).toContain("--input <format>");
    expect(pub).not.toContain("--json");
  });
});
