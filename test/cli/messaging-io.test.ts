/**
 * `pub` stdin taken as raw bytes (split on line feeds only, binary kept byte for byte), and the
 * deadlines: `sub --timeout` (with and without --count) and `pub --timeout` (the node must
 * confirm what was published).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { connect } from "../../lib/client/client.ts";
import { Harness } from "./messaging-harness.ts";

let h: Harness;

beforeAll(async () => {
  h = await Harness.start("macula-msg-io-");
});
afterAll(async () => {
  await h?.stop();
});

describe("pub -: stdin as bytes", () => {
  test("a line that is not UTF-8 arrives byte for byte (sub --json: base64)", async () => {
    const sub = await h.subscribed(["io.bin", "--json", "--count", "1"]);
    const pub = h.shell(`printf '\\xff\\xfe\\x00abc\\n' | $M pub io.bin -`);
    expect(await pub.code()).toBe(0);
    expect(pub.err).toBe("published 1 message to io.bin\n");
    expect(await sub.code()).toBe(0);
    const m = JSON.parse(sub.out);
    expect(m).toEqual({ topic: "io.bin", base64: "//4AYWJj", bytes: 6 });
    expect([...Buffer.from(m.base64, "base64")]).toEqual([0xff, 0xfe, 0x00, 0x61, 0x62, 0x63]);
  });

  test("only the line feed goes: \\r stays, empty lines are messages, a last line without \\n is one", async () => {
    const sub = await h.subscribed(["io.lines", "--json", "--count", "4"]);
    const pub = h.shell(`printf 'a\\r\\n\\n\\xc3\\xa9\\n\\x80tail' | $M pub io.lines -`);
    expect(await pub.code()).toBe(0);
    expect(pub.err).toBe("published 4 messages to io.lines\n");
    expect(await sub.code()).toBe(0);
    expect(sub.out.trimEnd().split("\n").map((l) => JSON.parse(l))).toEqual([
      { topic: "io.lines", data: "a\r", bytes: 2 },
      { topic: "io.lines", data: "", bytes: 0 },
      { topic: "io.lines", data: "é", bytes: 2 },
      {
        topic: "io.lines",
        base64: Buffer.from([0x80, ...Buffer.from("tail")]).toString("base64"),
        bytes: 5,
      },
    ]);
  });

  test("sub --raw writes the bytes back as they came", async () => {
    const file = join(h.root, "raw.out");
    const sub = h.shell(`$M sub io.raw --raw --count 1 > ${file}; od -An -tx1 ${file} >&2`);
    await sub.waitFor("err", "subscribed to io.raw");
    const pub = h.shell(`printf '\\x00\\xff\\x0d\\n' | $M pub io.raw -`);
    expect(await pub.code()).toBe(0);
    expect(await sub.code()).toBe(0);
    expect(sub.err.split("\n").at(-2)!.trim()).toBe("00 ff 0d 0a"); // the payload, then --raw's \n
  });

  test("--count n with stdin stops after n lines", async () => {
    const sub = await h.subscribed(["io.few", "--count", "2"]);
    const pub = h.shell(`printf 'one\\ntwo\\nthree\\n' | $M pub io.few - --count 2`);
    expect(await pub.code()).toBe(0);
    expect(pub.err).toBe("published 2 messages to io.few\n");
    expect(await sub.code()).toBe(0);
    expect(sub.out).toBe("[io.few] one\n[io.few] two\n");
  });
});

describe("sub --timeout", () => {
  test("with --count: not all in time is exit 1, saying how many came", async () => {
    const sub = await h.subscribed(["io.late", "--count", "2", "--timeout", "3000"]);
    await h.publish("io.late", "first");
    await sub.waitFor("out", "[io.late] first\n");
    expect(await sub.code()).toBe(1);
    expect(sub.err).toEndWith("macula sub: timeout: 1 of 2 messages within 3000 ms\n");
  });

  test("with --count: all in time is exit 0, at once", async () => {
    const sub = await h.subscribed(["io.quick", "--count", "1", "--timeout", "60000"]);
    const t0 = performance.now();
    await h.publish("io.quick", "x");
    expect(await sub.code()).toBe(0);
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(sub.out).toBe("[io.quick] x\n");
  });

  test("without --count: it stops after that long, exit 0", async () => {
    const sub = await h.subscribed(["io.window", "--timeout", "3000"]);
    await h.publish("io.window", "seen");
    expect(await sub.code()).toBe(0);
    expect(sub.out).toBe("[io.window] seen\n");
    expect(sub.err).toBe(`subscribed to io.window on ${h.node.url}\n`);
  });

  test("--timeout is -t, a whole number of ms", async () => {
    const r = await h.done(["sub", "io.x", "-t", "soon"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("give a whole number");
  });
});

describe("pub --timeout", () => {
  test("a node that does not confirm in time: exit 1 saying so", async () => {
    // A node in a process of its own, so that it can be frozen (SIGSTOP).
    const { proc: nodeProc, ...ready } = await h.nodeProcess("frozen");
    try {
      const watcher = await connect({ url: ready.url, creds: ready.credsDir });
      const seen = watcher.subscribe("io.frozen");
      await watcher.flush();
      const target = ["--server", ready.url, "--creds", ready.credsDir];
      // Two messages a second apart: the node is frozen after the first arrived.
      const pub = h.macula(
        ["pub", ...target, "io.frozen", "x", "-n", "2", "-r", "1", "-t", "700"],
        { target: false },
      );
      for await (const _ of seen) break;
      nodeProc.p.kill("SIGSTOP");
      const t0 = performance.now();
      expect(await pub.code()).toBe(1);
      expect(performance.now() - t0).toBeLessThan(8000);
      expect(pub.err).toBe(
        "macula pub: timeout: the node did not confirm the 2 messages published to io.frozen " +
          "within 700 ms\n",
      );
      nodeProc.p.kill("SIGCONT");
      await watcher.close();
    } finally {
      nodeProc.p.kill("SIGCONT");
      nodeProc.p.kill("SIGTERM");
      await nodeProc.code();
    }
  });

  test("-t is in pub's help as -t, --timeout <ms>", async () => {
    const r = await h.done(["pub", "--help"], { target: false });
    expect(r.stdout).toContain("-t, --timeout <ms>");
    const s = await h.done(["sub", "--help"], { target: false });
    expect(s.stdout).toContain("-t, --timeout <ms>");
  });
});
